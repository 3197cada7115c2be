"""Tests of ``LibvirtDriver`` that need no libvirtd: registration, what it
declares, input checks made before any libvirt call, the volume connector.
Its behaviour runs against real libvirtd in the driver contract suite
(tests/unit/virt/test_driver_contract.py) and tests/functional/virt/libvirt/."""

from __future__ import annotations

import types

import pytest

pytest.importorskip("libvirt")

from virtstack import exception  # noqa: E402
from virtstack.objects import Flavor, Instance  # noqa: E402
from virtstack.virt.driver import OPERATIONS, capability_key, driver_class  # noqa: E402
from virtstack.virt.libvirt import driver as libvirt_driver  # noqa: E402

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
        "suspend", "snapshot", "volume_connector", "console_output", "vnc_console",
        "lifecycle_events", "host_resources"}


@pytest.mark.parametrize("call", [
    lambda d: d.attach_volume(None, {}, INSTANCE, "/dev/vdb"),
    lambda d: d.detach_volume(None, {}, INSTANCE, "/dev/vdb"),
    lambda d: d.extend_volume(None, {}, INSTANCE, 1),
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


def test_volume_connector_uses_the_hosts_initiator_name(driver, tmp_path, monkeypatch):
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("## generated\nInitiatorName=iqn.1993-08.org.debian:01:abc\n")
    monkeypatch.setattr(libvirt_driver, "ISCSI_INITIATOR_FILE", str(name_file))
    connector = driver.get_volume_connector(INSTANCE)
    assert connector["initiator"] == "iqn.1993-08.org.debian:01:abc"
    assert (connector["host"], connector["multipath"]) == ("unit-host", False)
    assert {"ip", "platform", "os_type"} <= set(connector)


def test_volume_connector_without_open_iscsi_names_its_own_initiator(driver, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(libvirt_driver, "ISCSI_INITIATOR_FILE", str(tmp_path / "absent"))
    assert driver.get_volume_connector(INSTANCE)["initiator"] == (
        "iqn.2010-10.org.virtstack:unit-host")
