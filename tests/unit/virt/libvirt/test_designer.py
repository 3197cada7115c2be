"""Tests of the libvirt designer: the policy that fills config objects."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import subprocess
from unittest import mock

import pytest

from virtstack import exception
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt.libvirt import config, designer

HOST = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1", disk_cache_mode="none")
FILES = designer.GuestFiles(root_disk_path="/inst/disk", root_disk_format="qcow2",
                            console_log_path="/inst/console.log")
KERNEL_FILES = designer.GuestFiles(root_disk_path="/inst/disk", root_disk_format="raw",
                                   console_log_path="/inst/console.log",
                                   kernel_path="/inst/kernel", ramdisk_path="/inst/ramdisk")


def make_instance(**overrides) -> Instance:
    values = dict(uuid="7d3c1a8e-8a7e-4a43-9d4b-0f1f1c2d3e4f", name="instance-0000002a",
                  display_name="web1", project_id="p", user_id="u",
                  flavor=Flavor(flavorid="42", name="m1.tiny", vcpus=2, memory_mb=256, root_gb=1))
    values.update(overrides)
    return Instance(**values)


def kernel_image(**properties) -> ImageMeta:
    return ImageMeta(id="img-1", properties={"kernel_id": "k-1", "ramdisk_id": "r-1",
                                             **properties})


# -- the domain ---------------------------------------------------------------

def test_domain_is_sized_and_named_from_instance_and_flavor():
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES)
    assert (domain.virt_type, domain.name, domain.uuid) == (
        "qemu", "instance-0000002a", "7d3c1a8e-8a7e-4a43-9d4b-0f1f1c2d3e4f")
    assert domain.memory_kib == 256 * 1024
    assert domain.vcpus == 2


def test_virt_type_comes_from_the_host():
    host = designer.HostFacts(virt_type="kvm", vnc_listen="127.0.0.1", disk_cache_mode="none")
    assert designer.build_domain(make_instance(), ImageMeta(id="i"), host, FILES).virt_type == "kvm"


def test_acpi_is_on():
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES)
    assert domain.features.acpi is True


def test_root_disk_is_vda_on_virtio_with_the_hosts_cache_mode():
    host = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1",
                              disk_cache_mode="writeback")
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), host, FILES)
    [disk] = domain.devices_of(config.Disk)
    assert (disk.source_type, disk.source_file, disk.driver_type, disk.driver_cache) == (
        "file", "/inst/disk", "qcow2", "writeback")
    assert (disk.target_dev, disk.target_bus) == ("vda", "virtio")


def test_image_without_kernel_boots_from_disk():
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES)
    assert domain.os.boot_devs == ["hd"]
    assert (domain.os.kernel, domain.os.initrd, domain.os.cmdline) == (None, None, None)
    assert (domain.os.os_type, domain.os.arch) == ("hvm", "x86_64")


def test_image_with_kernel_and_ramdisk_boots_them_directly():
    domain = designer.build_domain(make_instance(), kernel_image(), HOST, KERNEL_FILES)
    assert domain.os.kernel == "/inst/kernel"
    assert domain.os.initrd == "/inst/ramdisk"
    assert domain.os.cmdline == "root=/dev/vda console=ttyS0"
    assert domain.os.boot_devs == []


def test_kernel_command_line_comes_from_the_image_when_set():
    image = kernel_image(os_command_line="console=ttyS0 root=/dev/vda quiet")
    domain = designer.build_domain(make_instance(), image, HOST, KERNEL_FILES)
    assert domain.os.cmdline == "console=ttyS0 root=/dev/vda quiet"


def test_kernel_ids_on_the_instance_count_as_well():
    instance = make_instance(kernel_id="k-1", ramdisk_id="r-1")
    domain = designer.build_domain(instance, ImageMeta(id="img"), HOST, KERNEL_FILES)
    assert domain.os.kernel == "/inst/kernel"


def test_kernel_without_ramdisk():
    files = designer.GuestFiles("/inst/disk", "raw", "/inst/console.log",
                                kernel_path="/inst/kernel")
    domain = designer.build_domain(make_instance(), ImageMeta(id="i", properties={
        "kernel_id": "k-1"}), HOST, files)
    assert (domain.os.kernel, domain.os.initrd) == ("/inst/kernel", None)


def test_machine_type_comes_from_the_image():
    image = ImageMeta(id="img", properties={"hw_machine_type": "q35"})
    assert designer.build_domain(make_instance(), image, HOST, FILES).os.machine == "q35"


@pytest.mark.parametrize("image,files,message", [
    (kernel_image(), FILES, "kernel_id 'k-1' needs a kernel path"),
    (ImageMeta(id="img"), KERNEL_FILES, "a kernel path needs a kernel_id"),
    (ImageMeta(id="img", properties={"ramdisk_id": "r-1"}), FILES, "ramdisk_id but no kernel_id"),
    (ImageMeta(id="img", properties={"kernel_id": "k-1"}), KERNEL_FILES,
     "a ramdisk path needs a ramdisk_id"),
])
def test_kernel_ids_and_paths_must_match(image, files, message):
    with pytest.raises(ValueError, match=message):
        designer.build_domain(make_instance(), image, HOST, files)


def test_console_is_a_pty_logged_by_virtlogd():
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES)
    [serial] = domain.devices_of(config.Serial)
    [console] = domain.devices_of(config.Console)
    assert (serial.dev_type, serial.log_file, serial.log_append, serial.target_port) == (
        "pty", "/inst/console.log", True, 0)
    assert (console.dev_type, console.target_type, console.target_port) == ("pty", "serial", 0)


def test_console_without_virtlogd_is_written_to_the_file_by_qemu():
    host = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1", disk_cache_mode="none",
                              console_via_virtlogd=False)
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), host, FILES)
    [serial] = domain.devices_of(config.Serial)
    [console] = domain.devices_of(config.Console)
    assert (serial.dev_type, serial.source_path, serial.log_file) == (
        "file", "/inst/console.log", None)
    assert (console.dev_type, console.source_path) == ("file", "/inst/console.log")


def test_vnc_listens_on_the_configured_address_with_autoport():
    host = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.2", disk_cache_mode="none")
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), host, FILES)
    [graphics] = domain.devices_of(config.Graphics)
    assert (graphics.graphics_type, graphics.listen, graphics.autoport, graphics.port) == (
        "vnc", "127.0.0.2", True, None)


def test_x86_clock_keeps_time_with_catchup_timers():
    clock = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES).clock
    assert clock.offset == "utc"
    assert [(t.name, t.tickpolicy, t.present) for t in clock.timers] == [
        ("pit", "delay", None), ("rtc", "catchup", None), ("hpet", None, False)]


def test_other_architectures_get_no_x86_timers():
    host = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1", disk_cache_mode="none",
                              arch="aarch64")
    assert designer.build_clock(host).timers == []


def test_designed_domain_round_trips_through_xml():
    domain = designer.build_domain(make_instance(), kernel_image(), HOST, KERNEL_FILES)
    assert config.Domain.from_xml(domain.to_xml()) == domain


@pytest.mark.parametrize("files,image", [(FILES, ImageMeta(id="img")),
                                         (KERNEL_FILES, kernel_image())])
def test_designed_domain_is_valid_libvirt_xml(files, image, tmp_path):
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate/xmllint not installed (tools/install-libvirt.sh)")
    path = tmp_path / "domain.xml"
    path.write_text(designer.build_domain(make_instance(), image, HOST, files).to_xml())
    proc = subprocess.run(["virt-xml-validate", str(path), "domain"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_file_disk_for_hot_plug():
    disk = designer.build_file_disk("/inst/extra.raw", "vdb", "raw", "none", serial="vol-1")
    assert disk == config.Disk(source_type="file", device="disk", driver_name="qemu",
                               driver_type="raw", driver_cache="none",
                               source_file="/inst/extra.raw", target_dev="vdb",
                               target_bus="virtio", serial="vol-1")


def test_boot_image_ids_prefer_the_instance_over_the_image():
    assert designer.boot_image_ids(make_instance(), kernel_image()) == ("k-1", "r-1")
    assert designer.boot_image_ids(make_instance(kernel_id="k-9"), kernel_image()) == (
        "k-9", "r-1")
    assert designer.boot_image_ids(make_instance(), ImageMeta(id="img")) == ("", "")


def test_probe_domain_boots_its_disk_read_only_with_a_file_console():
    domain = designer.build_probe_domain("virtstack-probe-1", "kvm", "/p/probe.img",
                                         "/p/serial.log")
    assert (domain.virt_type, domain.name, domain.os.boot_devs) == (
        "kvm", "virtstack-probe-1", ["hd"])
    [disk] = domain.devices_of(config.Disk)
    assert (disk.source_file, disk.driver_type, disk.readonly) == ("/p/probe.img", "raw", True)
    [serial] = domain.devices_of(config.Serial)
    assert (serial.dev_type, serial.source_path) == ("file", "/p/serial.log")
    assert domain.devices_of(config.Graphics) == []


def test_probe_domain_is_valid_libvirt_xml(tmp_path):
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate/xmllint not installed (tools/install-libvirt.sh)")
    path = tmp_path / "domain.xml"
    path.write_text(designer.build_probe_domain("p", "qemu", "/p/d", "/p/l").to_xml())
    proc = subprocess.run(["virt-xml-validate", str(path), "domain"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the O_DIRECT probe -------------------------------------------------------

def test_direct_io_probe_on_a_real_directory_leaves_nothing_behind(tmp_path):
    result = designer.supports_direct_io(str(tmp_path))
    assert isinstance(result, bool)
    assert os.listdir(tmp_path) == []
    assert designer.disk_cache_mode(str(tmp_path)) == ("none" if result else "writeback")


def test_einval_from_open_means_no_direct_io(tmp_path):
    with mock.patch.object(designer.os, "open", autospec=True,
                           side_effect=OSError(errno.EINVAL, "Invalid argument")):
        assert designer.supports_direct_io(str(tmp_path)) is False
        assert designer.disk_cache_mode(str(tmp_path)) == "writeback"


def test_einval_from_the_write_means_no_direct_io_and_the_file_is_removed(tmp_path):
    with mock.patch.object(designer.os, "write", autospec=True,
                           side_effect=OSError(errno.EINVAL, "Invalid argument")):
        assert designer.supports_direct_io(str(tmp_path)) is False
    assert os.listdir(tmp_path) == []


def test_other_errors_from_the_probe_are_raised(tmp_path):
    with pytest.raises(FileNotFoundError):
        designer.supports_direct_io(str(tmp_path / "missing"))


# -- volumes -------------------------------------------------------------------

FILE_VOLUME = designer.VolumeSource(volume_id="3b9c5e1d-7a2f-4c1e-9d8b-6f0a2e4c1b7d",
                                    source_type="file", path="/vols/volume-3b9c", format="qcow2")
ISCSI_VOLUME = designer.VolumeSource(
    volume_id="8f1e", source_type="network", protocol="iscsi",
    name="iqn.2010-10.org.virtstack:volume-8f1e/1", portal=("127.0.0.1", 3260),
    initiator_iqn="iqn.2010-10.org.virtstack:host:abc", auth_username="chap-user",
    auth_secret_uuid="4c7d1f52-2b0e-4a4b-9d6e-2f1c9a3b5e10", direct_io=False)
VDB = designer.VolumeTarget(dev="vdb")


def test_volume_target_defaults_to_a_virtio_disk():
    assert designer.volume_target("/dev/vdc") == designer.VolumeTarget("vdc", "virtio", "disk")
    assert designer.volume_target("/dev/vdaa", "virtio", "disk").dev == "vdaa"


@pytest.mark.parametrize("mountpoint,bus,device,message", [
    ("/dev/sdb", None, None, "not a virtio disk name"),
    ("vdb", None, None, "not a virtio disk name"),
    ("/dev/vdb1", None, None, "not a virtio disk name"),
    (None, None, None, "not a virtio disk name"),
    ("/dev/vdb", "ide", None, "disk_bus 'ide' cannot take volumes here; supported: virtio"),
    ("/dev/vdb", None, "cdrom", "device_type 'cdrom' cannot be a volume here"),
])
def test_volume_target_refuses_what_cannot_be_hot_plugged(mountpoint, bus, device, message):
    with pytest.raises(exception.Invalid, match=message):
        designer.volume_target(mountpoint, bus, device)


def test_file_volume_disk():
    disk = designer.build_volume_disk(FILE_VOLUME, VDB)
    assert (disk.source_type, disk.source_file, disk.driver_type) == (
        "file", "/vols/volume-3b9c", "qcow2")
    assert (disk.target_dev, disk.target_bus, disk.device) == ("vdb", "virtio", "disk")
    assert disk.serial == FILE_VOLUME.volume_id  # the guest sees the first 20 characters
    assert disk.driver_cache == "none" and disk.readonly is None


def test_volume_without_direct_io_is_cached_by_the_host():
    source = dataclasses.replace(FILE_VOLUME, direct_io=False)
    assert designer.build_volume_disk(source, VDB).driver_cache == "writeback"


def test_read_only_volume():
    source = dataclasses.replace(FILE_VOLUME, read_only=True)
    assert designer.build_volume_disk(source, VDB).readonly is True


def test_block_volume_disk():
    source = designer.VolumeSource(volume_id="v", source_type="block", path="/dev/sdx")
    disk = designer.build_volume_disk(source, VDB)
    assert (disk.source_type, disk.source_dev, disk.source_file) == ("block", "/dev/sdx", None)


def test_iscsi_volume_disk_goes_through_qemus_client_with_chap():
    disk = designer.build_volume_disk(ISCSI_VOLUME, VDB)
    assert (disk.source_type, disk.source_protocol, disk.source_name) == (
        "network", "iscsi", "iqn.2010-10.org.virtstack:volume-8f1e/1")
    assert [(h.name, h.port) for h in disk.source_hosts] == [("127.0.0.1", 3260)]
    assert disk.source_initiator_iqn == "iqn.2010-10.org.virtstack:host:abc"
    assert (disk.auth_username, disk.auth_secret_type, disk.auth_secret_uuid) == (
        "chap-user", "iscsi", "4c7d1f52-2b0e-4a4b-9d6e-2f1c9a3b5e10")
    assert disk.driver_cache == "none"  # network volumes never use the host page cache


def test_iscsi_volume_without_chap_has_no_auth():
    source = dataclasses.replace(ISCSI_VOLUME, auth_username=None, auth_secret_uuid=None)
    disk = designer.build_volume_disk(source, VDB)
    assert (disk.auth_username, disk.auth_secret_type) == (None, None)
    assert "<auth" not in disk.to_xml()


def test_chap_secret_is_named_after_instance_and_volume_and_stable():
    secret = designer.build_chap_secret("inst-1", "vol-1")
    assert secret == designer.build_chap_secret("inst-1", "vol-1")
    assert secret.uuid != designer.build_chap_secret("inst-1", "vol-2").uuid
    assert secret.uuid != designer.build_chap_secret("inst-2", "vol-1").uuid
    assert (secret.usage_type, secret.usage_target) == ("iscsi", "virtstack:inst-1:vol-1")
    assert (secret.ephemeral, secret.private) == (False, True)


def _bdm(connection_info, mount_device, boot_index=None):
    return {"connection_info": connection_info, "mount_device": mount_device,
            "boot_index": boot_index, "disk_bus": "virtio", "device_type": "disk"}


def test_volume_mappings_put_the_boot_volume_at_vda():
    root, data = {"data": {"volume_id": "r"}}, {"data": {"volume_id": "d"}}
    bdi = {"block_device_mapping": [_bdm(data, "/dev/vdc"), _bdm(root, "/dev/vdb", 0)]}
    assert designer.volume_mappings(bdi) == [(data, designer.VolumeTarget("vdc")),
                                             (root, designer.VolumeTarget("vda"))]
    assert designer.boots_from_volume(bdi)
    assert not designer.boots_from_volume({"block_device_mapping": [_bdm(data, "/dev/vdc")]})
    assert designer.volume_mappings(None) == [] and not designer.boots_from_volume({})


@pytest.mark.parametrize("mappings,message", [
    ([_bdm({}, "/dev/vdb", 0), _bdm({}, "/dev/vdc", 0)], "two block device mappings have "
                                                          "boot_index 0"),
    ([_bdm({}, "/dev/vdb"), _bdm({}, "/dev/vdb")], "two block device mappings use /dev/vdb"),
    ([_bdm({}, "/dev/hda")], "not a virtio disk name"),
])
def test_volume_mappings_refuse_clashes(mappings, message):
    with pytest.raises(exception.Invalid, match=message):
        designer.volume_mappings({"block_device_mapping": mappings})


VOLUME_BOOT_FILES = designer.GuestFiles(root_disk_path=None, root_disk_format="raw",
                                        console_log_path="/inst/console.log")


def test_boot_from_volume_with_the_images_kernel():
    files = dataclasses.replace(VOLUME_BOOT_FILES, kernel_path="/inst/kernel",
                                ramdisk_path="/inst/ramdisk")
    root = designer.build_volume_disk(FILE_VOLUME, designer.VolumeTarget("vda"))
    extra = designer.build_volume_disk(ISCSI_VOLUME, VDB)
    domain = designer.build_domain(make_instance(), kernel_image(), HOST, files, [extra, root])
    disks = domain.devices_of(config.Disk)
    assert [(d.target_dev, d.serial) for d in disks] == [("vda", FILE_VOLUME.volume_id),
                                                         ("vdb", "8f1e")]
    assert domain.os.cmdline == "root=/dev/vda console=ttyS0"
    assert disks[0].boot_order is None  # the kernel is booted, not the disk


def test_boot_from_volume_by_firmware_uses_the_disks_boot_order():
    root = designer.build_volume_disk(FILE_VOLUME, designer.VolumeTarget("vda"))
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST,
                                   VOLUME_BOOT_FILES, [root])
    [disk] = domain.devices_of(config.Disk)
    assert disk.boot_order == 1 and domain.os.boot_devs == []  # libvirt takes one or the other
    assert root.boot_order is None  # the caller's object is left alone


def test_volumes_next_to_an_image_root_disk():
    extra = designer.build_volume_disk(FILE_VOLUME, VDB)
    domain = designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, FILES, [extra])
    assert [d.target_dev for d in domain.devices_of(config.Disk)] == ["vda", "vdb"]
    assert domain.os.boot_devs == ["hd"]


@pytest.mark.parametrize("files,volumes,message", [
    (VOLUME_BOOT_FILES, [], "neither a root disk file nor a volume at vda"),
    (FILES, [designer.build_volume_disk(FILE_VOLUME, designer.VolumeTarget("vda"))],
     "a root disk file and a volume at vda"),
])
def test_exactly_one_root_disk(files, volumes, message):
    with pytest.raises(ValueError, match=message):
        designer.build_domain(make_instance(), ImageMeta(id="img"), HOST, files, volumes)
