"""The Compute API under ``[api] auth_strategy = keystone``: tokens of the
embedded identity service, validated in process."""

from __future__ import annotations

import pytest

from tests.conftest import Cloud
from tests.functional.api.compute.conftest import error_message
from tests.functional.api.compute.test_auth import ROUTES, _url
from virtstack.api.compute import ComputeApp


@pytest.fixture
def keystone_cloud(cloud, identity, conf):
    """The cloud fixture's services behind a Compute API that takes real
    tokens (sharing the identity fixture's clock)."""
    conf.config(auth_strategy="keystone", group="api")
    app = ComputeApp()
    app.authed.provider.clock = identity.clock
    return Cloud(cloud.compute, app, cloud.image_id)


def _unauthorized(resp) -> str:
    message = error_message(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:5000/v3"'
    return message


def test_every_endpoint_needs_a_valid_token(keystone_cloud, identity):
    """Each route, plain and with the project in the URL: no token, a blank
    one, garbage and a noauth-style one are all 401."""
    wrong = []
    for method, template in ROUTES:
        body = {"server": {"name": "x"}} if method in ("POST", "PUT") else None
        for url in (_url(template), _url(template, "demo")):
            for headers in ({}, {"X-Auth-Token": ""}, {"X-Auth-Token": "garbage"},
                            {"X-Auth-Token": "demo:demo"}, {"X-Auth-Token": "admin:admin"}):
                resp = keystone_cloud.request(method, url, body, token=None, headers=headers)
                try:
                    assert "X-Auth-Token" in _unauthorized(resp)
                except (AssertionError, KeyError) as exc:
                    wrong.append((method, url, headers, str(exc)[:200]))
    assert wrong == []
    # Version discovery stays public.
    assert keystone_cloud.request("GET", "/", token=None).status_int == 200
    assert keystone_cloud.request("GET", "/v2.1", token=None).status_int == 200


def test_a_real_token_works_and_names_the_caller(keystone_cloud, identity):
    token = identity.token("demo")
    project_id = identity.project_id("demo")
    sid = keystone_cloud.create_server(name="mine", token=token)
    resp = keystone_cloud.request("GET", f"/v2.1/servers/{sid}", token=token)
    assert resp.status_int == 200, resp.text
    server = resp.json["server"]
    assert server["tenant_id"] == project_id
    demo_user = identity.request("GET", "/v3/users?name=demo",
                                 token=identity.token()).json["users"][0]
    assert server["user_id"] == demo_user["id"]
    # The project in the URL is the token's.
    assert keystone_cloud.request("GET", f"/v2.1/{project_id}/servers/{sid}",
                                  token=token).status_int == 200


def test_expired_and_revoked_tokens_are_401(keystone_cloud, identity):
    expiring = identity.token("demo")
    revoked = identity.token("demo")
    assert keystone_cloud.request("GET", "/v2.1/servers", token=expiring).status_int == 200
    resp = identity.request("DELETE", "/v3/auth/tokens", token=revoked,
                            headers={"X-Subject-Token": revoked})
    assert resp.status_int == 204
    _unauthorized(keystone_cloud.request("GET", "/v2.1/servers", token=revoked))
    identity.clock.advance(3601)
    _unauthorized(keystone_cloud.request("GET", "/v2.1/servers", token=expiring))


def test_unscoped_token_is_403(keystone_cloud, identity):
    unscoped = identity.token("demo", None)
    error_message(keystone_cloud.request("GET", "/v2.1/servers", token=unscoped), 403)


def test_admin_role_makes_admin(keystone_cloud, identity):
    error_message(keystone_cloud.request("GET", "/v2.1/os-hypervisors",
                                         token=identity.token("demo")), 403)
    assert keystone_cloud.request("GET", "/v2.1/os-hypervisors",
                                  token=identity.token()).status_int == 200


def test_a_member_of_another_project_gets_404(keystone_cloud, identity):
    identity.create_project("project-b")
    identity.create_user("bob", "bob-pw", project="project-b")
    bob = identity.token("bob", "project-b", "bob-pw")
    demo = identity.token("demo")
    sid = keystone_cloud.create_server(name="in-demo", token=demo)
    for method, path, body in (("GET", f"/v2.1/servers/{sid}", None),
                               ("DELETE", f"/v2.1/servers/{sid}", None),
                               ("POST", f"/v2.1/servers/{sid}/action", {"os-stop": None})):
        error_message(keystone_cloud.request(method, path, body, token=bob), 404)
    assert keystone_cloud.request("GET", "/v2.1/servers", token=bob).json["servers"] == []
    assert keystone_cloud.request("GET", f"/v2.1/servers/{sid}", token=demo).status_int == 200
    # The admin sees it.
    assert keystone_cloud.request("GET", f"/v2.1/servers/{sid}",
                                  token=identity.token()).status_int == 200
