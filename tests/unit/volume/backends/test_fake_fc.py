"""The ``fake_fc`` backend: volumes as LUNs of an emulated FC SAN (files
for the data, a directory of records for LUN masking)."""

from __future__ import annotations

import os

import pytest

from virtstack import exception
from virtstack.volume.backends import backend_class, fake_fc
from virtstack.volume.backends.base import SnapshotRef, VolumeExport, VolumeRef

VIOS_PORTS = ["10000090FA1B6302", "10000090FA1B6303"]


@pytest.fixture
def backend(conf):
    made = fake_fc.FakeFCBackend("volhost")
    made.check_setup()
    return made


def _create(backend, volume_id, size=1) -> VolumeRef:
    update = backend.create_volume(VolumeRef(volume_id, size))
    return VolumeRef(volume_id, size, update["provider_location"])


def test_it_is_registered_and_declares_fibre_channel(conf):
    assert backend_class("fake_fc") is fake_fc.FakeFCBackend
    assert fake_fc.FakeFCBackend.capabilities["driver_volume_type"] == "fibre_channel"


def test_the_array_ports_are_stable_per_host_and_recognisable():
    ports = fake_fc.array_ports("volhost")
    assert ports == fake_fc.array_ports("volhost") != fake_fc.array_ports("other")
    assert len(ports) == 2 and all(len(p) == 16 and p.startswith(fake_fc.TARGET_PREFIX)
                                   for p in ports)
    fabric = fake_fc.Fabric("/nonexistent")
    assert fabric.owns_target(ports[0].lower()) and not fabric.owns_target("500507680B215660")
    assert fabric.exports() == []  # a fabric never set up has no LUNs


def test_each_volume_gets_its_own_lun_masked_from_everyone(backend, tmp_path):
    first, second = _create(backend, "v1", 1), _create(backend, "v2", 2)
    assert backend.parse_location(first.provider_location) == (backend.target_wwns, 1)
    assert backend.parse_location(second.provider_location) == (backend.target_wwns, 2)
    export = backend.fabric.export_of("v2")
    assert (export.lun, export.size_bytes, export.initiators) == (2, 2 * 1024 ** 3, frozenset())
    assert os.path.getsize(backend.local_path(second)) == 2 * 1024 ** 3
    assert backend.fabric.directory == str(tmp_path / "fake-fc-fabric")  # state_path


def test_a_retried_create_keeps_its_lun(backend):
    volume = _create(backend, "v1")
    _create(backend, "v2")
    assert backend.create_volume(VolumeRef("v1", 1)) == {
        "provider_location": volume.provider_location}


def test_initialize_connection_masks_the_lun_to_the_connector(backend):
    volume = _create(backend, "v1")
    connector = {"host": "cmp", "wwpns": ["10:00:00:90:fa:1b:63:02", VIOS_PORTS[1]]}
    info = backend.initialize_connection(volume, connector)
    targets = list(backend.target_wwns)
    assert info == {"driver_volume_type": "fibre_channel",
                    "data": {"volume_id": "v1", "target_wwn": targets, "target_lun": 1,
                             "initiator_target_map": {w: targets for w in VIOS_PORTS},
                             "target_discovered": False, "access_mode": "rw"}}
    assert backend.initialize_connection(volume, connector) == info  # idempotent
    assert backend.fabric.find(targets[1], 1).initiators == frozenset(VIOS_PORTS)
    assert backend.fabric.find(targets[1], 2) is None


def test_a_connector_without_wwpns_is_refused(backend):
    volume = _create(backend, "v1")
    with pytest.raises(exception.VolumeBackendError, match="no FC WWPNs"):
        backend.initialize_connection(volume, {"host": "cmp", "initiator": "iqn.x"})
    with pytest.raises(exception.VolumeBackendError, match="not a WWPN"):
        backend.initialize_connection(volume, {"host": "cmp", "wwpns": ["xyz"]})
    assert backend.fabric.export_of("v1").initiators == frozenset()


def test_terminate_connection_shuts_out_one_host_or_all(backend):
    volume = _create(backend, "v1")
    backend.initialize_connection(volume, {"wwpns": [VIOS_PORTS[0]]})
    backend.initialize_connection(volume, {"wwpns": [VIOS_PORTS[1]]})
    backend.terminate_connection(volume, {"wwpns": [VIOS_PORTS[0]]})
    assert backend.fabric.export_of("v1").initiators == {VIOS_PORTS[1]}
    backend.terminate_connection(volume, None)
    assert backend.fabric.export_of("v1").initiators == frozenset()
    backend.terminate_connection(volume, None)  # idempotent
    backend.delete_volume(volume)
    backend.terminate_connection(volume, {"wwpns": VIOS_PORTS})  # and for a gone volume


def test_extend_grows_the_file_and_the_lun(backend):
    volume = _create(backend, "v1")
    backend.extend_volume(volume, 3)
    assert os.path.getsize(backend.local_path(volume)) == 3 * 1024 ** 3
    assert backend.fabric.export_of("v1").size_bytes == 3 * 1024 ** 3


def test_delete_frees_the_lun_for_the_next_volume(backend):
    first = _create(backend, "v1")
    _create(backend, "v2")
    backend.delete_volume(first)
    backend.delete_volume(first)  # idempotent
    assert not os.path.exists(backend.local_path(first))
    assert backend.fabric.export_of("v1") is None
    assert backend.parse_location(_create(backend, "v3").provider_location)[1] == 1


def test_clones_and_snapshots_copy_the_data_onto_new_luns(backend):
    source = _create(backend, "v1")
    with open(backend.local_path(source), "r+b") as data:
        data.write(b"fibre channel")
    backend.create_snapshot(SnapshotRef("s1", "v1", 1), source)
    clone = VolumeRef("v2", 2, backend.create_cloned_volume(VolumeRef("v2", 2), source)[
        "provider_location"])
    from_snap = VolumeRef("v3", 1, backend.create_volume_from_snapshot(
        VolumeRef("v3", 1), SnapshotRef("s1", "v1", 1))["provider_location"])
    for volume in (clone, from_snap):
        with open(backend.local_path(volume), "rb") as data:
            assert data.read(13) == b"fibre channel"
    assert [backend.parse_location(v.provider_location)[1] for v in (clone, from_snap)] == [2, 3]
    assert backend.fabric.export_of("v2").size_bytes == 2 * 1024 ** 3


def test_ensure_exports_puts_back_lost_records_with_exactly_the_live_hosts(backend):
    volume = _create(backend, "v1")
    other = _create(backend, "v2")
    backend.initialize_connection(other, {"wwpns": VIOS_PORTS})
    backend.fabric.remove("v1")  # e.g. a wiped state directory
    failed = backend.ensure_exports([
        VolumeExport(volume, ({"host": "cmp", "wwpns": [VIOS_PORTS[0]]},)),
        VolumeExport(other, ()),
        VolumeExport(VolumeRef("v9", 1, "bogus"), ())])
    assert list(failed) == ["v9"]
    assert backend.fabric.export_of("v1").initiators == {VIOS_PORTS[0]}
    assert backend.fabric.export_of("v1").lun == 1
    assert backend.fabric.export_of("v2").initiators == frozenset()


def test_a_volume_of_another_backend_has_no_fc_address(backend):
    backend.store.create(backend.store.volume_path("v1"), 1, "raw")
    with pytest.raises(exception.VolumeBackendError, match="not created by the fake_fc"):
        backend.initialize_connection(VolumeRef("v1", 1, "raw"), {"wwpns": VIOS_PORTS})
