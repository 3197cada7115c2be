"""Bootstrap (idempotent first identities and clouds.yaml), the
``virtstack bootstrap`` command, and secrets kept out of the database and
the logs."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys

import pytest
import webob
import yaml

from virtstack.api.identity import IdentityApp
from virtstack.db import identity as db_identity
from virtstack.identity import bootstrap, passwords

EXE = os.path.join(os.path.dirname(sys.executable), "virtstack")


@pytest.fixture
def cheap(conf):
    conf.config(password_hash_rounds=4, group="identity")


def _auth(app, username, password, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": username, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    req = webob.Request.blank("/v3/auth/tokens", method="POST", body=json.dumps(body).encode(),
                              content_type="application/json")
    return req.get_response(app)


def test_bootstrap_creates_everything_once(database, cheap, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    assert bootstrap.needed()
    first = bootstrap.bootstrap(clouds_path=str(clouds))
    assert not bootstrap.needed()
    assert "domain Default" in first.created and "user admin" in first.created
    assert "implied role admin -> member" in first.created
    roles = {r.name: r.id for r in db_identity.list_roles()}
    assert set(roles) == {"admin", "member", "reader"}
    admin = db_identity.find_user("admin", "default")
    admin_project = db_identity.find_project("admin", "default")
    assert admin.default_project_id == admin_project.id
    assert [r.name for r in db_identity.effective_roles(admin.id, admin_project.id)] == \
        ["admin", "member", "reader"]
    demo = db_identity.find_user("demo", "default")
    demo_project = db_identity.find_project("demo", "default")
    assert [r.name for r in db_identity.effective_roles(demo.id, demo_project.id)] == \
        ["member", "reader"]
    again = bootstrap.bootstrap(clouds_path=str(clouds))
    assert again.created == []
    assert again.accounts["admin"].password == first.accounts["admin"].password
    assert len(db_identity.list_users()) == 2 and len(db_identity.list_projects()) == 2


def test_clouds_yaml_is_private_and_works(database, cheap, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    result = bootstrap.bootstrap(clouds_path=str(clouds))
    assert stat.S_IMODE(os.stat(clouds).st_mode) == 0o600
    data = yaml.safe_load(clouds.read_text())
    assert set(data["clouds"]) == {"virtstack-admin", "virtstack-demo"}
    entry = data["clouds"]["virtstack-admin"]
    assert entry["region_name"] == "RegionOne" and entry["identity_api_version"] == 3
    assert entry["auth"] == {
        "auth_url": "http://127.0.0.1:5000/v3", "username": "admin",
        "password": result.accounts["admin"].password, "project_name": "admin",
        "user_domain_name": "Default", "project_domain_name": "Default"}
    app = IdentityApp()
    for cloud in data["clouds"].values():
        auth = cloud["auth"]
        resp = _auth(app, auth["username"], auth["password"], auth["project_name"])
        assert resp.status_int == 201, resp.text
    assert bootstrap.credentials("virtstack-demo", str(clouds))["username"] == "demo"


def test_default_clouds_path_is_in_state_path(database, cheap, conf, tmp_path):
    result = bootstrap.bootstrap()
    assert result.clouds_path == str(tmp_path / "clouds.yaml")
    assert os.path.exists(result.clouds_path)


def test_other_clouds_in_the_file_are_kept(database, cheap, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"mine": {"auth": {"auth_url": "x"}}},
                                      "other": 1}))
    bootstrap.bootstrap(clouds_path=str(clouds))
    data = yaml.safe_load(clouds.read_text())
    assert data["other"] == 1 and data["clouds"]["mine"] == {"auth": {"auth_url": "x"}}
    assert "virtstack-admin" in data["clouds"]


def test_explicit_password_resets_and_stale_file_is_renewed(database, cheap, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    bootstrap.bootstrap(admin_password="first-secret", clouds_path=str(clouds))
    admin = db_identity.find_user("admin", "default")
    assert passwords.verify_password("first-secret", admin.password_hash)
    result = bootstrap.bootstrap(admin_password="second-secret", clouds_path=str(clouds))
    assert "password of user admin" in result.created
    admin = db_identity.find_user("admin", "default")
    assert passwords.verify_password("second-secret", admin.password_hash)
    assert bootstrap.credentials("virtstack-admin", str(clouds))["password"] == "second-secret"
    # The password was changed behind the file's back: a re-run renews it.
    db_identity.update_user(admin.id, {"password_hash": passwords.hash_password("changed")})
    result = bootstrap.bootstrap(clouds_path=str(clouds))
    renewed = bootstrap.credentials("virtstack-admin", str(clouds))["password"]
    assert renewed not in ("second-secret", "changed")
    assert passwords.verify_password(renewed, db_identity.find_user("admin", "default")
                                     .password_hash)
    # A missing file is rewritten with working (new) passwords too.
    clouds.unlink()
    result = bootstrap.bootstrap(clouds_path=str(clouds))
    demo = db_identity.find_user("demo", "default")
    assert passwords.verify_password(result.accounts["demo"].password, demo.password_hash)


def test_passwords_and_tokens_are_never_logged_or_stored(database, cheap, conf, tmp_path):
    log_file = tmp_path / "secrets.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    secrets = ["admin-secret-1", "demo-secret-2", "new-user-secret-3", "wrong-secret-4",
               "patched-secret-5"]
    try:
        bootstrap.bootstrap(admin_password=secrets[0], demo_password=secrets[1],
                            clouds_path=str(tmp_path / "clouds.yaml"))
        app = IdentityApp()
        ok = _auth(app, "admin", secrets[0], "admin")
        token = ok.headers["X-Subject-Token"]
        assert _auth(app, "demo", secrets[3], "demo").status_int == 401

        def call(method, path, body=None, subject=None):
            req = webob.Request.blank(path, method=method)
            req.headers["X-Auth-Token"] = token
            if subject:
                req.headers["X-Subject-Token"] = subject
            if body is not None:
                req.body = json.dumps(body).encode()
                req.content_type = "application/json"
            return req.get_response(app)

        user = call("POST", "/v3/users", {"user": {"name": "u", "password": secrets[2]}})
        assert user.status_int == 201, user.text
        assert call("PATCH", f"/v3/users/{user.json['user']['id']}",
                    {"user": {"password": secrets[4]}}).status_int == 200
        demo_token = _auth(app, "demo", secrets[1], "demo").headers["X-Subject-Token"]
        assert call("GET", "/v3/auth/tokens", subject=demo_token).status_int == 200
        assert call("DELETE", "/v3/auth/tokens", subject=demo_token).status_int == 204
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    log = log_file.read_text()
    # The log is not empty: it records what happened, without the secrets.
    assert "Authentication failed" in log and "Revoked token" in log
    for secret in secrets + [token, demo_token]:
        assert secret not in log
    database.dispose()
    dump = "\n".join(sqlite3.connect(tmp_path / "virtstack.sqlite").iterdump())
    assert "bcrypt-sha256$" in dump
    for secret in secrets + [token, demo_token]:
        assert secret not in dump


def _run(*args, cwd=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _config(tmp_path, text: str = "") -> str:
    path = tmp_path / "virtstack.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n[compute]\ncompute_driver = fake\n"
                    f"[identity]\npassword_hash_rounds = 4\n{text}")
    return str(path)


def test_bootstrap_command(tmp_path):
    conf = _config(tmp_path)
    first = _run("--config-file", conf, "bootstrap", "--admin-password", "cli-admin-pw")
    assert first.returncode == 0, first.stderr
    clouds = tmp_path / "clouds.yaml"
    assert str(clouds) in first.stdout and "created: domain Default" in first.stdout
    assert "cli-admin-pw" not in first.stdout + first.stderr
    assert stat.S_IMODE(os.stat(clouds).st_mode) == 0o600
    data = yaml.safe_load(clouds.read_text())
    assert data["clouds"]["virtstack-admin"]["auth"]["password"] == "cli-admin-pw"
    again = _run("--config-file", conf, "bootstrap")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert yaml.safe_load(clouds.read_text()) == data
    other = tmp_path / "elsewhere" / "c.yaml"
    third = _run("--config-file", conf, "bootstrap", "--clouds-file", str(other))
    assert third.returncode == 0 and other.exists()
    log = (tmp_path / "log" / "virtstack.log").read_text()
    assert "cli-admin-pw" not in log


def test_bootstrap_refuses_an_empty_password(tmp_path):
    result = _run("--config-file", _config(tmp_path), "bootstrap", "--admin-password", "")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "admin password" in line


def test_external_keystone_mode_without_its_options_is_refused_at_start_up(tmp_path):
    result = _run("--config-file", _config(tmp_path, "mode = keystone\n"), "up")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "[identity] mode 'keystone' needs [keystone_authtoken] www_authenticate_uri" in line
    assert not (tmp_path / "virtstack.sqlite").exists()
