"""Policy: which libvirt config objects a guest gets, and with what values.

The designer turns an ``Instance`` (with its flavor), an ``ImageMeta`` and
facts about the host into ``config`` objects. It decides (disk bus, cache
mode, boot method, console, VNC, ACPI) but connects to nothing and reads no
configuration options: the driver passes what it read (``HostFacts``) and
where it put the guest's files (``GuestFiles``), as the Host/Guest split
spec asks.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import mmap
import os
import re
import uuid

from virtstack import exception
from virtstack.objects import ImageMeta, Instance
from virtstack.virt.libvirt import config

#: Disks are paravirtual; the first is the root disk, named like the kernel names it.
DISK_BUS = "virtio"
ROOT_DEVICE = "vda"
#: Kernel command line for direct kernel boot when the image sets no ``os_command_line``.
DEFAULT_KERNEL_CMDLINE = f"root=/dev/{ROOT_DEVICE} console=ttyS0"
#: Seconds between the balloon driver's memory statistics reports.
BALLOON_STATS_PERIOD = 10

_ALIGNMENT = 4096  # O_DIRECT wants buffers, offsets and sizes aligned to the block size


@dataclasses.dataclass(frozen=True)
class HostFacts:
    """What the driver knows about this host, found once at start-up.

    ``virt_type`` is already resolved (``qemu`` or ``kvm``, never ``auto``);
    ``vnc_listen`` is ``[libvirt] vnc_listen``; ``disk_cache_mode`` comes from
    ``disk_cache_mode(instances_dir)``; ``console_via_virtlogd`` says libvirt
    hands guest consoles to virtlogd (so a pty console can also be logged).
    """

    virt_type: str
    vnc_listen: str
    disk_cache_mode: str
    console_via_virtlogd: bool = True
    arch: str = "x86_64"


@dataclasses.dataclass(frozen=True)
class GuestFiles:
    """Where one guest's files are on this host (the image backend made them).

    ``kernel_path``/``ramdisk_path`` are the image's kernel and ramdisk,
    fetched because the image names a ``kernel_id``/``ramdisk_id``.
    ``root_disk_path`` is None when the guest boots from a volume.
    """

    root_disk_path: str | None
    root_disk_format: str  # "raw" or "qcow2"
    console_log_path: str
    kernel_path: str | None = None
    ramdisk_path: str | None = None


# -- host probes -------------------------------------------------------------

def supports_direct_io(dirpath: str) -> bool:
    """Whether files in ``dirpath`` can be opened with O_DIRECT and written.

    Writes and removes one small file. False when the filesystem refuses
    O_DIRECT (tmpfs, some FUSE and network filesystems answer EINVAL); other
    errors (missing directory, no permission) are raised.
    """
    path = os.path.join(dirpath, f".directio-probe-{uuid.uuid4().hex}")
    fd = None
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
        # An anonymous mmap is page-aligned, as O_DIRECT needs.
        with mmap.mmap(-1, _ALIGNMENT) as buf:
            buf.write(b"x" * _ALIGNMENT)
            os.write(fd, buf)
        return True
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    finally:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def disk_cache_mode(dirpath: str) -> str:
    """QEMU cache mode for disk files in ``dirpath``.

    ``none`` (O_DIRECT: no double caching in the host page cache, safe for
    live migration) where the filesystem supports it, else ``writeback``
    (``none`` would make QEMU fail to open the disk).
    """
    return "none" if supports_direct_io(dirpath) else "writeback"


# -- devices -----------------------------------------------------------------

def build_file_disk(path: str, target_dev: str, driver_type: str, cache_mode: str,
                    serial: str | None = None, bus: str = DISK_BUS) -> config.Disk:
    """A disk backed by the image file ``path`` (``raw`` or ``qcow2``)."""
    return config.Disk(source_type="file", device="disk", driver_name="qemu",
                       driver_type=driver_type, driver_cache=cache_mode, source_file=path,
                       target_dev=target_dev, target_bus=bus, serial=serial)


# -- volumes -----------------------------------------------------------------

#: Volumes are hot-plugged, which virtio-blk does (through ACPI PCI hot-plug)
#: and the emulated IDE/SATA buses do not; a CD-ROM cannot be hot-plugged.
VOLUME_BUSES = ("virtio",)
VOLUME_DEVICE_TYPES = ("disk",)
#: What a virtio disk is called in the guest: vda, vdb, ..., vdz, vdaa, ...
_VIRTIO_DEV = re.compile(r"^vd[a-z]+$")
#: CHAP secrets are named ``virtstack:<instance uuid>:<volume id>`` (their
#: usage id, what ``virsh secret-list`` shows), so those of one instance can
#: be found and removed with it.
SECRET_USAGE_PREFIX = "virtstack:"
_SECRET_NAMESPACE = uuid.UUID("0c9b7f52-61d5-4f0e-9a5e-7d1f3c0e2a44")


@dataclasses.dataclass(frozen=True)
class VolumeSource:
    """Where a volume's bytes are, as its connector found them.

    ``source_type`` ``file`` or ``block`` (``path`` names it) or ``network``
    (``protocol`` ``iscsi``, ``name`` ``"<target iqn>/<lun>"``, ``portal``
    ``("127.0.0.1", 3260)``; ``initiator_iqn`` is the name QEMU presents;
    ``auth_username`` + ``auth_secret_uuid`` the CHAP login, whose password
    is in that libvirt secret). ``direct_io`` says the file or device can
    be opened with O_DIRECT (a host fact the connector probed);
    ``read_only``, that the volume service exported it read-only.
    """

    volume_id: str
    source_type: str
    path: str | None = None
    format: str = "raw"
    direct_io: bool = True
    read_only: bool = False
    protocol: str | None = None
    name: str | None = None
    portal: tuple[str, int] | None = None
    initiator_iqn: str | None = None
    auth_username: str | None = None
    auth_secret_uuid: str | None = None


@dataclasses.dataclass(frozen=True)
class VolumeTarget:
    """Where a volume goes in the guest: ``dev`` (``vdb``), ``bus``, ``device``."""

    dev: str
    bus: str = "virtio"
    device: str = "disk"


def volume_target(mountpoint: str, disk_bus: str | None = None,
                  device_type: str | None = None) -> VolumeTarget:
    """The target of a volume reserved at ``mountpoint`` (``/dev/vdb``).

    Bus and device type default to virtio and disk, the only ones that can
    be hot-plugged; ``Invalid`` (saying what is accepted) for anything else
    or a mountpoint that is no virtio disk name.
    """
    bus, device = disk_bus or "virtio", device_type or "disk"
    if bus not in VOLUME_BUSES:
        raise exception.Invalid(reason=f"disk_bus {bus!r} cannot take volumes here; "
                                       f"supported: {', '.join(VOLUME_BUSES)}")
    if device not in VOLUME_DEVICE_TYPES:
        raise exception.Invalid(reason=f"device_type {device!r} cannot be a volume here; "
                                       f"supported: {', '.join(VOLUME_DEVICE_TYPES)}")
    dev = mountpoint[len("/dev/"):] if isinstance(mountpoint, str) and \
        mountpoint.startswith("/dev/") else ""
    if not _VIRTIO_DEV.match(dev):
        raise exception.Invalid(reason=f"mountpoint {mountpoint!r} is not a virtio disk "
                                       "name (/dev/vdb, /dev/vdc, ...)")
    return VolumeTarget(dev=dev, bus=bus, device=device)


def build_volume_disk(source: VolumeSource, target: VolumeTarget) -> config.Disk:
    """The ``<disk>`` of a volume.

    The serial is the volume id, so the guest can tell its volumes apart
    (virtio-blk shows it the first 20 characters, as ``/sys/block/vdX/serial``
    and ``/dev/disk/by-id/virtio-<serial>``). The host page cache is
    bypassed (``cache='none'``) wherever O_DIRECT works: always for network
    volumes (QEMU's iSCSI client has no page cache to use), and for files
    and devices that support it, so writes the guest flushed are on the
    volume when another host attaches it; ``writeback`` otherwise, since
    QEMU cannot open the disk with ``none`` there.
    """
    cache = "none" if source.source_type == "network" or source.direct_io else "writeback"
    disk = config.Disk(source_type=source.source_type, device=target.device,
                       driver_name="qemu", driver_type=source.format, driver_cache=cache,
                       target_dev=target.dev, target_bus=target.bus, serial=source.volume_id,
                       readonly=source.read_only or None)
    if source.source_type == "file":
        disk.source_file = source.path
    elif source.source_type == "block":
        disk.source_dev = source.path
    else:
        disk.source_protocol = source.protocol
        disk.source_name = source.name
        if source.portal is not None:
            disk.source_hosts = [config.DiskSourceHost(name=source.portal[0],
                                                       port=source.portal[1])]
        disk.source_initiator_iqn = source.initiator_iqn
        if source.auth_username:
            disk.auth_username = source.auth_username
            disk.auth_secret_type = "iscsi"
            disk.auth_secret_uuid = source.auth_secret_uuid
    return disk


def volume_mappings(block_device_info: dict | None) -> list[tuple[dict, VolumeTarget]]:
    """(connection_info, target) of each volume of ``block_device_info``
    (``{"block_device_mapping": [{"connection_info": {...}, "mount_device":
    "/dev/vdb", "boot_index": None, "disk_bus": "virtio", "device_type":
    "disk"}, ...]}``), in order. The mapping with ``boot_index`` 0 is the
    root disk and goes to ``vda`` whatever its mount_device says. ``Invalid``
    for two roots, a device name used twice or a target ``volume_target``
    refuses."""
    found: list[tuple[dict, VolumeTarget]] = []
    for bdm in (block_device_info or {}).get("block_device_mapping") or []:
        root = bdm.get("boot_index") == 0
        mountpoint = f"/dev/{ROOT_DEVICE}" if root else bdm.get("mount_device")
        target = volume_target(mountpoint, bdm.get("disk_bus"), bdm.get("device_type"))
        if root and any(t.dev == ROOT_DEVICE for _, t in found):
            raise exception.Invalid(reason="two block device mappings have boot_index 0")
        if any(t.dev == target.dev for _, t in found):
            raise exception.Invalid(reason=f"two block device mappings use /dev/{target.dev}")
        found.append((bdm.get("connection_info") or {}, target))
    return found


def boots_from_volume(block_device_info: dict | None) -> bool:
    """Whether a volume is the root disk (a mapping with ``boot_index`` 0)."""
    return any(bdm.get("boot_index") == 0
               for bdm in (block_device_info or {}).get("block_device_mapping") or [])


def secret_usage(instance_uuid: str, volume_id: str) -> str:
    """The usage id of the CHAP secret of ``volume_id`` attached to ``instance_uuid``."""
    return f"{SECRET_USAGE_PREFIX}{instance_uuid}:{volume_id}"


def build_chap_secret(instance_uuid: str, volume_id: str) -> config.Secret:
    """The libvirt secret holding a volume's CHAP password for one guest.

    Its uuid is derived from instance and volume, so defining it again is an
    update and removing it needs nothing remembered. Persistent (a guest
    started after a libvirtd restart still logs in) and private (libvirt
    never hands the value out again).
    """
    usage = secret_usage(instance_uuid, volume_id)
    return config.Secret(
        ephemeral=False, private=True, uuid=str(uuid.uuid5(_SECRET_NAMESPACE, usage)),
        description=f"CHAP password of volume {volume_id} for instance {instance_uuid}",
        usage_type="iscsi", usage_target=usage)


def build_console_devices(log_path: str, via_virtlogd: bool) -> list[config.ConfigObject]:
    """Serial port 0 logging to ``log_path``, and the console on it.

    With virtlogd the port is a pty (interactive consoles stay possible) whose
    output virtlogd writes to ``log_path``; without it QEMU writes the port
    straight to the file. Either way the log is appended to across restarts,
    so the console output of a rebooted guest still shows the boot before
    (a panic, the shutdown), as QEMU's own file backend does; virtlogd
    rotates the file at its ``max_size``.
    """
    if via_virtlogd:
        serial = config.Serial(dev_type="pty", log_file=log_path, log_append=True,
                               target_port=0)
        console = config.Console(dev_type="pty", target_type="serial", target_port=0)
    else:
        serial = config.Serial(dev_type="file", source_path=log_path, target_port=0)
        console = config.Console(dev_type="file", source_path=log_path,
                                 target_type="serial", target_port=0)
    return [serial, console]


def build_graphics(listen: str) -> config.Graphics:
    """VNC on ``listen`` (loopback by default), port chosen by libvirt."""
    return config.Graphics(graphics_type="vnc", autoport=True, listen=listen)


# -- the domain --------------------------------------------------------------

def _image_id(instance: Instance, image_meta: ImageMeta, key: str) -> str:
    return getattr(instance, key) or str(image_meta.properties.get(key) or "")


def boot_image_ids(instance: Instance, image_meta: ImageMeta) -> tuple[str, str]:
    """(kernel_id, ramdisk_id) the guest boots directly, ``""`` for none.

    The instance's own ids win over the image's ``kernel_id``/``ramdisk_id``
    properties; ``build_os`` then needs the files of exactly these.
    """
    return (_image_id(instance, image_meta, "kernel_id"),
            _image_id(instance, image_meta, "ramdisk_id"))


def build_os(instance: Instance, image_meta: ImageMeta, host: HostFacts,
             files: GuestFiles) -> config.OS:
    """Boot from the root disk, or straight into the image's kernel.

    Direct kernel boot happens when the instance or image names a
    ``kernel_id`` (and ``ramdisk_id``); ``files`` must then hold their paths.
    A guest whose root disk is a volume (no ``root_disk_path``) boots it by
    the disk's own boot order instead of ``<boot dev='hd'>`` (libvirt takes
    one or the other). Raises ``ValueError`` when ids and paths do not
    match up.
    """
    os_conf = config.OS(os_type="hvm", arch=host.arch,
                        machine=image_meta.properties.get("hw_machine_type"))
    kernel_id = _image_id(instance, image_meta, "kernel_id")
    ramdisk_id = _image_id(instance, image_meta, "ramdisk_id")
    if ramdisk_id and not kernel_id:
        raise ValueError(f"image {image_meta.id} has a ramdisk_id but no kernel_id")
    if bool(kernel_id) != bool(files.kernel_path):
        raise ValueError(f"image {image_meta.id}: kernel_id {kernel_id!r} needs a kernel "
                         f"path and a kernel path needs a kernel_id (got {files.kernel_path!r})")
    if bool(ramdisk_id) != bool(files.ramdisk_path):
        raise ValueError(f"image {image_meta.id}: ramdisk_id {ramdisk_id!r} needs a ramdisk "
                         f"path and a ramdisk path needs a ramdisk_id "
                         f"(got {files.ramdisk_path!r})")
    if kernel_id:
        os_conf.kernel = files.kernel_path
        os_conf.initrd = files.ramdisk_path
        os_conf.cmdline = image_meta.properties.get("os_command_line") or DEFAULT_KERNEL_CMDLINE
    elif files.root_disk_path is not None:
        os_conf.boot_devs = ["hd"]
    return os_conf


def build_clock(host: HostFacts) -> config.Clock:
    """UTC; on x86, timers that keep a guest's clock sane when it is descheduled."""
    clock = config.Clock(offset="utc")
    if host.arch in ("x86_64", "i686"):
        clock.timers = [config.Timer(name="pit", tickpolicy="delay"),
                        config.Timer(name="rtc", tickpolicy="catchup"),
                        config.Timer(name="hpet", present=False)]
    return clock


def build_domain(instance: Instance, image_meta: ImageMeta, host: HostFacts,
                 files: GuestFiles,
                 volume_disks: list[config.Disk] | None = None) -> config.Domain:
    """The whole definition of ``instance``'s guest.

    Sized by the flavor; ACPI on (the power button for soft shutdown, PCI
    hot-plug for volumes); root disk ``vda`` on virtio with the host's cache
    mode, or (no ``files.root_disk_path``: boot from volume) the volume
    disk of ``volume_disks`` at ``vda``; then the other volume disks;
    serial console logged to ``files.console_log_path``; VNC on
    ``host.vnc_listen`` with a libvirt-chosen port. ``ValueError`` when a
    guest without a root disk file has no volume at ``vda`` or one with a
    root disk file has one there too.
    """
    flavor = instance.flavor
    volume_disks = list(volume_disks or [])
    root_volume = [d for d in volume_disks if d.target_dev == ROOT_DEVICE]
    if files.root_disk_path is None:
        if not root_volume:
            raise ValueError(f"instance {instance.uuid} has neither a root disk file nor a "
                             f"volume at {ROOT_DEVICE}")
        disks = volume_disks
    else:
        if root_volume:
            raise ValueError(f"instance {instance.uuid} has a root disk file and a volume "
                             f"at {ROOT_DEVICE}")
        disks = [build_file_disk(files.root_disk_path, ROOT_DEVICE, files.root_disk_format,
                                 host.disk_cache_mode), *volume_disks]
    # The root disk first: firmware and kernel enumerate disks in this order.
    disks.sort(key=lambda d: d.target_dev != ROOT_DEVICE)
    os_conf = build_os(instance, image_meta, host, files)
    if files.root_disk_path is None and not os_conf.kernel:
        # Firmware boot from the volume: by the disk's boot order (build_os
        # left out <boot dev=>). A copy: the caller's disk stays as it was.
        disks[0] = copy.copy(disks[0])
        disks[0].boot_order = 1
    devices: list[config.ConfigObject] = [
        *disks,
        *build_console_devices(files.console_log_path, host.console_via_virtlogd),
        config.Input(input_type="tablet", bus="usb"),  # absolute pointer for VNC
        build_graphics(host.vnc_listen),
        config.Video(model_type="virtio"),
        config.MemBalloon(model="virtio", stats_period=BALLOON_STATS_PERIOD),
    ]
    return config.Domain(
        virt_type=host.virt_type,
        name=instance.name,
        uuid=instance.uuid,
        memory_kib=flavor.memory_mb * 1024,
        vcpus=flavor.vcpus,
        os=os_conf,
        features=config.Features(acpi=True, apic=True),
        clock=build_clock(host),
        on_poweroff="destroy",
        on_reboot="restart",
        on_crash="destroy",
        devices=devices,
    )


def build_probe_domain(name: str, virt_type: str, disk_path: str, log_path: str,
                       arch: str = "x86_64") -> config.Domain:
    """A minimal guest that boots the raw disk ``disk_path`` (read-only) with
    serial port 0 written straight to ``log_path`` by QEMU: what
    ``probe.time_probe_boot`` runs to see whether ``virt_type`` works."""
    return config.Domain(
        virt_type=virt_type, name=name, memory_kib=32 * 1024, vcpus=1,
        os=config.OS(os_type="hvm", arch=arch, boot_devs=["hd"]),
        on_poweroff="destroy", on_reboot="destroy", on_crash="destroy",
        devices=[
            config.Disk(source_type="file", device="disk", driver_name="qemu",
                        driver_type="raw", source_file=disk_path, target_dev=ROOT_DEVICE,
                        target_bus=DISK_BUS, readonly=True),
            config.Serial(dev_type="file", source_path=log_path, target_port=0),
            config.MemBalloon(model="none"),
        ])
