"""``[identity] mode = keystone``: the Compute, Block Storage and Image APIs
validate tokens of a real Keystone through keystonemiddleware (see
conftest.py), and the openstack CLI works through them with the clouds.yaml
that tools/start-keystone.sh writes."""

from __future__ import annotations

import configparser
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import webob

from tests.functional.identity.conftest import ROOT, free_port

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
VIRTSTACK = os.path.join(os.path.dirname(sys.executable), "virtstack")


def _project_id(cloud, name: str) -> str:
    projects = cloud.admin().get(f"{cloud.keystone_url}/projects",
                                 params={"name": name}).json()["projects"]
    assert len(projects) == 1, projects
    return projects[0]["id"]


def _user_id(cloud, name: str) -> str:
    return cloud.admin().get(f"{cloud.keystone_url}/users",
                             params={"name": name}).json()["users"][0]["id"]


def _unauthorized(cloud, resp) -> None:
    """keystonemiddleware's 401: Keystone's error body and where to log in."""
    assert resp.status_code == 401, (resp.status_code, resp.text)
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.keystone_url}"'
    assert resp.json()["error"]["code"] == 401, resp.text


def _urls(cloud, project_id: str) -> list[str]:
    """One authenticated read per API."""
    return [f"{cloud.compute_url}/servers", f"{cloud.volume_url}/{project_id}/volumes",
            f"{cloud.image_url}/images"]


def test_version_discovery_stays_public(external_cloud):
    cloud = external_cloud
    for url in (cloud.compute_url, cloud.compute_url.rsplit("/", 1)[0] + "/",
                cloud.volume_url, cloud.image_url.rsplit("/", 1)[0] + "/"):
        resp = cloud.call("GET", url)
        assert resp.status_code in (200, 300), (url, resp.status_code, resp.text)


def test_a_keystone_token_works_on_every_api(external_cloud):
    """keystoneauth1 password auth (demo user) against the real Keystone; its
    catalog leads to our listening APIs; the context is the token's."""
    cloud = external_cloud
    sess = cloud.session("demo", "demo")
    cloud.secrets.add(sess.get_token())
    project_id = _project_id(cloud, "demo")
    assert sess.get_project_id() == project_id
    compute = {"service_type": "compute", "interface": "public"}
    resp = sess.post("/servers", endpoint_filter=compute, json={"server": {
        "name": "ks-token", "flavorRef": "42", "imageRef": cloud.image_id}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = sess.get(f"/servers/{server_id}", endpoint_filter=compute).json()["server"]
    assert server["tenant_id"] == project_id
    assert server["user_id"] == _user_id(cloud, "demo")
    volumes = sess.get("/volumes", endpoint_filter={"service_type": "block-storage",
                                                    "interface": "public"})
    assert volumes.status_code == 200 and "volumes" in volumes.json(), volumes.text
    images = sess.get("/v2/images", endpoint_filter={"service_type": "image",
                                                     "interface": "public"})
    assert cloud.image_id in [i["id"] for i in images.json()["images"]]
    # The project in the URL is the token's (compute too).
    assert cloud.call("GET", f"{cloud.compute_url}/{project_id}/servers/{server_id}",
                      token=sess.get_token()).status_code == 200
    assert sess.delete(f"/servers/{server_id}", endpoint_filter=compute).status_code == 204


def test_missing_garbage_and_forged_tokens_are_401(external_cloud):
    cloud = external_cloud
    project_id = _project_id(cloud, "demo")
    forged = {"X-Identity-Status": "Confirmed", "X-Project-Id": project_id,
              "X-User-Id": "someone", "X-Roles": "admin,member"}
    for url in _urls(cloud, project_id):
        _unauthorized(cloud, cloud.call("GET", url))
        for token in ("", "garbage", "demo:demo", "admin:admin"):
            _unauthorized(cloud, cloud.call("GET", url, token=token))
        # Identity headers come from the middleware, never from the client.
        _unauthorized(cloud, cloud.call("GET", url, headers=forged))
        _unauthorized(cloud, cloud.call("GET", url, token="garbage", headers=forged))


def test_revoked_tokens_are_401(external_cloud):
    """A token revoked in Keystone (DELETE /v3/auth/tokens) before the APIs
    saw it is refused at once. One the APIs already accepted is refused once
    keystonemiddleware asks Keystone again: at once with token_cache_time -1."""
    from virtstack.api.compute import ComputeApp
    from virtstack.conf import CONF

    cloud = external_cloud
    project_id = _project_id(cloud, "demo")
    fresh, used = cloud.token(), cloud.token()
    CONF.set_override("token_cache_time", -1, "keystone_authtoken")
    try:
        uncached = ComputeApp()
    finally:
        CONF.clear_override("token_cache_time", "keystone_authtoken")

    def in_process(token):
        req = webob.Request.blank("/v2.1/servers", headers={"X-Auth-Token": token})
        return req.get_response(uncached)

    assert in_process(used).status_int == 200
    for token in (fresh, used):
        resp = cloud.call("DELETE", f"{cloud.keystone_url}/auth/tokens", token=token,
                          headers={"X-Subject-Token": token})
        assert resp.status_code == 204, resp.text
    for url in _urls(cloud, project_id):
        _unauthorized(cloud, cloud.call("GET", url, token=fresh))
    resp = in_process(used)
    assert resp.status_int == 401, resp.text
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.keystone_url}"'


def test_another_projects_member_sees_404(external_cloud):
    cloud = external_cloud
    password = cloud.create_member("alt", "alt")
    alt, demo = cloud.token("alt", "alt", password), cloud.token()
    demo_project = _project_id(cloud, "demo")
    resp = cloud.call("POST", f"{cloud.compute_url}/servers", token=demo, json={"server": {
        "name": "demo-only", "flavorRef": "42", "imageRef": cloud.image_id}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    resp = cloud.call("POST", f"{cloud.volume_url}/{demo_project}/volumes", token=demo,
                      json={"volume": {"size": 1, "name": "demo-only"}})
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    alt_project = _project_id(cloud, "alt")
    assert cloud.call("GET", f"{cloud.compute_url}/servers/{server_id}",
                      token=alt).status_code == 404
    listed = cloud.call("GET", f"{cloud.compute_url}/servers", token=alt).json()["servers"]
    assert server_id not in [s["id"] for s in listed]
    assert cloud.call("GET", f"{cloud.volume_url}/{alt_project}/volumes/{volume_id}",
                      token=alt).status_code == 404
    # Another project's id in the URL is not a way in ("Malformed request
    # url", as Cinder says).
    resp = cloud.call("GET", f"{cloud.volume_url}/{demo_project}/volumes/{volume_id}",
                      token=alt)
    assert resp.status_code == 400 and "project_id" in resp.text, resp.text
    assert cloud.call("GET", f"{cloud.compute_url}/servers/{server_id}",
                      token=demo).status_code == 200
    assert cloud.call("DELETE", f"{cloud.compute_url}/servers/{server_id}",
                      token=demo).status_code == 204


def test_a_member_is_refused_admin_operations(external_cloud):
    cloud = external_cloud
    demo, admin = cloud.token(), cloud.token("admin", "admin")
    flavor = {"flavor": {"name": "ks-flavor", "ram": 64, "vcpus": 1, "disk": 1}}
    for headers in ({}, {"X-Roles": "admin", "X-Is-Admin-Project": "True"}):
        assert cloud.call("GET", f"{cloud.compute_url}/os-hypervisors", token=demo,
                          headers=headers).status_code == 403
        assert cloud.call("POST", f"{cloud.compute_url}/flavors", token=demo,
                          json=flavor, headers=headers).status_code == 403
    # Keystone's admin (role admin on project admin) may.
    resp = cloud.call("GET", f"{cloud.compute_url}/os-hypervisors", token=admin)
    assert resp.status_code == 200 and resp.json()["hypervisors"], resp.text


def test_an_unscoped_token_is_403(external_cloud):
    cloud = external_cloud
    password = cloud.create_member("loner", None)
    unscoped = cloud.token("loner", None, password)
    resp = cloud.call("GET", f"{cloud.compute_url}/servers", token=unscoped)
    assert resp.status_code == 403, resp.text
    assert "scoped" in resp.text


def _openstack(cloud, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = cloud.clouds_yaml
    result = subprocess.run([OPENSTACK, "--os-cloud", "virtstack-demo", *args],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, (args, result.stderr[-2000:])
    return result


def test_the_openstack_cli_through_keystone(external_cloud):
    """The generated clouds.yaml, the real Keystone, our APIs: the CLI flow."""
    cloud = external_cloud
    token = json.loads(_openstack(cloud, "token", "issue", "-f", "json").stdout)
    cloud.secrets.add(token["id"])
    assert token["project_id"] == _project_id(cloud, "demo")
    created = json.loads(_openstack(
        cloud, "server", "create", "--image", "virtstack-test", "--flavor", "m1.nano",
        "--wait", "-f", "json", "cli-server").stdout)
    assert created["status"] == "ACTIVE", created
    servers = json.loads(_openstack(cloud, "server", "list", "-f", "json").stdout)
    assert ("cli-server", "ACTIVE") in [(s["Name"], s["Status"]) for s in servers]
    volume = json.loads(_openstack(cloud, "volume", "create", "--size", "1", "-f", "json",
                                   "cli-volume").stdout)
    volumes = json.loads(_openstack(cloud, "volume", "list", "-f", "json").stdout)
    assert volume["id"] in [v["ID"] for v in volumes]
    images = json.loads(_openstack(cloud, "image", "list", "-f", "json").stdout)
    assert "virtstack-test" in [i["Name"] for i in images]
    # --wait returns once the server is gone (404), else it fails.
    _openstack(cloud, "server", "delete", "--wait", "cli-server")


def test_the_written_virtstack_config(external_cloud, tmp_path):
    """virtstack-keystone.conf holds what this module configured, virtstack
    accepts it, and ``virtstack bootstrap`` then says where identities live."""
    cloud = external_cloud
    path = os.path.join(cloud.keystone_dir, "virtstack-keystone.conf")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(cloud.clouds_yaml).st_mode & 0o777) == "0o600"
    written = configparser.ConfigParser(interpolation=None)
    written.read(path)
    assert written["identity"]["mode"] == "keystone"
    section = written["keystone_authtoken"]
    from virtstack.conf import CONF

    for key, value in section.items():
        assert str(CONF.keystone_authtoken[key]) == value, key
    local = tmp_path / "local.conf"
    local.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n[compute]\ncompute_driver = fake\n")
    result = subprocess.run([VIRTSTACK, "--config-file", path, "--config-file", str(local),
                             "bootstrap"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result
    assert "live in the external Keystone at " + cloud.keystone_url in result.stderr
    assert not (tmp_path / "clouds.yaml").exists()


def test_virtstack_up_serves_no_identity_api(external_cloud, tmp_path):
    """``virtstack up`` with the written config: no bootstrap, no embedded
    Identity API; its Compute API takes the real Keystone's tokens."""
    cloud = external_cloud
    ports = {name: free_port() for name in ("compute", "volume", "image", "identity")}
    # The file backend wants a directory QEMU could reach (pytest's are private).
    volumes = tempfile.mkdtemp(prefix="virtstack-volumes-", dir="/tmp")
    os.chmod(volumes, 0o711)
    local = tmp_path / "local.conf"
    local.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}\n[compute]\ncompute_driver = fake\n"
        f"[volume]\nbackend = file\nvolumes_dir = {volumes}\n[api]\n"
        + "".join(f"{name}_port = {port}\n" for name, port in ports.items()))
    proc = subprocess.Popen(
        [VIRTSTACK, "--config-file", os.path.join(cloud.keystone_dir, "virtstack-keystone.conf"),
         "--config-file", str(local), "up"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],
                     daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("press Ctrl-C" in line for line in output):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        text = "".join(output)
        assert f"external Keystone at {cloud.keystone_url}" in text, text
        assert "Identity API listening" not in text and "bootstrapped" not in text, text
        assert not (tmp_path / "clouds.yaml").exists()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ports["identity"]), timeout=2).close()
        base = f"http://127.0.0.1:{ports['compute']}/v2.1/servers"
        assert cloud.call("GET", base, token=cloud.token()).status_code == 200
        _unauthorized(cloud, cloud.call("GET", base, token="garbage"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(volumes, ignore_errors=True)
    log = (tmp_path / "log" / "virtstack.log").read_text()
    assert "keystonemiddleware" in log
    assert [s[:6] for s in cloud.secrets if s in log] == []


def test_no_secret_reaches_the_logs(external_cloud):
    """Every record of this process during the module, DEBUG included
    (keystonemiddleware, keystoneauth1, virtstack): no password nor token."""
    cloud = external_cloud
    text = "\n".join(cloud.logs.lines)
    assert "keystonemiddleware.auth_token" in text  # the capture saw the middleware
    assert "Rejecting request" in text
    assert len(cloud.secrets) >= 8
    leaked = [line[:300] for line in cloud.logs.lines
              if any(secret in line for secret in cloud.secrets)]
    assert leaked == []
