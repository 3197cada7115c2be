"""/v3/projects, /v3/users, /v3/roles, grants, /v3/role_assignments and
/v3/domains: what the openstack CLI's project/user/role commands call."""

from __future__ import annotations

import pytest

from virtstack.db import identity as db_identity

from .conftest import identity_error


def test_project_create_show_list_update_delete(identity):
    admin = identity.token()
    resp = identity.request("POST", "/v3/projects", {"project": {
        "name": "web", "description": "the web team", "domain_id": "default",
        "enabled": True}}, token=admin)
    assert resp.status_int == 201, resp.text
    project = resp.json["project"]
    assert len(project["id"]) == 32
    assert project["links"]["self"] == f"http://localhost/v3/projects/{project['id']}"
    assert (project["name"], project["domain_id"], project["description"], project["enabled"],
            project["is_domain"], project["parent_id"]) == \
        ("web", "default", "the web team", True, False, "default")
    shown = identity.request("GET", f"/v3/projects/{project['id']}", token=admin)
    assert shown.json["project"] == project
    listing = identity.request("GET", "/v3/projects", token=admin).json
    assert sorted(p["name"] for p in listing["projects"]) == ["admin", "demo", "web"]
    assert listing["links"]["self"] == "http://localhost/v3/projects"
    assert [p["id"] for p in identity.request("GET", "/v3/projects?name=web",
                                              token=admin).json["projects"]] == [project["id"]]
    resp = identity.request("PATCH", f"/v3/projects/{project['id']}",
                            {"project": {"description": "renamed", "name": "www"}}, token=admin)
    assert resp.status_int == 200, resp.text
    assert (resp.json["project"]["name"], resp.json["project"]["description"]) == \
        ("www", "renamed")
    assert identity.request("DELETE", f"/v3/projects/{project['id']}",
                            token=admin).status_int == 204
    identity_error(identity.request("GET", f"/v3/projects/{project['id']}", token=admin), 404)
    identity_error(identity.request("DELETE", f"/v3/projects/{project['id']}", token=admin), 404)


def test_duplicate_names_are_409(identity):
    admin = identity.token()
    identity_error(identity.request("POST", "/v3/projects", {"project": {"name": "demo"}},
                                    token=admin), 409)
    identity_error(identity.request("POST", "/v3/users", {"user": {"name": "demo"}},
                                    token=admin), 409)
    identity_error(identity.request("POST", "/v3/roles", {"role": {"name": "member"}},
                                    token=admin), 409)
    project_id = identity.create_project("other")
    identity_error(identity.request("PATCH", f"/v3/projects/{project_id}",
                                    {"project": {"name": "demo"}}, token=admin), 409)


@pytest.mark.parametrize("path,body", [
    ("/v3/projects", {"project": {}}),
    ("/v3/projects", {"project": {"name": ""}}),
    ("/v3/projects", {"project": {"name": "x" * 65}}),
    ("/v3/projects", {"project": {"name": "x", "enabled": "yes"}}),
    ("/v3/projects", {"project": {"name": "x", "colour": "red"}}),
    ("/v3/projects", {"project": {"name": "x", "is_domain": True}}),
    ("/v3/projects", {"project": {"name": "x", "parent_id": "0123456789abcdef"}}),
    ("/v3/projects", {"name": "x"}),
    ("/v3/users", {"user": {"name": "x", "password": ""}}),
    ("/v3/users", {"user": {"name": "x", "password": "p" * 4097}}),
    ("/v3/users", {"user": {"name": "x", "options": {"lock_password": True}}}),
    ("/v3/roles", {"role": {"name": "x", "domain_id": "default"}}),
])
def test_bad_bodies_are_400(identity, path, body):
    identity_error(identity.request("POST", path, body, token=identity.token()), 400)


def test_unknown_domain_is_404(identity):
    identity_error(identity.request("POST", "/v3/projects", {"project": {
        "name": "x", "domain_id": "elsewhere"}}, token=identity.token()), 404)


def test_user_create_show_update_delete_and_authenticate(identity):
    admin = identity.token()
    demo_project = identity.project_id("demo")
    resp = identity.request("POST", "/v3/users", {"user": {
        "name": "grace", "password": "grace-pw", "email": "grace@example.com",
        "description": "ops", "default_project_id": demo_project}}, token=admin)
    assert resp.status_int == 201, resp.text
    user = resp.json["user"]
    assert "password" not in user and "grace-pw" not in resp.text
    assert (user["name"], user["domain_id"], user["enabled"], user["email"],
            user["default_project_id"], user["password_expires_at"]) == \
        ("grace", "default", True, "grace@example.com", demo_project, None)
    # No role yet: no project token, an unscoped one works.
    identity_error(identity.password_auth("grace", "grace-pw", "demo"), 401)
    assert identity.password_auth("grace", "grace-pw").json["token"].get("project") is None
    resp = identity.request("PATCH", f"/v3/users/{user['id']}",
                            {"user": {"password": "new-pw"}}, token=admin)
    assert resp.status_int == 200, resp.text
    identity_error(identity.password_auth("grace", "grace-pw", scope="unscoped"), 401)
    assert identity.password_auth("grace", "new-pw", scope="unscoped").status_int == 201
    assert [u["name"] for u in identity.request("GET", "/v3/users?name=grace",
                                                token=admin).json["users"]] == ["grace"]
    assert identity.request("DELETE", f"/v3/users/{user['id']}", token=admin).status_int == 204
    identity_error(identity.request("GET", f"/v3/users/{user['id']}", token=admin), 404)
    identity_error(identity.password_auth("grace", "new-pw", scope="unscoped"), 401)


def test_role_grants_and_assignment_listing(identity):
    admin = identity.token()
    user = identity.create_user("heidi", "heidi-pw")
    project_id = identity.create_project("lab")
    resp = identity.request("POST", "/v3/roles", {"role": {"name": "observer"}}, token=admin)
    assert resp.status_int == 201, resp.text
    role = resp.json["role"]
    assert role["domain_id"] is None and role["name"] == "observer"
    grant = f"/v3/projects/{project_id}/users/{user['id']}/roles/{role['id']}"
    assert identity.request("HEAD", grant, token=admin).status_int == 404
    assert identity.request("PUT", grant, token=admin).status_int == 204
    assert identity.request("PUT", grant, token=admin).status_int == 204  # idempotent
    assert identity.request("HEAD", grant, token=admin).status_int == 204
    roles = identity.request("GET", f"/v3/projects/{project_id}/users/{user['id']}/roles",
                             token=admin).json["roles"]
    assert [r["name"] for r in roles] == ["observer"]
    token = identity.password_auth("heidi", "heidi-pw", "lab").json["token"]
    assert [r["name"] for r in token["roles"]] == ["observer"]
    listing = identity.request(
        "GET", f"/v3/role_assignments?user.id={user['id']}&include_names=True",
        token=admin).json["role_assignments"]
    assert listing == [{
        "role": {"id": role["id"], "name": "observer"},
        "user": {"id": user["id"], "name": "heidi",
                 "domain": {"id": "default", "name": "Default"}},
        "scope": {"project": {"id": project_id, "name": "lab",
                              "domain": {"id": "default", "name": "Default"}}},
        "links": {"assignment": f"http://localhost{grant}"}}]
    projects = identity.request("GET", f"/v3/users/{user['id']}/projects",
                                token=admin).json["projects"]
    assert [p["name"] for p in projects] == ["lab"]
    assert identity.request("DELETE", grant, token=admin).status_int == 204
    identity_error(identity.request("DELETE", grant, token=admin), 404)
    assert identity.request("GET", f"/v3/role_assignments?user.id={user['id']}",
                            token=admin).json["role_assignments"] == []


def test_grants_of_unknown_things_are_404(identity):
    admin = identity.token()
    user = identity.create_user("ivan", "ivan-pw")
    project_id = identity.project_id("demo")
    role_id = identity.request("GET", "/v3/roles?name=member", token=admin).json["roles"][0]["id"]
    for p, u, r in (("nope", user["id"], role_id), (project_id, "nope", role_id),
                    (project_id, user["id"], "nope")):
        identity_error(identity.request("PUT", f"/v3/projects/{p}/users/{u}/roles/{r}",
                                        token=admin), 404)
    assert db_identity.list_assignments(user_id=user["id"]) == []


def test_effective_assignments_include_implied_roles(identity):
    admin = identity.token()
    project_id = identity.project_id("admin")
    listing = identity.request("GET", f"/v3/role_assignments?scope.project.id={project_id}"
                                      "&effective&include_names", token=admin).json
    names = sorted(a["role"]["name"] for a in listing["role_assignments"])
    assert names == ["admin", "member", "reader"]
    implied = [a for a in listing["role_assignments"] if a["role"]["name"] == "reader"][0]
    assert implied["links"]["prior_role"].startswith("http://localhost/v3/roles/")
    only_reader = identity.request(
        "GET", f"/v3/role_assignments?scope.project.id={project_id}&effective&role.id="
               f"{implied['role']['id']}", token=admin).json["role_assignments"]
    assert len(only_reader) == 1
    # Without 'effective' only the direct grant is listed.
    direct = identity.request("GET", f"/v3/role_assignments?scope.project.id={project_id}",
                              token=admin).json["role_assignments"]
    assert len(direct) == 1
    assert identity.request("GET", "/v3/role_assignments?group.id=g",
                            token=admin).json["role_assignments"] == []


def test_role_delete_removes_its_grants(identity):
    admin = identity.token()
    user = identity.create_user("judy", "judy-pw", project="demo")
    role_id = identity.request("GET", "/v3/roles?name=member", token=admin).json["roles"][0]["id"]
    assert identity.request("DELETE", f"/v3/roles/{role_id}", token=admin).status_int == 204
    assert db_identity.list_assignments(role_id=role_id) == []
    identity_error(identity.password_auth("judy", "judy-pw", "demo"), 401)
    assert user["name"] == "judy"


def test_domains_are_read_only(identity):
    admin = identity.token()
    domains = identity.request("GET", "/v3/domains", token=admin).json["domains"]
    assert [(d["id"], d["name"], d["enabled"]) for d in domains] == [("default", "Default", True)]
    assert identity.request("GET", "/v3/domains/default", token=admin).json["domain"]["name"] \
        == "Default"
    assert identity.request("GET", "/v3/domains?name=Default",
                            token=admin).json["domains"][0]["id"] == "default"
    identity_error(identity.request("GET", "/v3/domains/other", token=admin), 404)
    identity_error(identity.request("POST", "/v3/domains", {"domain": {"name": "x"}},
                                    token=admin), 405)


def test_a_member_cannot_manage_identities(identity):
    demo = identity.token("demo")
    admin = identity.token()
    demo_user = identity.request("GET", "/v3/users?name=demo", token=admin).json["users"][0]
    admin_project = identity.project_id("admin")
    member_role = identity.request("GET", "/v3/roles?name=member",
                                   token=admin).json["roles"][0]["id"]
    grant = f"/v3/projects/{admin_project}/users/{demo_user['id']}/roles/{member_role}"
    for method, path, body in (
            ("GET", "/v3/projects", None),
            ("POST", "/v3/projects", {"project": {"name": "mine"}}),
            ("GET", f"/v3/projects/{admin_project}", None),
            ("PATCH", f"/v3/projects/{admin_project}", {"project": {"enabled": False}}),
            ("DELETE", f"/v3/projects/{admin_project}", None),
            ("GET", "/v3/users", None),
            ("POST", "/v3/users", {"user": {"name": "mallory", "password": "x"}}),
            ("PATCH", f"/v3/users/{demo_user['id']}", {"user": {"enabled": True}}),
            ("DELETE", f"/v3/users/{demo_user['id']}", None),
            ("GET", "/v3/roles", None),
            ("POST", "/v3/roles", {"role": {"name": "boss"}}),
            ("PUT", grant, None),
            ("DELETE", grant, None),
            ("GET", "/v3/role_assignments", None),
            ("GET", "/v3/domains", None)):
        identity_error(identity.request(method, path, body, token=demo), 403)
    # Nothing changed.
    assert not db_identity.list_users(name="mallory")
    assert not db_identity.has_grant(demo_user["id"], admin_project, member_role)
    assert db_identity.get_project(admin_project).enabled
    # What a member may read: their own user, projects and project.
    assert identity.request("GET", f"/v3/users/{demo_user['id']}", token=demo).status_int == 200
    projects = identity.request("GET", f"/v3/users/{demo_user['id']}/projects", token=demo)
    assert [p["name"] for p in projects.json["projects"]] == ["demo"]
    own = identity.project_id("demo")
    assert identity.request("GET", f"/v3/projects/{own}", token=demo).status_int == 200
    assert identity.request("GET", "/v3/domains/default", token=demo).status_int == 200
