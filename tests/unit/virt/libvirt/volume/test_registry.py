"""Tests of the volume connector registry: one mapping, one factory."""

from __future__ import annotations

from unittest import mock

import pytest

from virtstack import exception
from virtstack.virt.libvirt import volume
from virtstack.virt.libvirt.host import Host
from virtstack.virt.libvirt.volume.file import FileVolumeConnector
from virtstack.virt.libvirt.volume.iscsi import QemuISCSIVolumeConnector
from virtstack.virt.libvirt.volume.iscsi_host import HostISCSIVolumeConnector


@pytest.mark.parametrize("kind,initiator,cls", [
    ("file", "qemu", FileVolumeConnector),
    ("local", "qemu", FileVolumeConnector),
    ("file", "host", FileVolumeConnector),  # no host way for files: QEMU opens them
    ("iscsi", "qemu", QemuISCSIVolumeConnector),
    ("iscsi", "host", HostISCSIVolumeConnector),
])
def test_connector_per_type_and_initiator(kind, initiator, cls):
    assert volume.connector_class(kind, initiator) is cls


@pytest.mark.parametrize("kind", ["rbd", "", None, 3])
def test_unknown_type_names_the_known_ones(kind):
    with pytest.raises(exception.VolumeDriverNotFound) as raised:
        volume.connector_class(kind)
    assert str(raised.value) == (f"No volume connector for driver_volume_type '{kind}' on "
                                 "this host; known: file, iscsi, local")
    assert raised.value.code == 400


def test_entry_points_add_connectors(monkeypatch):
    ep = mock.Mock(value="virtstack.virt.libvirt.volume.file:FileVolumeConnector")
    ep.name = "nfs"
    monkeypatch.setattr(volume.metadata, "entry_points", lambda group: [ep])
    assert volume.connector_class("nfs") is FileVolumeConnector


def test_an_entry_point_that_is_no_connector_is_refused(monkeypatch):
    ep = mock.Mock(value="virtstack.virt.libvirt.designer:VolumeSource")
    ep.name = "odd"
    monkeypatch.setattr(volume.metadata, "entry_points", lambda group: [ep])
    with pytest.raises(exception.ConfigError, match="is not a VolumeConnector"):
        volume.connector_class("odd")


def test_connectors_are_made_once_with_the_hosts_initiator_name():
    host = mock.create_autospec(Host, instance=True)
    connectors = volume.VolumeConnectors(host, "qemu", "iqn.2010-10.org.virtstack:h:1")
    first = connectors.get({"driver_volume_type": "iscsi", "data": {}})
    assert first is connectors.get({"driver_volume_type": "iscsi"})
    assert isinstance(first, QemuISCSIVolumeConnector)
    assert (first.host, first.initiator_iqn) == (host, "iqn.2010-10.org.virtstack:h:1")
    assert connectors.get({"driver_volume_type": "file"}) is \
        connectors.get({"driver_volume_type": "local"})


def test_connection_info_without_a_type_is_refused():
    connectors = volume.VolumeConnectors(mock.sentinel.host, "qemu", "iqn")
    with pytest.raises(exception.VolumeDriverNotFound, match="'None'"):
        connectors.get({"data": {}})


def test_initiator_must_be_resolved():
    with pytest.raises(ValueError, match="one of qemu, host, not 'auto'"):
        volume.VolumeConnectors(mock.sentinel.host, "auto", "iqn")


def test_forget_instance_asks_every_connector_once():
    host = mock.create_autospec(Host, instance=True)
    host.list_secrets.return_value = []
    volume.VolumeConnectors(host, "qemu", "iqn").forget_instance("inst-1")
    host.list_secrets.assert_called_once_with()  # the iSCSI connector looked for secrets


def test_a_types_class_is_looked_up_once():
    """Each lookup reads every installed distribution's entry points."""
    connectors = volume.VolumeConnectors(mock.sentinel.host, "qemu", "iqn")
    with mock.patch.object(volume.metadata, "entry_points", autospec=True,
                           return_value=[]) as entry_points:
        first = connectors.get({"driver_volume_type": "file"})
        assert connectors.get({"driver_volume_type": "file"}) is first
        assert entry_points.call_count == 1
        with pytest.raises(exception.VolumeDriverNotFound):
            connectors.get({"driver_volume_type": "rbd"})
        with pytest.raises(exception.VolumeDriverNotFound):
            connectors.get({"driver_volume_type": "rbd"})  # unknown: asked again
        assert entry_points.call_count == 3
