"""What the fake REST server does when an object is created, updated or
deleted: the server-side rules of each kind, as far as the PowerVM driver
relies on them.

- LogicalPartition: the server assigns the partition id and state, refuses
  a duplicate name and refuses to delete a partition that is not off; the
  partition's client adapters go with it, leaving the VIOS mappings that
  served it as orphans (a server adapter with no client).
- VirtualIOServer update: new vSCSI/vFC mappings get their server and client
  adapters (slots, names), a target device and the full backing-storage
  element; storage that does not exist on this VIOS is refused.
- VolumeGroup update: new virtual disks get a UDID (and the data of their
  ``BaseImage``); removed ones disappear unless still mapped; optical media
  likewise.
- LogicalUnit create/delete under the Tier: UDIDs, linked clones, in-use
  checks, and the SSP's own view kept in step.
- ClientNetworkAdapter: slot and MAC assignment. File: upload metadata;
  the upload itself records size and digest at the target device.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import uuid as uuidlib
from typing import TYPE_CHECKING, Iterable

from lxml import etree

from virtstack.virt.powervm.fake import world as w
from virtstack.virt.powervm.fake.world import (DeviceData, Stored, find, findall, href_uuid,
                                               link_href, q, set_text, text)

if TYPE_CHECKING:  # pragma: no cover
    from virtstack.virt.powervm.fake.server import Server

NOT_ACTIVATED = "not activated"
_TARGET_DEV = {"VirtualDisk": "LogicalVolumeVirtualTargetDevice",
               "LogicalUnit": "SharedStoragePoolLogicalUnitVirtualTargetDevice",
               "PhysicalVolume": "PhysicalVolumeVirtualTargetDevice",
               "VirtualOpticalMedia": "VirtualOpticalTargetDevice"}


def _error(status: int, message: str) -> Exception:
    from virtstack.virt.powervm.fake.server import RESTError
    return RESTError(status, message)


class KindRules:
    """Create/update/delete/upload with each kind's server-side rules."""

    def __init__(self, server: "Server"):
        self.server = server
        self.world = server.world
        self._counter = itertools.count(1)

    # -- dispatch -------------------------------------------------------------------

    def create(self, kind: str, parent: Stored | None, element: etree._Element) -> Stored:
        handler = getattr(self, f"_create_{kind}", None)
        if handler is None:
            raise _error(400, f"the fake PowerVM server cannot create {kind} objects")
        return handler(parent, element)

    def update(self, stored: Stored, element: etree._Element) -> None:
        handler = getattr(self, f"_update_{stored.kind}", None)
        if handler is None:
            raise _error(400, f"the fake PowerVM server cannot update {stored.kind} objects")
        handler(stored, element)
        self.world.touch(stored)

    def delete(self, stored: Stored) -> None:
        handler = getattr(self, f"_delete_{stored.kind}", None)
        if handler is None:
            raise _error(400, f"the fake PowerVM server cannot delete {stored.kind} objects")
        handler(stored)

    def _serial(self) -> int:
        return next(self._counter)

    def _ms(self) -> Stored:
        return self.world.all("ManagedSystem")[0]

    # -- partitions -------------------------------------------------------------------

    def partitions(self) -> list[Stored]:
        return self.world.all("LogicalPartition") + self.world.all("VirtualIOServer")

    def partition_by_id(self, lpar_id: str | None) -> Stored | None:
        return next((p for p in self.partitions() if text(p.element, "PartitionID") == lpar_id),
                    None)

    def _create_LogicalPartition(self, parent: Stored | None, element: etree._Element) -> Stored:
        ms = parent or self._ms()
        name = text(element, "PartitionName")
        if not name:
            raise _error(400, "PartitionName is required")
        if any(text(p.element, "PartitionName") == name for p in self.partitions()):
            raise _error(400, f"HSCL3A2A A partition named {name} already exists")
        uuid = (text(element, "PartitionUUID") or str(uuidlib.uuid4())).upper()
        if self.world.get("LogicalPartition", uuid) is not None:
            raise _error(400, f"a partition with UUID {uuid} already exists")
        used = {int(text(p.element, "PartitionID", "0")) for p in self.partitions()}
        lpar_id = next(i for i in itertools.count(2) if i not in used)
        set_text(element, "PartitionUUID", uuid)
        set_text(element, "PartitionID", lpar_id)
        set_text(element, "PartitionState", NOT_ACTIVATED)
        set_text(element, "ResourceMonitoringControlState", "inactive")
        if text(element, "PartitionType") is None:
            set_text(element, "PartitionType", "AIX/Linux")
        set_text(element, "Metadata/Atom/AtomID", uuid)
        assoc = find(element, "AssociatedManagedSystem")
        if assoc is None:
            assoc = etree.SubElement(element, q("AssociatedManagedSystem"))
        assoc.set("href", self.world.href(ms))
        assoc.set("rel", "related")
        return self.world.add("LogicalPartition", element, uuid, parent=("ManagedSystem", ms.uuid))

    #: What a client cannot change by posting a partition back (for a VIOS
    #: also the disks it sees: LUARecovery/RemoveDevice change those).
    _SERVER_OWNED = ("PartitionState", "PartitionUUID", "PartitionID",
                     "ResourceMonitoringControlState", "AssociatedManagedSystem",
                     "PhysicalVolumes")

    def _keep_server_fields(self, stored: Stored, element: etree._Element) -> None:
        for tag in self._SERVER_OWNED:
            w.remove(element, tag)
            old = find(stored.element, tag)
            if old is not None:
                element.append(copy.deepcopy(old))

    def _update_LogicalPartition(self, stored: Stored, element: etree._Element) -> None:
        self._keep_server_fields(stored, element)
        stored.element = element

    def _delete_LogicalPartition(self, stored: Stored) -> None:
        state = text(stored.element, "PartitionState")
        if state != NOT_ACTIVATED:
            raise _error(409, f"HSCL1514 partition {text(stored.element, 'PartitionName')} is "
                              f"{state}; it must be powered off before it is deleted")
        for child in self.world.children("LogicalPartition", stored.uuid,
                                         "ClientNetworkAdapter"):
            self.world.remove(child)
        for vios in self.world.all("VirtualIOServer"):
            if self._orphan_mappings(vios, stored.uuid):
                self.world.touch(vios)
        self.world.remove(stored)

    def _orphan_mappings(self, vios: Stored, lpar_uuid: str) -> bool:
        """The client adapters of ``lpar_uuid`` vanish with it."""
        changed = False
        for kind in ("VirtualSCSIMappings/VirtualSCSIMapping",
                     "VirtualFibreChannelMappings/VirtualFibreChannelMapping"):
            for mapping in findall(vios.element, kind):
                client = find(mapping, "AssociatedLogicalPartition")
                if client is not None and (href_uuid(link_href(client)) or "").lower() == \
                        lpar_uuid.lower():
                    mapping.remove(client)
                    w.remove(mapping, "ClientAdapter")
                    changed = True
        return changed

    def _update_VirtualIOServer(self, stored: Stored, element: etree._Element) -> None:
        self._keep_server_fields(stored, element)
        vios_id = text(stored.element, "PartitionID")
        for mapping in findall(element, "VirtualSCSIMappings/VirtualSCSIMapping"):
            self._fill_mapping(stored, element, vios_id, mapping, scsi=True)
        for mapping in findall(element, "VirtualFibreChannelMappings/VirtualFibreChannelMapping"):
            self._fill_mapping(stored, element, vios_id, mapping, scsi=False)
        self._check_duplicates(element)
        stored.element = element

    # -- mappings ----------------------------------------------------------------------

    def _fill_mapping(self, vios: Stored, element: etree._Element, vios_id: str,
                      mapping: etree._Element, scsi: bool) -> None:
        client_link = find(mapping, "AssociatedLogicalPartition")
        client_adapter = find(mapping, "ClientAdapter")
        server_adapter = find(mapping, "ServerAdapter")
        if client_link is None or client_adapter is None:
            return  # an orphan, or an "any client" server adapter: left as it is
        lpar = self.world.get("LogicalPartition", href_uuid(link_href(client_link)))
        if lpar is None:
            raise _error(400, f"client partition {link_href(client_link)} does not exist")
        lpar_id = text(lpar.element, "PartitionID")
        if server_adapter is None:
            server_adapter = etree.SubElement(mapping, q("ServerAdapter"))
        if text(client_adapter, "VirtualSlotNumber") is None or \
                text(client_adapter, "UseNextAvailableSlotID") == "true":
            set_text(client_adapter, "VirtualSlotNumber", self._free_slot(lpar_id, client=True))
            w.remove(client_adapter, "UseNextAvailableSlotID")
        if text(server_adapter, "VirtualSlotNumber") is None:
            slot = self._free_slot(vios_id, client=False, extra=element)
            set_text(server_adapter, "VirtualSlotNumber", slot)
            w.remove(server_adapter, "UseNextAvailableSlotID")
            prefix = "vhost" if scsi else "vfchost"
            set_text(server_adapter, "AdapterName", f"{prefix}{self._serial()}")
            set_text(server_adapter, "UniqueDeviceID", f"1eFAKE-V{vios_id}-C{slot}")
        client_slot = text(client_adapter, "VirtualSlotNumber")
        server_slot = text(server_adapter, "VirtualSlotNumber")
        for adapter, local, remote, remote_slot, kind in (
                (client_adapter, lpar_id, vios_id, server_slot, "Client"),
                (server_adapter, vios_id, lpar_id, client_slot, "Server")):
            set_text(adapter, "AdapterType", kind)
            set_text(adapter, "LocalPartitionID", local)
            if scsi:
                set_text(adapter, "RemoteLogicalPartitionID", remote)
                set_text(adapter, "RemoteSlotNumber", remote_slot)
            else:
                set_text(adapter, "ConnectingPartitionID", remote)
                set_text(adapter, "ConnectingVirtualSlotNumber", remote_slot)
        if scsi:
            self._fill_scsi_storage(vios, element, mapping)
        else:
            self._fill_vfc_port(element, mapping, client_adapter, server_adapter)

    def _fill_scsi_storage(self, vios: Stored, element: etree._Element,
                           mapping: etree._Element) -> None:
        storage = find(mapping, "Storage")
        if storage is None or len(storage) == 0:
            return  # a bus without storage yet
        ref = storage[0]
        kind = ref.tag.split("}")[-1]
        full = self._backing(vios, element, kind, ref)
        storage.replace(ref, full)
        target = find(mapping, "TargetDevice")
        if target is None:
            target = etree.SubElement(mapping, q("TargetDevice"))
        if len(target) == 0:
            etree.SubElement(target, q(_TARGET_DEV[kind]))
        device = target[0]
        if text(device, "TargetName") is None:
            set_text(device, "TargetName", f"vtscsi{self._serial()}")
        if text(device, "LogicalUnitAddress") is None:
            set_text(device, "LogicalUnitAddress", f"0x{0x81 + self._serial() % 60:02x}00000000000000")
        if text(device, "UniqueDeviceID") is None:
            set_text(device, "UniqueDeviceID", uuidlib.uuid4().hex[:18])

    def _backing(self, vios: Stored, element: etree._Element, kind: str,
                 ref: etree._Element) -> etree._Element:
        """The full element of the storage a mapping names; 400 if it does
        not exist on this VIOS (or in the SSP)."""
        candidates: list[etree._Element] = []
        if kind == "VirtualDisk":
            name = (text(ref, "DiskName") or "").split("/")[-1]
            candidates = [d for vg in self.world.children("VirtualIOServer", vios.uuid,
                                                         "VolumeGroup")
                          for d in findall(vg.element, "VirtualDisks/VirtualDisk")
                          if text(d, "DiskName") == name]
        elif kind == "LogicalUnit":
            udid, name = text(ref, "UniqueDeviceID"), text(ref, "UnitName")
            candidates = [lu.element for lu in self.world.all("LogicalUnit")
                          if (udid and text(lu.element, "UniqueDeviceID") == udid)
                          or (not udid and text(lu.element, "UnitName") == name)]
        elif kind == "PhysicalVolume":
            name = text(ref, "VolumeName")
            candidates = [pv for pv in findall(element, "PhysicalVolumes/PhysicalVolume")
                          if text(pv, "VolumeName") == name]
        elif kind == "VirtualOpticalMedia":
            name = text(ref, "MediaName")
            candidates = [m for vg in self.world.children("VirtualIOServer", vios.uuid,
                                                         "VolumeGroup")
                          for m in findall(vg.element, "MediaRepositories/VirtualMediaRepository/"
                                                       "OpticalMedia/VirtualOpticalMedia")
                          if text(m, "MediaName") == name]
        if not candidates:
            described = " ".join(etree.tostring(ref, method="text", encoding="unicode").split())
            raise _error(400, f"{kind} {described} does not exist on VIOS {vios.uuid}")
        full = copy.deepcopy(candidates[0])
        full.tag = ref.tag
        for tag in ("Tag", "EmulateModel"):  # set by the client "upon mapping"
            if text(ref, tag) is not None:
                set_text(full, tag, text(ref, tag))
        return full

    def _fill_vfc_port(self, element: etree._Element, mapping: etree._Element,
                       client: etree._Element, server: etree._Element) -> None:
        port = find(mapping, "Port")
        if port is None:
            return  # a mapping not (yet) backed by a physical port
        name = text(port, "PortName")
        ports = [p for p in element.iter(q("PhysicalFibreChannelPort"))
                 if text(p, "PortName") == name]
        if not ports:
            raise _error(400, f"physical FC port {name} does not exist")
        if text(ports[0], "AvailablePorts") == "0" or text(ports[0], "TotalPorts") is None:
            raise _error(400, f"physical FC port {name} has no free NPIV ports")
        set_text(server, "MapPort", name)
        if text(client, "WWPNs") is None:
            set_text(client, "WWPNs", " ".join(self.server.jobs.free_wwpns(2)))

    def _check_duplicates(self, element: etree._Element) -> None:
        seen = set()
        for mapping in findall(element, "VirtualSCSIMappings/VirtualSCSIMapping"):
            client = find(mapping, "AssociatedLogicalPartition")
            storage = find(mapping, "Storage")
            if client is None or storage is None or len(storage) == 0:
                continue
            key = (href_uuid(link_href(client)).lower(), storage[0].tag,
                   text(storage[0], "UniqueDeviceID") or
                   etree.tostring(storage[0], method="text", encoding="unicode").strip())
            if key in seen:
                raise _error(400, "the same storage is mapped twice to one partition")
            seen.add(key)

    def _free_slot(self, partition_id: str | None, client: bool,
                   extra: etree._Element | None = None) -> int:
        used: set[int] = set()
        side = "ClientAdapter" if client else "ServerAdapter"
        elements = [v.element for v in self.world.all("VirtualIOServer")]
        if extra is not None:
            elements.append(extra)
        for vios in elements:
            for adapter in vios.iter(q(side)):
                if text(adapter, "LocalPartitionID") == partition_id:
                    used.add(int(text(adapter, "VirtualSlotNumber", "0")))
        if client:
            lpar = self.partition_by_id(partition_id)
            if lpar is not None:
                for cna in self.world.children("LogicalPartition", lpar.uuid,
                                               "ClientNetworkAdapter"):
                    used.add(int(text(cna.element, "VirtualSlotNumber", "0")))
        return next(i for i in itertools.count(3) if i not in used)

    def mapped_udids(self) -> set[str]:
        """UDIDs and names of every storage element some mapping uses."""
        found: set[str] = set()
        for vios in self.world.all("VirtualIOServer"):
            for storage in vios.element.iter(q("Storage")):
                for ref in storage:
                    for tag in ("UniqueDeviceID", "DiskName", "MediaName", "UnitName"):
                        value = text(ref, tag)
                        if value:
                            found.add(value)
        return found

    # -- volume groups -------------------------------------------------------------------

    def _update_VolumeGroup(self, stored: Stored, element: etree._Element) -> None:
        old_disks = {text(d, "UniqueDeviceID"): d
                     for d in findall(stored.element, "VirtualDisks/VirtualDisk")}
        mapped = self.mapped_udids()
        new_udids = set()
        free_gb = float(text(stored.element, "AvailableSize", "0"))
        for disk in findall(element, "VirtualDisks/VirtualDisk"):
            udid = text(disk, "UniqueDeviceID")
            if udid in old_disks:
                new_udids.add(udid)
                continue
            name = text(disk, "DiskName")
            if any(text(d, "DiskName") == name for d in old_disks.values()):
                raise _error(400, f"a virtual disk named {name} already exists")
            size = float(text(disk, "DiskCapacity", "0"))
            if size > free_gb:
                raise _error(400, f"volume group {text(stored.element, 'GroupName')} has "
                                  f"{free_gb} GB free, {size} GB asked")
            free_gb -= size
            udid = "0300f8d6de00004b000000014" + uuidlib.uuid4().hex[:8] + f".{self._serial()}"
            set_text(disk, "UniqueDeviceID", udid)
            set_text(disk, "VolumeGroup", "").set("href", self.world.href(stored))
            base = text(disk, "BaseImage")
            if base:
                if base not in {text(d, "UniqueDeviceID") for d in old_disks.values()}:
                    raise _error(400, f"base image {base} is not a disk of this volume group")
                if base in self.world.device_data:
                    self.world.device_data[udid] = self.world.device_data[base]
            new_udids.add(udid)
        for udid, disk in old_disks.items():
            if udid not in new_udids:
                if udid in mapped or text(disk, "DiskName") in mapped:
                    raise _error(409, f"virtual disk {text(disk, 'DiskName')} is mapped; "
                                      f"remove its mapping first")
                free_gb += float(text(disk, "DiskCapacity", "0"))
                self.world.device_data.pop(udid, None)
        old_media = {text(m, "MediaName") for m in stored.element.iter(q("VirtualOpticalMedia"))}
        new_media = {text(m, "MediaName") for m in element.iter(q("VirtualOpticalMedia"))}
        for name in old_media - new_media:
            if name in mapped:
                raise _error(409, f"optical medium {name} is mapped; remove its mapping first")
            self.world.device_data.pop(name, None)
        set_text(element, "AvailableSize", f"{free_gb:.2f}")
        set_text(element, "FreeSpace", f"{free_gb:.2f}")
        stored.element = element

    # -- shared storage pool ---------------------------------------------------------------

    def _create_LogicalUnit(self, parent: Stored | None, element: etree._Element) -> Stored:
        if parent is None or parent.kind != "Tier":
            raise _error(400, "LogicalUnits are created under a Tier")
        name = text(element, "UnitName")
        siblings = self.world.children("Tier", parent.uuid, "LogicalUnit")
        if any(text(lu.element, "UnitName") == name for lu in siblings):
            raise _error(400, f"a logical unit named {name} already exists")
        udid = "27" + hashlib.sha256(f"{name}{self._serial()}".encode()).hexdigest()[:64]
        set_text(element, "UniqueDeviceID", udid)
        if text(element, "LogicalUnitType") is None:
            set_text(element, "LogicalUnitType", "VirtualIO_Disk")
        if text(element, "ThinDevice") is None:
            set_text(element, "ThinDevice", "true")
        set_text(element, "InUse", "false")
        source = text(element, "ClonedFrom")
        if source:
            origin = next((lu for lu in siblings if text(lu.element, "UniqueDeviceID") == source),
                          None)
            if origin is None:
                raise _error(400, f"clone source {source} does not exist")
            if source in self.world.device_data:
                self.world.device_data[udid] = self.world.device_data[source]
        uuid = str(uuidlib.uuid4())
        set_text(element, "Metadata/Atom/AtomID", uuid)
        stored = self.world.add("LogicalUnit", element, uuid, parent=("Tier", parent.uuid),
                                root=False)
        w.sync_ssp(self.world)
        return stored

    def _delete_LogicalUnit(self, stored: Stored) -> None:
        udid = text(stored.element, "UniqueDeviceID")
        if udid in self.mapped_udids():
            raise _error(409, f"logical unit {text(stored.element, 'UnitName')} is mapped")
        if any(text(lu.element, "ClonedFrom") == udid for lu in self.world.all("LogicalUnit")):
            raise _error(409, f"logical unit {text(stored.element, 'UnitName')} backs clones")
        self.world.remove(stored)
        self.world.device_data.pop(udid, None)
        w.sync_ssp(self.world)

    def _update_SharedStoragePool(self, stored: Stored, element: etree._Element) -> None:
        """Removing LUs from the SSP's list deletes them (rm_ssp_storage)."""
        keep = {text(lu, "UniqueDeviceID") for lu in findall(element, "LogicalUnits/LogicalUnit")}
        for lu in self.world.all("LogicalUnit"):
            if text(lu.element, "UniqueDeviceID") not in keep:
                self._delete_LogicalUnit(lu)
        w.sync_ssp(self.world)

    # -- network -------------------------------------------------------------------------------

    def _create_ClientNetworkAdapter(self, parent: Stored | None,
                                     element: etree._Element) -> Stored:
        if parent is None or parent.kind != "LogicalPartition":
            raise _error(400, "client network adapters are created under a LogicalPartition")
        lpar_id = text(parent.element, "PartitionID")
        if text(element, "VirtualSlotNumber") is None or \
                text(element, "UseNextAvailableSlotID") == "true":
            set_text(element, "VirtualSlotNumber", self._free_slot(lpar_id, client=True))
        w.remove(element, "UseNextAvailableSlotID")
        if text(element, "MACAddress") is None:
            set_text(element, "MACAddress", "FA16" + uuidlib.uuid4().hex[:8].upper())
        switch = find(element, "AssociatedVirtualSwitch")
        if switch is not None:
            vswitch = self.world.get("VirtualSwitch", href_uuid(link_href(switch)))
            if vswitch is None:
                raise _error(400, f"virtual switch {link_href(switch)} does not exist")
            set_text(element, "VirtualSwitchID", text(vswitch.element, "SwitchID", "0"))
        set_text(element, "LocalPartitionID", lpar_id)
        set_text(element, "AdapterType", "Client")
        uuid = str(uuidlib.uuid4())
        set_text(element, "Metadata/Atom/AtomID", uuid)
        return self.world.add("ClientNetworkAdapter", element, uuid,
                              parent=("LogicalPartition", parent.uuid), root=False)

    def _delete_ClientNetworkAdapter(self, stored: Stored) -> None:
        self.world.remove(stored)

    # -- files -----------------------------------------------------------------------------------

    def _create_File(self, parent: Stored | None, element: etree._Element) -> Stored:
        uuid = str(uuidlib.uuid4())
        set_text(element, "FileUUID", uuid, ns=w.WEB_NS)
        set_text(element, "CurrentFileSizeInBytes", 0, ns=w.WEB_NS)
        return self.world.add("File", element, uuid, service="web")

    def upload(self, stored: Stored, chunks: Iterable[bytes]) -> None:
        """Consume the upload; record size and digest where the file points."""
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        for chunk in chunks:
            if isinstance(chunk, str):
                chunk = chunk.encode()
            digest.update(chunk)
            size += len(chunk)
            if size <= w.KEEP_CONTENT_BYTES:
                kept += chunk
        expected = text(stored.element, "ExpectedFileSizeInBytes", ns=w.WEB_NS)
        if expected is not None and int(expected) != size:
            raise _error(400, f"upload of {size} bytes; {expected} were announced")
        set_text(stored.element, "CurrentFileSizeInBytes", size, ns=w.WEB_NS)
        data = DeviceData(size=size, sha256=digest.hexdigest(),
                          content=bytes(kept) if size <= w.KEEP_CONTENT_BYTES else None)
        kind = text(stored.element, "FileEnumType", ns=w.WEB_NS)
        vios_uuid = text(stored.element, "TargetVirtualIOServerUUID", ns=w.WEB_NS)
        if kind == "BROKERED_MEDIA_ISO":
            self._add_medium(vios_uuid, text(stored.element, "Filename", ns=w.WEB_NS), data)
            return
        udid = text(stored.element, "TargetDeviceUniqueDeviceID", ns=w.WEB_NS)
        known = {text(e, "UniqueDeviceID") for s in self.world
                 for e in s.element.iter(q("VirtualDisk"), q("LogicalUnit"))}
        if udid not in known:
            raise _error(400, f"upload target device {udid} does not exist")
        self.world.device_data[udid] = data

    def _add_medium(self, vios_uuid: str | None, name: str | None, data: DeviceData) -> None:
        for vg in self.world.children("VirtualIOServer", vios_uuid or "", "VolumeGroup"):
            repo = find(vg.element, "MediaRepositories/VirtualMediaRepository/OpticalMedia")
            if repo is None:
                continue
            if any(text(m, "MediaName") == name for m in findall(repo, "VirtualOpticalMedia")):
                raise _error(400, f"optical medium {name} already exists")
            medium = etree.SubElement(repo, q("VirtualOpticalMedia"))
            set_text(medium, "MediaName", name)
            set_text(medium, "MediaUDID", f"0e{name}")
            set_text(medium, "MountType", "rw")
            set_text(medium, "Size", f"{data.size / 1024 ** 3:.6f}")
            self.world.device_data[name] = data
            self.world.touch(vg)
            return
        raise _error(400, f"VIOS {vios_uuid} has no media repository")
