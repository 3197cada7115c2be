"""/v3 version documents and /v3/auth: issuing, validating, checking and
revoking tokens, the caller's projects and catalog."""

from __future__ import annotations

import pytest

from .conftest import identity_error


def test_version_documents_need_no_token(identity):
    root = identity.request("GET", "/")
    assert root.status_int == 300
    [version] = root.json["versions"]["values"]
    assert version["id"] == "v3.14" and version["status"] == "stable"
    assert version["links"] == [{"rel": "self", "href": "http://localhost/v3/"}]
    assert version["media-types"] == [{"base": "application/json",
                                       "type": "application/vnd.openstack.identity-v3+json"}]
    for path in ("/v3", "/v3/"):
        resp = identity.request("GET", path)
        assert resp.status_int == 200
        assert resp.json["version"] == version
    assert identity.request("POST", "/v3", {}).status_int == 405


def test_password_token_scoped_by_name(identity):
    resp = identity.password_auth("demo", identity.accounts["demo"].password, "demo")
    assert resp.status_int == 201, resp.text
    token_id = resp.headers["X-Subject-Token"]
    assert len(token_id) > 100
    token = resp.json["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "demo"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["user"]["password_expires_at"] is None
    assert token["project"]["name"] == "demo"
    assert token["project"]["domain"] == {"id": "default", "name": "Default"}
    assert token["is_domain"] is False
    # member implies reader: both are listed.
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]
    assert len(token["audit_ids"]) == 1 and len(token["audit_ids"][0]) == 22
    assert token["expires_at"].endswith("Z") and token["issued_at"].endswith("Z")
    assert token["expires_at"] > token["issued_at"]
    assert token_id not in resp.text


def test_catalog_lists_every_service_for_the_project(identity):
    resp = identity.password_auth("demo", identity.accounts["demo"].password, "demo")
    project_id = resp.json["token"]["project"]["id"]
    catalog = {entry["type"]: entry for entry in resp.json["token"]["catalog"]}
    assert set(catalog) == {"identity", "compute", "volumev3", "block-storage", "image"}
    urls = {}
    for service_type, entry in catalog.items():
        assert entry["id"] and entry["name"]
        endpoints = entry["endpoints"]
        assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
        assert {e["region_id"] for e in endpoints} == {"RegionOne"}
        assert {e["region"] for e in endpoints} == {"RegionOne"}
        assert len({e["url"] for e in endpoints}) == 1
        assert len({e["id"] for e in endpoints}) == 3
        urls[service_type] = endpoints[0]["url"]
    assert urls == {"identity": "http://127.0.0.1:5000/v3",
                    "compute": "http://127.0.0.1:8774/v2.1",
                    "volumev3": f"http://127.0.0.1:8776/v3/{project_id}",
                    "block-storage": f"http://127.0.0.1:8776/v3/{project_id}",
                    "image": "http://127.0.0.1:9292"}


def test_catalog_follows_public_host_and_ports(identity, conf):
    conf.config(public_host="cloud.example", compute_port=18774, group="api")
    resp = identity.password_auth("admin", identity.accounts["admin"].password, "admin")
    catalog = {e["type"]: e["endpoints"][0]["url"] for e in resp.json["token"]["catalog"]}
    assert catalog["compute"] == "http://cloud.example:18774/v2.1"
    assert catalog["identity"] == "http://cloud.example:5000/v3"


def test_password_by_user_id_and_project_by_id(identity):
    admin = identity.token()
    users = identity.request("GET", "/v3/users?name=demo", token=admin).json["users"]
    project_id = identity.project_id("demo")
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": users[0]["id"], "password": identity.accounts["demo"].password}}},
        "scope": {"project": {"id": project_id}}}}
    resp = identity.request("POST", "/v3/auth/tokens", body)
    assert resp.status_int == 201, resp.text
    assert resp.json["token"]["project"]["id"] == project_id


def test_unscoped_token_and_default_project(identity):
    # No scope: the user's default project (set by bootstrap).
    resp = identity.password_auth("demo", identity.accounts["demo"].password)
    assert resp.json["token"]["project"]["name"] == "demo"
    # Explicitly unscoped: no project, roles or catalog.
    resp = identity.password_auth("demo", identity.accounts["demo"].password,
                                  scope="unscoped")
    assert resp.status_int == 201, resp.text
    token = resp.json["token"]
    assert "project" not in token and "catalog" not in token and "roles" not in token
    unscoped = resp.headers["X-Subject-Token"]
    # An unscoped token lists the projects it may be scoped to, not a catalog.
    projects = identity.request("GET", "/v3/auth/projects", token=unscoped)
    assert [p["name"] for p in projects.json["projects"]] == ["demo"]
    identity_error(identity.request("GET", "/v3/auth/catalog", token=unscoped), 403)


def test_token_method_rescopes_and_keeps_the_expiry(identity):
    unscoped = identity.password_auth("admin", identity.accounts["admin"].password,
                                      scope="unscoped")
    parent = unscoped.json["token"]
    identity.clock.advance(60)
    body = {"auth": {"identity": {"methods": ["token"], "token": {
        "id": unscoped.headers["X-Subject-Token"]}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    resp = identity.request("POST", "/v3/auth/tokens", body)
    assert resp.status_int == 201, resp.text
    token = resp.json["token"]
    assert token["methods"] == ["token"]
    assert token["project"]["name"] == "admin"
    assert token["expires_at"] == parent["expires_at"]
    assert token["audit_ids"][1] == parent["audit_ids"][0]
    assert token["audit_ids"][0] != parent["audit_ids"][0]


def test_validate_check_and_revoke(identity):
    admin = identity.token()
    demo = identity.token("demo")
    resp = identity.request("GET", "/v3/auth/tokens", token=admin,
                            headers={"X-Subject-Token": demo})
    assert resp.status_int == 200, resp.text
    assert resp.headers["X-Subject-Token"] == demo
    assert resp.json["token"]["user"]["name"] == "demo"
    assert "catalog" in resp.json["token"]
    resp = identity.request("GET", "/v3/auth/tokens?nocatalog", token=admin,
                            headers={"X-Subject-Token": demo})
    assert "catalog" not in resp.json["token"]
    # A user may validate their own token.
    assert identity.request("GET", "/v3/auth/tokens", token=demo,
                            headers={"X-Subject-Token": demo}).status_int == 200
    head = identity.request("HEAD", "/v3/auth/tokens", token=admin,
                            headers={"X-Subject-Token": demo})
    assert head.status_int == 200 and head.body == b""
    resp = identity.request("DELETE", "/v3/auth/tokens", token=demo,
                            headers={"X-Subject-Token": demo})
    assert resp.status_int == 204
    identity_error(identity.request("GET", "/v3/auth/tokens", token=admin,
                                    headers={"X-Subject-Token": demo}), 404)
    assert identity.request("HEAD", "/v3/auth/tokens", token=admin,
                            headers={"X-Subject-Token": demo}).status_int == 404
    identity_error(identity.request("GET", "/v3/auth/projects", token=demo), 401)
    # The admin's token is untouched.
    assert identity.request("GET", "/v3/auth/projects", token=admin).status_int == 200


def test_a_member_cannot_see_anothers_token(identity):
    identity.create_user("carol", "carol-pw", project="demo")
    carol = identity.token("carol", "demo", "carol-pw")
    demo = identity.token("demo")
    identity_error(identity.request("GET", "/v3/auth/tokens", token=carol,
                                    headers={"X-Subject-Token": demo}), 403)
    identity_error(identity.request("DELETE", "/v3/auth/tokens", token=carol,
                                    headers={"X-Subject-Token": demo}), 403)
    assert identity.request("GET", "/v3/auth/tokens", token=demo,
                            headers={"X-Subject-Token": demo}).status_int == 200


def test_revoking_a_token_revokes_those_issued_from_it(identity):
    first = identity.token("admin", None)

    def rescope(token_id, project):
        body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token_id}},
                         "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        resp = identity.request("POST", "/v3/auth/tokens", body)
        assert resp.status_int == 201, resp.text
        return resp.headers["X-Subject-Token"]

    second = rescope(first, "admin")
    third = rescope(second, "admin")
    independent = identity.token()
    # Revoking the middle token revokes it and the one issued from it only.
    assert identity.request("DELETE", "/v3/auth/tokens", token=independent,
                            headers={"X-Subject-Token": second}).status_int == 204
    for token_id, status in ((first, 200), (second, 401), (third, 401), (independent, 200)):
        assert identity.request("GET", "/v3/auth/projects", token=token_id).status_int == \
            status
    # A revoked token cannot be used to get a new one.
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": third}}}}
    identity_error(identity.request("POST", "/v3/auth/tokens", body), 401)


def test_expired_token_is_refused(identity):
    token_id = identity.token("demo")
    identity.clock.advance(3599)
    assert identity.request("GET", "/v3/auth/projects", token=token_id).status_int == 200
    identity.clock.advance(2)
    identity_error(identity.request("GET", "/v3/auth/projects", token=token_id), 401)
    identity_error(identity.request("GET", "/v3/auth/tokens", token=identity.token(),
                                    headers={"X-Subject-Token": token_id}), 404)


@pytest.mark.parametrize("garbage", ["garbage", "a" * 300, "gAAAAA" + "x" * 200, "demo:demo"])
def test_garbage_token_is_refused(identity, garbage):
    message = identity_error(identity.request("GET", "/v3/auth/projects", token=garbage), 401)
    assert garbage not in message


def test_tampered_token_is_refused(identity):
    token_id = identity.token("demo")
    # Flip one character in the middle (the signature covers every byte).
    middle = len(token_id) // 2
    tampered = token_id[:middle] + ("A" if token_id[middle] != "A" else "B") + \
        token_id[middle + 1:]
    identity_error(identity.request("GET", "/v3/auth/projects", token=tampered), 401)


def test_wrong_password_and_unknown_user_look_the_same(identity):
    wrong = identity_error(identity.password_auth("demo", "not-the-password", "demo"), 401)
    unknown = identity_error(identity.password_auth("nobody", "whatever", "demo"), 401)
    assert wrong == unknown
    assert "not-the-password" not in wrong


def test_no_role_on_the_project_is_401(identity):
    identity.create_user("dave", "dave-pw", project="demo")
    message = identity_error(identity.password_auth("dave", "dave-pw", "admin"), 401)
    assert "no access to project" in message
    identity_error(identity.password_auth("dave", "dave-pw", "no-such-project"), 401)


def test_disabled_user_and_project(identity):
    admin = identity.token()
    user = identity.create_user("erin", "erin-pw", project="demo")
    erin = identity.token("erin", "demo", "erin-pw")
    resp = identity.request("PATCH", f"/v3/users/{user['id']}", {"user": {"enabled": False}},
                            token=admin)
    assert resp.status_int == 200 and resp.json["user"]["enabled"] is False
    identity_error(identity.password_auth("erin", "erin-pw", "demo"), 401)
    identity_error(identity.request("GET", "/v3/auth/projects", token=erin), 401)
    demo = identity.token("demo")
    project_id = identity.project_id("demo")
    identity.request("PATCH", f"/v3/projects/{project_id}", {"project": {"enabled": False}},
                     token=admin)
    identity_error(identity.request("GET", "/v3/auth/catalog", token=demo), 401)


def test_losing_the_role_invalidates_project_tokens(identity):
    admin = identity.token()
    user = identity.create_user("frank", "frank-pw", project="demo")
    frank = identity.token("frank", "demo", "frank-pw")
    project_id = identity.project_id("demo")
    role_id = identity.request("GET", "/v3/roles?name=member", token=admin).json["roles"][0]["id"]
    resp = identity.request("DELETE", f"/v3/projects/{project_id}/users/{user['id']}/roles/"
                                      f"{role_id}", token=admin)
    assert resp.status_int == 204
    identity_error(identity.request("GET", "/v3/auth/catalog", token=frank), 401)


@pytest.mark.parametrize("body,status", [
    ({}, 400),
    ({"auth": {}}, 400),
    ({"auth": {"identity": {"methods": []}}}, 400),
    ({"auth": {"identity": {"methods": ["password"]}}}, 400),
    ({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "password": "x"}}}}}, 400),  # a name needs a domain
    ({"auth": {"identity": {"methods": ["totp"], "totp": {}}}}, 401),
    ({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": "x"}}},
        "scope": {"domain": {"id": "default"}}}}, 400),
    ({"auth": {"identity": {"methods": ["token"], "token": {"id": "nope"}}}}, 401),
])
def test_bad_auth_requests(identity, body, status):
    identity_error(identity.request("POST", "/v3/auth/tokens", body), status)


def test_malformed_json_is_400(identity):
    req_body = b"{not json"
    import webob

    req = webob.Request.blank("/v3/auth/tokens", method="POST", body=req_body,
                              content_type="application/json")
    identity_error(req.get_response(identity.app), 400)


def test_every_other_endpoint_needs_a_token(identity):
    for method, path in (("GET", "/v3/auth/tokens"), ("HEAD", "/v3/auth/tokens"),
                         ("DELETE", "/v3/auth/tokens"), ("GET", "/v3/auth/projects"),
                         ("GET", "/v3/auth/catalog"), ("GET", "/v3/projects"),
                         ("POST", "/v3/users"), ("GET", "/v3/roles"),
                         ("GET", "/v3/role_assignments"), ("GET", "/v3/domains"),
                         ("GET", "/v3/nonexistent")):
        resp = identity.request(method, path)
        assert resp.status_int == 401, (method, path, resp.status)
        if method != "HEAD":
            identity_error(resp, 401)
