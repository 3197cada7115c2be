"""The default access rules, per API, for real Identity v3 tokens of the
embedded identity service: an admin, a member and a reader of the ``demo``
project, and a member of another project.

Readers read their project's resources and change nothing (403); members
create, change and delete them; another project's ids are 404 (they do not
leak), and admin-only operations are 403 for everyone else.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import webob

from tests.functional.api.identity.conftest import identity  # noqa: F401  (fixture)
from tests.waiting import poll
from virtstack.api.compute import ComputeApp
from virtstack.api.image import ImageApp
from virtstack.api.volume import VolumeApp

PASSWORD = "policy-test-password"
PATCH = "application/openstack-images-v2.1-json-patch"


@dataclasses.dataclass
class Caller:
    name: str
    token: str
    project_id: str
    user_id: str


class World:
    """The Compute, Block Storage and Image APIs behind real tokens, and
    four callers."""

    def __init__(self, identity, apps: dict[str, object], callers: dict[str, Caller],
                 image_id: str):
        self.identity, self.apps, self.callers = identity, apps, callers
        #: The seeded image every project may boot.
        self.image_id = image_id

    def __getattr__(self, name: str) -> Caller:
        try:
            return self.callers[name]
        except KeyError:
            raise AttributeError(name) from None

    def call(self, api: str, method: str, path: str, caller: Caller, body=None,
             raw: bytes | None = None, content_type: str = "application/json",
             ) -> webob.Response:
        if api == "identity":
            return self.identity.request(method, path, body, token=caller.token)
        req = webob.Request.blank(path, method=method)
        req.headers["X-Auth-Token"] = caller.token
        if raw is not None:
            req.body, req.content_type = raw, "application/octet-stream"
        elif body is not None:
            req.body, req.content_type = json.dumps(body).encode(), content_type
        return req.get_response(self.apps[api])

    def expect(self, api: str, cases) -> None:
        """Run ``(caller, method, path, body, status)`` cases; one assertion
        listing every case that answered otherwise."""
        wrong = []
        for caller, method, path, body, status in cases:
            kwargs = {"content_type": PATCH} if method == "PATCH" else {}
            resp = self.call(api, method, path, caller, body, **kwargs)
            if resp.status_int != status:
                wrong.append((caller.name, method, path, status, resp.status, resp.text[:200]))
        assert wrong == []


@pytest.fixture
def world(cloud, identity, conf):  # noqa: F811  (the identity fixture)
    conf.config(auth_strategy="keystone", group="api")
    admin = identity.token()
    other_project = identity.create_project("other")
    identity.create_user("reader", PASSWORD, project="demo", role="reader")
    identity.create_user("other", PASSWORD, project="other", role="member")
    users = {u["name"]: u["id"] for u in identity.request(
        "GET", "/v3/users", token=admin).json["users"]}
    callers = {
        "admin": Caller("admin", admin, identity.project_id("admin"), users["admin"]),
        "member": Caller("member", identity.token("demo"), identity.project_id("demo"),
                         users["demo"]),
        "reader": Caller("reader", identity.token("reader", "demo", PASSWORD),
                         identity.project_id("demo"), users["reader"]),
        "other": Caller("other", identity.token("other", "other", PASSWORD), other_project,
                        users["other"]),
    }
    apps = {"compute": ComputeApp(), "volume": VolumeApp(), "image": ImageApp()}
    return World(identity, apps, callers, cloud.image_id)


def test_callers_hold_the_roles_the_matrix_assumes(world):
    def roles(caller):
        resp = world.identity.request("GET", "/v3/auth/tokens", token=caller.token,
                                      headers={"X-Subject-Token": caller.token})
        assert resp.status_int == 200, resp.text
        return sorted(r["name"] for r in resp.json["token"]["roles"])

    assert roles(world.admin) == ["admin", "member", "reader"]
    assert roles(world.member) == ["member", "reader"]
    assert roles(world.reader) == ["reader"]
    assert roles(world.other) == ["member", "reader"]


def test_compute(world):
    r, m, a, o = world.reader, world.member, world.admin, world.other
    body = {"server": {"name": "s", "flavorRef": "42", "imageRef": world.image_id}}
    resp = world.call("compute", "POST", "/v2.1/servers", m, body)
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    server = f"/v2.1/servers/{sid}"
    action = server + "/action"
    rename = {"server": {"name": "renamed"}}
    flavor = {"flavor": {"name": "f", "ram": 64, "vcpus": 1, "disk": 1}}
    world.expect("compute", [
        (r, "GET", server, None, 200), (m, "GET", server, None, 200),
        (a, "GET", server, None, 200), (o, "GET", server, None, 404),
        (r, "GET", server + "/os-instance-actions", None, 200),
        (o, "GET", server + "/os-instance-actions", None, 404),
        (r, "POST", "/v2.1/servers", body, 403),
        (r, "PUT", server, rename, 403), (o, "PUT", server, rename, 404),
        (m, "PUT", server, rename, 200),
        (r, "POST", action, {"os-stop": None}, 403), (o, "POST", action, {"os-stop": None}, 404),
        (r, "POST", action, {"createImage": {"name": "i"}}, 403),
        (r, "POST", server + "/os-volume_attachments",
         {"volumeAttachment": {"volumeId": "0" * 32}}, 403),
        (r, "DELETE", server, None, 403), (o, "DELETE", server, None, 404),
        # Admin only.
        (r, "GET", "/v2.1/os-hypervisors", None, 403), (m, "GET", "/v2.1/os-hypervisors", None, 403),
        (a, "GET", "/v2.1/os-hypervisors", None, 200),
        (m, "GET", "/v2.1/os-hypervisors/statistics", None, 403),
        (m, "POST", "/v2.1/flavors", flavor, 403), (a, "POST", "/v2.1/flavors", flavor, 200),
        (m, "DELETE", "/v2.1/flavors/42", None, 403),
        (m, "GET", "/v2.1/servers?all_tenants=1", None, 403),
        (a, "GET", "/v2.1/servers?all_tenants=1", None, 200),
        (m, "GET", f"/v2.1/limits?tenant_id={o.project_id}", None, 403),
        (a, "GET", f"/v2.1/limits?tenant_id={o.project_id}", None, 200),
        # Everyone may read flavors.
        (r, "GET", "/v2.1/flavors", None, 200), (o, "GET", "/v2.1/flavors/42", None, 200),
    ])

    def listed(caller, query=""):
        resp = world.call("compute", "GET", "/v2.1/servers" + query, caller)
        assert resp.status_int == 200, resp.text
        return {s["id"] for s in resp.json["servers"]}

    assert sid in listed(r) and sid not in listed(o) and sid not in listed(a)
    assert sid in listed(a, "?all_tenants=1")
    # Admin-only fields of the view follow their rule.
    seen = world.call("compute", "GET", server, r).json["server"]
    assert "OS-EXT-SRV-ATTR:host" not in seen
    assert "OS-EXT-SRV-ATTR:host" in world.call("compute", "GET", server, a).json["server"]
    resp = world.call("compute", "GET", "/v2.1/os-hypervisors", m)
    assert resp.json["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-hypervisors:list to be performed.")
    assert world.call("compute", "DELETE", server, m).status_int == 204


def test_block_storage(world):
    r, m, a, o = world.reader, world.member, world.admin, world.other

    def url(caller, rest=""):
        return f"/v3/{caller.project_id}/{rest}"

    resp = world.call("volume", "POST", url(m, "volumes"), m, {"volume": {"size": 1}})
    assert resp.status_int == 202, resp.text
    vid = resp.json["volume"]["id"]
    poll(lambda: world.call("volume", "GET", url(m, f"volumes/{vid}"), m
                            ).json["volume"]["status"] == "available",
         30, f"volume {vid} available", interval=0.02)
    vol = f"volumes/{vid}"
    reset = {"os-reset_status": {"status": "available"}}
    world.expect("volume", [
        (r, "GET", url(r, vol), None, 200), (a, "GET", url(a, vol), None, 200),
        (o, "GET", url(o, vol), None, 404),
        (r, "GET", url(r, vol + "/metadata"), None, 200),
        (o, "GET", url(o, vol + "/metadata"), None, 404),
        (r, "POST", url(r, "volumes"), {"volume": {"size": 1}}, 403),
        (r, "PUT", url(r, vol), {"volume": {"name": "x"}}, 403),
        (o, "PUT", url(o, vol), {"volume": {"name": "x"}}, 404),
        (m, "PUT", url(m, vol), {"volume": {"name": "x"}}, 200),
        (r, "POST", url(r, vol + "/metadata"), {"metadata": {"k": "v"}}, 403),
        (r, "POST", url(r, vol + "/action"), {"os-extend": {"new_size": 2}}, 403),
        (o, "POST", url(o, vol + "/action"), {"os-extend": {"new_size": 2}}, 404),
        (r, "POST", url(r, "snapshots"), {"snapshot": {"volume_id": vid}}, 403),
        (o, "POST", url(o, "snapshots"), {"snapshot": {"volume_id": vid}}, 404),
        (r, "DELETE", url(r, vol), None, 403), (o, "DELETE", url(o, vol), None, 404),
        # Admin only.
        (m, "POST", url(m, vol + "/action"), reset, 403),
        (a, "POST", url(a, vol + "/action"), reset, 202),
        (m, "POST", url(m, vol + "/action"), {"os-force_delete": None}, 403),
        (m, "DELETE", url(m, vol) + "?force=true", None, 403),
        (m, "PUT", url(m, f"os-quota-sets/{m.project_id}"), {"quota_set": {"volumes": 1}}, 403),
        (a, "PUT", url(a, f"os-quota-sets/{m.project_id}"), {"quota_set": {"volumes": 1}}, 501),
        (m, "GET", url(m, f"os-quota-sets/{o.project_id}"), None, 403),
        (r, "GET", url(r, f"os-quota-sets/{r.project_id}"), None, 200),
        (m, "GET", url(m, "os-services"), None, 403), (a, "GET", url(a, "os-services"), None, 200),
    ])

    def listed(caller):
        resp = world.call("volume", "GET", url(caller, "volumes"), caller)
        assert resp.status_int == 200, resp.text
        return {v["id"] for v in resp.json["volumes"]}

    assert vid in listed(r) and vid not in listed(o)
    resp = world.call("volume", "POST", url(m, vol + "/action"), m, reset)
    assert "volume_extension:volume_admin_actions:reset_status" in \
        resp.json["forbidden"]["message"]
    assert world.call("volume", "POST", url(a, vol + "/action"), a,
                      {"os-force_delete": None}).status_int == 202


def test_image(world):
    r, m, a, o = world.reader, world.member, world.admin, world.other
    resp = world.call("image", "POST", "/v2/images", m,
                      {"name": "m", "disk_format": "raw", "container_format": "bare"})
    assert resp.status_int == 201, resp.text
    iid = resp.json["id"]
    image = f"/v2/images/{iid}"
    assert world.call("image", "PUT", image + "/file", m, raw=b"x" * 512).status_int == 204
    rename = [{"op": "replace", "path": "/name", "value": "n"}]
    publish = [{"op": "replace", "path": "/visibility", "value": "public"}]
    world.expect("image", [
        (r, "GET", image, None, 200), (a, "GET", image, None, 200), (o, "GET", image, None, 404),
        (r, "GET", image + "/file", None, 200), (o, "GET", image + "/file", None, 404),
        (r, "POST", "/v2/images", {"name": "r"}, 403),
        (r, "PATCH", image, rename, 403), (o, "PATCH", image, rename, 404),
        (m, "PATCH", image, rename, 200),
        (r, "PUT", image + "/tags/t", None, 403), (o, "PUT", image + "/tags/t", None, 404),
        (r, "DELETE", image, None, 403), (o, "DELETE", image, None, 404),
        # The owning project's members (as Glance): not readers or others.
        (r, "POST", image + "/actions/deactivate", None, 403),
        (o, "POST", image + "/actions/deactivate", None, 404),
        (m, "POST", image + "/actions/deactivate", None, 204),
        (m, "POST", image + "/actions/reactivate", None, 204),
        (a, "POST", image + "/actions/deactivate", None, 204),
        (a, "POST", image + "/actions/reactivate", None, 204),
        # Admin only.
        (m, "PATCH", image, publish, 403),
        (a, "PATCH", image, publish, 200),
    ])
    resp = world.call("image", "POST", "/v2/images", m, {"name": "p", "visibility": "public"})
    assert "publicize_image" in resp.json["message"] and resp.status_int == 403
    listed = world.call("image", "GET", "/v2/images", o).json["images"]
    assert iid in {i["id"] for i in listed}  # public now


def test_identity(world):
    r, m, a, o = world.reader, world.member, world.admin, world.other
    world.expect("identity", [
        (a, "GET", "/v3/users", None, 200), (m, "GET", "/v3/users", None, 403),
        (r, "GET", "/v3/users", None, 403),
        (m, "GET", f"/v3/users/{m.user_id}", None, 200),
        (m, "GET", f"/v3/users/{a.user_id}", None, 403),
        (a, "GET", f"/v3/users/{m.user_id}", None, 200),
        (r, "GET", f"/v3/users/{r.user_id}/projects", None, 200),
        (r, "GET", f"/v3/users/{m.user_id}/projects", None, 403),
        (r, "GET", f"/v3/projects/{r.project_id}", None, 200),
        (o, "GET", f"/v3/projects/{m.project_id}", None, 403),
        (m, "POST", "/v3/projects", {"project": {"name": "p"}}, 403),
        (a, "POST", "/v3/projects", {"project": {"name": "p"}}, 201),
        (m, "GET", "/v3/roles", None, 403), (a, "GET", "/v3/roles", None, 200),
        (m, "GET", "/v3/role_assignments", None, 403),
        (m, "GET", "/v3/domains/default", None, 200), (m, "GET", "/v3/domains", None, 403),
        (r, "GET", "/v3/auth/catalog", None, 200), (r, "GET", "/v3/auth/projects", None, 200),
    ])
    # Tokens: one's own, or any for an admin.
    for caller, subject, status in ((m, o, 403), (m, m, 200), (a, o, 200)):
        resp = world.identity.request("GET", "/v3/auth/tokens", token=caller.token,
                                      headers={"X-Subject-Token": subject.token})
        assert resp.status_int == status, (caller.name, subject.name, resp.text)
    resp = world.identity.request("GET", "/v3/users", token=m.token)
    assert resp.json["error"]["message"] == \
        "Policy doesn't allow identity:list_users to be performed."
