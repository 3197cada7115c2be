"""Kill -9 the all-in-one service in the middle of a spawn, start it again:
the interrupted (persisted) flow is resumed or rolled back, and the server
ends ACTIVE or ERROR, never stuck in BUILD, with no flow state left over.

Runs ``virtstack up`` as a real separate process and talks to it over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests.waiting import poll

HEADERS = {"X-Auth-Token": "demo:demo", "Content-Type": "application/json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



class Service:
    def __init__(self, state: str, port: int, extra: str = "", driver: str = "fake",
                 compute_extra: str = ""):
        self.state, self.port = state, port
        self.conf = os.path.join(state, f"virtstack-{len(os.listdir(state))}.conf")
        with open(self.conf, "w") as f:
            # Ports of its own for every API (the defaults may be taken by a
            # running cloud); noauth tokens, as HEADERS.
            f.write(f"[DEFAULT]\nstate_path = {state}\n[api]\ncompute_port = {port}\n"
                    f"volume_port = {_free_port()}\nimage_port = {_free_port()}\n"
                    f"identity_port = {_free_port()}\nauth_strategy = noauth\n"
                    f"[compute]\ncompute_driver = {driver}\n{compute_extra}{extra}")
        exe = os.path.join(os.path.dirname(sys.executable), "virtstack")
        self.log = open(os.path.join(state, "stdout.log"), "ab")
        self.proc = subprocess.Popen([exe, "--config-file", self.conf, "up"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        poll(self._answers, 60, "the API to answer")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"virtstack up exited with {self.proc.returncode}")
        try:
            return requests.get(self.base + "/", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def server(self, sid: str) -> dict:
        return requests.get(f"{self.base}/v2.1/servers/{sid}", headers=HEADERS,
                            timeout=10).json()["server"]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _flow_rows(state: str) -> int:
    engine = sa.create_engine(f"sqlite:///{state}/virtstack.sqlite")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM logbooks")).scalar_one()
    finally:
        engine.dispose()


def _default_image(state: str) -> str:
    """The id of the image 'virtstack up' registered in ``state``."""
    engine = sa.create_engine(f"sqlite:///{state}/virtstack.sqlite")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT id FROM images WHERE name='virtstack-test' "
                                        "AND deleted = 0")).scalar_one()
    finally:
        engine.dispose()


def _kill_mid_spawn(state: str, port: int) -> str:
    """Start the service with a 30 s spawn, create a server, kill -9 the
    service while it spawns; returns the server id."""
    first = Service(state, port, "[fake_driver]\nlatency = spawn:30\n")
    try:
        image_id = _default_image(state)
        resp = requests.post(f"{first.base}/v2.1/servers", headers=HEADERS, json={"server": {
            "name": "crashy", "flavorRef": "42", "imageRef": image_id}}, timeout=10)
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        poll(lambda: first.server(sid)["OS-EXT-STS:task_state"] == "spawning", 30,
              "the spawn to be under way")
        assert _flow_rows(state) == 1, "the running spawn flow is persisted"
        return sid
    finally:
        first.kill9()


def _settled(service: Service, sid: str) -> dict:
    return poll(lambda: (lambda s: s if s["status"] in ("ACTIVE", "ERROR") else None)(
        service.server(sid)), 60, "the server to leave BUILD")


@pytest.fixture
def state_dir(request):
    """A state path the volume service accepts: its file volumes must be
    reachable by QEMU (pytest's tmp_path is private to root)."""
    state = tempfile.mkdtemp(prefix="virtstack-crash-", dir="/tmp")
    os.chmod(state, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(state, ignore_errors=True))
    return state


def test_kill_9_mid_spawn_then_restart_finishes_the_build(state_dir):
    port = _free_port()
    sid = _kill_mid_spawn(state_dir, port)
    second = Service(state_dir, port)  # no latency now
    try:
        server = _settled(second, sid)
        # The flow was resumed: the spawn ran again and finished.
        assert server["status"] == "ACTIVE", server
        assert server["OS-EXT-STS:task_state"] is None
        assert server["OS-EXT-STS:power_state"] == 1
        assert _flow_rows(state_dir) == 0, "the recovered flow's state was cleaned up"
        # And the server works normally afterwards.
        resp = requests.post(f"{second.base}/v2.1/servers/{sid}/action", headers=HEADERS,
                             json={"os-stop": None}, timeout=10)
        assert resp.status_code == 202
        poll(lambda: second.server(sid)["status"] == "SHUTOFF", 30, "SHUTOFF")
    finally:
        second.stop()


def test_kill_9_when_the_resumed_spawn_fails_leaves_error_not_build(state_dir):
    port = _free_port()
    sid = _kill_mid_spawn(state_dir, port)
    # After the restart every spawn fails: the resumed flow reverts.
    second = Service(state_dir, port, "[fake_driver]\nfail = spawn\n")
    try:
        server = _settled(second, sid)
        assert server["status"] == "ERROR", server
        assert "fault" in server and server["fault"]["message"]
        assert _flow_rows(state_dir) == 0
        # The claim was given back by the revert.
        hyp = requests.get(f"{second.base}/v2.1/os-hypervisors/detail",
                           headers={"X-Auth-Token": "admin:admin"}, timeout=10).json()
        assert hyp["hypervisors"][0]["vcpus_used"] == 0
    finally:
        second.stop()


def test_kill_9_mid_spawn_on_libvirt_leaves_one_running_guest(request):
    """The same on real QEMU guests: after the restart the resumed flow first
    destroys whatever the interrupted spawn had built, then builds again;
    the server ends ACTIVE with exactly one domain, which boots."""
    from tests.functional.virt.libvirt import environment as lv

    lv.require_libvirt()
    lv.test_image()
    state = tempfile.mkdtemp(prefix="virtstack-crash-", dir="/tmp")
    os.chmod(state, 0o711)
    prefix = f"vs-crash-{uuid.uuid4().hex[:6]}-"

    def cleanup():
        out = subprocess.run(["virsh", "-q", "-c", lv.URI, "list", "--all", "--name"],
                             capture_output=True, text=True).stdout
        for name in [n for n in out.split() if n.startswith(prefix)]:
            subprocess.run(["virsh", "-q", "-c", lv.URI, "destroy", name], capture_output=True)
            subprocess.run(["virsh", "-q", "-c", lv.URI, "undefine", "--managed-save", name],
                           capture_output=True)
        shutil.rmtree(state, ignore_errors=True)

    request.addfinalizer(cleanup)
    os.makedirs(os.path.join(state, "cache"))
    os.symlink(lv.image_dir(), os.path.join(state, "cache", "test-image"))
    options = dict(driver="libvirt", compute_extra=(
        f"instance_name_template = {prefix}%08x\n"
        "shutdown_retry_interval = 1\n"), extra="[libvirt]\nvirt_type = qemu\n")
    port = _free_port()
    first = Service(state, port, **options)
    try:
        image_id = _default_image(state)
        # The spawn takes well under a second here: try until one is caught
        # in the act (the first try almost always is).
        sid = None
        for attempt in range(5):
            resp = requests.post(f"{first.base}/v2.1/servers", headers=HEADERS, json={"server": {
                "name": f"crashy-{attempt}", "flavorRef": "84", "imageRef": image_id}},
                timeout=10)
            assert resp.status_code == 202, resp.text
            candidate = resp.json()["server"]["id"]
            seen = poll(lambda: first.server(candidate)["OS-EXT-STS:task_state"] == "spawning"
                         or first.server(candidate)["status"] != "BUILD", 30, "spawning")
            if first.server(candidate)["OS-EXT-STS:task_state"] == "spawning":
                sid = candidate
                break
            assert seen
        assert sid is not None, "never caught a spawn in progress"
    finally:
        first.kill9()

    second = Service(state, port, **options)
    try:
        server = _settled(second, sid)
        assert server["status"] == "ACTIVE", server
        assert _flow_rows(state) == 0
        admin = {"X-Auth-Token": "admin:admin"}
        name = requests.get(f"{second.base}/v2.1/servers/{sid}", headers=admin,
                            timeout=10).json()["server"]["OS-EXT-SRV-ATTR:instance_name"]
        out = subprocess.run(["virsh", "-q", "-c", lv.URI, "domstate", name],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == "running"
        console = lambda: requests.post(  # noqa: E731
            f"{second.base}/v2.1/servers/{sid}/action", headers=HEADERS,
            json={"os-getConsoleOutput": {"length": None}}, timeout=10).json()["output"]
        poll(lambda: lv.BOOT_MARKER in console(), lv.BOOT_TIMEOUT, "the guest to boot")
    finally:
        second.stop()
