"""The ``fake_fc`` volume backend: volumes exported as Fibre Channel LUNs of
an **emulated** SAN.

This backend exists so that the Fibre Channel path of a compute driver (the
PowerVM driver's vSCSI and NPIV attach) can be driven end to end, through
the Compute and Block Storage APIs, on machines with no FC hardware, no
fabric and no storage array. Nothing in it talks to a switch or an array:
it is a fake that ships in the product (DESIGN rule 7), like the fake
PowerVM REST session it is made to work with. Do not use it for data you
want to keep on a real SAN; use it for demos and tests.

What it emulates, and how:

- **The array's data**: each volume is a sparse raw file (``filestore``, in
  ``[volume] volumes_dir``), so create, clone, snapshot, extend, image
  copies and ``local_path`` work as for the ``file`` backend.
- **The array's target ports**: two WWPNs per volume service host
  (``array_ports``), the same for every volume of that host, as a real
  array's front-end ports are.
- **LUN numbering**: each volume gets the lowest LUN (1, 2, ...) no other
  volume of these ports has, when it is created; it is kept in the volume's
  ``provider_location`` (``"<wwpn>,<wwpn> <lun>"``), so a volume's address
  never changes.
- **LUN masking** (the array's host groups) **and zoning**: ``Fabric``, a
  directory of one JSON record per volume (``volume-<id>.json``: target
  WWPNs, LUN, size, the initiator WWPNs let in). ``initialize_connection``
  lets the connector's ``wwpns`` in; ``terminate_connection`` shuts them
  out. The directory is ``state_path/fake-fc-fabric``: the volume service
  writes it and a fake hypervisor on the same machine reads it (the fake
  PowerVM session's LUARecovery presents a LUN as an hdisk only to VIOS
  ports the record lets in, with the record's size). All-in-one only: two
  hosts with different state paths see different fabrics.

connection_info::

    {"driver_volume_type": "fibre_channel",
     "data": {"volume_id": "<id>", "target_wwn": ["5000C0FFEE3A1B01", "5000C0FFEE3A1B02"],
              "target_lun": 1,
              "initiator_target_map": {"10000090FA1B6302": ["5000C0FFEE3A1B01",
                                                            "5000C0FFEE3A1B02"]},
              "target_discovered": False, "access_mode": "rw"}}

The connector must carry ``wwpns`` (``{"host": ..., "wwpns":
["10000090FA1B6302", ...]}``); one without gets ``VolumeBackendError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import types
from typing import Any, Sequence

from oslo_config import cfg

from virtstack import exception
from virtstack.volume.backends import filestore
from virtstack.volume.backends.base import ModelUpdate, VolumeExport, VolumeRef
from virtstack.volume.backends.file import volumes_dir

LOG = logging.getLogger(__name__)

FORMAT = "raw"
#: The emulated array's WWPNs start with this (NAA 5, a made-up vendor):
#: a WWPN that does not is never one of this SAN's targets.
TARGET_PREFIX = "5000C0FFEE"
PORTS_PER_ARRAY = 2
#: LUNs handed out: 1 up to this (SCSI peripheral addressing allows 0-255
#: without a flat-space format; LUN 0 is left to the array's controller).
MAX_LUN = 255
FABRIC_DIR_NAME = "fake-fc-fabric"

# LUN allocation and the records' read-modify-write must not interleave
# between threads of the volume service.
_fabric_lock = threading.Lock()


def fabric_dir(conf: cfg.ConfigOpts) -> str:
    """Where the emulated fabric keeps its records: ``state_path/fake-fc-fabric``."""
    return os.path.join(conf.state_path, FABRIC_DIR_NAME)


def array_ports(host: str) -> tuple[str, ...]:
    """The target port WWPNs of the array that volume service ``host``
    emulates (16 upper-case hex digits each; stable for a host name)."""
    digest = hashlib.sha256(host.encode("utf-8")).hexdigest().upper()
    return tuple(f"{TARGET_PREFIX}{digest[:4]}{port:02X}" for port in range(1, PORTS_PER_ARRAY + 1))


def _wwpn(value: Any) -> str:
    """A WWPN as the fabric keeps it: 16 upper-case hex digits, no colons."""
    text = str(value).replace(":", "").strip().upper()
    if len(text) != 16 or any(c not in "0123456789ABCDEF" for c in text):
        raise exception.VolumeBackendError(reason=f"{value!r} is not a WWPN (16 hex digits)")
    return text


@dataclasses.dataclass(frozen=True)
class LunExport:
    """One volume on the emulated SAN: where it is and who may see it."""

    volume_id: str
    target_wwns: tuple[str, ...]
    lun: int
    size_bytes: int
    initiators: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"volume_id": self.volume_id, "target_wwns": list(self.target_wwns),
                "lun": self.lun, "size_bytes": self.size_bytes,
                "initiators": sorted(self.initiators)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LunExport":
        return cls(volume_id=str(data["volume_id"]),
                   target_wwns=tuple(data["target_wwns"]), lun=int(data["lun"]),
                   size_bytes=int(data["size_bytes"]),
                   initiators=frozenset(data.get("initiators") or ()))


class Fabric:
    """The emulated SAN's state: one JSON record per exported volume in
    ``directory``. Writers (the ``fake_fc`` backend) replace a record
    atomically, so a reader in another thread or process (a fake
    hypervisor) sees either the old or the new record, never half of one."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)

    def prepare(self) -> None:
        os.makedirs(self.directory, exist_ok=True)

    def _path(self, volume_id: str) -> str:
        if not volume_id or os.sep in volume_id or volume_id.startswith("."):
            raise exception.VolumeBackendError(reason=f"not a volume id: {volume_id!r}")
        return os.path.join(self.directory, f"volume-{volume_id}.json")

    # -- reading (the fake hypervisors use these) ------------------------------

    def exports(self) -> list[LunExport]:
        """Every LUN on the fabric (none when the fabric was never set up)."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if not (name.startswith("volume-") and name.endswith(".json")):
                continue
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as record:
                    found.append(LunExport.from_json(json.load(record)))
            except FileNotFoundError:
                continue  # deleted while listing
        return found

    def export_of(self, volume_id: str) -> LunExport | None:
        try:
            with open(self._path(volume_id), encoding="utf-8") as record:
                return LunExport.from_json(json.load(record))
        except FileNotFoundError:
            return None

    def owns_target(self, target_wwn: str) -> bool:
        """Whether ``target_wwn`` is a port of an array on this fabric."""
        return str(target_wwn).replace(":", "").upper().startswith(TARGET_PREFIX)

    def find(self, target_wwn: str, lun: int) -> LunExport | None:
        """The LUN ``lun`` behind target port ``target_wwn``, or None."""
        target = str(target_wwn).replace(":", "").upper()
        return next((e for e in self.exports() if target in e.target_wwns and e.lun == lun),
                    None)

    # -- writing (the backend) ---------------------------------------------------

    def put(self, export: LunExport) -> None:
        self.prepare()
        path = self._path(export.volume_id)
        part = path + ".part"
        with open(part, "w", encoding="utf-8") as record:
            json.dump(export.to_json(), record)
        os.replace(part, path)

    def remove(self, volume_id: str) -> None:
        try:
            os.unlink(self._path(volume_id))
        except FileNotFoundError:
            pass

    def free_lun(self, target_wwns: Sequence[str]) -> int:
        """The lowest LUN no record on these ports has."""
        used = {e.lun for e in self.exports() if set(e.target_wwns) & set(target_wwns)}
        for lun in range(1, MAX_LUN + 1):
            if lun not in used:
                return lun
        raise exception.VolumeBackendError(
            reason=f"the emulated array {','.join(target_wwns)} has no free LUN "
                   f"(all {MAX_LUN} are used)")


class FakeFCBackend(filestore.ExportedRawFileBackend):
    """Raw files presented as LUNs of an emulated FC array (see the module
    docstring: an emulation for driving FC attach paths without hardware)."""

    name = "fake_fc"
    capabilities = types.MappingProxyType({
        "driver_volume_type": "fibre_channel",
        "thin_provisioning": True,
        # The record's size grows with the file; the host rescans the LUN.
        "online_extend": True,
    })

    def __init__(self, host: str, conf: cfg.ConfigOpts | None = None) -> None:
        super().__init__(host)
        if conf is None:
            from virtstack.conf import CONF as conf
        self.conf = conf
        self.store = filestore.VolumeFileStore(volumes_dir(conf))
        self.fabric = Fabric(fabric_dir(conf))
        self.target_wwns = array_ports(host)

    # -- addresses ------------------------------------------------------------------

    @staticmethod
    def parse_location(provider_location: str | None) -> tuple[tuple[str, ...], int] | None:
        """``(target WWPNs, LUN)`` of ``"<wwpn>,<wwpn> <lun>"``, else None."""
        parts = (provider_location or "").split()
        if len(parts) != 2 or not parts[1].isdigit():
            return None
        return tuple(parts[0].split(",")), int(parts[1])

    def _address(self, volume: VolumeRef) -> tuple[tuple[str, ...], int]:
        address = self.parse_location(volume.provider_location)
        if address is None:
            raise exception.VolumeBackendError(
                reason=f"volume {volume.id} has no FC address (provider_location "
                       f"{volume.provider_location!r}); it was not created by the fake_fc "
                       f"backend")
        return address

    def _size_bytes(self, volume: VolumeRef) -> int:
        return self.store.virtual_size(self.store.volume_path(volume.id), FORMAT)

    def _exported(self, volume: VolumeRef) -> ModelUpdate:
        """Give the just-made file of ``volume`` a LUN nobody is let in to
        (or the one it has, when a create is retried). On failure the file
        is removed."""
        try:
            with _fabric_lock:
                existing = self.fabric.export_of(volume.id)
                lun = existing.lun if existing else self.fabric.free_lun(self.target_wwns)
                self.fabric.put(LunExport(volume.id, self.target_wwns, lun,
                                          self._size_bytes(volume)))
        except Exception:
            self.store.delete(self.store.volume_path(volume.id))
            raise
        LOG.info("Volume %s is LUN %d of emulated FC ports %s", volume.id, lun,
                 ",".join(self.target_wwns))
        return {"provider_location": f"{','.join(self.target_wwns)} {lun}"}

    def _export(self, volume: VolumeRef) -> LunExport:
        """The volume's record, put back from its provider_location if the
        fabric lost it (a wiped state directory)."""
        export = self.fabric.export_of(volume.id)
        if export is None:
            path = self.store.volume_path(volume.id)
            if not os.path.exists(path):
                raise exception.VolumeBackendError(reason=f"volume file {path} does not exist")
            targets, lun = self._address(volume)
            export = LunExport(volume.id, targets, lun, self._size_bytes(volume))
            self.fabric.put(export)
        return export

    # -- service --------------------------------------------------------------------

    def check_setup(self) -> None:
        self.store.prepare()
        self.fabric.prepare()

    def ensure_exports(self, exports: Sequence[VolumeExport]) -> dict[str, str]:
        """Put back each volume's record with exactly its live attachments'
        initiators."""
        failed: dict[str, str] = {}
        for item in exports:
            try:
                wwpns = {_wwpn(w) for c in item.connectors for w in c.get("wwpns") or ()}
                with _fabric_lock:
                    export = self._export(item.volume)
                    self.fabric.put(dataclasses.replace(export, initiators=frozenset(wwpns)))
            except exception.VirtstackException as exc:
                failed[item.volume.id] = exc.format_message()
        return failed

    # -- volumes ---------------------------------------------------------------------

    def delete_volume(self, volume: VolumeRef) -> None:
        with _fabric_lock:
            self.fabric.remove(volume.id)
        self.store.delete(self.store.volume_path(volume.id))

    def extend_volume(self, volume: VolumeRef, new_size: int) -> None:
        """Grow the file; the LUN reports the new size from then on (a host
        sees it at its next rescan)."""
        self.store.grow(self.store.volume_path(volume.id), FORMAT, new_size)
        with _fabric_lock:
            export = self.fabric.export_of(volume.id)
            if export is not None:
                self.fabric.put(dataclasses.replace(export, size_bytes=self._size_bytes(volume)))

    # -- snapshots -----------------------------------------------------------------------

    # -- export to compute hosts -------------------------------------------------------

    def initialize_connection(self, volume: VolumeRef, connector: dict[str, Any]) -> dict[str, Any]:
        wwpns = sorted({_wwpn(w) for w in (connector or {}).get("wwpns") or ()})
        if not wwpns:
            raise exception.VolumeBackendError(
                reason=f"host {(connector or {}).get('host')!r} gave no FC WWPNs in its "
                       f"connector; Fibre Channel volumes cannot be attached there")
        with _fabric_lock:
            export = self._export(volume)
            if not set(wwpns) <= export.initiators:
                export = dataclasses.replace(export, initiators=export.initiators | set(wwpns))
                self.fabric.put(export)
                LOG.info("Let initiators %s see LUN %d (volume %s)", ",".join(wwpns),
                         export.lun, volume.id)
        targets = list(export.target_wwns)
        return {"driver_volume_type": "fibre_channel",
                "data": {"volume_id": volume.id, "target_wwn": targets,
                         "target_lun": export.lun,
                         "initiator_target_map": {w: list(targets) for w in wwpns},
                         "target_discovered": False, "access_mode": "rw"}}

    def terminate_connection(self, volume: VolumeRef, connector: dict[str, Any] | None) -> None:
        with _fabric_lock:
            export = self.fabric.export_of(volume.id)
            if export is None:
                return
            if connector is None:
                gone = set(export.initiators)
            else:
                gone = {_wwpn(w) for w in connector.get("wwpns") or ()} & export.initiators
            if gone:
                self.fabric.put(dataclasses.replace(export, initiators=export.initiators - gone))
                LOG.info("Shut initiators %s out of LUN %d (volume %s)",
                         ",".join(sorted(gone)), export.lun, volume.id)

    # -- host-side access ------------------------------------------------------------------
