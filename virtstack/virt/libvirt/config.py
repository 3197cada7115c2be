"""libvirt domain XML as Python objects, one small class per element.

Each class names its root element (``ROOT``) and declares its properties as
XML paths relative to it::

    class Disk(ConfigObject):
        ROOT = "disk"
        target_dev = XMLProperty("./target/@dev")   # <disk><target dev='vda'/>
        serial = XMLProperty("./serial")            # <disk><serial>text</serial>

``format_dom()`` builds an ``xml.etree.ElementTree.Element`` from the set
properties (in declaration order), ``parse_dom(element)`` makes an object from
one, ``to_xml()``/``from_xml()`` do the same with text. Unset properties are
``None`` (``[]`` for lists) and are left out of the XML; parsing ignores
elements and attributes no class declares.

This module holds no policy (which bus, which cache mode: see
``designer.py``) and no libvirt connection (DESIGN rule 4). Values are checked
for type and, where a property lists ``choices``, against libvirt's
vocabulary when set from Python; parsing accepts whatever libvirt wrote.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T", bound="ConfigObject")


class ConfigParseError(ValueError):
    """An element does not match the class asked to parse it."""


# -- value kinds -------------------------------------------------------------

class Kind:
    """How a Python value is stored in an attribute or an element's text."""

    python_type: type | tuple[type, ...] = str

    def check(self, value: Any) -> bool:
        return isinstance(value, self.python_type) and not (
            isinstance(value, bool) and self.python_type is not bool)

    def to_text(self, value: Any) -> str:
        return str(value)

    def from_text(self, text: str) -> Any:
        return text

    def store(self, element: ET.Element, attr: str | None, value: Any) -> None:
        text = self.to_text(value)
        if attr:
            element.set(attr, text)
        else:
            element.text = text

    def load(self, element: ET.Element, attr: str | None) -> Any:
        raw = element.get(attr) if attr else (element.text or "").strip()
        return None if raw is None else self.from_text(raw)


class _Int(Kind):
    python_type = int

    def from_text(self, text: str) -> int:
        return int(text)


class _Bool(Kind):
    """A boolean spelled with two words (``yes``/``no``, ``on``/``off``)."""

    python_type = bool

    def __init__(self, true: str, false: str) -> None:
        self.words = {True: true, False: false}

    def to_text(self, value: bool) -> str:
        return self.words[value]

    def from_text(self, text: str) -> bool:
        return text == self.words[True]


class _Flag(Kind):
    """An empty element whose presence means True (``<acpi/>``)."""

    python_type = bool

    def store(self, element: ET.Element, attr: str | None, value: bool) -> None:
        pass  # the element itself is the value

    def load(self, element: ET.Element, attr: str | None) -> bool:
        return True


class _MemoryKiB(Kind):
    """An amount of memory, kept in KiB; written as ``unit='KiB'``."""

    python_type = int
    UNITS = {"b": 1, "bytes": 1, "KB": 1000, "k": 1024, "KiB": 1024,
             "MB": 1000 ** 2, "M": 1024 ** 2, "MiB": 1024 ** 2,
             "GB": 1000 ** 3, "G": 1024 ** 3, "GiB": 1024 ** 3,
             "TB": 1000 ** 4, "T": 1024 ** 4, "TiB": 1024 ** 4}

    def store(self, element: ET.Element, attr: str | None, value: int) -> None:
        element.text = str(value)
        element.set("unit", "KiB")

    def load(self, element: ET.Element, attr: str | None) -> int:
        unit = element.get("unit", "KiB")
        if unit not in self.UNITS:
            raise ConfigParseError(f"unknown memory unit {unit!r}")
        return int((element.text or "0").strip()) * self.UNITS[unit] // 1024


TEXT = Kind()
INT = _Int()
YESNO = _Bool("yes", "no")
ONOFF = _Bool("on", "off")
FLAG = _Flag()
MEMORY_KIB = _MemoryKiB()


# -- declarations ------------------------------------------------------------

def _split_path(path: str) -> tuple[list[str], str | None]:
    """``"./source/@file"`` -> (["source"], "file"); ``"./serial"`` -> (["serial"], None)."""
    if path != "." and not path.startswith("./"):
        raise ValueError(f"path {path!r} must start with './'")
    steps = [s for s in path.split("/")[1:] if s]
    attr = steps.pop()[1:] if steps and steps[-1].startswith("@") else None
    return steps, attr


def _walk(element: ET.Element, steps: list[str], create: bool) -> ET.Element | None:
    for step in steps:
        child = element.find(step)
        if child is None:
            if not create:
                return None
            child = ET.SubElement(element, step)
        element = child
    return element


class _Member:
    """Something a config class declares; set by ``__set_name__``."""

    name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def default(self) -> Any:
        return None

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if self.name not in obj.__dict__:
            obj.__dict__[self.name] = self.default()
        return obj.__dict__[self.name]

    def is_set(self, obj: ConfigObject) -> bool:
        value = obj.__dict__.get(self.name)
        return value is not None and value != []

    def format_into(self, root: ET.Element, obj: ConfigObject) -> None:
        """Add this member's value from ``obj`` to ``root`` (nothing if unset)."""
        raise NotImplementedError

    def parse_from(self, root: ET.Element, obj: ConfigObject) -> None:
        """Set this member on ``obj`` from ``root`` (unset if absent)."""
        raise NotImplementedError


class XMLProperty(_Member):
    """A value at ``path``: an attribute (``./a/@b``) or element text (``./a``).

    ``multi`` makes it a list, one element per value (``./boot/@dev`` ->
    ``<boot dev='hd'/><boot dev='cdrom'/>``).
    """

    def __init__(self, path: str, kind: Kind = TEXT, *, multi: bool = False,
                 choices: Iterable[str] | None = None) -> None:
        self.path = path
        self.steps, self.attr = _split_path(path)
        self.kind = kind
        self.multi = multi
        self.choices = tuple(choices) if choices is not None else None
        if kind is FLAG and (self.attr or multi or not self.steps):
            raise ValueError(f"flag property {path!r} must name one element")
        if multi and not self.steps:
            raise ValueError(f"multi property {path!r} must name an element")

    def default(self) -> Any:
        return [] if self.multi else None

    def _check(self, owner: str, value: Any) -> None:
        if not self.kind.check(value):
            raise TypeError(f"{owner}.{self.name} takes {self.kind.python_type.__name__}, "
                            f"not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{owner}.{self.name} must be one of "
                             f"{', '.join(self.choices)}, not {value!r}")

    def __set__(self, obj: Any, value: Any) -> None:
        owner = type(obj).__name__
        if self.multi:
            value = list(value or [])
            for item in value:
                self._check(owner, item)
        elif value is not None:
            self._check(owner, value)
        obj.__dict__[self.name] = value

    def format_into(self, root: ET.Element, obj: ConfigObject) -> None:
        value = getattr(obj, self.name)
        if self.multi:
            parent = _walk(root, self.steps[:-1], create=True)
            for item in value:
                self.kind.store(ET.SubElement(parent, self.steps[-1]), self.attr, item)
        elif value is not None and not (self.kind is FLAG and value is False):
            self.kind.store(_walk(root, self.steps, create=True), self.attr, value)

    def parse_from(self, root: ET.Element, obj: ConfigObject) -> None:
        try:
            if self.multi:
                parent = _walk(root, self.steps[:-1], create=False)
                found = [] if parent is None else parent.findall(self.steps[-1])
                values = [self.kind.load(e, self.attr) for e in found]
                value: Any = [v for v in values if v is not None]
            else:
                element = _walk(root, self.steps, create=False)
                value = None if element is None else self.kind.load(element, self.attr)
        except ValueError as exc:
            raise ConfigParseError(f"<{root.tag}> {self.path}: {exc}") from exc
        obj.__dict__[self.name] = value


class XMLChild(_Member):
    """One nested config object (``Domain.os`` is an ``OS``), under ``path``."""

    def __init__(self, cls: type[ConfigObject], path: str = ".") -> None:
        self.cls = cls
        self.steps, _ = _split_path(path)

    def __set__(self, obj: Any, value: Any) -> None:
        if value is not None and not isinstance(value, self.cls):
            raise TypeError(f"{type(obj).__name__}.{self.name} takes "
                            f"{self.cls.__name__}, not {value!r}")
        obj.__dict__[self.name] = value

    def format_into(self, root: ET.Element, obj: ConfigObject) -> None:
        value = getattr(obj, self.name)
        if value is not None:
            _walk(root, self.steps, create=True).append(value.format_dom())

    def parse_from(self, root: ET.Element, obj: ConfigObject) -> None:
        parent = _walk(root, self.steps, create=False)
        element = None if parent is None else parent.find(self.cls.ROOT)
        obj.__dict__[self.name] = None if element is None else self.cls.parse_dom(element)


class XMLChildren(_Member):
    """A list of config objects under ``path``, told apart by their root tag."""

    def __init__(self, *classes: type[ConfigObject], path: str = ".") -> None:
        self.classes = classes
        self.by_tag = {cls.ROOT: cls for cls in classes}
        self.steps, _ = _split_path(path)

    def default(self) -> list:
        return []

    def __set__(self, obj: Any, value: Any) -> None:
        value = list(value or [])
        for item in value:
            if not isinstance(item, self.classes):
                raise TypeError(f"{type(obj).__name__}.{self.name} holds "
                                f"{', '.join(c.__name__ for c in self.classes)}, not {item!r}")
        obj.__dict__[self.name] = value

    def format_into(self, root: ET.Element, obj: ConfigObject) -> None:
        items = getattr(obj, self.name)
        if items:
            parent = _walk(root, self.steps, create=True)
            for item in items:
                parent.append(item.format_dom())

    def parse_from(self, root: ET.Element, obj: ConfigObject) -> None:
        parent = _walk(root, self.steps, create=False)
        obj.__dict__[self.name] = [] if parent is None else [
            self.by_tag[child.tag].parse_dom(child)
            for child in parent if child.tag in self.by_tag]


class ConfigObject:
    """Base of every config class: declared members, format and parse."""

    #: The tag of the element this class formats and parses.
    ROOT = ""
    #: Every declared member, base classes' first, in declaration order.
    MEMBERS: tuple[_Member, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        members: dict[str, _Member] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, _Member):
                    members[name] = value
        cls.MEMBERS = tuple(members.values())

    def __init__(self, **values: Any) -> None:
        names = {m.name for m in self.MEMBERS}
        for name, value in values.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no property {name!r}")
            setattr(self, name, value)

    def format_dom(self) -> ET.Element:
        """This object as a new element (only set properties appear)."""
        root = ET.Element(self.ROOT)
        for member in self.MEMBERS:
            member.format_into(root, self)
        return root

    @classmethod
    def parse_dom(cls: type[T], element: ET.Element) -> T:
        """A new object from ``element``; ``ConfigParseError`` if the tag is not ``ROOT``."""
        if element.tag != cls.ROOT:
            raise ConfigParseError(f"{cls.__name__} parses <{cls.ROOT}>, not <{element.tag}>")
        obj = cls()
        for member in cls.MEMBERS:
            member.parse_from(element, obj)
        return obj

    def to_xml(self, pretty: bool = True) -> str:
        element = self.format_dom()
        if pretty:
            ET.indent(element, "  ")
        return ET.tostring(element, encoding="unicode")

    @classmethod
    def from_xml(cls: type[T], text: str) -> T:
        try:
            element = ET.fromstring(text)
        except ET.ParseError as exc:
            raise ConfigParseError(f"not XML: {exc}") from exc
        return cls.parse_dom(element)

    def set_members(self) -> Iterator[_Member]:
        """The members that hold a value (not None, not an empty list)."""
        return (m for m in self.MEMBERS if m.is_set(self))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, m.name) == getattr(other, m.name) for m in self.MEMBERS)

    def __repr__(self) -> str:
        values = ", ".join(f"{m.name}={getattr(self, m.name)!r}" for m in self.set_members())
        return f"{type(self).__name__}({values})"


# -- the domain --------------------------------------------------------------

class OS(ConfigObject):
    """``<os>``: guest type and how it boots (firmware order or direct kernel)."""

    ROOT = "os"
    os_type = XMLProperty("./type", choices=("hvm",))
    arch = XMLProperty("./type/@arch")
    machine = XMLProperty("./type/@machine")
    kernel = XMLProperty("./kernel")
    initrd = XMLProperty("./initrd")
    cmdline = XMLProperty("./cmdline")
    boot_devs = XMLProperty("./boot/@dev", multi=True, choices=("hd", "cdrom", "network", "fd"))


class Features(ConfigObject):
    """``<features>``: ACPI (needed for PCI hot-plug and the power button), APIC, PAE."""

    ROOT = "features"
    acpi = XMLProperty("./acpi", FLAG)
    apic = XMLProperty("./apic", FLAG)
    pae = XMLProperty("./pae", FLAG)


class Timer(ConfigObject):
    ROOT = "timer"
    name = XMLProperty("./@name", choices=("pit", "rtc", "hpet", "kvmclock", "tsc", "hypervclock"))
    tickpolicy = XMLProperty("./@tickpolicy", choices=("delay", "catchup", "merge", "discard"))
    present = XMLProperty("./@present", YESNO)


class Clock(ConfigObject):
    ROOT = "clock"
    offset = XMLProperty("./@offset", choices=("utc", "localtime"))
    timers = XMLChildren(Timer)


# -- devices -----------------------------------------------------------------

class DiskSourceHost(ConfigObject):
    """``<host>`` of a network disk's source (an iSCSI portal)."""

    ROOT = "host"
    name = XMLProperty("./@name")
    port = XMLProperty("./@port", INT)


class Disk(ConfigObject):
    """``<disk>``: a file, block device or network (iSCSI...) disk or CD-ROM."""

    ROOT = "disk"
    source_type = XMLProperty("./@type", choices=("file", "block", "network"))
    device = XMLProperty("./@device", choices=("disk", "cdrom"))
    driver_name = XMLProperty("./driver/@name", choices=("qemu",))
    driver_type = XMLProperty("./driver/@type", choices=("raw", "qcow2"))
    driver_cache = XMLProperty("./driver/@cache", choices=(
        "none", "writeback", "writethrough", "directsync", "unsafe", "default"))
    driver_io = XMLProperty("./driver/@io", choices=("native", "threads", "io_uring"))
    source_file = XMLProperty("./source/@file")
    source_dev = XMLProperty("./source/@dev")
    source_protocol = XMLProperty("./source/@protocol", choices=("iscsi", "nbd", "rbd"))
    source_name = XMLProperty("./source/@name")
    source_hosts = XMLChildren(DiskSourceHost, path="./source")
    source_initiator_iqn = XMLProperty("./source/initiator/iqn/@name")
    auth_username = XMLProperty("./auth/@username")
    auth_secret_type = XMLProperty("./auth/secret/@type", choices=("iscsi", "ceph"))
    auth_secret_uuid = XMLProperty("./auth/secret/@uuid")
    auth_secret_usage = XMLProperty("./auth/secret/@usage")
    target_dev = XMLProperty("./target/@dev")
    target_bus = XMLProperty("./target/@bus", choices=("virtio", "scsi", "sata", "ide", "usb"))
    serial = XMLProperty("./serial")
    readonly = XMLProperty("./readonly", FLAG)
    shareable = XMLProperty("./shareable", FLAG)
    boot_order = XMLProperty("./boot/@order", INT)
    #: libvirt names every live device; a user alias must start with ``ua-``.
    alias = XMLProperty("./alias/@name")


class Interface(ConfigObject):
    """``<interface>``: a virtual NIC (the VIF drivers will fill these)."""

    ROOT = "interface"
    net_type = XMLProperty("./@type", choices=("network", "ethernet", "bridge"))
    mac_address = XMLProperty("./mac/@address")
    source_network = XMLProperty("./source/@network")
    source_bridge = XMLProperty("./source/@bridge")
    target_dev = XMLProperty("./target/@dev")
    model = XMLProperty("./model/@type")
    mtu = XMLProperty("./mtu/@size", INT)


class _CharDevice(ConfigObject):
    dev_type = XMLProperty("./@type", choices=("pty", "file"))
    source_path = XMLProperty("./source/@path")


class Serial(_CharDevice):
    """``<serial>``: a serial port; ``log_file`` keeps its output (via virtlogd)."""

    ROOT = "serial"
    log_file = XMLProperty("./log/@file")
    log_append = XMLProperty("./log/@append", ONOFF)
    target_port = XMLProperty("./target/@port", INT)


class Console(_CharDevice):
    """``<console>``: the guest console, usually serial port 0."""

    ROOT = "console"
    target_type = XMLProperty("./target/@type", choices=("serial", "virtio"))
    target_port = XMLProperty("./target/@port", INT)


class Graphics(ConfigObject):
    ROOT = "graphics"
    graphics_type = XMLProperty("./@type", choices=("vnc", "spice"))
    port = XMLProperty("./@port", INT)
    autoport = XMLProperty("./@autoport", YESNO)
    listen = XMLProperty("./@listen")


class Input(ConfigObject):
    ROOT = "input"
    input_type = XMLProperty("./@type", choices=("tablet", "mouse", "keyboard"))
    bus = XMLProperty("./@bus", choices=("usb", "ps2", "virtio"))


class Video(ConfigObject):
    ROOT = "video"
    model_type = XMLProperty("./model/@type", choices=("vga", "cirrus", "virtio", "qxl", "none"))
    vram = XMLProperty("./model/@vram", INT)
    heads = XMLProperty("./model/@heads", INT)


class MemBalloon(ConfigObject):
    ROOT = "memballoon"
    model = XMLProperty("./@model", choices=("virtio", "none"))
    stats_period = XMLProperty("./stats/@period", INT)


class Controller(ConfigObject):
    ROOT = "controller"
    controller_type = XMLProperty("./@type", choices=(
        "usb", "pci", "scsi", "virtio-serial", "ide", "sata"))
    index = XMLProperty("./@index", INT)
    model = XMLProperty("./@model")


#: Every device class a domain's ``<devices>`` may hold.
DEVICE_CLASSES: tuple[type[ConfigObject], ...] = (
    Disk, Interface, Serial, Console, Graphics, Input, Video, MemBalloon, Controller)


class Domain(ConfigObject):
    """``<domain>``: a whole guest definition."""

    ROOT = "domain"
    virt_type = XMLProperty("./@type", choices=("qemu", "kvm"))
    name = XMLProperty("./name")
    uuid = XMLProperty("./uuid")
    memory_kib = XMLProperty("./memory", MEMORY_KIB)
    vcpus = XMLProperty("./vcpu", INT)
    os = XMLChild(OS)
    features = XMLChild(Features)
    clock = XMLChild(Clock)
    on_poweroff = XMLProperty("./on_poweroff", choices=("destroy", "restart", "preserve"))
    on_reboot = XMLProperty("./on_reboot", choices=("destroy", "restart", "preserve"))
    on_crash = XMLProperty("./on_crash", choices=(
        "destroy", "restart", "preserve", "coredump-destroy", "coredump-restart"))
    devices = XMLChildren(*DEVICE_CLASSES, path="./devices")

    def devices_of(self, cls: type[T]) -> list[T]:
        """This domain's devices of class ``cls``, in order."""
        return [d for d in self.devices if isinstance(d, cls)]


# -- secrets -------------------------------------------------------------------

class Secret(ConfigObject):
    """``<secret>`` (``virSecretDefineXML``): a credential QEMU needs, such as
    a volume's CHAP password. The value is set apart (``virSecretSetValue``)
    and never appears in XML."""

    ROOT = "secret"
    ephemeral = XMLProperty("./@ephemeral", YESNO)
    private = XMLProperty("./@private", YESNO)
    uuid = XMLProperty("./uuid")
    description = XMLProperty("./description")
    #: Only iSCSI usage is modelled (its id is ``<target>``; other types name it otherwise).
    usage_type = XMLProperty("./usage/@type", choices=("iscsi",))
    usage_target = XMLProperty("./usage/target")


# -- host capabilities ---------------------------------------------------------

class CapsHostCPU(ConfigObject):
    """``<capabilities><host><cpu>``: the host CPU as libvirt reports it."""

    ROOT = "cpu"
    arch = XMLProperty("./arch")
    model = XMLProperty("./model")
    vendor = XMLProperty("./vendor")
    sockets = XMLProperty("./topology/@sockets", INT)
    cores = XMLProperty("./topology/@cores", INT)
    threads = XMLProperty("./topology/@threads", INT)
    features = XMLProperty("./feature/@name", multi=True)


class CapsGuest(ConfigObject):
    """``<capabilities><guest>``: one guest architecture and its domain types."""

    ROOT = "guest"
    os_type = XMLProperty("./os_type")
    arch = XMLProperty("./arch/@name")
    domain_types = XMLProperty("./arch/domain/@type", multi=True)


class Capabilities(ConfigObject):
    """``<capabilities>`` (``virConnectGetCapabilities``), the parts we read."""

    ROOT = "capabilities"
    host_uuid = XMLProperty("./host/uuid")
    host_cpu = XMLChild(CapsHostCPU, "./host")
    guests = XMLChildren(CapsGuest)

    def domain_types(self, arch: str) -> list[str]:
        """The domain types (``qemu``, ``kvm``) offered for ``hvm`` guests of ``arch``."""
        return [t for g in self.guests if g.os_type == "hvm" and g.arch == arch
                for t in g.domain_types]


def config_classes() -> list[type[ConfigObject]]:
    """Every concrete config class of this module (those with a ``ROOT``)."""
    found: list[type[ConfigObject]] = []
    pending = list(ConfigObject.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if cls.ROOT and cls.__module__ == __name__ and cls not in found:
            found.append(cls)
    return found
