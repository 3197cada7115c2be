"""Tests of the volume connectors' host side: what they read from
connection_info, what they leave on the host, and that a CHAP password goes
nowhere but into its libvirt secret. libvirt (secrets) and os-brick (a
kernel initiator, absent here) are stood in for with autospec'd objects;
the real thing runs in tests/functional/virt/libvirt/test_volumes.py."""

from __future__ import annotations

import logging
import os
from unittest import mock

import pytest

from virtstack import exception
from virtstack.objects import Flavor, Instance
from virtstack.virt.libvirt import config, designer
from virtstack.virt.libvirt.host import Host
from virtstack.virt.libvirt.volume import file as file_volume
from virtstack.virt.libvirt.volume import iscsi, iscsi_host

INSTANCE = Instance(uuid="0d9c8b7a-6f5e-4d3c-2b1a-098f7e6d5c4b", name="instance-0000000a",
                    display_name="t", project_id="p", user_id="u",
                    flavor=Flavor(flavorid="1", name="t", vcpus=1, memory_mb=64, root_gb=1))
IQN = "iqn.2010-10.org.virtstack:host:0123456789ab"
PASSWORD = "s3cret-chap-password"


def iscsi_info(**changes) -> dict:
    data = {"volume_id": "vol-1", "target_portal": "127.0.0.1:3260",
            "target_iqn": "iqn.2010-10.org.virtstack:volume-vol-1", "target_lun": 1,
            "auth_method": "CHAP", "auth_username": "chap-user", "auth_password": PASSWORD,
            "access_mode": "rw", "target_discovered": False, "encrypted": False}
    data.update(changes)
    return {"driver_volume_type": "iscsi", "data": data}


@pytest.fixture
def host():
    return mock.create_autospec(Host, instance=True)


# -- files ------------------------------------------------------------------------

def test_file_volume_source(tmp_path, host):
    path = tmp_path / "volume-1"
    path.write_bytes(b"x")
    info = {"driver_volume_type": "file", "data": {"volume_id": "vol-1", "device_path": str(path),
                                                   "format": "qcow2", "access_mode": "ro"}}
    source = file_volume.FileVolumeConnector(host, IQN).connect(info, INSTANCE)
    assert source == designer.VolumeSource(
        volume_id="vol-1", source_type="file", path=str(path), format="qcow2",
        direct_io=designer.supports_direct_io(str(tmp_path)), read_only=True)
    file_volume.FileVolumeConnector(host, IQN).disconnect(info, INSTANCE)
    assert os.path.exists(path)  # the volume service's file stays
    assert host.mock_calls == []


@pytest.mark.parametrize("data,message", [
    ({"device_path": "/nonexistent/volume"}, "is not a file on this host"),
    ({"device_path": "/etc/hostname", "format": "vmdk"}, "format 'vmdk' is not one of raw, qcow2"),
    ({}, "lacks device_path"),
    ({"volume_id": ""}, "lacks volume_id, device_path"),
])
def test_file_volume_refuses_what_it_cannot_attach(host, data, message):
    info = {"driver_volume_type": "file", "data": {"volume_id": "vol-1", **data}}
    with pytest.raises(exception.Invalid, match=message):
        file_volume.FileVolumeConnector(host, IQN).connect(info, INSTANCE)


# -- iSCSI through QEMU ---------------------------------------------------------------

@pytest.mark.parametrize("portal,expected", [
    ("127.0.0.1:3260", ("127.0.0.1", 3260)), ("192.0.2.1", ("192.0.2.1", 3260)),
    ("[::1]:3261", ("::1", 3261)), ("[fe80::1]", ("fe80::1", 3260)),
    ("target.example:860", ("target.example", 860))])
def test_parse_portal(portal, expected):
    assert iscsi.parse_portal(portal) == expected


@pytest.mark.parametrize("portal", ["127.0.0.1:port", ":3260", "[::1", "host:0", "[::1]x"])
def test_parse_portal_refuses_nonsense(portal):
    with pytest.raises(exception.Invalid, match="iSCSI portal"):
        iscsi.parse_portal(portal)


def test_qemu_iscsi_with_chap_defines_the_secret_and_names_it(host):
    source = iscsi.QemuISCSIVolumeConnector(host, IQN).connect(iscsi_info(), INSTANCE)
    secret = designer.build_chap_secret(INSTANCE.uuid, "vol-1")
    host.define_secret.assert_called_once_with(secret, PASSWORD.encode())
    assert source == designer.VolumeSource(
        volume_id="vol-1", source_type="network", protocol="iscsi",
        name="iqn.2010-10.org.virtstack:volume-vol-1/1", portal=("127.0.0.1", 3260),
        initiator_iqn=IQN, auth_username="chap-user", auth_secret_uuid=secret.uuid)
    assert PASSWORD not in repr(source)


def test_qemu_iscsi_without_auth_defines_no_secret(host):
    source = iscsi.QemuISCSIVolumeConnector(host, IQN).connect(
        iscsi_info(auth_method=None, target_lun=0), INSTANCE)
    host.define_secret.assert_not_called()
    assert (source.auth_username, source.auth_secret_uuid, source.name) == (
        None, None, "iqn.2010-10.org.virtstack:volume-vol-1/0")


@pytest.mark.parametrize("changes,message", [
    ({"auth_method": "kerberos"}, "auth_method 'kerberos' is not supported"),
    ({"auth_password": ""}, "CHAP without auth_username and auth_password"),
    ({"target_lun": "one"}, "target_lun 'one' is not a LUN number"),
    ({"target_iqn": None}, "lacks target_iqn"),
])
def test_qemu_iscsi_refuses_bad_connection_info_before_defining_anything(host, changes, message):
    with pytest.raises(exception.Invalid, match=message):
        iscsi.QemuISCSIVolumeConnector(host, IQN).connect(iscsi_info(**changes), INSTANCE)
    host.define_secret.assert_not_called()


def test_qemu_iscsi_disconnect_removes_the_secret(host):
    iscsi.QemuISCSIVolumeConnector(host, IQN).disconnect(iscsi_info(), INSTANCE)
    host.delete_secret.assert_called_once_with(
        designer.build_chap_secret(INSTANCE.uuid, "vol-1").uuid)


def test_forget_instance_removes_only_that_instances_secrets(host):
    mine = designer.build_chap_secret(INSTANCE.uuid, "vol-1")
    other = designer.build_chap_secret("another-instance", "vol-1")
    foreign = config.Secret(uuid="f0000000-0000-4000-8000-000000000000", usage_type="iscsi",
                            usage_target="someone-elses")
    host.list_secrets.return_value = [mine, other, foreign]
    iscsi.QemuISCSIVolumeConnector(host, IQN).forget_instance(INSTANCE.uuid)
    host.delete_secret.assert_called_once_with(mine.uuid)


def test_chap_password_is_never_logged(host, caplog):
    caplog.set_level(logging.DEBUG)
    connector = iscsi.QemuISCSIVolumeConnector(host, IQN)
    connector.connect(iscsi_info(), INSTANCE)
    connector.disconnect(iscsi_info(), INSTANCE)
    assert caplog.records and PASSWORD not in caplog.text


# -- iSCSI through the host's initiator (os-brick) --------------------------------------

@pytest.fixture
def brick(monkeypatch):
    """os-brick's iSCSI connector: this machine has no kernel initiator."""
    os_brick_iscsi = pytest.importorskip("os_brick.initiator.connectors.iscsi")
    connector = mock.create_autospec(os_brick_iscsi.ISCSIConnector, instance=True)
    factory = mock.Mock(return_value=connector)
    from os_brick.initiator import connector as brick_connector
    monkeypatch.setattr(brick_connector.InitiatorConnector, "factory", factory)
    connector.factory = factory
    return connector


def test_host_iscsi_logs_in_and_gives_the_block_device(host, brick):
    info = iscsi_info()
    brick.connect_volume.return_value = {"type": "block", "path": "/dev/disk/by-path/ip-x-lun-1"}
    source = iscsi_host.HostISCSIVolumeConnector(host, IQN).connect(info, INSTANCE)
    assert source == designer.VolumeSource(volume_id="vol-1", source_type="block",
                                           path="/dev/disk/by-path/ip-x-lun-1")
    assert info["data"]["device_path"] == "/dev/disk/by-path/ip-x-lun-1"
    [(protocol, root_helper), kwargs] = brick.factory.call_args
    assert (protocol, root_helper, kwargs["use_multipath"]) == ("ISCSI", None, False)


def test_host_iscsi_disconnect_logs_out_of_the_recorded_device(host, brick):
    info = iscsi_info(device_path="/dev/disk/by-path/ip-x-lun-1")
    iscsi_host.HostISCSIVolumeConnector(host, IQN).disconnect(info, INSTANCE)
    brick.disconnect_volume.assert_called_once_with(
        info["data"], {"path": "/dev/disk/by-path/ip-x-lun-1"}, force=True, ignore_errors=True)


def test_host_iscsi_extend_rescans_and_reports_the_size(host, brick):
    brick.extend_volume.return_value = 3 * 1024 ** 3
    size = iscsi_host.HostISCSIVolumeConnector(host, IQN).extend(iscsi_info(), INSTANCE, 2)
    assert size == 3 * 1024 ** 3
