"""/os-hypervisors, /limits and /servers/{id}/os-instance-actions."""

from __future__ import annotations

from .conftest import (ADMIN, DEMO, OTHER, active_server, error_message, finished_events,
                       server_action, wait_until)

HYPERVISOR_DETAIL = {
    "id", "hypervisor_hostname", "state", "status", "hypervisor_type", "hypervisor_version",
    "host_ip", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb", "local_gb",
    "local_gb_used", "free_disk_gb", "disk_available_least", "running_vms", "current_workload",
    "cpu_info", "service"}
STATISTICS = {"count", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb",
              "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
              "disk_available_least"}


def _get(cloud, path, token=ADMIN):
    resp = cloud.request("GET", path, token=token)
    assert resp.status_int == 200, resp.text
    return resp.json


def _hypervisor(cloud):
    return _get(cloud, "/v2.1/os-hypervisors/detail")["hypervisors"][0]


# -- hypervisors -------------------------------------------------------------

def test_list_detail_show_and_statistics(cloud):
    listed = _get(cloud, "/v2.1/os-hypervisors")["hypervisors"]
    assert len(listed) == 1
    assert set(listed[0]) == {"id", "hypervisor_hostname", "state", "status"}
    assert listed[0]["hypervisor_hostname"] == "testhost"
    assert (listed[0]["state"], listed[0]["status"]) == ("up", "enabled")
    detail = _hypervisor(cloud)
    assert set(detail) == HYPERVISOR_DETAIL
    assert detail["hypervisor_type"] == "fake" and detail["service"]["host"] == "testhost"
    assert detail["free_ram_mb"] == detail["memory_mb"] - detail["memory_mb_used"]
    shown = _get(cloud, f"/v2.1/os-hypervisors/{detail['id']}")["hypervisor"]
    assert shown == detail
    stats = _get(cloud, "/v2.1/os-hypervisors/statistics")["hypervisor_statistics"]
    assert set(stats) == STATISTICS
    assert stats["count"] == 1 and stats["vcpus"] == detail["vcpus"]


def test_hypervisors_are_admin_only(cloud):
    for path in ("/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail",
                 "/v2.1/os-hypervisors/statistics", "/v2.1/os-hypervisors/1",
                 "/v2.1/os-hypervisors/999"):
        assert "os-hypervisors" in error_message(cloud.request("GET", path, token=DEMO), 403)


def test_unknown_hypervisor_is_404(cloud):
    for ident in ("999", "nope", "99999999999999999999999", "-1", "%C2%B2",
                  "00000000-0000-0000-0000-000000000000"):
        resp = cloud.request("GET", f"/v2.1/os-hypervisors/{ident}", token=ADMIN)
        assert resp.status_int == 404, (ident, resp.text)
        error_message(resp, 404)


def test_resources_follow_servers(cloud):
    before = _hypervisor(cloud)
    sid = active_server(cloud, flavor="3")     # 2 vCPUs, 4096 MB, 40 GB
    during = _hypervisor(cloud)
    assert during["vcpus_used"] == before["vcpus_used"] + 2
    assert during["memory_mb_used"] == before["memory_mb_used"] + 4096
    assert during["local_gb_used"] == before["local_gb_used"] + 40
    assert during["running_vms"] == before["running_vms"] + 1
    stats = _get(cloud, "/v2.1/os-hypervisors/statistics")["hypervisor_statistics"]
    assert stats["vcpus_used"] == during["vcpus_used"]
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    after = _hypervisor(cloud)
    for key in ("vcpus_used", "memory_mb_used", "local_gb_used", "running_vms"):
        assert after[key] == before[key], key


# -- limits ------------------------------------------------------------------

def _absolute(cloud, token=DEMO, query=""):
    return _get(cloud, "/v2.1/limits" + query, token=token)["limits"]["absolute"]


def test_limits_match_quota_and_usage(cloud, conf):
    conf.config(instances=7, cores=11, ram=9999, metadata_items=5, group="quota")
    limits = _absolute(cloud)
    assert (limits["maxTotalInstances"], limits["maxTotalCores"], limits["maxTotalRAMSize"],
            limits["maxServerMeta"]) == (7, 11, 9999, 5)
    assert (limits["totalInstancesUsed"], limits["totalCoresUsed"],
            limits["totalRAMUsed"]) == (0, 0, 0)
    cloud.create_server(flavor="42")
    cloud.create_server(flavor="3")
    cloud.create_server(token=OTHER)
    limits = _absolute(cloud)
    assert (limits["totalInstancesUsed"], limits["totalCoresUsed"],
            limits["totalRAMUsed"]) == (2, 3, 128 + 4096)
    assert _get(cloud, "/v2.1/limits")["limits"]["rate"] == []
    # Admins may look at another project's usage; members may not (403, as Nova).
    assert _absolute(cloud, ADMIN, "?tenant_id=other")["totalInstancesUsed"] == 1
    resp = cloud.request("GET", "/v2.1/limits?tenant_id=other", token=DEMO)
    assert "os_compute_api:limits:other_project" in error_message(resp, 403)


def test_deleted_servers_free_their_quota(cloud):
    sid = active_server(cloud)
    assert _absolute(cloud)["totalInstancesUsed"] == 1
    cloud.request("DELETE", f"/v2.1/servers/{sid}")
    cloud.wait_for_status(sid, "DELETED")
    assert _absolute(cloud)["totalInstancesUsed"] == 0


# -- instance actions --------------------------------------------------------

def test_instance_actions_list_and_show(cloud):
    sid = active_server(cloud)
    assert server_action(cloud, sid, {"os-stop": None}).status_int == 202
    cloud.wait_for_status(sid, "SHUTOFF")
    assert server_action(cloud, sid, {"os-start": None}).status_int == 202
    cloud.wait_for_status(sid, "ACTIVE")
    listed = _get(cloud, f"/v2.1/servers/{sid}/os-instance-actions", token=DEMO)
    actions = listed["instanceActions"]
    assert [a["action"] for a in actions] == ["start", "stop", "create"]
    for a in actions:
        assert set(a) == {"action", "instance_uuid", "message", "project_id", "request_id",
                          "start_time", "user_id"}
        assert a["instance_uuid"] == sid and a["project_id"] == "demo"
        assert a["request_id"].startswith("req-") and a["message"] is None
    assert len({a["request_id"] for a in actions}) == 3
    expected = {"create": "compute__do_build_and_run_instance",
                "stop": "compute_stop_instance", "start": "compute_start_instance"}
    for a in actions:
        events = finished_events(cloud, sid, a["action"])
        assert [(e["event"], e["result"]) for e in events] == [(expected[a["action"]], "Success")]
        shown = _get(cloud, f"/v2.1/servers/{sid}/os-instance-actions/{a['request_id']}",
                     token=DEMO)["instanceAction"]
        assert shown["action"] == a["action"] and shown["request_id"] == a["request_id"]
        assert all(set(e) == {"event", "start_time", "finish_time", "result"}
                   for e in shown["events"])


def test_request_id_header_names_the_action(cloud):
    sid = active_server(cloud)
    resp = server_action(cloud, sid, {"pause": None})
    request_id = resp.headers["X-OpenStack-Request-Id"]
    shown = _get(cloud, f"/v2.1/servers/{sid}/os-instance-actions/{request_id}")
    assert shown["instanceAction"]["action"] == "pause"
    error_message(cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions/req-nope"), 404)


def test_actions_of_a_deleted_server_remain_visible(cloud):
    sid = active_server(cloud)
    cloud.request("DELETE", f"/v2.1/servers/{sid}")
    cloud.wait_for_status(sid, "DELETED")
    events = finished_events(cloud, sid, "delete")
    assert [(e["event"], e["result"]) for e in events] == [
        ("compute_terminate_instance", "Success")]


def test_failed_delete_records_an_error_event(cloud):
    sid = active_server(cloud)
    cloud.driver.inject_failure("destroy")
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    server = cloud.wait_for_status(sid, "ERROR")
    assert "Injected failure" in server["fault"]["message"]
    events = finished_events(cloud, sid, "delete")
    assert [(e["event"], e["result"]) for e in events] == [
        ("compute_terminate_instance", "Error")]
    assert sid in cloud.driver.list_instance_uuids()   # the guest is still there
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    assert cloud.driver.list_instance_uuids() == []


def test_other_projects_cannot_see_instance_actions(cloud):
    sid = active_server(cloud)
    request_id = _get(cloud, f"/v2.1/servers/{sid}/os-instance-actions",
                      token=DEMO)["instanceActions"][0]["request_id"]
    for path in (f"/v2.1/servers/{sid}/os-instance-actions",
                 f"/v2.1/servers/{sid}/os-instance-actions/{request_id}"):
        assert sid in error_message(cloud.request("GET", path, token=OTHER), 404)
        assert cloud.request("GET", path, token=ADMIN).status_int == 200
    wait_until(lambda: finished_events(cloud, sid, "create"), what="create finished")
