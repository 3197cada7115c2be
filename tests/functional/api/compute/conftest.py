"""Helpers for the Compute API tests: error-body checks, polling with a
deadline, and servers brought into a given state through the API."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


from virtstack.api import wsgi

ADMIN = "admin:admin"
DEMO = "demo:demo"
OTHER = "other:other"


def error_message(resp, status: int) -> str:
    """Assert ``resp`` is an OpenStack error body for ``status``; its message."""
    assert resp.status_int == status, (resp.status, resp.text)
    assert resp.content_type == "application/json", resp.headers
    body = resp.json
    name = wsgi.ERROR_NAMES[status]
    assert list(body) == [name], body
    assert body[name]["code"] == status, body
    message = body[name]["message"]
    assert isinstance(message, str) and message.strip(), body
    return message


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (with a deadline)."""
    deadline = time.monotonic() + timeout
    waiter = threading.Event()
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {result!r})")
        waiter.wait(0.01)


def server_action(cloud, server_id: str, body, token: str = DEMO, **kw):
    return cloud.request("POST", f"/v2.1/servers/{server_id}/action", body, token=token, **kw)


def show(cloud, server_id: str, token: str = ADMIN, version: str | None = None) -> dict:
    resp = cloud.request("GET", f"/v2.1/servers/{server_id}", token=token, version=version)
    assert resp.status_int == 200, resp.text
    return resp.json["server"]


def active_server(cloud, name: str = "srv", token: str = DEMO, **extra) -> str:
    server_id = cloud.create_server(name=name, token=token, **extra)
    cloud.wait_for_status(server_id, "ACTIVE")
    return server_id


def events_of(cloud, server_id: str, action: str, token: str = ADMIN) -> list[dict]:
    """The events of the newest instance action named ``action``."""
    resp = cloud.request("GET", f"/v2.1/servers/{server_id}/os-instance-actions", token=token)
    assert resp.status_int == 200, resp.text
    matching = [a for a in resp.json["instanceActions"] if a["action"] == action]
    assert matching, resp.json
    req_id = matching[0]["request_id"]
    resp = cloud.request("GET", f"/v2.1/servers/{server_id}/os-instance-actions/{req_id}",
                         token=token)
    assert resp.status_int == 200, resp.text
    return resp.json["instanceAction"]["events"]


def finished_events(cloud, server_id: str, action: str) -> list[dict]:
    """Poll until every event of the newest ``action`` has finished."""
    def done():
        events = events_of(cloud, server_id, action)
        return events if events and all(e["finish_time"] for e in events) else None
    return wait_until(done, what=f"{action} events finished")


#: How to bring a fresh server into each vm_state through the API alone.
def _to_active(cloud, token):
    return active_server(cloud, token=token)


def _to_stopped(cloud, token):
    sid = active_server(cloud, token=token)
    assert server_action(cloud, sid, {"os-stop": None}, token=token).status_int == 202
    cloud.wait_for_status(sid, "SHUTOFF")
    return sid


def _to_paused(cloud, token):
    sid = active_server(cloud, token=token)
    assert server_action(cloud, sid, {"pause": None}, token=token).status_int == 202
    cloud.wait_for_status(sid, "PAUSED")
    return sid


def _to_suspended(cloud, token):
    sid = active_server(cloud, token=token)
    assert server_action(cloud, sid, {"suspend": None}, token=token).status_int == 202
    cloud.wait_for_status(sid, "SUSPENDED")
    return sid


def _to_error(cloud, token):
    """ERROR with its guest still on the host: a delete whose destroy failed."""
    sid = active_server(cloud, token=token)
    cloud.driver.inject_failure("destroy")
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}", token=token).status_int == 204
    cloud.wait_for_status(sid, "ERROR")
    return sid


REACH = {"active": _to_active, "stopped": _to_stopped, "paused": _to_paused,
         "suspended": _to_suspended, "error": _to_error}

#: vm_state -> the API status it shows when idle.
STATUS_OF = {"active": "ACTIVE", "stopped": "SHUTOFF", "paused": "PAUSED",
             "suspended": "SUSPENDED", "error": "ERROR", "building": "BUILD"}


def server_in_state(cloud, vm_state: str, token: str = DEMO) -> str:
    return REACH[vm_state](cloud, token)
