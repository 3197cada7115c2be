"""Tests of ``LibvirtDriver`` that need no libvirtd: registration, what it
declares, input checks made before any libvirt call, the volume connector.
Its behaviour runs against real libvirtd in the driver contract suite
(tests/unit/virt/test_driver_contract.py) and tests/functional/virt/libvirt/."""

from __future__ import annotations

import types
from unittest import mock

import pytest

pytest.importorskip("libvirt")

from virtstack import exception  # noqa: E402
from virtstack.objects import Flavor, Instance  # noqa: E402
from virtstack.virt.driver import OPERATIONS, capability_key, driver_class  # noqa: E402
from virtstack.virt.libvirt import config  # noqa: E402
from virtstack.virt.libvirt import driver as libvirt_driver  # noqa: E402
from virtstack.virt.libvirt.guest import Guest  # noqa: E402
from virtstack.virt.libvirt.volume import initiator  # noqa: E402

INSTANCE = Instance(uuid="0d9c8b7a-6f5e-4d3c-2b1a-098f7e6d5c4b", name="instance-0000000a",
                    display_name="t", project_id="p", user_id="u",
                    flavor=Flavor(flavorid="1", name="t", vcpus=1, memory_mb=64, root_gb=1))


@pytest.fixture
def driver(conf):
    conf.config(host="unit-host")
    return libvirt_driver.LibvirtDriver()  # connects to nothing until used


def test_registered_as_libvirt():
    assert driver_class("libvirt") is libvirt_driver.LibvirtDriver


def test_declares_what_it_implements_and_nothing_else():
    caps = libvirt_driver.LibvirtDriver.capabilities
    assert isinstance(caps, types.MappingProxyType)
    assert set(caps) == {capability_key(op) for op in OPERATIONS}
    declared = {op for op in OPERATIONS if caps[capability_key(op)]}
    assert declared == {
        "spawn", "destroy", "reboot_soft", "reboot_hard", "power_off", "power_on", "pause",
        "suspend", "snapshot", "attach_volume", "extend_volume", "volume_connector",
        "console_output", "vnc_console", "lifecycle_events", "host_resources"}


@pytest.mark.parametrize("call", [
    lambda d: d.plug_vifs(INSTANCE, []),
    lambda d: d.rescue(None, INSTANCE, None, None),
    lambda d: d.live_migration(None, INSTANCE, "dest", None, None),
])
def test_undeclared_operations_raise_not_supported(driver, call):
    with pytest.raises(exception.NotSupported):
        call(driver)


def test_nodes_are_the_host(driver):
    assert driver.get_available_nodes() == ["unit-host"]
    with pytest.raises(exception.HypervisorNotFound):
        driver.get_available_resource("another-host")


def test_reboot_type_is_checked_first(driver):
    with pytest.raises(exception.Invalid, match="SOFT or HARD"):
        driver.reboot(None, INSTANCE, None, "GENTLE")


@pytest.fixture
def no_open_iscsi(monkeypatch, tmp_path):
    monkeypatch.setattr(initiator, "OPEN_ISCSI_NAME_FILE", str(tmp_path / "absent"))


def test_volume_connector_uses_the_hosts_initiator_name(driver, tmp_path, monkeypatch):
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("## generated\nInitiatorName=iqn.1993-08.org.debian:01:abc\n")
    monkeypatch.setattr(initiator, "OPEN_ISCSI_NAME_FILE", str(name_file))
    connector = driver.get_volume_connector(INSTANCE)
    assert connector["initiator"] == "iqn.1993-08.org.debian:01:abc"
    assert (connector["host"], connector["multipath"]) == ("unit-host", False)
    assert {"ip", "platform", "os_type"} <= set(connector)


def test_volume_connector_without_open_iscsi_keeps_a_name_of_its_own(conf, no_open_iscsi):
    conf.config(host="unit-host")
    first = libvirt_driver.LibvirtDriver().get_volume_connector(INSTANCE)["initiator"]
    assert first.startswith("iqn.2010-10.org.virtstack:unit-host:")
    # Another driver (a restarted service) on the same state_path: the same name.
    assert libvirt_driver.LibvirtDriver().get_volume_connector(INSTANCE)["initiator"] == first


def test_configured_initiator_name_wins(conf, no_open_iscsi):
    conf.config(group="libvirt", iscsi_initiator_iqn="iqn.2000-01.com.example:cmp")
    assert libvirt_driver.LibvirtDriver().get_volume_connector(INSTANCE)["initiator"] == \
        "iqn.2000-01.com.example:cmp"


@pytest.mark.parametrize("mountpoint,bus,message", [
    ("/dev/sdb", None, "not a virtio disk name"), ("/dev/vdb", "ide", "disk_bus 'ide'")])
def test_attach_refuses_targets_it_cannot_hot_plug(driver, monkeypatch, mountpoint, bus, message):
    guest = mock.create_autospec(Guest, instance=True)
    guest.has_managed_save.return_value = False
    monkeypatch.setattr(driver.host, "get_guest", lambda instance: guest)
    with pytest.raises(exception.Invalid, match=message):
        driver.attach_volume(None, {"driver_volume_type": "file", "data": {}}, INSTANCE,
                             mountpoint, bus)
    guest.attach_device.assert_not_called()


def test_attach_to_a_suspended_guest_is_refused(driver, monkeypatch):
    guest = mock.create_autospec(Guest, instance=True)
    guest.uuid = INSTANCE.uuid
    guest.has_managed_save.return_value = True
    monkeypatch.setattr(driver.host, "get_guest", lambda instance: guest)
    with pytest.raises(exception.InstanceInvalidState, match="suspended"):
        driver.attach_volume(None, {"driver_volume_type": "file", "data": {}}, INSTANCE,
                             "/dev/vdb")
    guest.attach_device.assert_not_called()


def test_detach_of_another_volume_at_the_mountpoint_is_device_not_found(driver, monkeypatch,
                                                                        no_open_iscsi):
    guest = mock.create_autospec(Guest, instance=True)
    guest.has_managed_save.return_value = False
    guest.find_disk.return_value = config.Disk(target_dev="vdb", serial="other-volume")
    monkeypatch.setattr(driver.host, "get_guest", lambda instance: guest)
    with pytest.raises(exception.DeviceNotFound, match="/dev/vdb \\(volume vol-1\\)"):
        driver.detach_volume(None, {"driver_volume_type": "file", "data": {"volume_id": "vol-1"}},
                             INSTANCE, "/dev/vdb")
    guest.detach_disk.assert_not_called()


def test_extend_refuses_to_shrink_the_guests_disk(driver, monkeypatch, no_open_iscsi):
    guest = mock.create_autospec(Guest, instance=True)
    guest.is_active.return_value = True
    guest.get_disks.return_value = [config.Disk(target_dev="vdb", serial="vol-1")]
    guest.get_disk_capacity.return_value = 2 * 1024 ** 3
    monkeypatch.setattr(driver.host, "get_guest", lambda instance: guest)
    with pytest.raises(exception.Invalid, match="cannot shrink"):
        driver.extend_volume(None, {"driver_volume_type": "file", "data": {"volume_id": "vol-1"}},
                             INSTANCE, 1024 ** 3)
    guest.block_resize.assert_not_called()
