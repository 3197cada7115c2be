"""Authentication in front of the Compute API, and project ids in URLs."""

from __future__ import annotations

from .conftest import ADMIN, DEMO, error_message

SID = "6f0cb2d6-0d5c-4bd4-9c0b-2f3f6f1c1a11"

#: Every route of the v2.1 router (checked against the router below).
ROUTES = [
    ("GET", "/v2.1/servers"),
    ("GET", "/v2.1/servers/detail"),
    ("POST", "/v2.1/servers"),
    ("GET", "/v2.1/servers/{server_id}"),
    ("PUT", "/v2.1/servers/{server_id}"),
    ("DELETE", "/v2.1/servers/{server_id}"),
    ("POST", "/v2.1/servers/{server_id}/action"),
    ("POST", "/v2.1/servers/{server_id}/remote-consoles"),
    ("GET", "/v2.1/servers/{server_id}/os-volume_attachments"),
    ("POST", "/v2.1/servers/{server_id}/os-volume_attachments"),
    ("GET", "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"),
    ("PUT", "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"),
    ("DELETE", "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"),
    ("GET", "/v2.1/servers/{server_id}/os-instance-actions"),
    ("GET", "/v2.1/servers/{server_id}/os-instance-actions/{request_id}"),
    ("GET", "/v2.1/flavors"),
    ("GET", "/v2.1/flavors/detail"),
    ("POST", "/v2.1/flavors"),
    ("GET", "/v2.1/flavors/{flavor_id}"),
    ("DELETE", "/v2.1/flavors/{flavor_id}"),
    ("GET", "/v2.1/os-hypervisors"),
    ("GET", "/v2.1/os-hypervisors/detail"),
    ("GET", "/v2.1/os-hypervisors/statistics"),
    ("GET", "/v2.1/os-hypervisors/{hypervisor_id}"),
    ("GET", "/v2.1/limits"),
]

_ARGS = {"server_id": SID, "request_id": "req-1", "flavor_id": "42", "hypervisor_id": "1",
         "volume_id": "00000000-0000-0000-0000-000000000001"}


def _url(template: str, project: str | None = None) -> str:
    url = template.format(**_ARGS)
    if project:
        url = url.replace("/v2.1/", f"/v2.1/{project}/", 1)
    return url


def test_route_list_covers_every_route(cloud):
    mapped = {(r.conditions["method"][0], r.routepath) for r in cloud.app.router.mapper.matchlist}
    assert mapped == set(ROUTES)


def test_every_endpoint_needs_a_token(cloud):
    """Each route, plain and with the project in the URL, without a token and
    with a blank one: 401 with the error body and a WWW-Authenticate header."""
    wrong = []
    for method, template in ROUTES:
        body = {"server": {"name": "x"}} if method in ("POST", "PUT") else None
        for url in (_url(template), _url(template, "demo")):
            for headers in ({}, {"X-Auth-Token": ""}, {"X-Auth-Token": "   "}):
                resp = cloud.request(method, url, body, token=None, headers=headers)
                try:
                    assert "X-Auth-Token" in error_message(resp, 401)
                    assert resp.headers["WWW-Authenticate"]
                except (AssertionError, KeyError) as exc:
                    wrong.append((method, url, headers, str(exc)[:200]))
    assert wrong == []


def test_unauthenticated_request_creates_nothing(cloud):
    body = {"server": {"name": "x", "flavorRef": "42", "imageRef": cloud.image_id}}
    error_message(cloud.request("POST", "/v2.1/servers", body, token=None), 401)
    listing = cloud.request("GET", "/v2.1/servers/detail?all_tenants=1", token=ADMIN)
    assert listing.json["servers"] == []


def test_project_in_url_for_own_project(cloud):
    sid = cloud.create_server(name="mine")
    resp = cloud.request("GET", "/v2.1/demo/servers")
    assert resp.status_int == 200
    assert [s["id"] for s in resp.json["servers"]] == [sid]
    resp = cloud.request("GET", f"/v2.1/demo/servers/{sid}")
    assert resp.status_int == 200
    assert resp.json["server"]["tenant_id"] == "demo"
    assert cloud.request("GET", "/v2.1/demo/flavors/42").json["flavor"]["name"] == "m1.nano"


def test_create_through_project_url(cloud):
    body = {"server": {"name": "p", "flavorRef": "42", "imageRef": cloud.image_id}}
    resp = cloud.request("POST", "/v2.1/demo/servers", body)
    assert resp.status_int == 202
    sid = resp.json["server"]["id"]
    assert resp.headers["Location"].endswith(f"/servers/{sid}")
    cloud.wait_for_status(sid, "ACTIVE")


def test_project_in_url_for_another_project_is_400(cloud):
    for method, template in ROUTES:
        if method != "GET":
            continue
        resp = cloud.request(method, _url(template, "other"), token=DEMO)
        message = error_message(resp, 400)
        assert "other" in message and "demo" in message, template


def test_other_project_url_does_not_reach_its_servers(cloud):
    sid = cloud.create_server(name="theirs", token="other:other")
    resp = cloud.request("DELETE", f"/v2.1/other/servers/{sid}", token=DEMO)
    error_message(resp, 400)
    assert cloud.request("GET", f"/v2.1/servers/{sid}", token="other:other").status_int == 200


def test_unknown_urls_are_404(cloud):
    for path in ("/v2.1/nonexistent", "/v2.1/demo/nonexistent", "/v2.1/demo",
                 "/v2.1/other/nonexistent/x", "/v3/servers", "/v2.1/demo/demo/servers"):
        assert cloud.request("GET", path, token=DEMO).status_int == 404, path
        error_message(cloud.request("GET", path, token=DEMO), 404)


def test_token_without_project_uses_the_user_as_project(cloud):
    sid = cloud.create_server(token="solo")
    assert cloud.request("GET", f"/v2.1/servers/{sid}", token="solo:solo").status_int == 200


def test_only_the_admin_user_is_admin(cloud):
    error_message(cloud.request("GET", "/v2.1/os-hypervisors", token="demo:admin"), 403)
    assert cloud.request("GET", "/v2.1/os-hypervisors", token="admin:demo").status_int == 200
