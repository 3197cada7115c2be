"""Fibre Channel volumes over NPIV: the LPAR gets virtual FC adapters with
WWPNs of its own, and the SAN maps LUNs straight to those.

Per fabric of ``[powervm] fabrics`` the LPAR has ``ports_per_fabric``
virtual FC mappings, each backed by a physical port of that fabric
(``[powervm] fabric_port_wwpns``; default: every NPIV-capable port). The
mappings are made once, when the connector is first asked for or a volume
first attached, with WWPNs the PowerVM API generates; they stay (they are
the instance's identity on the fabric, the one the volume service zoned)
until the LPAR is destroyed. Attaching or detaching a volume changes nothing
on the host: the guest sees the LUNs the SAN gives its WWPNs. So the VIOS
cannot tell which volume is at which mountpoint (``attached_at`` is None).
"""

from __future__ import annotations

import logging
from typing import Any

from pypowervm import const as pvm_const
from pypowervm.tasks import partition as pvm_tpar
from pypowervm.tasks import vfc_mapper as pvm_vfcm
from pypowervm.utils import transaction as pvm_tx
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.powervm import vm
from virtstack.virt.powervm.volume.driver import VolumeAdapter

LOG = logging.getLogger(__name__)


def fabric_ports(vioses: list[pvm_vios.VIOS], fabric: str, options: dict[str, Any]) -> list[str]:
    """Physical port WWPNs of ``fabric``: configured, else every port with
    free NPIV ports."""
    configured = (options.get("fabric_port_wwpns") or {}).get(fabric)
    if configured:
        return [wwpn.upper() for wwpn in configured.split()]
    return [port.wwpn.upper() for vios_w in vioses for port in vios_w.pfc_ports
            if port.wwpn and (port.npiv_available_ports or 0) > 0]


def client_wwpns(vioses: list[pvm_vios.VIOS], lpar_uuid: str) -> list[str]:
    """The LPAR's virtual WWPNs, from its vFC mappings."""
    wwpns: list[str] = []
    for vios_w in vioses:
        for mapping in pvm_vfcm.find_maps(vios_w.vfc_mappings, lpar_uuid):
            if mapping.client_adapter is not None and mapping.client_adapter.wwpns:
                wwpns.extend(w.upper() for w in mapping.client_adapter.wwpns)
    return wwpns


def ensure_mappings(adapter: Any, host_uuid: str, lpar_uuid: str,
                    options: dict[str, Any]) -> list[str]:
    """Give the LPAR its vFC mappings if it has none; its WWPNs."""
    xag = [pvm_const.XAG.VIO_FMAP]
    vioses = pvm_tpar.get_active_vioses(adapter, xag=xag)
    existing = client_wwpns(vioses, lpar_uuid)
    if existing:
        return existing
    ftsk = pvm_tx.FeedTask("npiv_map", vioses)
    for fabric in options.get("fabrics") or ["A"]:
        ports = fabric_ports(vioses, fabric, options)
        if not ports:
            raise exception.ConfigError(reason=f"NPIV fabric {fabric} has no usable FC port")
        port_map = pvm_vfcm.derive_base_npiv_map(vioses, ports,
                                                 int(options.get("ports_per_fabric") or 1))
        for p_port, v_ports in port_map:
            def add(vios_w, port=(p_port, v_ports)):
                return pvm_vfcm.add_map(vios_w, host_uuid, lpar_uuid, port,
                                        error_if_invalid=False)

            for vios_w in vioses:
                ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(add)
    ftsk.execute()
    return client_wwpns(pvm_tpar.get_active_vioses(adapter, xag=xag), lpar_uuid)


class NPIVVolumeAdapter(VolumeAdapter):
    min_xags = (pvm_const.XAG.VIO_FMAP,)

    @classmethod
    def host_connector(cls, adapter: Any, host_uuid: str, instance: Instance,
                       options: dict[str, Any]) -> dict[str, Any]:
        """The instance's own WWPNs (its vFC mappings are made if needed)."""
        vm.get_lpar(adapter, instance)
        return {"wwpns": ensure_mappings(adapter, host_uuid, vm.pvm_uuid(instance), options)}

    def attached_at(self, mountpoint: str) -> None:
        return None

    def connect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        ensure_mappings(self.adapter, self.host_uuid, self.lpar_uuid, self.options)

    def disconnect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Nothing on the host: the volume service unmaps the LUN from the
        instance's WWPNs; the mappings stay for its other volumes."""

    def cleanup(self) -> None:
        pass

    def extend_volume(self) -> None:
        """The guest's own FC stack sees the new size; the host has nothing
        to rescan (it does not see the LUN)."""
