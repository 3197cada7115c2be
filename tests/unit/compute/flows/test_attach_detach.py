"""Fault injection for the attach and detach flows on the fake driver and
the real volume service (file backend): each task fails in turn, before or
after doing its work, and the reverts leave everything as it was before
the request: for an attach, the volume available, no BDM row, no
attachment, no device in the guest; for a detach, the volume in-use and
still attached everywhere, with a fault on the server."""

from __future__ import annotations

import functools

import pytest

from tests.unit.compute import volume_helpers as vh
from virtstack import exception
from virtstack.compute.flows import attach, detach

ATTACH_TASKS = [attach.ReserveDeviceName, attach.CreateAttachment, attach.GetConnector,
                attach.UpdateAttachment, attach.DriverAttach, attach.CompleteAttachment,
                attach.SaveConnectionInfo, attach.RollBackIfResumed]
DETACH_TASKS = [detach.RollDetachingOnFailure, detach.DriverDetach, detach.DestroyBdm,
                detach.DeleteAttachment]


class InjectedFailure(exception.VirtstackException):
    """Crosses RPC as itself (a virtstack exception), so the API shows it."""


def test_every_task_of_the_flows_is_covered():
    assert [type(t) for t in attach.get_flow()] == ATTACH_TASKS
    assert [type(t) for t in detach.get_flow()] == DETACH_TASKS


def _inject(monkeypatch, task, after_work: bool) -> str:
    real_execute = task.execute
    message = f"{task.__name__} failed {'after' if after_work else 'before'} its work"

    # TaskFlow reads a task's inputs from execute's signature: keep it.
    @functools.wraps(real_execute)
    def fail(self, *args, **kwargs):
        if after_work:
            real_execute(self, *args, **kwargs)
        raise InjectedFailure(message)

    monkeypatch.setattr(task, "execute", fail)
    return message


@pytest.mark.parametrize("after_work", [True, False], ids=["after", "before"])
@pytest.mark.parametrize("task", ATTACH_TASKS, ids=lambda t: t.__name__)
def test_a_failing_attach_task_is_fully_undone(cloud, monkeypatch, task, after_work):
    sid = vh.active_server(cloud)
    vid = vh.make_volume(cloud)
    message = _inject(monkeypatch, task, after_work)

    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 500 and message in resp.text, resp.text
    vh.assert_not_attached(cloud, sid, vid)
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["os-extended-volumes:volumes_attached"] == []
    actions = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions",
                            token="admin:admin").json["instanceActions"]
    assert actions[0]["action"] == "attach_volume" and actions[0]["message"] == "Error"

    # Nothing was left half-made: the same attach works afterwards.
    monkeypatch.undo()
    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 200, resp.text
    vh.assert_attached(cloud, sid, vid, "/dev/vdb")


# DeleteAttachment is the last step and the one that cannot be undone (the
# connection is terminated): only its failing *before* its work is revertible.
_DETACH_CASES = [(t, after) for t in DETACH_TASKS for after in (True, False)
                 if not (t is detach.DeleteAttachment and after)]


@pytest.mark.parametrize("task,after_work", _DETACH_CASES,
                         ids=lambda v: v.__name__ if isinstance(v, type) else
                         ("after" if v else "before"))
def test_a_failing_detach_task_leaves_the_volume_attached(cloud, monkeypatch, task,
                                                          after_work):
    sid = vh.active_server(cloud)
    vid = vh.make_volume(cloud)
    assert vh.attach(cloud, sid, vid).status_int == 200
    [before] = vh.live_bdms(sid)
    message = _inject(monkeypatch, task, after_work)

    resp = vh.detach(cloud, sid, vid)
    assert resp.status_int == 202, resp.text
    vh.wait_volume(cloud, vid, "in-use")
    vh.assert_attached(cloud, sid, vid, "/dev/vdb")
    [after] = vh.live_bdms(sid)
    assert (after.uuid, after.attachment_id) == (before.uuid, before.attachment_id)
    faults = _faults(sid)
    assert any(message in f for f in faults), faults

    monkeypatch.undo()
    assert vh.detach(cloud, sid, vid).status_int == 202
    vh.wait_volume(cloud, vid, "available")
    vh.assert_not_attached(cloud, sid, vid)


def test_a_driver_that_cannot_detach_rolls_the_volume_back_to_in_use(cloud):
    sid = vh.active_server(cloud)
    vid = vh.make_volume(cloud)
    assert vh.attach(cloud, sid, vid).status_int == 200
    cloud.driver.inject_failure("detach_volume")
    assert vh.detach(cloud, sid, vid).status_int == 202
    vh.wait_volume(cloud, vid, "in-use")
    vh.assert_attached(cloud, sid, vid, "/dev/vdb")
    actions = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions",
                            token="admin:admin").json["instanceActions"]
    assert actions[0]["action"] == "detach_volume" and actions[0]["message"] == "Error"


def test_a_driver_that_cannot_attach_leaves_nothing(cloud):
    sid = vh.active_server(cloud)
    vid = vh.make_volume(cloud)
    cloud.driver.inject_failure("attach_volume")
    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 500 and "attach_volume" in resp.text
    vh.assert_not_attached(cloud, sid, vid)


def _faults(sid: str) -> list[str]:
    from virtstack.db import api as db_api
    from virtstack.db import models
    import sqlalchemy as sa

    with db_api.reader() as sess:
        return [f.message for f in sess.scalars(sa.select(models.InstanceFault).where(
            models.InstanceFault.instance_uuid == sid))]
