"""The file and iscsi backends' pure parts: options, names, paths, registry."""

from __future__ import annotations

import os

import pytest

from virtstack import exception
from virtstack.volume.backends import backend_class, filestore, load_backend
from virtstack.volume.backends.base import VolumeExport, VolumeRef
from virtstack.volume.backends.file import FileBackend
from virtstack.volume.backends.iscsi import TgtISCSIBackend, parse_provider_auth


def test_registry_builds_both_backends(conf):
    assert backend_class("file") is FileBackend
    assert backend_class("iscsi") is TgtISCSIBackend
    assert isinstance(load_backend("h"), FileBackend)  # the default


def test_volumes_dir_defaults_to_state_path(conf, tmp_path):
    assert FileBackend("h").store.directory == str(tmp_path / "volumes")
    conf.config(volumes_dir=str(tmp_path / "elsewhere"), group="volume")
    assert TgtISCSIBackend("h").store.directory == str(tmp_path / "elsewhere")


def test_file_format_option_sets_online_extend_per_instance(conf):
    conf.config(file_format="qcow2", group="volume")
    qcow2 = FileBackend("h")
    conf.config(file_format="raw", group="volume")
    raw = FileBackend("h")

    assert qcow2.capabilities["online_extend"] is False
    assert raw.capabilities["online_extend"] is True
    assert FileBackend.capabilities["online_extend"] is True  # the class's is untouched
    assert qcow2.capabilities["driver_volume_type"] == "file"


def test_file_format_option_refuses_other_formats(conf):
    with pytest.raises(ValueError):
        conf.config(file_format="vmdk", group="volume")


def test_iqn_comes_from_provider_location_then_from_the_prefix(conf):
    backend = TgtISCSIBackend("h")
    new = VolumeRef("v1", 1)
    assert backend.iqn(new) == "iqn.2010-10.org.virtstack:volume-v1"

    conf.config(iscsi_target_prefix="iqn.2024-01.example:", group="volume")
    stored = VolumeRef("v1", 1, "127.0.0.1:3260,1 iqn.2010-10.org.virtstack:volume-v1 1")
    assert backend.iqn(stored) == "iqn.2010-10.org.virtstack:volume-v1"  # keeps its name
    assert backend.iqn(new) == "iqn.2024-01.example:volume-v1"


@pytest.mark.parametrize("address,portal", [("127.0.0.1", "127.0.0.1:3261"),
                                            ("::1", "[::1]:3261")])
def test_portal(conf, address, portal):
    conf.config(iscsi_ip_address=address, iscsi_port=3261, group="volume")
    assert TgtISCSIBackend("h").portal == portal


@pytest.mark.parametrize("auth,expected", [
    ("CHAP vs01 s3cret", ("vs01", "s3cret")),
    (None, None), ("", None), ("CHAP vs01", None), ("NONE vs01 s3cret", None),
])
def test_parse_provider_auth(auth, expected):
    assert parse_provider_auth(auth) == expected


def test_volume_ref_repr_hides_provider_auth():
    volume = VolumeRef("v1", 1, "loc", "CHAP vs01 s3cret")
    assert "s3cret" not in repr(volume)
    assert "s3cret" not in repr(VolumeExport(volume))
    assert volume.provider_auth == "CHAP vs01 s3cret"


def test_iscsi_needs_credentials_to_connect(conf):
    with pytest.raises(exception.VolumeBackendError, match="no CHAP credentials"):
        TgtISCSIBackend("h")._credentials(VolumeRef("v1", 1))


def test_file_backend_ensure_exports_has_nothing_to_do(conf):
    assert FileBackend("h").ensure_exports([VolumeExport(VolumeRef("v1", 1))]) == {}


@pytest.mark.parametrize("ident", ["", "../etc", "a/b", ".hidden", "a\0b"])
def test_store_refuses_ids_that_are_not_names(tmp_path, ident):
    store = filestore.VolumeFileStore(str(tmp_path))
    with pytest.raises(exception.VolumeBackendError, match="not a volume or snapshot id"):
        store.volume_path(ident)


def test_store_paths(tmp_path):
    store = filestore.VolumeFileStore(str(tmp_path))
    assert store.volume_path("v1") == os.path.join(str(tmp_path), "volume-v1")
    assert store.snapshot_path("s1") == os.path.join(str(tmp_path), "snapshot-s1")


def test_unreachable_dirs(tmp_path):
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    (closed / "inner").chmod(0o755)
    assert str(closed) in filestore.unreachable_dirs(str(closed / "inner" / "volumes"))
    closed.chmod(0o711)
    assert str(closed) not in filestore.unreachable_dirs(str(closed / "inner" / "volumes"))
