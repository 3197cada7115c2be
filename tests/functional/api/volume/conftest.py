"""Helpers for the Block Storage API tests: error-body checks and volumes
brought into a given state through the API (polling with a deadline)."""

from __future__ import annotations

from tests.functional.api.compute.conftest import error_message  # noqa: F401  (same bodies)
from tests.waiting import poll

ADMIN = "admin:admin"
DEMO = "demo:demo"
OTHER = "other:other"
P = "/v3/demo"  # the demo project's URL prefix
LATEST = "3.67"


def vol_url(volume_id: str = "", project: str = "demo") -> str:
    return f"/v3/{project}/volumes" + (f"/{volume_id}" if volume_id else "")


def show(cloud, volume_id: str, token: str = DEMO, project: str = "demo") -> dict:
    resp = cloud.volume_request("GET", vol_url(volume_id, project), token=token)
    assert resp.status_int == 200, resp.text
    return resp.json["volume"]


def wait_status(cloud, volume_id: str, status: str, token: str = DEMO,
                project: str = "demo", timeout: float = 30.0) -> dict:
    def reached():
        vol = show(cloud, volume_id, token, project)
        return vol if vol["status"] == status else None
    return poll(reached, timeout, f"volume {volume_id} to be {status}", interval=0.02)


def wait_gone(cloud, volume_id: str, token: str = DEMO, project: str = "demo",
              timeout: float = 30.0) -> None:
    poll(lambda: cloud.volume_request("GET", vol_url(volume_id, project),
                                      token=token).status_int == 404,
         timeout, f"volume {volume_id} to be deleted", interval=0.02)


def create_volume(cloud, size=1, token: str = DEMO, project: str = "demo",
                  wait: bool = True, **extra) -> str:
    resp = cloud.volume_request("POST", vol_url(project=project),
                                {"volume": {"size": size, **extra}}, token=token)
    assert resp.status_int == 202, resp.text
    volume_id = resp.json["volume"]["id"]
    if wait:
        wait_status(cloud, volume_id, "available", token, project)
    return volume_id


def action(cloud, volume_id: str, body, token: str = DEMO, version: str | None = None,
           project: str = "demo"):
    return cloud.volume_request("POST", vol_url(volume_id, project) + "/action", body,
                                token=token, version=version)


def snapshot(cloud, volume_id: str, token: str = DEMO, project: str = "demo",
             wait: bool = True, **extra) -> str:
    resp = cloud.volume_request("POST", f"/v3/{project}/snapshots",
                                {"snapshot": {"volume_id": volume_id, **extra}}, token=token)
    assert resp.status_int == 202, resp.text
    snap_id = resp.json["snapshot"]["id"]
    if wait:
        poll(lambda: cloud.volume_request("GET", f"/v3/{project}/snapshots/{snap_id}",
                                          token=token).json["snapshot"]["status"] == "available",
             30, f"snapshot {snap_id} available", interval=0.02)
    return snap_id


CONNECTOR = {"host": "testhost", "ip": "127.0.0.1", "initiator": "iqn.1993-08.org.debian:01:abc",
             "platform": "x86_64", "os_type": "linux", "multipath": False}
