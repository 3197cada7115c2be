"""Volumes end to end on real guests: an all-in-one cloud on libvirt + QEMU
(TCG) with two volume services (file backend; iSCSI through this host's
tgtd with CHAP and an initiator ACL), driven through the Compute and Block
Storage APIs. The guest reports disks on its serial console
(``VIRTSTACK-DISK-ADDED/RESIZED/REMOVED``, see ``image/testimage.py``).

One running guest serves the module (booting takes seconds to minutes under
TCG); boot from volume boots one more.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import uuid

import pytest
import sqlalchemy as sa
from oslo_config import fixture as config_fixture

from tests.functional.virt.libvirt import environment as lv
from tests.unit.compute import volume_helpers as vh
from tests.waiting import poll
from virtstack.conf import CONF

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(900)]

GiB_SECTORS = 2 * 1024 * 1024  # 512-byte sectors in a GiB
IQN_PREFIX = f"iqn.2010-10.org.virtstack.apitest-{uuid.uuid4().hex[:6]}:"


@pytest.fixture(scope="module")
def lvcloud(request):
    """API + compute (libvirt) + volume services 'lv-file' and 'lv-iscsi'."""
    import futurist._thread

    from tests.conftest import Cloud
    from virtstack import rpc, service
    from virtstack.api.compute import ComputeApp
    from virtstack.api.volume import VolumeApp
    from virtstack.db import api as db_api
    from virtstack.volume.backends import load_backend, tgt

    lv.require_libvirt()
    fixture = config_fixture.Config(CONF)
    fixture.setUp()
    request.addfinalizer(fixture.cleanUp)
    CONF([], project="virtstack", default_config_files=[])
    state = lv.make_state_path(request, fixture)
    lv.configure(fixture)
    prefix = f"vs-voltest-{uuid.uuid4().hex[:6]}-"
    volumes_dir = os.path.join(state, "volumes")
    os.makedirs(volumes_dir)
    os.chmod(volumes_dir, 0o711)
    fixture.config(host="lv-volume-testhost")
    fixture.config(connection=f"sqlite:///{state}/virtstack.sqlite", group="database")
    fixture.config(group="compute", compute_driver="libvirt", sync_power_state_interval=-1,
                   instance_name_template=prefix + "%08x")
    fixture.config(auth_strategy="noauth", group="api")
    fixture.config(group="volume", volumes_dir=volumes_dir, iscsi_target_prefix=IQN_PREFIX)
    patch = pytest.MonkeyPatch()
    request.addfinalizer(patch.undo)
    patch.setattr(futurist._thread.ThreadWorker, "MAX_IDLE_FOR", 0.02)
    os.makedirs(os.path.join(state, "cache"))
    os.symlink(lv.image_dir(), os.path.join(state, "cache", "test-image"))
    lv.test_image()
    db_api.dispose()
    rpc.cleanup()
    seeded = service.prepare_database()
    compute = service.ComputeService()
    compute.start(periodic=False)
    volumes = {name: service.VolumeService(host=f"lv-{name}",
                                           backend=load_backend(f"lv-{name}", name))
               for name in ("file", "iscsi")}
    for volume in volumes.values():
        volume.start(periodic=False)
    cloud = Cloud(compute, ComputeApp(), seeded["image_id"], volume=volumes["file"],
                  volume_app=VolumeApp())
    cloud.prefix = prefix

    def cleanup():
        for name in _domains(prefix):
            subprocess.run(["virsh", "-q", "-c", lv.URI, "destroy", name], capture_output=True)
            subprocess.run(["virsh", "-q", "-c", lv.URI, "undefine", "--managed-save", name],
                           capture_output=True)
        for volume in volumes.values():
            volume.stop()
        compute.stop()
        rpc.cleanup()
        db_api.dispose()
        tgtadm = tgt.Tgtadm()
        for target in tgtadm.show_targets():
            if target.iqn.startswith(IQN_PREFIX):
                tgtadm.delete_target(target.tid, force=True)

    request.addfinalizer(cleanup)
    return cloud


def _domains(prefix: str) -> list[str]:
    out = subprocess.run(["virsh", "-q", "-c", lv.URI, "list", "--all", "--name"],
                         capture_output=True, text=True, check=True).stdout
    return [n for n in out.split() if n.startswith(prefix)]


def _console(cloud, sid: str) -> lv.Console:
    def read() -> bytes:
        resp = cloud.request("POST", f"/v2.1/servers/{sid}/action",
                             {"os-getConsoleOutput": {"length": None}})
        assert resp.status_int == 200, resp.text
        return resp.json["output"].encode()
    return lv.Console(read)


@pytest.fixture(scope="module")
def running(lvcloud):
    """A booted server and its console (past the boot marker)."""
    sid = lvcloud.create_server(name="lv-vol", flavor="84")
    lvcloud.wait_for_status(sid, "ACTIVE", timeout=lv.BOOT_TIMEOUT)
    console = _console(lvcloud, sid)
    console.wait_for(lv.BOOT_MARKER)
    return sid, console


def _volume_on(cloud, backend: str, size: int = 1, **extra) -> str:
    """A volume made on the pool of ``backend`` (the other pool is disabled
    meanwhile: the scheduler would pick the emptier one)."""
    from virtstack.db import api as db_api
    from virtstack.db import models

    P = models.VolumePool
    with db_api.session() as sess:
        sess.execute(sa.update(P).values(disabled=P.backend != backend))
    return vh.make_volume(cloud, size=size, **extra)


def _xml(cloud, sid: str) -> str:
    name = cloud.request("GET", f"/v2.1/servers/{sid}", token="admin:admin"
                         ).json["server"]["OS-EXT-SRV-ATTR:instance_name"]
    live = subprocess.run(["virsh", "-c", lv.URI, "dumpxml", name], capture_output=True,
                          text=True, check=True).stdout
    persistent = subprocess.run(["virsh", "-c", lv.URI, "dumpxml", "--inactive", name],
                                capture_output=True, text=True, check=True).stdout
    return live + persistent


def _acl_entries() -> list[str]:
    from virtstack.volume.backends import tgt

    return [a for t in tgt.Tgtadm().show_targets() if t.iqn.startswith(IQN_PREFIX)
            for a in t.acl]


def _secrets(sid: str) -> list[str]:
    out = subprocess.run(["virsh", "-c", lv.URI, "secret-list"], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if sid in line]


def _extend(cloud, vid: str, new_size: int) -> None:
    resp = cloud.volume_request("POST", f"/v3/demo/volumes/{vid}/action",
                                {"os-extend": {"new_size": new_size}}, version="3.42")
    assert resp.status_int == 202, resp.text


@pytest.mark.parametrize("backend", ["file", "iscsi"])
def test_attach_extend_detach_seen_inside_the_guest(lvcloud, running, backend):
    cloud = lvcloud
    sid, console = running
    vid = _volume_on(cloud, backend)

    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 200, resp.text
    device = resp.json["volumeAttachment"]["device"]
    assert vh.volume_status(cloud, vid) == "in-use"
    dev = console.wait_for(re.compile(rf"VIRTSTACK-DISK-ADDED (vd[a-z]+) {GiB_SECTORS}"),
                           timeout=90).group(1)
    assert f"dev='{device[5:]}'" in _xml(cloud, sid)
    if backend == "iscsi":
        assert _acl_entries(), "the target lets this host's initiator in"
        assert _secrets(sid), "CHAP secret defined for the guest"

    _extend(cloud, vid, 2)
    console.wait_for(f"VIRTSTACK-DISK-RESIZED {dev} {2 * GiB_SECTORS}", timeout=90)
    vh.wait_volume(cloud, vid, "in-use")

    assert vh.detach(cloud, sid, vid).status_int == 202
    console.wait_for(f"VIRTSTACK-DISK-REMOVED {dev}", timeout=90)
    vh.wait_volume(cloud, vid, "available", timeout=90)
    assert f"dev='{device[5:]}'" not in _xml(cloud, sid)
    assert vh.live_bdms(sid) == [] and vh.live_attachments(vid) == []
    assert _acl_entries() == [] and _secrets(sid) == []


def _inject_after(monkeypatch, task):
    real_execute = task.execute

    @functools.wraps(real_execute)
    def fail(self, *args, **kwargs):
        real_execute(self, *args, **kwargs)
        raise RuntimeError(f"injected failure after {task.__name__}")

    monkeypatch.setattr(task, "execute", fail)


def _attach_tasks():
    from virtstack.compute.flows import attach
    return [attach.UpdateAttachment, attach.DriverAttach, attach.SaveConnectionInfo]


@pytest.mark.parametrize("task", _attach_tasks(), ids=lambda t: t.__name__)
def test_a_failed_iscsi_attach_leaves_no_device_acl_or_secret(lvcloud, running, monkeypatch,
                                                              task):
    cloud = lvcloud
    sid, _console_ = running
    vid = _volume_on(cloud, "iscsi")
    _inject_after(monkeypatch, task)
    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 500 and "injected failure" in resp.text, resp.text
    assert vh.volume_status(cloud, vid) == "available"
    assert vh.live_bdms(sid) == [] and vh.live_attachments(vid) == []
    assert "vdb" not in _xml(cloud, sid)
    assert _acl_entries() == [] and _secrets(sid) == []
    assert vh.flow_logbooks() == 0


def test_a_failed_iscsi_detach_keeps_the_volume_attached(lvcloud, running, monkeypatch):
    from virtstack.compute.flows import detach

    cloud = lvcloud
    sid, console = running
    vid = _volume_on(cloud, "iscsi")
    assert vh.attach(cloud, sid, vid).status_int == 200
    dev = console.wait_for(re.compile(rf"VIRTSTACK-DISK-ADDED (vd[a-z]+) {GiB_SECTORS}"),
                           timeout=90).group(1)
    _inject_after(monkeypatch, detach.DestroyBdm)
    assert vh.detach(cloud, sid, vid).status_int == 202
    vh.wait_volume(cloud, vid, "in-use", timeout=90)
    # The device went and came back: the guest saw both.
    console.wait_for(f"VIRTSTACK-DISK-REMOVED {dev}", timeout=90)
    dev = console.wait_for(re.compile(rf"VIRTSTACK-DISK-ADDED (vd[a-z]+) {GiB_SECTORS}"),
                           timeout=90).group(1)
    [bdm] = vh.live_bdms(sid)
    assert f"dev='{bdm.device_name[5:]}'" in _xml(cloud, sid)
    assert _acl_entries() and len(vh.live_attachments(vid)) == 1

    monkeypatch.undo()
    assert vh.detach(cloud, sid, vid).status_int == 202
    console.wait_for(f"VIRTSTACK-DISK-REMOVED {dev}", timeout=90)
    vh.wait_volume(cloud, vid, "available", timeout=90)
    assert _acl_entries() == [] and _secrets(sid) == []


def test_boot_from_volume_on_libvirt(lvcloud):
    cloud = lvcloud
    from virtstack.db import api as db_api
    from virtstack.db import models

    P = models.VolumePool
    with db_api.session() as sess:
        sess.execute(sa.update(P).values(disabled=P.backend != "file"))
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "lv-bfv", "flavorRef": "84", "imageRef": "",
        "block_device_mapping_v2": [{
            "source_type": "image", "destination_type": "volume", "uuid": cloud.image_id,
            "boot_index": 0, "volume_size": 1, "delete_on_termination": True}]}})
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    server = cloud.wait_for_status(sid, "ACTIVE", timeout=lv.BOOT_TIMEOUT)
    assert server["image"] == ""
    [volume] = server["os-extended-volumes:volumes_attached"]
    console = _console(cloud, sid)
    console.wait_for("VIRTSTACK-ROOT /dev/vda")
    console.wait_for(lv.BOOT_MARKER)
    assert vh.volume_status(cloud, volume["id"]) == "in-use"

    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED", timeout=120)
    poll(lambda: cloud.volume_request("GET", f"/v3/demo/volumes/{volume['id']}"
                                      ).status_int == 404, 60, "the boot volume to go")
