"""Tests of the attach-volume flow: a failure at each step leaves nothing
behind. The guest (a libvirt domain) and the connector's host side are
stood in for with autospec'd objects that keep what was attached; the same
failures on a real guest run in tests/functional/virt/libvirt/test_volumes.py."""

from __future__ import annotations

import logging
from unittest import mock

import pytest

from virtstack import exception
from virtstack.flows.runner import FlowRunner
from virtstack.objects import Flavor, Instance
from virtstack.virt.libvirt import config, designer
from virtstack.virt.libvirt.guest import Guest
from virtstack.virt.libvirt.volume import flows
from virtstack.virt.libvirt.volume.iscsi import QemuISCSIVolumeConnector

INSTANCE = Instance(uuid="0d9c8b7a-6f5e-4d3c-2b1a-098f7e6d5c4b", name="instance-0000000a",
                    display_name="t", project_id="p", user_id="u",
                    flavor=Flavor(flavorid="1", name="t", vcpus=1, memory_mb=64, root_gb=1))
PASSWORD = "s3cret-chap-password"
CONNECTION_INFO = {"driver_volume_type": "iscsi", "data": {
    "volume_id": "vol-1", "target_portal": "127.0.0.1:3260", "target_iqn": "iqn.x:vol-1",
    "target_lun": 1, "auth_method": "CHAP", "auth_username": "u", "auth_password": PASSWORD}}
SOURCE = designer.VolumeSource(volume_id="vol-1", source_type="network", protocol="iscsi",
                               name="iqn.x:vol-1/1", portal=("127.0.0.1", 3260),
                               auth_username="u", auth_secret_uuid="4c7d1f52-2b0e-4a4b-9d6e-"
                                                                   "2f1c9a3b5e10")


class Domain:
    """What the stand-in guest has attached: live and persistent disks."""

    def __init__(self, *disks: config.Disk) -> None:
        self.live = list(disks)
        self.persistent = list(disks)


@pytest.fixture
def domain():
    return Domain(config.Disk(source_type="file", source_file="/root", target_dev="vda"))


@pytest.fixture
def guest(domain):
    guest = mock.create_autospec(Guest, instance=True)
    guest.uuid = INSTANCE.uuid
    guest.get_disks.side_effect = lambda inactive=False: list(
        domain.persistent if inactive else domain.live)
    guest.find_disk.side_effect = lambda dev, inactive=False: next(
        (d for d in (domain.persistent if inactive else domain.live) if d.target_dev == dev), None)

    def attach(disk, persistent=True, live=True):
        domain.live.append(disk)
        domain.persistent.append(disk)
    guest.attach_device.side_effect = attach

    def detach(dev, persistent=True, live=True, timeout=0, attempts=0):
        before = len(domain.live) + len(domain.persistent)
        domain.live = [d for d in domain.live if d.target_dev != dev]
        domain.persistent = [d for d in domain.persistent if d.target_dev != dev]
        if before == len(domain.live) + len(domain.persistent):
            raise exception.DeviceNotFound(device=dev, instance_id=INSTANCE.uuid)
    guest.detach_disk.side_effect = detach
    return guest


@pytest.fixture
def connector():
    connector = mock.create_autospec(QemuISCSIVolumeConnector, instance=True)
    connector.connect.return_value = SOURCE
    return connector


def attach(guest, connector, dev="vdb"):
    FlowRunner("test", persist=False).run(
        "attach_volume", INSTANCE.uuid, flows.get_attach_flow, transient={
            "guest": guest, "instance": INSTANCE, "connector": connector,
            "connection_info": CONNECTION_INFO, "target": designer.VolumeTarget(dev),
            "detach_timeout": 0.1, "detach_attempts": 1})


def test_flow_order():
    assert [t.name for t in flows.get_attach_flow()] == [
        "check_target_free", "connect_volume", "design_disk", "attach_disk"]


def test_attach_connects_then_attaches_the_designed_disk(guest, connector, domain):
    attach(guest, connector)
    connector.connect.assert_called_once_with(CONNECTION_INFO, INSTANCE)
    disk = designer.build_volume_disk(SOURCE, designer.VolumeTarget("vdb"))
    guest.attach_device.assert_called_once_with(disk, persistent=True, live=True)
    assert domain.live[-1] is domain.persistent[-1]
    connector.disconnect.assert_not_called()


@pytest.mark.parametrize("inactive", [False, True])
def test_taken_target_is_device_in_use_and_nothing_is_done(guest, connector, domain, inactive):
    taken = config.Disk(source_type="file", source_file="/other", target_dev="vdb")
    (domain.persistent if inactive else domain.live).append(taken)
    with pytest.raises(exception.DeviceInUse, match="/dev/vdb"):
        attach(guest, connector)
    connector.connect.assert_not_called()
    guest.attach_device.assert_not_called()


def test_volume_attached_elsewhere_is_a_conflict(guest, connector, domain):
    domain.live.append(config.Disk(source_type="network", target_dev="vdc", serial="vol-1"))
    with pytest.raises(exception.Conflict, match="vol-1 is already attached .* at /dev/vdc"):
        attach(guest, connector)
    connector.connect.assert_not_called()


def test_connect_failure_disconnects_what_it_half_did(guest, connector, domain):
    connector.connect.side_effect = RuntimeError("secret define refused")
    with pytest.raises(RuntimeError, match="secret define refused"):
        attach(guest, connector)
    connector.disconnect.assert_called_once_with(CONNECTION_INFO, INSTANCE)
    guest.attach_device.assert_not_called()
    assert [d.target_dev for d in domain.live + domain.persistent] == ["vda", "vda"]


def test_attach_failure_removes_the_disk_and_disconnects(guest, connector, domain):
    guest.attach_device.side_effect = RuntimeError("attachDeviceFlags failed")
    with pytest.raises(RuntimeError, match="attachDeviceFlags failed"):
        attach(guest, connector)
    guest.detach_disk.assert_called_once_with("vdb", timeout=0.1, attempts=1)
    connector.disconnect.assert_called_once_with(CONNECTION_INFO, INSTANCE)
    assert [d.target_dev for d in domain.live + domain.persistent] == ["vda", "vda"]


def test_attach_failure_after_libvirt_kept_the_disk_removes_it(guest, connector, domain):
    # libvirt attached live, then failed saving the persistent definition.
    def half(disk, persistent=True, live=True):
        domain.live.append(disk)
        raise RuntimeError("cannot save the definition")
    guest.attach_device.side_effect = half
    with pytest.raises(RuntimeError, match="cannot save"):
        attach(guest, connector)
    assert [d.target_dev for d in domain.live + domain.persistent] == ["vda", "vda"]
    connector.disconnect.assert_called_once_with(CONNECTION_INFO, INSTANCE)


def test_chap_password_is_not_logged_by_the_flow(guest, connector, caplog):
    caplog.set_level(logging.DEBUG)
    guest.attach_device.side_effect = RuntimeError("attachDeviceFlags failed")
    with pytest.raises(RuntimeError):
        attach(guest, connector)
    assert caplog.records and PASSWORD not in caplog.text
