"""Policy: which libvirt config objects a guest gets, and with what values.

The designer turns an ``Instance`` (with its flavor), an ``ImageMeta`` and
facts about the host into ``config`` objects. It decides (disk bus, cache
mode, boot method, console, VNC, ACPI) but connects to nothing and reads no
configuration options: the driver passes what it read (``HostFacts``) and
where it put the guest's files (``GuestFiles``), as the Host/Guest split
spec asks.
"""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import uuid

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
    """

    root_disk_path: str
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
    Raises ``ValueError`` when ids and paths do not match up.
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
    else:
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
                 files: GuestFiles) -> config.Domain:
    """The whole definition of ``instance``'s guest.

    Sized by the flavor; ACPI on (the power button for soft shutdown, PCI
    hot-plug for volumes); root disk ``vda`` on virtio with the host's cache
    mode; serial console logged to ``files.console_log_path``; VNC on
    ``host.vnc_listen`` with a libvirt-chosen port.
    """
    flavor = instance.flavor
    devices: list[config.ConfigObject] = [
        build_file_disk(files.root_disk_path, ROOT_DEVICE, files.root_disk_format,
                        host.disk_cache_mode),
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
        os=build_os(instance, image_meta, host, files),
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
