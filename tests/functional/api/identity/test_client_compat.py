"""Real clients against a real listening Identity API: keystoneauth1 (what
every OpenStack client authenticates with), openstacksdk and the openstack
CLI. They prove the token, catalog and management bodies are what clients
parse, not just what our own tests expect."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic, v3

from virtstack import service
from virtstack.identity import bootstrap

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


@pytest.fixture
def identity_server(identity, conf, tmp_path):
    """The identity API on a free port; the catalog and a clouds.yaml point
    at it. Returns (identity URL, clouds.yaml path)."""
    server = service.identity_api_server(port=0)
    conf.config(identity_port=server.port, group="api")
    server.start()
    clouds = tmp_path / "clouds-live.yaml"
    bootstrap.bootstrap(admin_password=identity.accounts["admin"].password,
                        demo_password=identity.accounts["demo"].password,
                        clouds_path=str(clouds))
    try:
        yield f"{server.url}/v3", str(clouds)
    finally:
        server.stop()


def test_keystoneauth_gets_a_token_and_the_catalog(identity, identity_server):
    auth_url, _ = identity_server
    auth = v3.Password(auth_url=auth_url, username="demo",
                       password=identity.accounts["demo"].password, project_name="demo",
                       user_domain_name="Default", project_domain_name="Default")
    sess = ks_session.Session(auth=auth)
    token = sess.get_token()
    assert token and len(token) > 100
    access = auth.get_access(sess)
    assert access.username == "demo" and access.project_name == "demo"
    assert access.user_domain_id == "default" and access.project_domain_name == "Default"
    assert sorted(access.role_names) == ["member", "reader"]
    assert access.expires is not None and access.issued is not None
    assert access.audit_id
    project_id = access.project_id
    host = auth_url.split("//")[1].split(":")[0]
    assert sess.get_endpoint(service_type="compute", interface="public") == \
        f"http://{host}:8774/v2.1"
    assert sess.get_endpoint(service_type="block-storage", interface="internal") == \
        f"http://{host}:8776/v3/{project_id}"
    assert sess.get_endpoint(service_type="volumev3", interface="admin",
                             region_name="RegionOne") == f"http://{host}:8776/v3/{project_id}"
    assert sess.get_endpoint(service_type="image", interface="public") == f"http://{host}:9292"
    # The token validates through the API like any client would check it.
    resp = sess.get(f"{auth_url}/auth/tokens", headers={"X-Subject-Token": token},
                    authenticated=True)
    assert resp.status_code == 200
    assert resp.json()["token"]["project"]["id"] == project_id


def test_discovery_from_the_unversioned_url(identity, identity_server):
    """Clients given the bare host URL discover v3 from the version document."""
    auth_url, _ = identity_server
    auth = generic.Password(auth_url=auth_url[:-len("/v3")], username="admin",
                            password=identity.accounts["admin"].password,
                            project_name="admin", user_domain_id="default",
                            project_domain_id="default")
    sess = ks_session.Session(auth=auth)
    assert sess.get_token()
    assert "admin" in auth.get_access(sess).role_names


def test_keystoneauth_refuses_a_wrong_password(identity, identity_server):
    auth_url, _ = identity_server
    auth = v3.Password(auth_url=auth_url, username="demo", password="wrong",
                       project_name="demo", user_domain_name="Default",
                       project_domain_name="Default")
    with pytest.raises(ks_exceptions.Unauthorized):
        ks_session.Session(auth=auth).get_token()


def test_openstacksdk_manages_projects_users_and_roles(identity, identity_server):
    import openstack

    auth_url, _ = identity_server
    conn = openstack.connect(auth_url=auth_url, username="admin",
                             password=identity.accounts["admin"].password,
                             project_name="admin", user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne",
                             identity_api_version="3")
    try:
        project = conn.identity.create_project(name="sdk-project", domain_id="default")
        user = conn.identity.create_user(name="sdk-user", password="sdk-pw",
                                         default_project_id=project.id)
        role = conn.identity.find_role("member")
        conn.identity.assign_project_role_to_user(project, user, role)
        assert conn.identity.validate_user_has_project_role(project, user, role)
        assert "sdk-project" in [p.name for p in conn.identity.projects()]
        assert conn.identity.find_user("sdk-user").id == user.id
        assignments = list(conn.identity.role_assignments(user_id=user.id))
        assert [(a.role["id"], a.scope["project"]["id"]) for a in assignments] == \
            [(role.id, project.id)]
        conn.identity.unassign_project_role_from_user(project, user, role)
        assert not conn.identity.validate_user_has_project_role(project, user, role)
        conn.identity.delete_user(user)
        conn.identity.delete_project(project)
        assert conn.identity.find_project("sdk-project") is None
    finally:
        conn.close()


def _openstack(clouds: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=clouds)
    for key in [k for k in env if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
        del env[key]
    return subprocess.run([OPENSTACK, "--os-cloud", "virtstack-admin", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_openstack_cli_project_user_role_commands(identity, identity_server):
    _, clouds = identity_server
    steps = [
        ("project", "create", "cli-project", "--description", "from the CLI"),
        ("user", "create", "cli-user", "--password", "cli-pw", "--project", "cli-project"),
        ("role", "add", "--project", "cli-project", "--user", "cli-user", "member"),
    ]
    for step in steps:
        result = _openstack(clouds, *step)
        assert result.returncode == 0, (step, result.stderr)
    listed = _openstack(clouds, "role", "assignment", "list", "--user", "cli-user",
                        "--names", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == \
        [("member", "cli-user@Default", "cli-project@Default")]
    shown = _openstack(clouds, "project", "show", "cli-project", "-f", "json")
    assert json.loads(shown.stdout)["description"] == "from the CLI"
    for step in (("role", "remove", "--project", "cli-project", "--user", "cli-user", "member"),
                 ("user", "delete", "cli-user"), ("project", "delete", "cli-project")):
        result = _openstack(clouds, *step)
        assert result.returncode == 0, (step, result.stderr)
    listed = _openstack(clouds, "project", "list", "-f", "json")
    assert sorted(p["Name"] for p in json.loads(listed.stdout)) == ["admin", "demo"]
