"""The volume manager's flows against the real ``file`` backend: every
task's revert under fault injection, and recovery of flows a crash (a
``BaseException`` that stops the engine where it stands, as kill -9 would)
left in the database."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid as uuidlib

import pytest
import sqlalchemy as sa

from virtstack import context as vs_context
from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import volume as db_volume
from virtstack.volume import flows, manager
from virtstack.volume.backends.file import FileBackend
from virtstack.volume.flows import create as create_flow

POOL = "vhost@file#file"
GiB = 1024 ** 3


class Crash(BaseException):
    """Stops the flow engine without a revert, like a killed process."""


class FaultyFileBackend(FileBackend):
    """The file backend, with chosen methods failing (``fail``) or crashing
    (``crash``) once each."""

    def __init__(self, host, conf=None):
        super().__init__(host, conf)
        self.fail: set[str] = set()
        self.crash: set[str] = set()

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in ("fail", "crash") or name.startswith("_"):
            return attr
        state = object.__getattribute__(self, "__dict__")
        if name in state.get("fail", ()):
            def failing(*args, **kwargs):
                raise exception.VolumeBackendError(reason=f"injected {name} failure")
            return failing
        if name in state.get("crash", ()):
            state["crash"].discard(name)

            def crashing(*args, **kwargs):
                raise Crash(name)
            return crashing
        return attr


@pytest.fixture
def volumes_dir(conf):
    path = tempfile.mkdtemp(prefix="virtstack-volumes-", dir="/tmp")
    os.chmod(path, 0o711)
    conf.config(volumes_dir=path, capacity_gb=10, group="volume")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def vm(database, volumes_dir):
    """A started volume manager (no RPC server: tests call it directly)."""
    mgr = manager.VolumeManager(host="vhost", backend=FaultyFileBackend("vhost"))
    mgr.init_host()
    return mgr


CTXT = vs_context.get_admin_context()


def new_volume(vm, size=1, status="creating", claim=True, **kw):
    if claim:
        assert db_volume.pool_claim(vm.pool, size)
    values = {"id": str(uuidlib.uuid4()), "project_id": "p", "user_id": "u", "host": vm.pool,
              "size": size, "status": status, "attach_status": "detached"}
    values.update(kw)
    return db_volume.volume_create(values).id


def allocated(vm) -> int:
    return db_volume.pools(host=vm.host)[0].allocated_gb


def logbooks() -> int:
    with db_api.get_engine().connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM logbooks")).scalar_one()


def path_of(vm, volume_id) -> str:
    return vm.backend.local_path(flows.volume_ref(db_volume.volume_get(volume_id,
                                                                       read_deleted=True)))


def test_create_succeeds(vm):
    vid = new_volume(vm, size=2)
    vm.create_volume(CTXT, vid)
    row = db_volume.volume_get(vid)
    assert row.status == "available" and row.provider_location
    assert os.path.getsize(path_of(vm, vid)) == 2 * GiB
    assert allocated(vm) == 2 and logbooks() == 0


def test_backend_create_failure_reverts_to_error_and_gives_the_claim_back(vm):
    vm.backend.fail.add("create_volume")
    vid = new_volume(vm, size=3)
    vm.create_volume(CTXT, vid)
    assert db_volume.volume_get(vid).status == "error"
    assert allocated(vm) == 0 and logbooks() == 0
    assert not os.listdir(vm.backend.store.directory) or not os.path.exists(path_of(vm, vid))


def test_image_copy_failure_deletes_the_new_volume(vm, tmp_path):
    from virtstack.image import store

    src = tmp_path / "img"
    src.write_bytes(b"x" * 4096)
    image = store.add_file(str(src), "img", "raw")
    vm.backend.fail.add("copy_image_to_volume")
    vid = new_volume(vm, image_id=image.id, image_metadata={"disk_format": "raw"})
    vm.create_volume(CTXT, vid)
    assert db_volume.volume_get(vid).status == "error"
    assert not os.path.exists(path_of(vm, vid))  # CreateOnBackend's revert ran
    assert allocated(vm) == 0


def test_mark_available_failure_reverts_everything(vm, monkeypatch):
    def broken(self, volume_id, model_update):
        raise exception.VirtstackException("injected database failure")

    monkeypatch.setattr(create_flow.MarkAvailable, "execute", broken)
    vid = new_volume(vm)
    vm.create_volume(CTXT, vid)
    assert db_volume.volume_get(vid).status == "error"
    assert not os.path.exists(path_of(vm, vid))
    assert allocated(vm) == 0


def test_delete_failure_leaves_error_deleting_and_a_retry_finishes(vm):
    vid = new_volume(vm)
    vm.create_volume(CTXT, vid)
    vm.backend.fail.add("delete_volume")
    db_volume.volume_transition(vid, ["available"], {"status": "deleting"})
    vm.delete_volume(CTXT, vid)
    assert db_volume.volume_get(vid).status == "error_deleting"
    assert allocated(vm) == 1
    vm.backend.fail.clear()
    db_volume.volume_transition(vid, ["error_deleting"], {"status": "deleting"})
    vm.delete_volume(CTXT, vid)
    with pytest.raises(exception.VolumeNotFound):
        db_volume.volume_get(vid)
    assert not os.path.exists(path_of(vm, vid)) and allocated(vm) == 0


def test_extend_failure_leaves_error_extending_and_returns_the_extra_claim(vm):
    vid = new_volume(vm)
    vm.create_volume(CTXT, vid)
    vm.backend.fail.add("extend_volume")
    assert db_volume.pool_claim(vm.pool, 2)
    db_volume.volume_transition(vid, ["available"], {"status": "extending",
                                                     "previous_status": "available"})
    vm.extend_volume(CTXT, vid, 3)
    row = db_volume.volume_get(vid)
    assert (row.status, row.size) == ("error_extending", 1)
    assert allocated(vm) == 1 and os.path.getsize(path_of(vm, vid)) == GiB


def test_extend_succeeds(vm):
    vid = new_volume(vm)
    vm.create_volume(CTXT, vid)
    assert db_volume.pool_claim(vm.pool, 1)
    db_volume.volume_transition(vid, ["available"], {"status": "extending",
                                                     "previous_status": "available"})
    vm.extend_volume(CTXT, vid, 2)
    row = db_volume.volume_get(vid)
    assert (row.status, row.size) == ("available", 2)
    assert os.path.getsize(path_of(vm, vid)) == 2 * GiB


def test_snapshot_failures_mark_the_snapshot(vm):
    vid = new_volume(vm)
    vm.create_volume(CTXT, vid)
    snap = db_volume.snapshot_create_within_quota(
        {"id": str(uuidlib.uuid4()), "volume_id": vid, "project_id": "p", "user_id": "u",
         "status": "creating", "volume_size": 1}, {}, ["available"])
    vm.backend.fail.add("create_snapshot")
    vm.create_snapshot(CTXT, snap.id)
    assert db_volume.snapshot_get(snap.id).status == "error"
    vm.backend.fail = {"delete_snapshot"}
    db_volume.snapshot_transition(snap.id, ["error"], {"status": "deleting"})
    vm.delete_snapshot(CTXT, snap.id)
    assert db_volume.snapshot_get(snap.id).status == "error_deleting"


# -- crashes -------------------------------------------------------------------------

def _crash_mid_create(vm, size=1) -> str:
    vm.backend.crash.add("create_volume")
    vid = new_volume(vm, size=size)
    with pytest.raises(Crash):
        vm.create_volume(CTXT, vid)
    assert logbooks() == 1, "the interrupted flow is persisted"
    assert db_volume.volume_get(vid).status == "creating"
    return vid


def test_crash_mid_create_is_resumed_at_restart(vm):
    vid = _crash_mid_create(vm, size=2)
    restarted = manager.VolumeManager(host="vhost", backend=FaultyFileBackend("vhost"))
    restarted.init_host()
    row = db_volume.volume_get(vid)
    assert row.status == "available"
    assert os.path.getsize(path_of(restarted, vid)) == 2 * GiB
    assert logbooks() == 0 and allocated(restarted) == 2


def test_crash_mid_create_then_failing_backend_ends_in_error(vm):
    vid = _crash_mid_create(vm, size=2)
    backend = FaultyFileBackend("vhost")
    backend.fail.add("create_volume")
    restarted = manager.VolumeManager(host="vhost", backend=backend)
    restarted.init_host()
    assert db_volume.volume_get(vid).status == "error"
    assert logbooks() == 0 and allocated(restarted) == 0


def test_stuck_statuses_without_flows_are_settled_at_start(vm):
    creating = new_volume(vm, size=2)
    extending = new_volume(vm, status="extending", previous_status="available")
    deleting = new_volume(vm, status="deleting")
    attached = new_volume(vm, status="attaching")
    att = db_volume.attachment_reserve(attached, ["attaching"], {"status": "attaching"},
                                       {"instance_uuid": "i", "attach_status": "attaching"})
    manager.VolumeManager(host="vhost", backend=FaultyFileBackend("vhost")).init_host()
    assert db_volume.volume_get(creating).status == "error"
    assert db_volume.volume_get(extending).status == "error_extending"
    with pytest.raises(exception.VolumeNotFound):
        db_volume.volume_get(deleting)
    assert db_volume.attachment_get(att.id).attach_status == "error_attaching"
    # The creating volume's claim (2) and the deleted one's (1) are back.
    assert allocated(vm) == 2  # extending (1) + attaching (1)
