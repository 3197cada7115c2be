"""A real Keystone (tools/start-keystone.sh: PyPI keystone under gunicorn,
SQLite, Fernet tokens) and an all-in-one virtstack in this process whose
Compute, Block Storage and Image APIs listen on free ports and validate
tokens with it (``[identity] mode = keystone``).

The first use installs Keystone into .venv-keystone (about half a minute,
printed); when that install is impossible the tests skip, except under CI
(``CI`` set), where they fail.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest
import requests
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from oslo_config import fixture as config_fixture

from virtstack.conf import CONF

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
START_KEYSTONE = os.path.join(ROOT, "tools", "start-keystone.sh")
#: The script's exit status when the install from PyPI failed.
INSTALL_FAILED = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LogRecords(logging.Handler):
    """Every record of this process, formatted (with tracebacks)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class ExternalCloud:
    """virtstack's APIs behind a real Keystone. ``secrets`` collects every
    password and token the tests handle (none may show up in a log)."""

    keystone_url: str
    keystone_dir: str
    passwords: dict[str, str] = field(repr=False)
    compute_url: str
    volume_url: str
    image_url: str
    image_id: str
    logs: LogRecords
    secrets: set[str] = field(default_factory=set, repr=False)

    @property
    def clouds_yaml(self) -> str:
        return os.path.join(self.keystone_dir, "clouds.yaml")

    def session(self, user: str = "demo", project: str | None = "demo",
                password: str | None = None) -> ks_session.Session:
        """A keystoneauth1 session of ``user`` (password auth against Keystone)."""
        auth = v3.Password(auth_url=self.keystone_url, username=user,
                           password=password or self.passwords[user],
                           user_domain_name="Default",
                           **({"project_name": project, "project_domain_name": "Default"}
                              if project else {}))
        return ks_session.Session(auth=auth)

    def token(self, user: str = "demo", project: str | None = "demo",
              password: str | None = None) -> str:
        token = self.session(user, project, password).get_token()
        self.secrets.add(token)
        return token

    def admin(self) -> ks_session.Session:
        return self.session("admin", "admin")

    def create_member(self, name: str, project: str | None) -> str:
        """A Keystone user ``name`` (member of a new project ``project`` if
        given, which is then its default project); returns its password."""
        admin, url = self.admin(), self.keystone_url
        password = secrets.token_urlsafe(12)
        self.secrets.add(password)
        user = {"name": name, "password": password, "domain_id": "default"}
        if project:
            project_id = admin.post(f"{url}/projects", json={"project": {
                "name": project, "domain_id": "default"}}).json()["project"]["id"]
            user["default_project_id"] = project_id
        # log=False: keystoneauth1 logs request bodies at DEBUG, and this
        # one (the test's own admin call) holds a password.
        user_id = admin.post(f"{url}/users", json={"user": user},
                             log=False).json()["user"]["id"]
        if project:
            role = admin.get(f"{url}/roles", params={"name": "member"}).json()["roles"][0]
            admin.put(f"{url}/projects/{project_id}/users/{user_id}/roles/{role['id']}")
        return password

    def call(self, method: str, url: str, token: str | None = None, json=None,
             headers: dict | None = None) -> requests.Response:
        headers = dict(headers or {})
        if token is not None:
            headers["X-Auth-Token"] = token
        return requests.request(method, url, json=json, headers=headers, timeout=60)


def _start_keystone(directory: str, port: int, passwords: dict[str, str], ports: dict,
                    say) -> None:
    env = dict(os.environ, KEYSTONE_ADMIN_PASSWORD=passwords["admin"],
               KEYSTONE_SERVICE_PASSWORD=passwords["virtstack"],
               KEYSTONE_DEMO_PASSWORD=passwords["demo"],
               # Cheap bcrypt: the tests authenticate dozens of times.
               KEYSTONE_PASSWORD_HASH_ROUNDS="4")
    args = [START_KEYSTONE, directory, "--port", str(port)]
    for name, value in ports.items():
        args += [f"--{name}-port", str(value)]
    t0 = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1500)
    output = result.stdout + result.stderr
    if result.returncode == INSTALL_FAILED and not os.environ.get("CI"):
        pytest.skip("cannot install Keystone from PyPI here (tools/start-keystone.sh): "
                    + " | ".join(output.strip().splitlines()[-3:]))
    assert result.returncode == 0, output
    installed = re.search(r"installed keystone \S+ in \d+ s", output)
    say(f"external Keystone: {installed.group(0) + '; ' if installed else ''}"
        f"started in {time.monotonic() - t0:.0f} s at http://127.0.0.1:{port}/v3")


@pytest.fixture(scope="module")
def external_cloud(request, tmp_path_factory):
    """The whole module shares one Keystone and one virtstack (see module doc)."""
    import futurist._thread

    from virtstack import rpc, service
    from virtstack.db import api as db_api

    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")

    def say(line: str) -> None:  # on the terminal, past pytest's capture
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)

    base = tmp_path_factory.mktemp("external-keystone")
    keystone_dir = str(base / "keystone")
    keystone_port = free_port()
    keystone_url = f"http://127.0.0.1:{keystone_port}/v3"
    passwords = {user: secrets.token_urlsafe(18) for user in ("admin", "virtstack", "demo")}
    logs = LogRecords()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    monkeypatch = pytest.MonkeyPatch()
    # oslo.messaging's worker pool notices a stop only after an idle poll.
    monkeypatch.setattr(futurist._thread.ThreadWorker, "MAX_IDLE_FOR", 0.02)
    conf = config_fixture.Config(CONF)
    conf.setUp()
    volumes_dir = tempfile.mkdtemp(prefix="virtstack-volumes-", dir="/tmp")
    os.chmod(volumes_dir, 0o711)
    stop: list = []
    try:
        CONF([], project="virtstack", default_config_files=[])
        conf.config(state_path=str(base), host="testhost")
        conf.config(connection=f"sqlite:///{base}/virtstack.sqlite", group="database")
        conf.config(compute_driver="fake", sync_power_state_interval=-1, group="compute")
        conf.config(backend="file", volumes_dir=volumes_dir, group="volume")
        conf.config(auth_strategy="keystone", group="api")
        conf.config(mode="keystone", group="identity")
        # What tools/start-keystone.sh writes to virtstack-keystone.conf (a
        # test compares them); the password plugin's options are registered
        # when the plugin is loaded, as validate_config() does.
        conf.register_opts(ks_loading.get_auth_plugin_conf_options("password"),
                           group="keystone_authtoken")
        conf.config(www_authenticate_uri=keystone_url, auth_url=keystone_url,
                    auth_type="password", username="virtstack",
                    password=passwords["virtstack"], user_domain_name="Default",
                    project_name="service", project_domain_name="Default",
                    region_name="RegionOne", group="keystone_authtoken")
        service.validate_config()
        db_api.dispose()
        rpc.cleanup()
        seeded = service.prepare_database()
        # With their heartbeats, as in 'virtstack up': the module outlives
        # [compute] service_down_time, after which a silent service is down.
        for svc in (service.ComputeService(), service.VolumeService()):
            svc.start()
            stop.insert(0, svc)
        apis = {}
        for name, factory in (("compute", service.compute_api_server),
                              ("volume", service.volume_api_server),
                              ("image", service.image_api_server)):
            apis[name] = factory(port=0)
            apis[name].start()
            stop.insert(0, apis[name])
        _start_keystone(keystone_dir, keystone_port, passwords,
                        {name: api.port for name, api in apis.items()}, say)
        cloud = ExternalCloud(
            keystone_url=keystone_url, keystone_dir=keystone_dir, passwords=passwords,
            compute_url=f"{apis['compute'].url}/v2.1", volume_url=f"{apis['volume'].url}/v3",
            image_url=f"{apis['image'].url}/v2", image_id=seeded["image_id"], logs=logs)
        cloud.secrets.update(passwords.values())
        yield cloud
    finally:
        for svc in stop:
            svc.stop()
        if os.path.exists(os.path.join(keystone_dir, "gunicorn.pid")):
            subprocess.run([START_KEYSTONE, "--stop", keystone_dir], capture_output=True,
                           timeout=60)
        rpc.cleanup()
        db_api.dispose()
        conf.cleanUp()
        monkeypatch.undo()
        root.removeHandler(logs)
        root.setLevel(old_level)
        shutil.rmtree(volumes_dir, ignore_errors=True)

