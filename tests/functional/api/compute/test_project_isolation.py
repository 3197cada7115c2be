"""Projects see and touch only their own servers; admins see all on request."""

from __future__ import annotations

import pytest

from .conftest import ADMIN, DEMO, OTHER, error_message, show


@pytest.fixture
def servers(cloud):
    """(demo's server, other's server), both ACTIVE."""
    pair = cloud.create_server(name="a-server", token=DEMO), \
        cloud.create_server(name="b-server", token=OTHER)
    for sid in pair:
        cloud.wait_for_status(sid, "ACTIVE")
    return pair


def test_other_project_gets_404_and_changes_nothing(cloud, servers):
    mine, _ = servers
    for method, suffix, body in (
            ("GET", "", None), ("PUT", "", {"server": {"name": "stolen"}}), ("DELETE", "", None),
            ("POST", "/action", {"os-stop": None}), ("POST", "/action", {"pause": None}),
            ("POST", "/action", {"reboot": {"type": "HARD"}}),
            ("POST", "/action", {"os-getConsoleOutput": {}}),
            ("GET", "/os-instance-actions", None)):
        resp = cloud.request(method, f"/v2.1/servers/{mine}{suffix}", body, token=OTHER)
        assert mine in error_message(resp, 404), (method, suffix, body)
    server = show(cloud, mine)
    assert (server["name"], server["status"], server["OS-EXT-STS:task_state"]) == (
        "a-server", "ACTIVE", None)
    actions = cloud.request("GET", f"/v2.1/servers/{mine}/os-instance-actions").json
    assert [a["action"] for a in actions["instanceActions"]] == ["create"]
    assert cloud.driver.get_guest(mine).power_state == 1


def test_404_is_the_same_as_for_a_server_that_does_not_exist(cloud, servers):
    mine, _ = servers
    theirs = cloud.request("GET", f"/v2.1/servers/{mine}", token=OTHER)
    missing_id = mine[:-4] + "0000"
    missing = cloud.request("GET", f"/v2.1/servers/{missing_id}", token=OTHER)
    assert theirs.status_int == missing.status_int == 404
    assert theirs.json["itemNotFound"]["message"].replace(mine, "X") == \
        missing.json["itemNotFound"]["message"].replace(missing_id, "X")


def test_lists_show_only_own_servers(cloud, servers):
    mine, theirs = servers
    for path in ("/v2.1/servers", "/v2.1/servers/detail", "/v2.1/servers?all_tenants=0",
                 "/v2.1/servers/detail?project_id=other", "/v2.1/servers?status=ACTIVE",
                 "/v2.1/servers/detail?changes-since=2000-01-01T00:00:00Z"):
        for token, expected in ((DEMO, mine), (OTHER, theirs)):
            listed = cloud.request("GET", path, token=token).json["servers"]
            assert [s["id"] for s in listed] == [expected], (path, token)
    assert cloud.request("GET", "/v2.1/servers?name=a-server", token=OTHER).json == {
        "servers": []}
    # all_tenants is refused to members (403, as Nova), not silently narrowed.
    for path in ("/v2.1/servers?all_tenants=1", "/v2.1/servers/detail?all_tenants"):
        error_message(cloud.request("GET", path, token=OTHER), 403)


def test_marker_from_another_project_is_unknown(cloud, servers):
    mine, theirs = servers
    resp = cloud.request("GET", f"/v2.1/servers?marker={mine}", token=OTHER)
    assert mine in error_message(resp, 400)
    assert cloud.request("GET", f"/v2.1/servers?marker={theirs}", token=OTHER).json == {
        "servers": []}
    listed = cloud.request("GET", f"/v2.1/servers?all_tenants=1&marker={mine}&sort_key=uuid",
                           token=ADMIN)
    assert listed.status_int == 200


def test_admin_sees_all_with_all_tenants(cloud, servers):
    mine, theirs = servers
    listed = cloud.request("GET", "/v2.1/servers/detail?all_tenants=1", token=ADMIN).json
    by_id = {s["id"]: s for s in listed["servers"]}
    assert set(by_id) == {mine, theirs}
    assert by_id[mine]["tenant_id"] == "demo" and by_id[theirs]["tenant_id"] == "other"
    assert by_id[mine]["hostId"] != by_id[theirs]["hostId"]   # hostId is per project
    # Without all_tenants an admin sees the admin project's servers only.
    assert cloud.request("GET", "/v2.1/servers", token=ADMIN).json["servers"] == []
    # But may act on any server by id.
    assert show(cloud, theirs, token=ADMIN)["name"] == "b-server"
    resp = cloud.request("POST", f"/v2.1/servers/{theirs}/action", {"os-stop": None},
                         token=ADMIN)
    assert resp.status_int == 202
    cloud.wait_for_status(theirs, "SHUTOFF")
    assert show(cloud, theirs, token=OTHER)["status"] == "SHUTOFF"


def test_owner_still_manages_own_server(cloud, servers):
    _, theirs = servers
    resp = cloud.request("PUT", f"/v2.1/servers/{theirs}", {"server": {"name": "renamed"}},
                         token=OTHER)
    assert resp.status_int == 200
    assert cloud.request("DELETE", f"/v2.1/servers/{theirs}", token=OTHER).status_int == 204
    cloud.wait_for_status(theirs, "DELETED")
