"""createImage (server snapshot) and the VNC console APIs, on the fake driver."""

from __future__ import annotations

from virtstack.db import image as db_image

from .conftest import (ADMIN, DEMO, OTHER, active_server, error_message, finished_events,
                       server_action, server_in_state, show, wait_until)


def _image_id(resp) -> str:
    assert resp.status_int == 202, resp.text
    return resp.headers["Location"].rsplit("/", 1)[1]


def test_create_image_makes_an_active_private_image_of_the_project(cloud):
    sid = active_server(cloud)
    resp = server_action(cloud, sid, {"createImage": {"name": "snap-1",
                                                      "metadata": {"purpose": "backup"}}})
    image_id = _image_id(resp)
    assert resp.headers["Location"].endswith(f"/images/{image_id}")
    wait_until(lambda: db_image.get(image_id).status == "active", what="image active")
    image = db_image.get(image_id)
    assert image.name == "snap-1" and image.owner == "demo" and image.visibility == "private"
    assert image.properties["purpose"] == "backup"
    assert image.properties["instance_uuid"] == sid
    assert image.properties["image_type"] == "snapshot"
    assert image.properties["base_image_ref"] == cloud.image_id
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    events = finished_events(cloud, sid, "createImage")
    assert [(e["event"], e["result"]) for e in events] == [("compute_snapshot_instance",
                                                            "Success")]


def test_a_snapshot_boots_a_new_server(cloud):
    sid = active_server(cloud)
    image_id = _image_id(server_action(cloud, sid, {"createImage": {"name": "snap"}}))
    wait_until(lambda: db_image.get(image_id).status == "active", what="image active")
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "from-snap", "flavorRef": "42", "imageRef": image_id}})
    assert resp.status_int == 202, resp.text
    new = cloud.wait_for_status(resp.json["server"]["id"], "ACTIVE")
    assert new["image"]["id"] == image_id


def test_the_snapshot_is_not_visible_to_other_projects(cloud):
    sid = active_server(cloud)
    image_id = _image_id(server_action(cloud, sid, {"createImage": {"name": "mine"}}))
    wait_until(lambda: db_image.get(image_id).status == "active", what="image active")
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "theirs", "flavorRef": "42", "imageRef": image_id}}, token=OTHER)
    assert image_id in error_message(resp, 400)


def test_a_failed_capture_deletes_the_image_and_ends_the_task(cloud):
    sid = active_server(cloud)
    cloud.driver.inject_failure("snapshot")
    image_id = _image_id(server_action(cloud, sid, {"createImage": {"name": "doomed"}}))
    events = finished_events(cloud, sid, "createImage")
    assert [e["result"] for e in events] == ["Error"]
    wait_until(lambda: image_id not in {i.id for i in db_image.list_()}, what="image gone")
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None


def test_snapshot_of_a_stopped_server_keeps_it_stopped(cloud):
    sid = server_in_state(cloud, "stopped")
    image_id = _image_id(server_action(cloud, sid, {"createImage": {"name": "cold"}}))
    wait_until(lambda: db_image.get(image_id).status == "active", what="image active")
    assert cloud.wait_for_status(sid, "SHUTOFF")["OS-EXT-STS:power_state"] == 4


def test_create_image_bad_input(cloud):
    sid = active_server(cloud)
    for body, field in (({"createImage": {}}, "name"),
                        ({"createImage": {"name": ""}}, "name"),
                        ({"createImage": {"name": "x" * 256}}, "name"),
                        ({"createImage": {"name": "ok", "metadata": {"k": 1}}}, "metadata"),
                        ({"createImage": {"name": "ok", "extra": 1}}, "extra")):
        assert field in error_message(server_action(cloud, sid, body), 400), body
    other = error_message(server_action(cloud, sid, {"createImage": {"name": "x"}}, token=OTHER),
                          404)
    assert sid in other


def test_vnc_console_action_and_remote_consoles(cloud):
    sid = active_server(cloud)
    resp = server_action(cloud, sid, {"os-getVNCConsole": {"type": "novnc"}})
    assert resp.status_int == 200, resp.text
    url = resp.json["console"]["url"]
    assert resp.json["console"]["type"] == "novnc" and url.startswith("vnc://")
    port = cloud.driver.get_vnc_console(None, _instance(cloud, sid)).port
    assert url.endswith(f":{port}")
    rc = cloud.request("POST", f"/v2.1/servers/{sid}/remote-consoles",
                       {"remote_console": {"protocol": "vnc", "type": "novnc"}}, version="2.6")
    assert rc.status_int == 200, rc.text
    assert rc.json == {"remote_console": {"protocol": "vnc", "type": "novnc", "url": url}}


def test_remote_consoles_needs_2_6_and_vnc(cloud):
    sid = active_server(cloud)
    path = f"/v2.1/servers/{sid}/remote-consoles"
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    error_message(cloud.request("POST", path, body, version="2.5"), 404)
    message = error_message(cloud.request("POST", path, {"remote_console": {
        "protocol": "spice", "type": "spice-html5"}}, version="2.6"), 400)
    assert "spice" in message
    error_message(cloud.request("POST", path, {"remote_console": {"protocol": "vnc"}},
                                version="2.6"), 400)
    error_message(cloud.request("POST", path, body, version="2.6", token=OTHER), 404)


def test_no_console_for_a_stopped_server(cloud):
    sid = server_in_state(cloud, "stopped")
    error_message(server_action(cloud, sid, {"os-getVNCConsole": {"type": "novnc"}}), 409)
    error_message(server_action(cloud, sid, {"os-getVNCConsole": {"type": "spice"}}), 400)


def _instance(cloud, sid):
    from virtstack.db import instance as db_instance

    return db_instance.to_object(db_instance.get(sid))


def test_admin_sees_the_console_of_any_project(cloud):
    sid = active_server(cloud, token=DEMO)
    resp = server_action(cloud, sid, {"os-getVNCConsole": {"type": "novnc"}}, token=ADMIN)
    assert resp.status_int == 200 and show(cloud, sid)["status"] == "ACTIVE"
