"""Volume actions and the attachments API through the WSGI app: extend,
the legacy attach actions, admin actions, the new attach flow, and races
for one volume."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.functional.api.volume.conftest import (ADMIN, CONNECTOR, DEMO, OTHER, action,
                                                  create_volume, error_message, show, vol_url,
                                                  wait_status)
from tests.unit.db.racing import race

SERVER = str(uuid.uuid4())
MISSING = str(uuid.uuid4())


def _size_on_disk(cloud, volume_id):
    from virtstack.db import volume as db_volume
    from virtstack.volume import flows

    return os.path.getsize(cloud.volume_backend.local_path(
        flows.volume_ref(db_volume.volume_get(volume_id))))


def attach(cloud, volume_id, token=DEMO, project="demo", complete=True) -> str:
    resp = cloud.volume_request("POST", f"/v3/{project}/attachments", {"attachment": {
        "volume_uuid": volume_id, "instance_uuid": SERVER, "connector": CONNECTOR}},
        token=token, version="3.44")
    assert resp.status_int == 200, resp.text
    att = resp.json["attachment"]
    if complete:
        resp = cloud.volume_request("POST", f"/v3/{project}/attachments/{att['id']}/action",
                                    {"os-complete": None}, token=token, version="3.44")
        assert resp.status_int == 204, resp.text
    return att["id"]


# -- extend ----------------------------------------------------------------------

def test_extend_available_volume(cloud):
    vid = create_volume(cloud)
    assert action(cloud, vid, {"os-extend": {"new_size": 3}}).status_int == 202
    poll_size = wait_status(cloud, vid, "available")
    from tests.waiting import poll
    poll(lambda: show(cloud, vid)["size"] == 3, 10, "size 3")
    assert poll_size["status"] == "available"
    assert _size_on_disk(cloud, vid) == 3 * 1024 ** 3


@pytest.mark.parametrize("new_size, words", [
    (1, "New size for extend must be greater than current size. (current: 1, extended: 1)"),
    (0, "must be an integer and greater than 0"),
    (-2, "must be an integer and greater than 0"),
    ("x", "must be an integer"),
    (1.5, "new_size"),
])
def test_extend_bad_sizes(cloud, new_size, words):
    vid = create_volume(cloud)
    assert words in error_message(action(cloud, vid, {"os-extend": {"new_size": new_size}}),
                                  400)
    assert show(cloud, vid)["status"] == "available"


def test_extend_over_quota_is_413(cloud, conf):
    conf.config(gigabytes=3, group="quota")
    vid = create_volume(cloud)
    msg = error_message(action(cloud, vid, {"os-extend": {"new_size": 5}}), 413)
    assert "Requested 4G, quota is 3G and 1G has been consumed" in msg


def test_extend_in_use_needs_3_42_and_returns_to_in_use(cloud):
    vid = create_volume(cloud)
    attach(cloud, vid)
    msg = error_message(action(cloud, vid, {"os-extend": {"new_size": 2}}, version="3.41"), 400)
    assert "must be available to extend, but the current status is: in-use" in msg
    assert action(cloud, vid, {"os-extend": {"new_size": 2}}, version="3.42").status_int == 202
    from tests.waiting import poll
    vol = poll(lambda: (lambda v: v if v["size"] == 2 else None)(show(cloud, vid)), 10,
               "the extend")
    assert vol["status"] == "in-use" and len(vol["attachments"]) == 1


# -- legacy attach actions -----------------------------------------------------------

def test_reserve_unreserve_attach_detach(cloud):
    vid = create_volume(cloud)
    assert action(cloud, vid, {"os-reserve": None}).status_int == 202
    assert show(cloud, vid)["status"] == "attaching"
    msg = error_message(action(cloud, vid, {"os-reserve": {}}), 400)
    assert msg.endswith("status must be available to reserve, but the current status is: "
                        "attaching.")
    assert action(cloud, vid, {"os-unreserve": None}).status_int == 202
    assert show(cloud, vid)["status"] == "available"
    error_message(action(cloud, vid, {"os-unreserve": None}), 400)

    resp = action(cloud, vid, {"os-initialize_connection": {"connector": CONNECTOR}})
    assert resp.status_int == 200
    info = resp.json["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["volume_id"] == vid
    assert action(cloud, vid, {"os-attach": {"instance_uuid": SERVER,
                                             "mountpoint": "/dev/vdb"}}).status_int == 202
    vol = show(cloud, vid)
    assert vol["status"] == "in-use"
    (entry,) = vol["attachments"]
    assert (entry["server_id"], entry["device"], entry["volume_id"], entry["id"]) == (
        SERVER, "/dev/vdb", vid, vid)
    assert set(entry) == {"server_id", "attachment_id", "attached_at", "host_name",
                          "volume_id", "device", "id"}
    assert action(cloud, vid, {"os-begin_detaching": None}).status_int == 202
    assert show(cloud, vid)["status"] == "detaching"
    assert action(cloud, vid, {"os-roll_detaching": None}).status_int == 202
    assert show(cloud, vid)["status"] == "in-use"
    assert action(cloud, vid, {"os-terminate_connection": {"connector": CONNECTOR}}
                  ).status_int == 202
    assert action(cloud, vid, {"os-detach": {"attachment_id": entry["attachment_id"]}}
                  ).status_int == 202
    vol = show(cloud, vid)
    assert vol["status"] == "available" and vol["attachments"] == []


@pytest.mark.parametrize("body, words", [
    ({"os-nope": None}, "no such action"),
    ({"os-extend": {}}, "new_size"),
    ({"os-reserve": {"x": 1}}, "takes no arguments"),
    ({"os-attach": {"mountpoint": "/dev/vdb"}}, "instance_uuid or host_name"),
    ({"os-initialize_connection": {}}, "connector"),
    ({"os-extend": {"new_size": 2}, "os-reserve": None}, "exactly one key"),
])
def test_bad_actions(cloud, body, words):
    vid = create_volume(cloud)
    assert words in error_message(action(cloud, vid, body), 400)


def test_wrong_statuses_are_400(cloud):
    vid = create_volume(cloud)
    msg = error_message(action(cloud, vid, {"os-begin_detaching": None}), 400)
    assert "must be in-use to begin detaching, but the current status is: available" in msg
    attach(cloud, vid)
    msg = error_message(cloud.volume_request("DELETE", vol_url(vid)), 400)
    assert "attached" in msg and SERVER in msg
    error_message(action(cloud, vid, {"os-reserve": None}), 400)
    error_message(action(cloud, vid, {"os-update_readonly_flag": {"readonly": True}}), 400)


def test_admin_actions(cloud):
    vid = create_volume(cloud)
    for body in ({"os-reset_status": {"status": "error"}}, {"os-force_delete": None}):
        msg = error_message(action(cloud, vid, body), 403)
        assert "Policy doesn't allow" in msg
    assert show(cloud, vid)["status"] == "available"
    resp = action(cloud, vid, {"os-reset_status": {"status": "error"}}, token=ADMIN,
                  project="admin")
    assert resp.status_int == 202
    assert show(cloud, vid)["status"] == "error"
    error_message(action(cloud, vid, {"os-reset_status": {"status": "weird"}}, token=ADMIN,
                         project="admin"), 400)
    assert action(cloud, vid, {"os-set_bootable": {"bootable": True}}).status_int == 202
    assert show(cloud, vid)["bootable"] == "true"
    assert action(cloud, vid, {"os-force_delete": {}}, token=ADMIN,
                  project="admin").status_int == 202
    from tests.functional.api.volume.conftest import wait_gone
    wait_gone(cloud, vid)


def test_force_delete_never_deletes_an_attached_volume(cloud):
    vid = create_volume(cloud)
    attach(cloud, vid)
    msg = error_message(action(cloud, vid, {"os-force_delete": None}, token=ADMIN,
                               project="admin"), 400)
    assert "detach it before deleting it" in msg
    assert show(cloud, vid)["status"] == "in-use"


# -- attachments API -------------------------------------------------------------------

def test_attachment_flow(cloud):
    vid = create_volume(cloud)
    resp = cloud.volume_request("POST", "/v3/demo/attachments", {"attachment": {
        "volume_uuid": vid, "instance_uuid": SERVER}}, version="3.27")
    assert resp.status_int == 200, resp.text
    att = resp.json["attachment"]
    assert (att["status"], att["instance"], att["volume_id"]) == ("reserved", SERVER, vid)
    assert show(cloud, vid)["status"] == "reserved"
    url = f"/v3/demo/attachments/{att['id']}"
    resp = cloud.volume_request("PUT", url, {"attachment": {"connector": CONNECTOR}},
                                version="3.27")
    assert resp.status_int == 200
    info = resp.json["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["access_mode"] == "rw"
    assert show(cloud, vid)["status"] == "attaching"
    error_message(cloud.volume_request("POST", url + "/action", {"os-complete": None},
                                       version="3.43"), 404)
    assert cloud.volume_request("POST", url + "/action", {"os-complete": None},
                                version="3.44").status_int == 204
    vol = show(cloud, vid)
    assert vol["status"] == "in-use" and vol["attachments"][0]["attachment_id"] == att["id"]
    listed = cloud.volume_request("GET", "/v3/demo/attachments", version="3.27").json
    assert listed["attachments"] == [{"id": att["id"], "status": "attached",
                                      "instance": SERVER, "volume_id": vid}]
    detail = cloud.volume_request("GET", "/v3/demo/attachments/detail?volume_id=" + vid,
                                  version="3.27").json["attachments"]
    assert detail[0]["attached_at"] and detail[0]["attach_mode"] == "rw"
    assert cloud.volume_request("GET", url, version="3.27").json["attachment"]["id"] == att["id"]
    resp = cloud.volume_request("DELETE", url, version="3.27")
    assert resp.status_int == 200 and resp.json == {"attachments": []}
    assert show(cloud, vid)["status"] == "available"
    error_message(cloud.volume_request("GET", url, version="3.27"), 404)


def test_attachments_need_3_27_and_good_input(cloud):
    vid = create_volume(cloud)
    body = {"attachment": {"volume_uuid": vid, "instance_uuid": SERVER}}
    error_message(cloud.volume_request("POST", "/v3/demo/attachments", body, version="3.26"),
                  404)
    error_message(cloud.volume_request("POST", "/v3/demo/attachments",
                                       {"attachment": {"volume_uuid": vid}}, version="3.27"),
                  400)
    error_message(cloud.volume_request("POST", "/v3/demo/attachments", {"attachment": dict(
        body["attachment"], mode="rw")}, version="3.53"), 400)
    error_message(cloud.volume_request("POST", "/v3/demo/attachments", {"attachment": {
        "volume_uuid": MISSING, "instance_uuid": SERVER}}, version="3.27"), 404)
    for method in ("GET", "DELETE"):
        error_message(cloud.volume_request(method, f"/v3/demo/attachments/{MISSING}",
                                           version="3.27"), 404)
    error_message(cloud.volume_request("PUT", f"/v3/demo/attachments/{MISSING}", {
        "attachment": {"connector": CONNECTOR}}, version="3.27"), 404)
    assert show(cloud, vid)["status"] == "available"


def test_attachments_of_other_projects_are_404(cloud):
    vid = create_volume(cloud)
    att_id = attach(cloud, vid)
    for method, suffix, body in (("GET", "", None), ("DELETE", "", None),
                                 ("PUT", "", {"attachment": {"connector": CONNECTOR}}),
                                 ("POST", "/action", {"os-complete": None})):
        resp = cloud.volume_request(method, f"/v3/other/attachments/{att_id}{suffix}", body,
                                    token=OTHER, version="3.44")
        error_message(resp, 404)
    assert cloud.volume_request("GET", "/v3/other/attachments", token=OTHER,
                                version="3.44").json["attachments"] == []
    error_message(cloud.volume_request("POST", "/v3/other/attachments", {"attachment": {
        "volume_uuid": vid, "instance_uuid": SERVER}}, token=OTHER, version="3.44"), 404)
    assert show(cloud, vid)["status"] == "in-use"


# -- races --------------------------------------------------------------------------------

def test_twenty_concurrent_attachment_creates_one_wins(cloud):
    vid = create_volume(cloud)

    def create(i):
        return cloud.volume_request("POST", "/v3/demo/attachments", {"attachment": {
            "volume_uuid": vid, "instance_uuid": str(uuid.uuid4())}}, version="3.27")

    results = race(20, create)
    assert [r.status_int for r in results].count(200) == 1, [r.text for r in results]
    for resp in results:
        if resp.status_int != 200:
            assert "status must be available to reserve, but the current status is: " \
                   "reserved" in error_message(resp, 400)
    assert len(cloud.volume_request("GET", "/v3/demo/attachments",
                                    version="3.27").json["attachments"]) == 1


def test_twenty_concurrent_reserves_one_wins(cloud):
    vid = create_volume(cloud)
    results = race(20, lambda i: action(cloud, vid, {"os-reserve": None}))
    assert [r.status_int for r in results].count(202) == 1
    assert all(r.status_int == 400 for r in results if r.status_int != 202)
    assert show(cloud, vid)["status"] == "attaching"


def test_concurrent_delete_and_reserve_one_wins(cloud):
    for _ in range(3):
        vid = create_volume(cloud)

        def go(i):
            if i % 2:
                return cloud.volume_request("DELETE", vol_url(vid))
            return action(cloud, vid, {"os-reserve": None})

        results = race(8, go)
        wins = [i for i, r in enumerate(results) if r.status_int == 202]
        assert len(wins) == 1, [r.text for r in results]
        for resp in results:
            if resp.status_int != 202:
                error_message(resp, 400)
        if wins[0] % 2:  # the delete won
            from tests.functional.api.volume.conftest import wait_gone
            wait_gone(cloud, vid)
        else:
            vol = show(cloud, vid)
            assert vol["status"] == "attaching"
            assert action(cloud, vid, {"os-unreserve": None}).status_int == 202
