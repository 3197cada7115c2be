"""Fault injection for the compute manager's spawn flow: each task fails in
turn after doing its work, and the reverts leave the server in ERROR with a
fault, no guest on the hypervisor, the resource claim returned and no flow
state behind."""

from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa

from virtstack.compute.flows import spawn
from virtstack.db import api as db_api

TASKS = [spawn.ReleaseClaimOnFailure, spawn.PlugVifs, spawn.DriverSpawn, spawn.MarkActive]


class InjectedFailure(Exception):
    pass


def test_every_task_of_the_flow_is_covered():
    assert {type(t) for t in spawn.get_flow(with_vifs=True)} == set(TASKS)
    assert spawn.PlugVifs not in {type(t) for t in spawn.get_flow(with_vifs=False)}


def _vcpus_used(cloud) -> int:
    resp = cloud.request("GET", "/v2.1/os-hypervisors/detail", token="admin:admin")
    return resp.json["hypervisors"][0]["vcpus_used"]


@pytest.mark.parametrize("task", [t for t in TASKS if t is not spawn.PlugVifs],
                         ids=lambda t: t.__name__)
def test_a_task_failing_after_its_work_is_fully_undone(cloud, monkeypatch, task):
    real_execute = task.execute

    # TaskFlow reads a task's inputs from execute's signature: keep it.
    @functools.wraps(real_execute)
    def fail(self, *args, **kwargs):
        real_execute(self, *args, **kwargs)
        raise InjectedFailure(f"{task.__name__} failed after its work")

    monkeypatch.setattr(task, "execute", fail)
    sid = cloud.create_server()
    server = cloud.wait_for_status(sid, "ERROR")
    assert f"{task.__name__} failed after its work" in server["fault"]["message"]
    assert sid not in cloud.driver.list_instance_uuids()
    assert _vcpus_used(cloud) == 0
    assert server["OS-EXT-SRV-ATTR:host"] is None
    with db_api.get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM logbooks")).scalar_one() == 0
    # The failure is recorded on the create action.
    actions = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions",
                            token="admin:admin").json["instanceActions"]
    assert actions[0]["action"] == "create" and actions[0]["message"] == "Error"


def test_plug_vifs_reverts_by_unplugging(cloud, monkeypatch):
    """With networks to plug, a later failure unplugs what was plugged."""
    from virtstack.db import instance as db_instance
    from virtstack.flows import runner as flow_runner

    driver = cloud.driver
    row = db_instance.get(cloud.create_server())
    cloud.wait_for_status(row.uuid, "ACTIVE")
    instance = db_instance.to_object(row)
    driver.destroy(None, instance)

    plugged_before_failure = []

    def fail(self, driver, context, instance, image_meta):
        plugged_before_failure.append(driver.plugged_vifs(instance.uuid))
        raise InjectedFailure("spawn failed")

    monkeypatch.setattr(spawn.DriverSpawn, "execute", fail)
    vifs = [{"id": "vif-1", "address": "fa:16:3e:00:00:01"}]
    with pytest.raises(InjectedFailure):
        flow_runner.FlowRunner("test").run(
            "spawn", row.uuid, spawn.get_flow, factory_kwargs={"with_vifs": True},
            store={"instance_uuid": row.uuid, "image_id": row.image_ref,
                   "network_info": vifs},
            transient={"driver": driver, "context": None, "instance": instance,
                       "image_meta": None})
    assert list(plugged_before_failure[0]) == ["vif-1"], "PlugVifs really plugged"
    assert driver.plugged_vifs(instance.uuid) == {}, "and its revert unplugged"
