"""The ``file`` (raw and qcow2) and ``iscsi`` backends on real files: what
every backend must do with volume data."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests.functional.volume.backends import environment as env
from virtstack import exception
from virtstack.volume.backends.base import SnapshotRef, VolumeRef

GiB = env.GiB
MiB = env.MiB


def fmt_of(ref) -> str:
    """The format the backend stored the volume or snapshot in."""
    return "qcow2" if ref.provider_location == "qcow2" else "raw"


def test_create_makes_a_sparse_zeroed_volume_and_delete_removes_it(backend, volumes):
    vols = volumes(backend)
    volume = vols.create(size=1)
    path = backend.local_path(volume)

    assert env.virtual_size(path, fmt_of(volume)) == GiB
    assert os.stat(path).st_blocks * 512 < 4 * MiB  # sparse: nothing written yet
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert env.read_bytes(path, fmt_of(volume), 512 * MiB, 4096) == bytes(4096)
    # A retried create (crash after the file was made) changes nothing.
    assert backend.create_volume(VolumeRef(volume.id, 1)) is not None

    backend.delete_volume(volume)
    assert not os.path.exists(path)
    backend.delete_volume(volume)  # idempotent


def test_snapshot_keeps_its_data_when_the_volume_is_written_later(backend, volumes):
    vols = volumes(backend)
    volume = vols.create(size=1)
    path, fmt = backend.local_path(volume), fmt_of(volume)
    env.write_pattern(path, fmt, 0x5A, 0, MiB)
    env.write_pattern(path, fmt, 0x3C, 700 * MiB, 64 * 1024)

    snapshot = vols.snapshot(volume)
    env.write_pattern(path, fmt, 0xA5, 0, MiB)

    snap_path = backend.store.snapshot_path(snapshot.id)
    assert env.read_bytes(snap_path, fmt_of(snapshot), 0, MiB) == b"\x5a" * MiB
    assert env.read_bytes(snap_path, fmt_of(snapshot), 700 * MiB, 64 * 1024) == b"\x3c" * 65536
    assert env.read_bytes(path, fmt, 0, MiB) == b"\xa5" * MiB

    backend.delete_snapshot(snapshot)
    assert not os.path.exists(snap_path)
    backend.delete_snapshot(snapshot)  # idempotent


def test_volume_from_snapshot_holds_its_data_and_may_be_larger(backend, volumes):
    vols = volumes(backend)
    source = vols.create(size=1)
    env.write_pattern(backend.local_path(source), fmt_of(source), 0x11, 3 * MiB, MiB)
    snapshot = vols.snapshot(source)

    volume = vols.from_snapshot(snapshot, size=2)
    path, fmt = backend.local_path(volume), fmt_of(volume)

    assert env.virtual_size(path, fmt) == 2 * GiB
    assert env.read_bytes(path, fmt, 3 * MiB, MiB) == b"\x11" * MiB
    assert env.read_bytes(path, fmt, 2 * MiB, MiB) == bytes(MiB)
    assert env.read_bytes(path, fmt, 1536 * MiB, MiB) == bytes(MiB)  # the grown tail
    # Whole-image comparison; the larger tail must read as zeros.
    subprocess.run(["qemu-img", "compare", "-q", "-f", fmt_of(snapshot), "-F", fmt,
                    backend.store.snapshot_path(snapshot.id), path], check=True)


def test_clone_is_a_copy_that_does_not_follow_its_source(backend, volumes):
    vols = volumes(backend)
    source = vols.create(size=1)
    src_path, fmt = backend.local_path(source), fmt_of(source)
    env.write_pattern(src_path, fmt, 0x77, 10 * MiB, 2 * MiB)

    clone = vols.clone(source, size=1)
    env.write_pattern(src_path, fmt, 0x88, 10 * MiB, 2 * MiB)

    path = backend.local_path(clone)
    assert path != src_path
    assert env.read_bytes(path, fmt_of(clone), 10 * MiB, 2 * MiB) == b"\x77" * 2 * MiB
    assert env.virtual_size(path, fmt_of(clone)) == GiB


@pytest.fixture
def raw_image(tmp_path):
    """A 64 MiB raw image: 0x42 in its first MiB, 0x24 in its last."""
    path = str(tmp_path / "image.raw")
    with open(path, "wb") as f:
        f.truncate(64 * MiB)
    env.write_pattern(path, "raw", 0x42, 0, MiB)
    env.write_pattern(path, "raw", 0x24, 63 * MiB, MiB)
    return path


@pytest.mark.parametrize("image_format", ["raw", "qcow2"])
def test_copy_image_to_volume(backend, volumes, raw_image, tmp_path, image_format):
    image = raw_image
    if image_format == "qcow2":
        image = str(tmp_path / "image.qcow2")
        env.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_image, image)
    vols = volumes(backend)
    volume = vols.create(size=1)

    backend.copy_image_to_volume(volume, image, image_format)

    path, fmt = backend.local_path(volume), fmt_of(volume)
    assert env.read_bytes(path, fmt, 0, MiB) == b"\x42" * MiB
    assert env.read_bytes(path, fmt, 63 * MiB, MiB) == b"\x24" * MiB
    assert env.read_bytes(path, fmt, 64 * MiB, MiB) == bytes(MiB)
    assert env.virtual_size(path, fmt) == GiB  # the volume keeps its size


def test_copy_image_to_volume_refuses_what_does_not_fit_or_is_not_what_it_says(
        backend, volumes, raw_image, tmp_path):
    vols = volumes(backend)
    volume = vols.create(size=1)
    path, fmt = backend.local_path(volume), fmt_of(volume)
    big = str(tmp_path / "big.qcow2")
    env.run("qemu-img", "create", "-q", "-f", "qcow2", big, str(2 * GiB))
    with_backing = str(tmp_path / "overlay.qcow2")
    env.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", raw_image, with_backing)

    with pytest.raises(exception.VolumeBackendError, match="larger than the volume"):
        backend.copy_image_to_volume(volume, big, "qcow2")
    with pytest.raises(exception.VolumeBackendError):
        backend.copy_image_to_volume(volume, raw_image, "qcow2")  # raw declared as qcow2
    with pytest.raises(exception.VolumeBackendError, match="backing or data file"):
        backend.copy_image_to_volume(volume, with_backing, "qcow2")
    with pytest.raises(exception.VolumeBackendError, match="disk_format 'vmdk'"):
        backend.copy_image_to_volume(volume, raw_image, "vmdk")
    # Nothing was written.
    assert env.read_bytes(path, fmt, 0, MiB) == bytes(MiB)


def test_extend_grows_the_volume_and_keeps_its_data(backend, volumes):
    vols = volumes(backend)
    volume = vols.create(size=1)
    path, fmt = backend.local_path(volume), fmt_of(volume)
    env.write_pattern(path, fmt, 0x99, 0, MiB)

    backend.extend_volume(volume, 3)
    backend.extend_volume(volume, 3)  # idempotent

    assert env.virtual_size(path, fmt) == 3 * GiB
    assert env.read_bytes(path, fmt, 0, MiB) == b"\x99" * MiB
    assert env.read_bytes(path, fmt, 2 * GiB, MiB) == bytes(MiB)
    with pytest.raises(exception.VolumeBackendError, match="do not shrink"):
        backend.extend_volume(volume, 2)


def test_capacity_is_the_filesystem_capped_by_the_option(backend, volume_conf):
    fs = os.statvfs(backend.store.directory)
    fs_total, fs_free = fs.f_blocks * fs.f_frsize // GiB, fs.f_bavail * fs.f_frsize // GiB

    volume_conf.config(capacity_gb=1_000_000, group="volume")
    assert backend.get_capacity() == {"total_capacity_gb": fs_total,
                                      "free_capacity_gb": pytest.approx(fs_free, abs=1)}
    volume_conf.config(capacity_gb=3, group="volume")
    assert backend.get_capacity() == {"total_capacity_gb": 3,
                                      "free_capacity_gb": min(3, fs_free)}


def test_volume_directory_is_traversable_but_not_listable(backend):
    assert os.stat(backend.store.directory).st_mode & 0o777 == 0o711


# -- file backend specifics ---------------------------------------------------------------

@pytest.mark.parametrize("backend_name", ["file", "file-qcow2"])
def test_file_connection_info_names_the_file_and_its_format(backend, volumes):
    volume = volumes(backend).create(size=1)

    info = backend.initialize_connection(volume, env.connector())

    assert info == {"driver_volume_type": "file",
                    "data": {"volume_id": volume.id, "device_path": backend.local_path(volume),
                             "format": fmt_of(volume), "access_mode": "rw"}}
    assert backend.initialize_connection(volume, env.connector()) == info
    backend.terminate_connection(volume, env.connector())
    backend.terminate_connection(volume, None)


def test_file_volumes_keep_their_format_when_the_option_changes(make_backend, volumes,
                                                                volume_conf):
    qcow2 = make_backend("file-qcow2")
    vols = volumes(qcow2)
    volume = vols.create(size=1)
    env.write_pattern(qcow2.local_path(volume), "qcow2", 0x61, 0, MiB)

    volume_conf.config(file_format="raw", group="volume")
    raw = make_backend("file")
    assert raw.initialize_connection(volume, env.connector())["data"]["format"] == "qcow2"
    raw.extend_volume(volume, 2)
    assert env.virtual_size(raw.local_path(volume), "qcow2") == 2 * GiB
    raw_vols = volumes(raw)
    snapshot = raw_vols.snapshot(volume)
    assert snapshot.provider_location == "qcow2"  # a copy of the qcow2 volume
    clone = raw_vols.from_snapshot(snapshot, size=2)
    assert clone.provider_location == "raw"  # new volumes take the option
    assert env.read_bytes(raw.local_path(clone), "raw", 0, MiB) == b"\x61" * MiB


def test_file_backend_refuses_a_directory_qemu_cannot_reach(make_backend, volume_conf):
    with tempfile.TemporaryDirectory(dir="/tmp") as closed:
        os.chmod(closed, 0o700)
        volume_conf.config(volumes_dir=os.path.join(closed, "volumes"), group="volume")
        with pytest.raises(exception.VolumeBackendError, match="chmod o\\+x"):
            make_backend("file")


def test_snapshot_ref_format_defaults_to_the_option(make_backend, volumes):
    # Rows written before provider_location held the format have None there.
    backend = make_backend("file")
    vols = volumes(backend)
    source = vols.create(size=1)
    env.write_pattern(backend.local_path(source), "raw", 0x13, 0, MiB)
    snapshot = vols.snapshot(source)
    legacy = SnapshotRef(snapshot.id, source.id, 1, None)
    volume = vols.from_snapshot(legacy, size=1)
    assert env.read_bytes(backend.local_path(volume), "raw", 0, MiB) == b"\x13" * MiB
