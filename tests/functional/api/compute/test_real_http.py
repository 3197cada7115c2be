"""The Compute API over real HTTP (waitress on a free port), end to end."""

from __future__ import annotations

import pytest
import requests

from virtstack import service

from .conftest import wait_until


@pytest.fixture
def http_api(cloud):
    server = service.compute_api_server(port=0)
    assert server.port != 0
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_create_server_over_http_and_wait_active(cloud, http_api):
    session = requests.Session()
    session.headers.update({"X-Auth-Token": "demo:demo",
                            "OpenStack-API-Version": "compute 2.19"})
    versions = requests.get(http_api + "/", timeout=10)
    assert versions.status_code == 200
    assert versions.json()["versions"][0]["links"][0]["href"] == f"{http_api}/v2.1/"

    body = {"server": {"name": "over-http", "flavorRef": "42", "imageRef": cloud.image_id,
                       "description": "via waitress"}}
    resp = session.post(http_api + "/v2.1/servers", json=body, timeout=10)
    assert resp.status_code == 202, resp.text
    assert resp.headers["OpenStack-API-Version"] == "compute 2.19"
    location = resp.headers["Location"]
    sid = resp.json()["server"]["id"]
    assert location == f"{http_api}/v2.1/servers/{sid}"

    def active():
        shown = session.get(location, timeout=10)
        assert shown.status_code == 200, shown.text
        server = shown.json()["server"]
        return server if server["status"] == "ACTIVE" else None

    server = wait_until(active, timeout=30, what="ACTIVE over HTTP")
    assert server["description"] == "via waitress"
    assert server["links"][0]["href"] == location

    resp = session.post(location + "/action", json={"os-getConsoleOutput": {"length": 1}},
                        timeout=10)
    assert resp.status_code == 200 and sid in resp.json()["output"]

    resp = session.post(http_api + "/v2.1/servers", data="{oops",
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 400 and "badRequest" in resp.json()
    assert requests.get(http_api + "/v2.1/servers", timeout=10).status_code == 401

    assert session.delete(location, timeout=10).status_code == 204
    wait_until(lambda: session.get(location, timeout=10).status_code == 404, timeout=30,
               what="deleted over HTTP")
