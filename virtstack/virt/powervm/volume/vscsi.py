"""Fibre Channel volumes presented to the VIOS and mapped over virtual SCSI.

Attach: on every VIOS with an FC port the volume's target can reach,
LUARecovery discovers the LUN as an hdisk (a physical volume); the hdisk is
mapped to the LPAR over vSCSI. The mapping's target device is named after
the instance and the mountpoint (``vt<8 hex of the uuid><device>``), which
is how a later detach, extend or ``DeviceInUse`` check finds it. Detach
removes the mappings, then the hdisks that nothing maps any more.
"""

from __future__ import annotations

import logging
from typing import Any

from pypowervm import const as pvm_const
from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import hdisk as pvm_hdisk
from pypowervm.tasks import partition as pvm_tpar
from pypowervm.tasks import scsi_mapper as pvm_smap
from pypowervm.tasks import storage as pvm_stg
from pypowervm.utils import transaction as pvm_tx
from pypowervm.wrappers import storage as pvm_stor
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.powervm.volume.driver import VolumeAdapter, device_name

LOG = logging.getLogger(__name__)


class VSCSIVolumeAdapter(VolumeAdapter):
    min_xags = (pvm_const.XAG.VIO_STOR, pvm_const.XAG.VIO_SMAP)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: VIOS uuid -> hdisk names the last disconnect unmapped (for cleanup)
        self._unmapped: dict[str, list[str]] = {}

    @classmethod
    def host_connector(cls, adapter: Any, host_uuid: str, instance: Instance,
                       options: dict[str, Any]) -> dict[str, Any]:
        """The WWPNs of the VIOSes' physical FC ports: the SAN zones the
        volume to them."""
        wwpns = {port.wwpn.upper() for vios_w in pvm_tpar.get_active_vioses(adapter)
                 for port in vios_w.pfc_ports if port.wwpn}
        return {"wwpns": sorted(wwpns)}

    @property
    def _tag(self) -> str:
        return "vol-" + self.volume_id

    def _target_name(self, mountpoint: str) -> str:
        return "vt" + self.instance.uuid.replace("-", "")[:8] + device_name(mountpoint)

    def _mappings_at(self, vios_w: pvm_vios.VIOS, mountpoint: str) -> list:
        target = self._target_name(mountpoint)
        return [m for m in vios_w.scsi_mappings
                if m.target_dev is not None and m.target_dev.name == target
                and isinstance(m.backing_storage, pvm_stor.PV)]

    def attached_at(self, mountpoint: str) -> bool:
        return any(self._mappings_at(vios_w, mountpoint) for vios_w in
                   pvm_tpar.get_active_vioses(self.adapter, xag=list(self.min_xags)))

    def _itls(self, vios_w: pvm_vios.VIOS) -> list:
        """Initiator-target-LUN triples from this VIOS's ports to the volume."""
        targets = self.data.get("target_wwn") or []
        if isinstance(targets, str):
            targets = [targets]
        lun = self.data.get("target_lun")
        if lun is None or not targets:
            raise exception.Invalid(reason=(
                f"connection_info of volume {self.volume_id} needs target_wwn and target_lun"))
        vios_wwpns = sorted({port.wwpn.upper() for port in vios_w.pfc_ports if port.wwpn})
        it_map = {i.upper(): t for i, t in (self.data.get("initiator_target_map") or {}).items()}
        initiators = [i for i in vios_wwpns if i in it_map] or vios_wwpns
        return [pvm_hdisk.ITL(i, t, lun) for i in initiators for t in it_map.get(i, targets)]

    def _discover(self, vios_w: pvm_vios.VIOS) -> tuple[str, str] | None:
        """(hdisk name, udid) of the volume on ``vios_w`` (LUARecovery makes
        the VIOS find it if it has not yet); None if the VIOS cannot see it."""
        itls = self._itls(vios_w)
        if not itls:
            return None
        status, name, udid = pvm_hdisk.discover_hdisk(self.adapter, vios_w.uuid, itls)
        if not pvm_hdisk.good_discovery(status, name):
            LOG.info("VIOS %s cannot see volume %s (LUA status %s)", vios_w.name,
                     self.volume_id, status)
            return None
        return name, udid

    def connect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        target = self._target_name(mountpoint)
        seen_by = 0
        for vios_w in stg_ftsk.feed:
            found = self._discover(vios_w)
            if found is None:
                continue
            seen_by += 1
            # The tag names the volume: extend_volume finds it by that.
            pv = pvm_stor.PV.bld(self.adapter, found[0], udid=found[1], tag=self._tag)

            def add(vios_w, pv=pv):
                mapping = pvm_smap.build_vscsi_mapping(None, vios_w, self.lpar_uuid, pv,
                                                       target_name=target)
                return pvm_smap.add_map(vios_w, mapping)

            stg_ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(add)
        if not seen_by:
            raise exception.VolumeNotFound(volume_id=self.volume_id)

    def disconnect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Remove the mappings at ``mountpoint``; the volume's hdisks (found
        by discovery, as a mapping may never have been made) are noted for
        ``cleanup``."""
        for vios_w in stg_ftsk.feed:
            found = self._discover(vios_w)
            if found is not None:
                self._unmapped[vios_w.uuid] = [found[0]]

            def remove(vios_w):
                removed = self._mappings_at(vios_w, mountpoint)
                for mapping in removed:
                    vios_w.scsi_mappings.remove(mapping)
                return removed

            stg_ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(remove)

    def cleanup(self) -> None:
        """Remove the hdisks the disconnect unmapped, unless another mapping
        (another LPAR's) still uses them."""
        for vios_uuid, names in self._unmapped.items():
            vios_w = pvm_vios.VIOS.get(self.adapter, uuid=vios_uuid, xag=list(self.min_xags))
            in_use = {m.backing_storage.name for m in vios_w.scsi_mappings
                      if m.backing_storage is not None}
            for name in set(names) - in_use:
                try:
                    pvm_hdisk.remove_hdisk(self.adapter, None, name, vios_uuid)
                except pvm_exc.JobRequestFailed as exc:
                    LOG.warning("Could not remove %s from VIOS %s: %s", name, vios_uuid, exc)
        self._unmapped = {}

    def extend_volume(self) -> None:
        rescanned = False
        for vios_w in pvm_tpar.get_active_vioses(self.adapter, xag=list(self.min_xags)):
            for mapping in pvm_smap.find_maps(vios_w.scsi_mappings, client_lpar_id=self.lpar_uuid):
                stg = mapping.backing_storage
                if isinstance(stg, pvm_stor.PV) and stg.tag == self._tag:
                    pvm_stg.rescan_vstor(vios_w, stg.udid, adapter=self.adapter)
                    rescanned = True
        if not rescanned:
            raise exception.DeviceNotFound(device=f"volume {self.volume_id}",
                                           instance_id=self.instance.uuid)
