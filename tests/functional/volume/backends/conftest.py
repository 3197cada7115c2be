"""Fixtures for the volume backends' functional tests (real tgtd, real files).

``make_volume`` records what it makes and deletes it through the backend
after the test; then the test fails if anything is left: a file in the
volumes directory, a target of this run, or the CHAP account of a volume.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest

from tests.functional.volume.backends import environment as env
from virtstack.volume.backends import load_backend, tgt
from virtstack.volume.backends.base import SnapshotRef, VolumeRef


@pytest.fixture
def volume_conf(request, conf):
    """``conf`` with a volumes directory QEMU can reach (pytest's tmp_path
    is under root's 0700 home here) and this run's IQN prefix."""
    path = tempfile.mkdtemp(prefix="virtstack-volume-test-", dir="/tmp")
    os.chmod(path, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    conf.config(volumes_dir=os.path.join(path, "volumes"),
                iscsi_target_prefix=env.IQN_PREFIX, group="volume")
    return conf


class Volumes:
    """Makes volumes and snapshots on one backend; deletes them afterwards."""

    def __init__(self, backend):
        self.backend = backend
        self.volumes: dict[str, VolumeRef] = {}
        self.snapshots: dict[str, SnapshotRef] = {}

    def _stored(self, volume: VolumeRef, update: dict) -> VolumeRef:
        volume = VolumeRef(volume.id, volume.size, update.get("provider_location"),
                           update.get("provider_auth"))
        self.volumes[volume.id] = volume
        return volume

    def create(self, size: int = 1) -> VolumeRef:
        volume = VolumeRef(str(uuid.uuid4()), size)
        self.volumes[volume.id] = volume
        return self._stored(volume, self.backend.create_volume(volume))

    def from_snapshot(self, snapshot: SnapshotRef, size: int) -> VolumeRef:
        volume = VolumeRef(str(uuid.uuid4()), size)
        self.volumes[volume.id] = volume
        return self._stored(volume, self.backend.create_volume_from_snapshot(volume, snapshot))

    def clone(self, source: VolumeRef, size: int) -> VolumeRef:
        volume = VolumeRef(str(uuid.uuid4()), size)
        self.volumes[volume.id] = volume
        return self._stored(volume, self.backend.create_cloned_volume(volume, source))

    def snapshot(self, volume: VolumeRef) -> SnapshotRef:
        snapshot = SnapshotRef(str(uuid.uuid4()), volume.id, volume.size)
        self.snapshots[snapshot.id] = snapshot
        update = self.backend.create_snapshot(snapshot, volume)
        snapshot = SnapshotRef(snapshot.id, volume.id, volume.size,
                               update.get("provider_location"))
        self.snapshots[snapshot.id] = snapshot
        return snapshot

    def cleanup(self) -> None:
        for snapshot in self.snapshots.values():
            self.backend.delete_snapshot(snapshot)
        for volume in self.volumes.values():
            self.backend.delete_volume(volume)


def _chap_user(volume: VolumeRef) -> str | None:
    parts = (volume.provider_auth or "").split()
    return parts[1] if len(parts) == 3 else None


@pytest.fixture(params=["file", "file-qcow2", "iscsi"])
def backend_name(request):
    return request.param


@pytest.fixture
def make_backend(volume_conf):
    """``make_backend(name)``: a backend after ``check_setup``; name
    ``file-qcow2`` is the file backend with ``file_format = qcow2``."""
    def make(name: str):
        if name == "iscsi":
            env.require_tgt()
        if name == "file-qcow2":
            volume_conf.config(file_format="qcow2", group="volume")
            name = "file"
        backend = load_backend("test-volume-host", name)
        backend.check_setup()
        return backend
    return make


@pytest.fixture
def backend(make_backend, backend_name):
    return make_backend(backend_name)


@pytest.fixture
def iscsi_backend(make_backend):
    return make_backend("iscsi")


@pytest.fixture
def volumes(request):
    """``volumes(backend)``: a ``Volumes`` whose volumes and snapshots are
    deleted after the test, which then fails if any trace is left."""
    made: list[Volumes] = []

    def for_backend(backend) -> Volumes:
        made.append(Volumes(backend))
        return made[-1]

    yield for_backend
    for each in made:
        each.cleanup()
    left = []
    for each in made:
        directory = each.backend.store.directory
        if os.path.isdir(directory) and os.listdir(directory):
            left.append(f"files in {directory}: {sorted(os.listdir(directory))}")
        if each.backend.name == "iscsi":
            targets = [t.iqn for t in env.our_targets()
                       if t.iqn.rsplit("volume-", 1)[-1] in each.volumes]
            if targets:
                left.append(f"targets {targets}")
            users = {_chap_user(v) for v in each.volumes.values()} - {None}
            accounts = users & set(tgt.Tgtadm().accounts())
            if accounts:
                left.append(f"CHAP accounts {sorted(accounts)}")
    assert not left, "left behind after deleting everything: " + "; ".join(left)


@pytest.fixture(scope="session", autouse=True)
def _no_targets_left_by_this_run():
    """The last word: no target of this run is left in tgtd (removed, and
    reported, if one is)."""
    yield
    try:
        leftovers = env.our_targets()
    except Exception:  # noqa: BLE001 - tgtd was never there; tests said so
        return
    tgtadm = tgt.Tgtadm()
    for target in leftovers:
        tgtadm.delete_target(target.tid, force=True)
        for user in target.incoming_users:
            tgtadm.delete_account(user)
    assert not leftovers, f"targets left in tgtd by this run: {[t.iqn for t in leftovers]}"
