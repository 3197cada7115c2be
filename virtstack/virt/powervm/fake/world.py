"""The state behind the fake PowerVM REST session: every object, its etag,
where it lives in the URI tree, and how it renders as an Atom entry.

Objects are stored once, keyed by (schema type, uuid), with their parent
(the object whose child feed lists them) and whether they are also
addressable as a ROOT (``/rest/api/uom/<Type>/<uuid>``): LPARs and VIOSes
are ROOTs listed under their ManagedSystem; VolumeGroups, LogicalUnits,
ClientNetworkAdapters and VirtualSwitches are CHILDren only.

``seed()`` builds the starting world from recorded responses shipped in the
pypowervm wheel; see its docstring for which recordings and why.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import threading
import time
import uuid as uuidlib
from typing import Iterator

from lxml import etree

from virtstack.virt.powervm.fake import recorded

ATOM_NS = recorded.ATOM_NS
UOM_NS = "http://www.ibm.com/xmlns/systems/power/firmware/uom/mc/2012_10/"
WEB_NS = "http://www.ibm.com/xmlns/systems/power/firmware/web/mc/2012_10/"
API_BASE = "/rest/api/"

#: The recorded system the fake is: its ManagedSystem (managedsystem.txt)
#: and its Virtual I/O Server (fake_vios_ssp_npiv.txt) were captured on the
#: same POWER8 8246-L1C, serial 0604CAA.
SEED_MS = "e955e11a-6ee0-3e04-987c-6fa319f8cb8c"
SEED_VIOS = "75B373A5-B9FF-4799-B23B-202929517C64"
SEED_CLUSTER = "17248b3b-9be7-3bc0-9b89-24a285b5d7ac"
SEED_SSP = "e357a79a-7a3d-35b6-8405-55ab6a2d0de7"
SEED_TIER = "c390432c-f139-3e7f-a168-e76f8c1cbc98"
#: The virtual switch the recorded VIOS's trunk adapters are on.
SEED_VSWITCH = "8b2397a3-b722-3e4e-943b-03b20f22c267"
#: Recorded hrefs point at the capture host; they are rewritten to ours.
_RECORDED_HOSTS = ("https://9.1.2.3:12443", "http://9.1.2.3:12080")


def q(tag: str, ns: str = UOM_NS) -> str:
    """A namespaced tag; ``"A/B"`` becomes a namespaced path."""
    return "/".join(f"{{{ns}}}{part}" for part in tag.split("/"))


def find(el: etree._Element, path: str, ns: str = UOM_NS) -> etree._Element | None:
    return el.find(q(path, ns))


def findall(el: etree._Element, path: str, ns: str = UOM_NS) -> list[etree._Element]:
    return el.findall(q(path, ns))


def text(el: etree._Element, path: str, default: str | None = None,
         ns: str = UOM_NS) -> str | None:
    found = el.find(q(path, ns))
    if found is None or found.text is None:
        return default
    return found.text.strip()


def set_text(el: etree._Element, path: str, value: object, ns: str = UOM_NS) -> etree._Element:
    """Set the text at ``path`` below ``el``, creating missing elements at
    the end (readers do not depend on order; pypowervm re-orders its own)."""
    node = el
    for part in path.split("/"):
        child = node.find(q(part, ns))
        if child is None:
            child = etree.SubElement(node, q(part, ns))
        node = child
    node.text = str(value)
    return node


def remove(el: etree._Element, path: str, ns: str = UOM_NS) -> None:
    for found in el.findall(q(path, ns)):
        found.getparent().remove(found)


def link_href(el: etree._Element | None) -> str | None:
    """The href of a link element: its own attribute or its ``<link>`` child's."""
    if el is None:
        return None
    if el.get("href"):
        return el.get("href")
    link = el.find(q("link"))
    return link.get("href") if link is not None else None


def href_uuid(href: str | None) -> str | None:
    """The last uuid of an href (``.../LogicalPartition/<uuid>?group=...``)."""
    if not href:
        return None
    return href.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass
class Stored:
    """One object of the fake REST server."""

    kind: str
    uuid: str
    element: etree._Element
    parent: tuple[str, str] | None = None
    root: bool = True
    service: str = "uom"
    etag: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.uuid.lower())


#: Uploads up to this size are kept whole (so a snapshot can read them
#: back); larger ones only as size and digest.
KEEP_CONTENT_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass
class DeviceData:
    """What was written to a virtual disk, LU or optical medium: its size
    and digest, and its bytes when it was small (``KEEP_CONTENT_BYTES``)."""

    size: int
    sha256: str
    content: bytes | None = None


class World:
    """Everything the fake REST server knows. Callers hold ``lock``."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.lock = threading.RLock()
        self._objects: dict[tuple[str, str], Stored] = {}
        self._etags = itertools.count(int(time.time()) % 100000 * 1000)
        #: udid of a VDisk / LU / medium name -> what an upload put there
        self.device_data: dict[str, DeviceData] = {}
        #: hdisks the fake SAN has presented to the VIOS: (target wwpn, lun) -> name
        self.discovered: dict[tuple[str, str], str] = {}
        #: the fake SAN's zoning: target WWPN -> initiator WWPNs that reach it
        #: (a target not listed is reachable from every initiator)
        self.san_zones: dict[str, set[str]] = {}
        #: the emulated SAN of the ``fake_fc`` volume backend the VIOS's FC
        #: ports are cabled to (``volume.backends.fake_fc.Fabric``), or None.
        #: Its targets present only the LUNs it masks to a port, at their size.
        self.fabric = None

    # -- objects ------------------------------------------------------------------

    def add(self, kind: str, element: etree._Element, uuid: str | None = None,
            parent: tuple[str, str] | None = None, root: bool = True,
            service: str = "uom") -> Stored:
        uuid = uuid or str(uuidlib.uuid4())
        stored = Stored(kind=kind, uuid=uuid, element=element, parent=parent, root=root,
                        service=service, etag=self.next_etag())
        self._objects[stored.key] = stored
        return stored

    def next_etag(self) -> str:
        return str(next(self._etags))

    def touch(self, stored: Stored) -> None:
        """A new etag: the object changed."""
        stored.etag = self.next_etag()

    def get(self, kind: str, uuid: str | None) -> Stored | None:
        if not uuid:
            return None
        return self._objects.get((kind, uuid.lower()))

    def remove(self, stored: Stored) -> None:
        self._objects.pop(stored.key, None)

    def all(self, kind: str) -> list[Stored]:
        return [s for s in self._objects.values() if s.kind == kind]

    def children(self, parent_kind: str, parent_uuid: str, kind: str) -> list[Stored]:
        wanted = (parent_kind, parent_uuid.lower())
        return [s for s in self.all(kind)
                if s.parent is not None and (s.parent[0], s.parent[1].lower()) == wanted]

    def roots(self, kind: str) -> list[Stored]:
        return [s for s in self.all(kind) if s.root]

    def __iter__(self) -> Iterator[Stored]:
        return iter(list(self._objects.values()))

    # -- rendering ----------------------------------------------------------------

    def path(self, stored: Stored) -> str:
        if stored.root or stored.parent is None:
            return f"{API_BASE}{stored.service}/{stored.kind}/{stored.uuid}"
        parent_kind, parent_uuid = stored.parent
        return f"{API_BASE}{stored.service}/{parent_kind}/{parent_uuid}/{stored.kind}/{stored.uuid}"

    def href(self, stored: Stored) -> str:
        return self.base_url + self.path(stored)

    def entry(self, stored: Stored) -> etree._Element:
        """``stored`` as an Atom entry (a copy: callers may not change state)."""
        entry = etree.Element(q("entry", ATOM_NS), nsmap={None: ATOM_NS})
        etree.SubElement(entry, q("id", ATOM_NS)).text = stored.uuid
        etree.SubElement(entry, q("title", ATOM_NS)).text = stored.kind
        etree.SubElement(entry, q("published", ATOM_NS)).text = _now()
        etree.SubElement(entry, q("link", ATOM_NS), rel="SELF", href=self.href(stored))
        author = etree.SubElement(entry, q("author", ATOM_NS))
        etree.SubElement(author, q("name", ATOM_NS)).text = "virtstack fake PowerVM"
        etree.SubElement(entry, q("etag", UOM_NS), nsmap={"etag": UOM_NS}).text = stored.etag
        content = etree.SubElement(
            entry, q("content", ATOM_NS),
            type=f"application/vnd.ibm.powervm.{stored.service}+xml; type={stored.kind}")
        content.append(copy.deepcopy(stored.element))
        return entry

    def feed(self, items: list[Stored], self_path: str) -> etree._Element:
        feed = etree.Element(q("feed", ATOM_NS), nsmap={None: ATOM_NS})
        etree.SubElement(feed, q("id", ATOM_NS)).text = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL,
                                                                          self_path))
        etree.SubElement(feed, q("updated", ATOM_NS)).text = _now()
        etree.SubElement(feed, q("link", ATOM_NS), rel="SELF", href=self.base_url + self_path)
        etree.SubElement(feed, q("generator", ATOM_NS)).text = "virtstack fake PowerVM"
        for stored in items:
            feed.append(self.entry(stored))
        return feed


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


# -- the seed ----------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _recording(name: str, rewrite: tuple[tuple[str, str], ...]) -> recorded.Recording:
    return recorded.load(name, dict(rewrite))


def _entries(name: str, base_url: str, **extra: str) -> list[etree._Element]:
    rewrite = tuple((host, base_url) for host in _RECORDED_HOSTS) + tuple(extra.items())
    # Parsed per world: each world owns (and changes) its elements.
    return recorded.entries(_recording(name, rewrite))


def seed(base_url: str) -> World:
    """A world built from recordings of one system, made consistent.

    - ``managedsystem.txt``: the ManagedSystem 8246-L1C*0604CAA (one entry of
      the recorded feed of three).
    - ``fake_vios_ssp_npiv.txt``: that system's VIOS (FC ports with NPIV,
      a media repository). Its recorded vSCSI and vFC mappings are dropped:
      their client LPARs are not part of this world, which starts as a host
      with no guests.
    - ``fake_volume_group2.txt``: the volume groups ``rootvg`` and
      ``image_pool``, recorded on another VIOS, re-homed onto this one.
    - ``vswitch_feed.txt``: ETHERNET0 and MGMTSWITCH, re-homed; ETHERNET0
      takes the uuid the VIOS's trunk adapters refer to.
    - ``cluster.txt``, ``ssp.txt``, ``tier.txt``, ``lufeed.txt``: an SSP
      cluster; its first node becomes this VIOS, the tier is attached to the
      SSP, and the SSP's capacity and LU list are derived from the tier's LUs.
    """
    world = World(base_url)
    with world.lock:
        (ms,) = [e for e in _entries("managedsystem.txt", base_url)
                 if recorded.entry_id(e) == SEED_MS]
        world.add("ManagedSystem", recorded.content(ms), SEED_MS)
        ms_parent = ("ManagedSystem", SEED_MS)

        (vios,) = _entries("fake_vios_ssp_npiv.txt", base_url)
        vios_el = recorded.content(vios)
        for mappings in ("VirtualSCSIMappings/VirtualSCSIMapping",
                         "VirtualFibreChannelMappings/VirtualFibreChannelMapping"):
            for mapping in findall(vios_el, mappings):
                mapping.getparent().remove(mapping)
        world.add("VirtualIOServer", vios_el, SEED_VIOS, parent=ms_parent)

        for vg in _entries("fake_volume_group2.txt", base_url, **{
                "14B854F7-42CE-4FF0-BD57-1D117054E701": SEED_VIOS}):
            world.add("VolumeGroup", recorded.content(vg), recorded.entry_id(vg),
                      parent=("VirtualIOServer", SEED_VIOS), root=False)

        for vswitch in _entries("vswitch_feed.txt", base_url, **{
                "95c2990a-e412-3ac8-92f4-058278b32ea2": SEED_MS,
                "2affcc5d-b3d7-3e63-abbd-e739070ba1c2": SEED_VSWITCH}):
            world.add("VirtualSwitch", recorded.content(vswitch), recorded.entry_id(vswitch),
                      parent=ms_parent, root=False)

        _seed_ssp(world, base_url)
    return world


def _seed_ssp(world: World, base_url: str) -> None:
    (cluster,) = _entries("cluster.txt", base_url)
    cluster_el = recorded.content(cluster)
    node = findall(cluster_el, "Node/Node")[0]
    for link in node.iter(q("VirtualIOServer")):
        link.set("href", f"{base_url}{API_BASE}uom/ManagedSystem/{SEED_MS}/VirtualIOServer/"
                         f"{SEED_VIOS}")
    ms = world.get("ManagedSystem", SEED_MS).element
    mtms = find(node, "MachineTypeModelAndSerialNumber")
    for field in ("MachineType", "Model", "SerialNumber"):
        set_text(mtms, field, text(ms, f"MachineTypeModelAndSerialNumber/{field}"))
    set_text(node, "PartitionID", text(world.get("VirtualIOServer", SEED_VIOS).element,
                                       "PartitionID"))
    world.add("Cluster", cluster_el, SEED_CLUSTER)

    (ssp,) = _entries("ssp.txt", base_url)
    world.add("SharedStoragePool", recorded.content(ssp), SEED_SSP)
    (tier,) = _entries("tier.txt", base_url, **{
        "535e1e51-50a6-3722-b6ed-907ff011a535": SEED_SSP})
    world.add("Tier", recorded.content(tier), SEED_TIER, parent=("SharedStoragePool", SEED_SSP))
    for lu in _entries("lufeed.txt", base_url):
        world.add("LogicalUnit", recorded.content(lu), recorded.entry_id(lu),
                  parent=("Tier", SEED_TIER), root=False)
    sync_ssp(world)


def sync_ssp(world: World) -> None:
    """Make the SSP's ``LogicalUnits`` list, capacity and free space agree
    with its tier's LU feed (the REST server derives both from the pool)."""
    ssp = world.get("SharedStoragePool", SEED_SSP)
    tier = world.get("Tier", SEED_TIER)
    if ssp is None or tier is None:
        return
    lus = world.children("Tier", SEED_TIER, "LogicalUnit")
    lu_list = find(ssp.element, "LogicalUnits")
    if lu_list is None:
        lu_list = etree.SubElement(ssp.element, q("LogicalUnits"))
    for old in findall(lu_list, "LogicalUnit"):
        lu_list.remove(old)
    used = 0.0
    for lu in lus:
        element = copy.deepcopy(lu.element)
        element.tag = q("LogicalUnit")
        lu_list.append(element)
        used += float(text(lu.element, "UnitCapacity", "0"))
    capacity = float(text(tier.element, "Capacity", "0"))
    set_text(ssp.element, "Capacity", f"{capacity:.2f}")
    set_text(ssp.element, "FreeSpace", f"{max(0.0, capacity - used):.2f}")
    set_text(ssp.element, "TotalLogicalUnitSize", f"{used:.2f}")
    world.touch(ssp)
