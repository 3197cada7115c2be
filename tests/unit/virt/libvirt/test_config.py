"""Golden-file tests of the libvirt XML config classes.

Every file in ``golden/`` is checked both ways: the objects built below
format to exactly its text, and parsing it formats back to exactly its text.
``test_every_declared_property_is_in_a_golden_file`` fails when a class
declares a property that no golden file exercises, so a new property comes
with XML that shows it. Domain goldens are also checked against libvirt's own
schema when ``virt-xml-validate`` is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from virtstack.virt.libvirt import config

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")
UUID = "c7a5fdbd-cdaf-4d6a-a7ff-0a1d32c1f0a1"


def read_golden(name: str) -> str:
    with open(os.path.join(GOLDEN_DIR, name), encoding="utf-8") as f:
        return f.read().rstrip("\n")


# -- what each golden file holds, built from Python ------------------------

def build_domain_kernel_boot() -> config.Domain:
    """A TCG guest booting a kernel directly, as the designer makes them."""
    return config.Domain(
        virt_type="qemu", name="instance-00000001", uuid=UUID,
        memory_kib=262144, vcpus=1,
        os=config.OS(os_type="hvm", arch="x86_64", machine="pc",
                     kernel="/var/lib/virtstack/instances/c7a5/kernel",
                     initrd="/var/lib/virtstack/instances/c7a5/ramdisk",
                     cmdline="root=/dev/vda console=ttyS0"),
        features=config.Features(acpi=True, apic=True, pae=True),
        clock=config.Clock(offset="utc", timers=[
            config.Timer(name="pit", tickpolicy="delay"),
            config.Timer(name="rtc", tickpolicy="catchup"),
            config.Timer(name="hpet", present=False)]),
        on_poweroff="destroy", on_reboot="restart", on_crash="destroy",
        devices=[
            config.Disk(source_type="file", device="disk", driver_name="qemu",
                        driver_type="qcow2", driver_cache="none", driver_io="native",
                        source_file="/var/lib/virtstack/instances/c7a5/disk",
                        target_dev="vda", target_bus="virtio"),
            config.Serial(dev_type="pty", log_file="/var/lib/virtstack/instances/c7a5/console.log",
                          log_append=False, target_port=0),
            config.Console(dev_type="pty", target_type="serial", target_port=0),
            config.Input(input_type="tablet", bus="usb"),
            config.Graphics(graphics_type="vnc", autoport=True, listen="127.0.0.1"),
            config.Video(model_type="virtio", vram=16384, heads=1),
            config.MemBalloon(model="virtio", stats_period=10),
            config.Controller(controller_type="usb", index=0, model="piix3-uhci"),
        ])


def build_domain_disk_boot() -> config.Domain:
    """A KVM guest booting from disk with a CD-ROM, shared block disk and NICs."""
    return config.Domain(
        virt_type="kvm", name="instance-00000002",
        uuid="0e2e1a51-36a1-4d4c-9f36-5d1b0d3c2e77", memory_kib=1048576, vcpus=2,
        os=config.OS(os_type="hvm", boot_devs=["hd", "cdrom"]),
        features=config.Features(acpi=True),
        clock=config.Clock(offset="localtime"),
        on_reboot="restart",
        devices=[
            config.Disk(source_type="file", device="disk", driver_name="qemu",
                        driver_type="raw", driver_cache="writeback",
                        source_file="/srv/instances/disk.raw", target_dev="vda",
                        target_bus="virtio", serial="root-disk"),
            config.Disk(source_type="file", device="cdrom", driver_name="qemu",
                        driver_type="raw", source_file="/srv/images/config.iso",
                        target_dev="hdc", target_bus="ide", readonly=True),
            config.Disk(source_type="block", device="disk", driver_name="qemu",
                        driver_type="raw", driver_cache="none", source_dev="/dev/sdb",
                        target_dev="vdb", target_bus="virtio", shareable=True),
            config.Interface(net_type="network", mac_address="fa:16:3e:00:00:01",
                             source_network="default", model="virtio"),
            config.Interface(net_type="ethernet", mac_address="fa:16:3e:00:00:02",
                             target_dev="tap0", model="virtio", mtu=1450),
            config.Interface(net_type="bridge", source_bridge="br0", model="e1000"),
            config.Serial(dev_type="file", source_path="/srv/instances/console.log",
                          target_port=0),
            config.Console(dev_type="file", source_path="/srv/instances/console.log",
                           target_type="serial", target_port=0),
            config.Input(input_type="mouse", bus="ps2"),
            config.Graphics(graphics_type="vnc", port=5901, autoport=False,
                            listen="127.0.0.1"),
            config.Video(model_type="vga"),
            config.MemBalloon(model="none"),
            config.Controller(controller_type="pci", index=0, model="pci-root"),
        ])


def build_disk_iscsi() -> config.Disk:
    """A Block Storage volume on tgt, attached through QEMU's iSCSI client."""
    return config.Disk(
        source_type="network", device="disk", driver_name="qemu", driver_type="raw",
        driver_cache="none", source_protocol="iscsi",
        source_name="iqn.2010-10.org.openstack:volume-8f1e/1",
        source_hosts=[config.DiskSourceHost(name="127.0.0.1", port=3260)],
        source_initiator_iqn="iqn.1993-08.org.debian:01:virtstack",
        auth_username="chap-user", auth_secret_type="iscsi",
        auth_secret_uuid="4c7d1f52-2b0e-4a4b-9d6e-2f1c9a3b5e10",
        target_dev="vdb", target_bus="virtio", serial="8f1e0c2a-volume",
        alias="ua-volume-8f1e")


def build_domain_volume_boot() -> config.Domain:
    """A guest booting from an iSCSI volume by per-device boot order."""
    return config.Domain(
        virt_type="qemu", name="instance-00000003", memory_kib=524288, vcpus=1,
        os=config.OS(os_type="hvm"),
        devices=[
            config.Disk(source_type="network", device="disk", driver_name="qemu",
                        driver_type="raw", source_protocol="iscsi",
                        source_name="iqn.2010-10.org.openstack:volume-77aa/0",
                        # libvirt's schema allows one portal per iSCSI source.
                        source_hosts=[config.DiskSourceHost(name="192.0.2.10", port=3260)],
                        auth_username="chap-user", auth_secret_type="iscsi",
                        auth_secret_usage="volume-77aa",
                        target_dev="vda", target_bus="virtio", boot_order=1),
        ])


def build_disk_volume_file() -> config.Disk:
    """A file volume exported read-only, as the designer makes volume disks."""
    return config.Disk(
        source_type="file", device="disk", driver_name="qemu", driver_type="qcow2",
        driver_cache="none", source_file="/var/lib/virtstack/volumes/volume-3b9c",
        target_dev="vdc", target_bus="virtio", serial="3b9c5e1d-7a2f-4c1e-9d8b-6f0a2e4c1b7d",
        readonly=True)


def build_secret_chap() -> config.Secret:
    """The libvirt secret that hands a volume's CHAP password to QEMU."""
    return config.Secret(
        ephemeral=False, private=True, uuid="4c7d1f52-2b0e-4a4b-9d6e-2f1c9a3b5e10",
        description="CHAP password of volume 8f1e for instance c7a5",
        usage_type="iscsi", usage_target="virtstack:c7a5:8f1e")


def build_capabilities_host() -> config.Capabilities:
    """What the driver reads of ``virConnectGetCapabilities`` (libvirt says more)."""
    return config.Capabilities(
        host_uuid="dfca6de5-90fc-4032-aef9-78c80a1e000d",
        host_cpu=config.CapsHostCPU(arch="x86_64", model="EPYC-Rome", vendor="AMD",
                                    sockets=1, cores=2, threads=1,
                                    features=["x2apic", "hypervisor"]),
        guests=[config.CapsGuest(os_type="hvm", arch="i686", domain_types=["qemu"]),
                config.CapsGuest(os_type="hvm", arch="x86_64", domain_types=["qemu", "kvm"])])


GOLDEN = {
    "domain-kernel-boot.xml": build_domain_kernel_boot,
    "domain-disk-boot.xml": build_domain_disk_boot,
    "domain-volume-boot.xml": build_domain_volume_boot,
    "disk-iscsi.xml": build_disk_iscsi,
    "disk-volume-file.xml": build_disk_volume_file,
    "secret-chap.xml": build_secret_chap,
    "capabilities-host.xml": build_capabilities_host,
}

CLASS_BY_ROOT = {cls.ROOT: cls for cls in config.config_classes()}


def parse_golden(name: str) -> config.ConfigObject:
    element = ET.fromstring(read_golden(name))
    return CLASS_BY_ROOT[element.tag].parse_dom(element)


def test_every_golden_file_is_tested():
    assert sorted(os.listdir(GOLDEN_DIR)) == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_build_formats_to_golden(name):
    assert GOLDEN[name]().to_xml() == read_golden(name)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_parse_golden_formats_back_to_golden(name):
    assert parse_golden(name).to_xml() == read_golden(name)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_parse_golden_equals_built_objects(name):
    assert parse_golden(name) == GOLDEN[name]()


# -- property coverage --------------------------------------------------------

def exercised(obj: config.ConfigObject) -> set[tuple[type, str]]:
    """(class, member name) of every member set in ``obj`` and its children."""
    found = set()
    for member in obj.set_members():
        found.add((type(obj), member.name))
        value = getattr(obj, member.name)
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, config.ConfigObject):
                found |= exercised(child)
    return found


def unexercised(classes: list[type[config.ConfigObject]],
                objects: list[config.ConfigObject]) -> list[str]:
    declared = {(cls, m.name) for cls in classes for m in cls.MEMBERS}
    seen = set().union(*(exercised(o) for o in objects))
    return sorted(f"{cls.__name__}.{name}" for cls, name in declared - seen)


def test_every_declared_property_is_in_a_golden_file():
    missing = unexercised(config.config_classes(), [parse_golden(n) for n in GOLDEN])
    assert missing == [], f"declared but in no golden file: {', '.join(missing)}"


def test_coverage_check_reports_a_property_no_golden_file_sets():
    class Probe(config.ConfigObject):
        ROOT = "probe"
        used = config.XMLProperty("./@used")
        unused = config.XMLProperty("./unused/@value")

    parsed = Probe.from_xml("<probe used='x'/>")
    assert unexercised([Probe], [parsed]) == ["Probe.unused"]


def test_config_classes_lists_every_device_and_nested_element():
    names = {cls.__name__ for cls in config.config_classes()}
    assert names == {"Domain", "OS", "Features", "Clock", "Timer", "Disk", "DiskSourceHost",
                     "Interface", "Serial", "Console", "Graphics", "Input", "Video",
                     "MemBalloon", "Controller", "Secret", "Capabilities", "CapsHostCPU",
                     "CapsGuest"}


# -- against libvirt's schema -------------------------------------------------

def validate_domain_xml(xml: str, tmp_path, schema: str = "domain") -> None:
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate/xmllint not installed (tools/install-libvirt.sh)")
    path = tmp_path / f"{schema}.xml"
    path.write_text(xml)
    proc = subprocess.run(["virt-xml-validate", str(path), schema],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(n for n in GOLDEN if n.startswith("domain-")))
def test_golden_domain_is_valid_libvirt_xml(name, tmp_path):
    validate_domain_xml(read_golden(name), tmp_path)


@pytest.mark.parametrize("name", sorted(n for n in GOLDEN if n.startswith("disk-")))
def test_golden_disk_is_valid_inside_a_domain(name, tmp_path):
    domain = config.Domain(virt_type="qemu", name="probe", memory_kib=65536,
                           os=config.OS(os_type="hvm"), devices=[parse_golden(name)])
    validate_domain_xml(domain.to_xml(), tmp_path)


def test_golden_secret_is_valid_libvirt_xml(tmp_path):
    validate_domain_xml(read_golden("secret-chap.xml"), tmp_path, schema="secret")


def test_secret_xml_has_no_place_for_the_value():
    # The password goes through virSecretSetValue, never through XML.
    assert {m.name for m in config.Secret.MEMBERS} == {
        "ephemeral", "private", "uuid", "description", "usage_type", "usage_target"}


# -- behaviour of the declarations -------------------------------------------

def test_unset_properties_are_left_out():
    assert config.Disk(target_dev="vdb").to_xml() == "<disk>\n  <target dev=\"vdb\" />\n</disk>"


def test_flag_false_is_left_out_and_parses_as_unset():
    features = config.Features(acpi=True, apic=False)
    assert features.to_xml(pretty=False) == "<features><acpi /></features>"
    assert config.Features.from_xml("<features><acpi/></features>").apic is None


def test_yes_no_false_is_written():
    assert config.Timer(name="hpet", present=False).to_xml() == '<timer name="hpet" present="no" />'


def test_multi_property_writes_one_element_per_value_in_order():
    os_conf = config.OS(os_type="hvm", boot_devs=["cdrom", "hd"])
    xml = os_conf.to_xml(pretty=False)
    assert xml == '<os><type>hvm</type><boot dev="cdrom" /><boot dev="hd" /></os>'
    assert config.OS.from_xml(xml).boot_devs == ["cdrom", "hd"]


def test_multi_property_list_can_be_appended_to():
    os_conf = config.OS()
    os_conf.boot_devs.append("network")
    assert config.OS.from_xml(os_conf.to_xml()).boot_devs == ["network"]


@pytest.mark.parametrize("unit,amount,kib", [
    ("KiB", "512", 512), ("MiB", "256", 262144), ("G", "1", 1048576),
    ("bytes", "1048576", 1024), ("KB", "1024", 1000)])
def test_memory_is_read_in_any_libvirt_unit(unit, amount, kib):
    xml = f"<domain><memory unit='{unit}'>{amount}</memory></domain>"
    assert config.Domain.from_xml(xml).memory_kib == kib


def test_memory_without_unit_is_kib():
    assert config.Domain.from_xml("<domain><memory>2048</memory></domain>").memory_kib == 2048


def test_unknown_memory_unit_is_a_parse_error():
    with pytest.raises(config.ConfigParseError, match="unknown memory unit 'parsecs'"):
        config.Domain.from_xml("<domain><memory unit='parsecs'>1</memory></domain>")


def test_bad_integer_is_a_parse_error_naming_the_path():
    with pytest.raises(config.ConfigParseError, match=r"<graphics> ./@port"):
        config.Graphics.from_xml("<graphics type='vnc' port='five'/>")


def test_parse_of_the_wrong_element_is_refused():
    with pytest.raises(config.ConfigParseError, match="Disk parses <disk>, not <interface>"):
        config.Disk.from_xml("<interface type='network'/>")


def test_from_xml_refuses_text_that_is_not_xml():
    with pytest.raises(config.ConfigParseError, match="not XML"):
        config.Domain.from_xml("<domain>")


def test_parse_ignores_what_no_class_declares():
    # libvirt's live XML adds addresses and devices we do not model (aliases
    # of disks are modelled: a detach waits for the alias to be removed).
    xml = """<domain type='qemu' id='3'>
      <name>guest</name>
      <devices>
        <emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk type='file' device='disk'>
          <source file='/d' index='1'/>
          <target dev='vda' bus='virtio'/>
          <alias name='virtio-disk0'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
        </disk>
        <rng model='virtio'/>
      </devices>
    </domain>"""
    domain = config.Domain.from_xml(xml)
    assert domain.devices == [config.Disk(source_type="file", device="disk", source_file="/d",
                                          target_dev="vda", target_bus="virtio",
                                          alias="virtio-disk0")]


def test_capabilities_list_domain_types_per_architecture():
    caps = build_capabilities_host()
    assert caps.domain_types("x86_64") == ["qemu", "kvm"]
    assert caps.domain_types("i686") == ["qemu"]
    assert caps.domain_types("aarch64") == []


def test_devices_of_picks_one_class():
    domain = build_domain_kernel_boot()
    assert [d.target_dev for d in domain.devices_of(config.Disk)] == ["vda"]
    assert len(domain.devices_of(config.Serial)) == 1


def test_wrong_type_is_refused_naming_the_property():
    with pytest.raises(TypeError, match=r"Domain.vcpus takes int, not '2'"):
        config.Domain(vcpus="2")
    with pytest.raises(TypeError, match=r"Graphics.autoport takes bool"):
        config.Graphics(autoport="yes")
    with pytest.raises(TypeError, match=r"Domain.vcpus takes int, not True"):
        config.Domain(vcpus=True)


def test_value_outside_choices_is_refused():
    with pytest.raises(ValueError, match=r"Disk.target_bus must be one of virtio, "):
        config.Disk(target_bus="floppy")
    with pytest.raises(ValueError, match=r"OS.boot_devs must be one of"):
        config.OS(boot_devs=["hd", "usb-stick"])


def test_child_of_the_wrong_class_is_refused():
    with pytest.raises(TypeError, match=r"Domain.os takes OS"):
        config.Domain(os=config.Features())
    with pytest.raises(TypeError, match=r"Domain.devices holds Disk, "):
        config.Domain(devices=[config.OS()])


def test_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match=r"Disk has no property 'target'"):
        config.Disk(target="vda")


def test_paths_must_be_relative():
    with pytest.raises(ValueError, match="must start with './'"):
        config.XMLProperty("source/@file")


def test_equality_compares_every_member():
    assert config.Disk(target_dev="vda") == config.Disk(target_dev="vda")
    assert config.Disk(target_dev="vda") != config.Disk(target_dev="vdb")
    assert config.Disk(target_dev="vda") != config.Interface(target_dev="vda")
