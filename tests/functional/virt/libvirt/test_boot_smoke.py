"""Smoke test on real libvirt + QEMU (TCG): no mocks.

Builds the test guest (``virtstack.image.testimage``; cached across runs in
``$VIRTSTACK_TEST_IMAGE_DIR`` or ``~/.cache/virtstack/test-image``), defines a
domain from ``designer`` + ``config`` XML, boots it with libvirt-python and
follows the guest's serial console log: boot, live hot-plug of a raw disk,
block resize, live detach, ACPI shutdown to SHUTOFF.

Skips only when libvirt-python cannot be imported or libvirtd does not answer
at ``$VIRTSTACK_TEST_LIBVIRT_URI`` (default ``qemu:///system``);
``tools/install-libvirt.sh`` sets both up. Timings are recorded as test
properties and printed.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from typing import Any

import pytest

from tests.functional.virt.libvirt import environment as lv
from virtstack.image import testimage
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt import power_state
from virtstack.virt.driver import wait_for
from virtstack.virt.libvirt import config, designer

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(900)]

URI = os.environ.get("VIRTSTACK_TEST_LIBVIRT_URI", "qemu:///system")
BOOT_TIMEOUT = 180.0    # ~5 s (PVH kernel), ~10 s (bzImage) under TCG here; room for load
DEVICE_TIMEOUT = 60.0   # hot-plug, resize and unplug show up in well under a second
SHUTDOWN_TIMEOUT = 120.0
GiB = 1024 ** 3
SECTOR = 512


@pytest.fixture(scope="module")
def libvirt_conn():
    try:
        import libvirt
    except ImportError as exc:
        pytest.skip(f"libvirt-python cannot be imported ({exc}); run tools/install-libvirt.sh")
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirtd unreachable at {URI} ({exc}); run tools/install-libvirt.sh")
    yield conn
    conn.close()


def image_dir() -> str:
    return (os.environ.get("VIRTSTACK_TEST_IMAGE_DIR")
            or os.path.expanduser("~/.cache/virtstack/test-image"))


@pytest.fixture(scope="module")
def guest_image(libvirt_conn):
    started = time.monotonic()
    manifest = testimage.build_test_image(image_dir())
    manifest["build_seconds"] = time.monotonic() - started
    return manifest


@pytest.fixture
def timings(request, record_property, capsys):
    """Seconds per step; recorded as properties and printed after the test."""
    measured: dict[str, float] = {}
    yield measured
    for name, seconds in measured.items():
        record_property(name, round(seconds, 2))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and measured:
        with capsys.disabled():
            reporter.ensure_newline()
            reporter.write_line("libvirt smoke (QEMU TCG): " + ", ".join(
                f"{name} {seconds:.1f}s" for name, seconds in measured.items()))


@pytest.fixture
def workdir():
    """A directory QEMU can reach: it runs as libvirt-qemu (DAC), which cannot
    traverse root's 0700 directories (pytest's tmp_path, ~/.cache)."""
    path = tempfile.mkdtemp(prefix="virtstack-smoke-")
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclasses.dataclass
class SmokeGuest:
    dom: Any  # libvirt.virDomain
    conf: config.Domain
    files: designer.GuestFiles
    host: designer.HostFacts


@pytest.fixture
def define_guest(libvirt_conn, guest_image, workdir):
    """``define_guest(kernel)``: a defined (not started) domain booting
    ``kernel`` with the test initrd and a copy of the root disk. Every domain
    is destroyed and undefined after the test."""
    import libvirt

    defined = []

    def define(kernel: str) -> SmokeGuest:
        copies = {}
        for key, source in (("kernel", kernel), ("initrd", guest_image["initrd"]),
                            ("root", guest_image["root_disk_qcow2"] or guest_image["root_disk"])):
            copies[key] = os.path.join(workdir, os.path.basename(source))
            shutil.copyfile(source, copies[key])
        instance_uuid = str(uuid.uuid4())
        instance = Instance(uuid=instance_uuid, name=f"virtstack-smoke-{instance_uuid[:8]}",
                            display_name="smoke", project_id="test", user_id="test",
                            flavor=Flavor(flavorid="smoke", name="smoke", vcpus=1,
                                          memory_mb=256, root_gb=1))
        image = ImageMeta(id="test-image", properties={
            "kernel_id": "test-kernel", "ramdisk_id": "test-ramdisk",
            "os_command_line": guest_image["cmdline"]})
        host = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1",
                                  disk_cache_mode=designer.disk_cache_mode(workdir))
        files = designer.GuestFiles(
            root_disk_path=copies["root"],
            root_disk_format="qcow2" if copies["root"].endswith(".qcow2") else "raw",
            console_log_path=os.path.join(workdir, "console.log"),
            kernel_path=copies["kernel"], ramdisk_path=copies["initrd"])
        domain_conf = designer.build_domain(instance, image, host, files)
        dom = libvirt_conn.defineXML(domain_conf.to_xml())
        defined.append(dom)
        return SmokeGuest(dom, domain_conf, files, host)

    yield define
    for dom in defined:
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError:
            pass  # stopped meanwhile: nothing to destroy
        dom.undefineFlags(0)


@pytest.fixture
def guest(define_guest, guest_image):
    """The test guest on its fastest kernel (PVH entry when the kernel has one)."""
    return define_guest(guest_image["kernel_pvh"] or guest_image["kernel"])


def Console(path: str) -> lv.Console:
    """The guest's serial console log file, read from a position onward."""
    def read() -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""
    return lv.Console(read)


def live_disks(dom) -> dict[str, config.Disk]:
    """The running domain's disks by target, parsed from libvirt's live XML."""
    live = config.Domain.from_xml(dom.XMLDesc(0))
    return {d.target_dev: d for d in live.devices_of(config.Disk)}


def test_guest_boots_hotplugs_resizes_unplugs_and_shuts_down(guest, workdir, timings,
                                                              guest_image):
    import libvirt

    dom, host = guest.dom, guest.host
    console = Console(guest.files.console_log_path)
    timings["image_build"] = guest_image["build_seconds"]

    started = time.monotonic()
    dom.create()
    timings["create"] = time.monotonic() - started
    console.wait_for("VIRTSTACK-ROOT /dev/vda", BOOT_TIMEOUT)
    console.wait_for(re.compile(r"VIRTSTACK-DISK-PRESENT vda \d+"), BOOT_TIMEOUT)
    console.wait_for("VIRTSTACK-GUEST-BOOTED", BOOT_TIMEOUT)
    timings["boot"] = time.monotonic() - started
    assert power_state.from_libvirt(dom.state()[0]) == power_state.RUNNING

    # Hot-plug a 1 GiB raw disk, live only.
    extra = os.path.join(workdir, "extra.raw")
    with open(extra, "wb") as f:
        f.truncate(1 * GiB)
    disk = designer.build_file_disk(extra, "vdb", "raw", host.disk_cache_mode, serial="extra")
    started = time.monotonic()
    dom.attachDeviceFlags(disk.to_xml(), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    console.wait_for(f"VIRTSTACK-DISK-ADDED vdb {GiB // SECTOR}", DEVICE_TIMEOUT)
    timings["hotplug"] = time.monotonic() - started
    assert live_disks(dom)["vdb"].source_file == extra

    # Grow it to 2 GiB: QEMU grows the file and tells the guest.
    started = time.monotonic()
    dom.blockResize("vdb", 2 * GiB, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
    console.wait_for(f"VIRTSTACK-DISK-RESIZED vdb {2 * GiB // SECTOR}", DEVICE_TIMEOUT)
    timings["resize"] = time.monotonic() - started
    assert os.stat(extra).st_size == 2 * GiB

    # Unplug it: the guest acknowledges over ACPI, then libvirt drops it.
    started = time.monotonic()
    dom.detachDeviceFlags(disk.to_xml(), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    console.wait_for("VIRTSTACK-DISK-REMOVED vdb", DEVICE_TIMEOUT)
    wait_for(lambda: "vdb" not in live_disks(dom), DEVICE_TIMEOUT, interval=0.1,
             what="vdb to leave the live domain XML")
    timings["unplug"] = time.monotonic() - started
    assert set(live_disks(dom)) == {"vda"}

    # ACPI power button: acpid in the guest powers it off cleanly.
    started = time.monotonic()
    dom.shutdown()
    console.wait_for("VIRTSTACK-POWEROFF", SHUTDOWN_TIMEOUT)
    wait_for(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, SHUTDOWN_TIMEOUT,
             interval=0.1, what="the domain to reach SHUTOFF")
    timings["shutdown"] = time.monotonic() - started
    state, reason = dom.state()
    assert (state, reason) == (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)
    assert power_state.from_libvirt(state) == power_state.SHUTDOWN


def test_defined_domain_reads_back_as_designed(guest):
    domain_conf, files, host = guest.conf, guest.files, guest.host
    defined = config.Domain.from_xml(guest.dom.XMLDesc(0))
    assert (defined.name, defined.uuid, defined.virt_type) == (
        domain_conf.name, domain_conf.uuid, "qemu")
    assert defined.memory_kib == domain_conf.memory_kib
    assert defined.features.acpi is True
    assert (defined.os.kernel, defined.os.initrd, defined.os.cmdline) == (
        files.kernel_path, files.ramdisk_path, domain_conf.os.cmdline)
    [root] = defined.devices_of(config.Disk)
    assert (root.target_dev, root.target_bus, root.driver_cache) == (
        "vda", "virtio", host.disk_cache_mode)
    [graphics] = defined.devices_of(config.Graphics)
    assert (graphics.listen, graphics.autoport) == ("127.0.0.1", True)
    [serial] = defined.devices_of(config.Serial)
    assert serial.log_file == files.console_log_path


def test_debian_bzimage_kernel_boots_too(define_guest, guest_image, timings):
    # The smoke test above boots the uncompressed kernel (PVH entry); images
    # with a kernel_id carry a bzImage, booted through the firmware.
    guest = define_guest(guest_image["kernel"])
    console = Console(guest.files.console_log_path)
    started = time.monotonic()
    guest.dom.create()
    console.wait_for("VIRTSTACK-ROOT /dev/vda", BOOT_TIMEOUT)
    console.wait_for("VIRTSTACK-GUEST-BOOTED", BOOT_TIMEOUT)
    timings["boot_bzimage"] = time.monotonic() - started


def test_test_image_is_reused_from_the_cache(guest_image):
    mtimes = {key: os.stat(guest_image[key]).st_mtime_ns
              for key in ("kernel", "initrd", "root_disk")}
    again = testimage.build_test_image(image_dir())
    assert {key: os.stat(again[key]).st_mtime_ns for key in mtimes} == mtimes
    assert again["kernel_version"] == guest_image["kernel_version"]
    assert again["recipe"] == guest_image["recipe"]


def test_test_image_holds_what_the_guest_needs(guest_image):
    assert guest_image["kernel_version"]
    if guest_image["kernel_pvh"]:
        with open(guest_image["kernel_pvh"], "rb") as f:
            assert f.read(4) == b"\x7fELF"
    assert {"virtio_pci", "virtio_blk", "ext4", "button", "evdev"} <= set(guest_image["modules"])
    with gzip.open(guest_image["initrd"]) as f:
        archive = f.read()
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=archive, check=True,
                             capture_output=True).stdout.decode().split()
    assert {"init", "bin/busybox", "bin/virtstack-guest", "etc/acpi/PWRF/00000080",
            "lib/modules/load-order"} <= set(listing)
    assert stat.S_ISREG(os.stat(guest_image["root_disk"]).st_mode)
    guest_init = subprocess.run(["debugfs", "-R", "cat /bin/virtstack-guest",
                                 guest_image["root_disk"]], capture_output=True, text=True)
    assert "VIRTSTACK-GUEST-BOOTED" in guest_init.stdout, guest_init.stderr
