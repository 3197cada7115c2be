"""A real all-in-one virtstack for end-to-end tests with real clients.

``virtstack_cloud`` starts ``virtstack up`` as a subprocess of its own (own
state path, SQLite database and free ports) once per test module, waits
until the Identity API answers and ``clouds.yaml`` exists, and stops it
afterwards (SIGINT, then kill), checking that no guest of it is left in
libvirtd. Guests are real QEMU guests when libvirtd answers here (the same
check as the libvirt driver's functional tests), else the fake driver's;
``VIRTSTACK_E2E_DRIVER=fake`` (or ``libvirt``) chooses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid

import pytest

from tests.functional.virt.libvirt import environment as lv
from tests.waiting import poll

BIN = os.path.dirname(sys.executable)
VIRTSTACK = os.path.join(BIN, "virtstack")
OPENSTACK = os.path.join(BIN, "openstack")
#: Seconds for ``virtstack up`` to serve: the first start registers the test
#: guest (built once per machine, cached) and may probe libvirtd.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
ADMIN_CLOUD = "virtstack-admin"
DEMO_CLOUD = "virtstack-demo"


@dataclasses.dataclass
class RunningCloud:
    """A running ``virtstack up`` and how clients reach it."""

    state_path: str
    clouds_yaml: str
    identity_url: str
    #: ``libvirt`` (real QEMU guests) or ``fake``.
    driver: str
    #: Every guest's libvirt domain name starts with this.
    name_prefix: str
    process: subprocess.Popen
    log_path: str

    @property
    def real_guests(self) -> bool:
        return self.driver == "libvirt"

    @property
    def boot_marker(self) -> str:
        """What a guest's console shows once it has booted."""
        return lv.BOOT_MARKER if self.real_guests else "booted"

    def client_env(self) -> dict[str, str]:
        """The environment of a client process: only ``clouds.yaml`` says
        where and who (no OS_* variable of this shell leaks in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = self.clouds_yaml
        return env

    def output(self) -> str:
        """What the ``virtstack up`` process printed so far (for failures)."""
        with open(self.log_path, errors="replace") as f:
            return f.read()


def guest_files() -> dict[str, str]:
    """The test guest's files to upload: ``kernel``, ``ramdisk``, ``root``
    (its disk format in ``root_format``) and the kernel's ``cmdline``."""
    built = lv.test_image()
    root, root_format = ((built["root_disk_qcow2"], "qcow2") if built["root_disk_qcow2"]
                         else (built["root_disk"], "raw"))
    return {"kernel": built["kernel_pvh"] or built["kernel"], "ramdisk": built["initrd"],
            "root": root, "root_format": root_format, "cmdline": built["cmdline"]}


def md5_of(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def libvirt_usable() -> bool:
    """Whether libvirtd answers here (``lv.require_libvirt``'s check)."""
    try:
        lv.require_libvirt()
    except pytest.skip.Exception:
        return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` ports free on loopback now (all held open until all are
    picked, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _identity_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v3", timeout=5) as resp:
            return resp.status == 200 and "version" in json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _write_config(path: str, state: str, ports: dict[str, int], driver: str,
                  prefix: str) -> None:
    lines = [
        "[DEFAULT]",
        f"state_path = {state}",
        "host = e2e-host",
        "[database]",
        f"connection = sqlite:///{state}/virtstack.sqlite",
        "[api]",
        "listen = 127.0.0.1",
        "public_host = 127.0.0.1",
        *(f"{name}_port = {port}" for name, port in ports.items()),
        "workers = 4",
        "[identity]",
        # bcrypt's cost for the users bootstrap creates: each CLI command
        # signs in again, and the default (12) costs ~0.3 s of a busy CPU.
        "password_hash_rounds = 4",
        "[compute]",
        f"compute_driver = {driver}",
        f"instance_name_template = {prefix}%08x",
        # A stop or soft reboot of a guest still booting waits for its acpid:
        # press the button every second, not every ten.
        "shutdown_retry_interval = 1",
        "reboot_timeout = 60",
        "[libvirt]",
        "virt_type = qemu",
        f"connection_uri = {lv.URI}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _destroy_left_domains(prefix: str) -> list[str]:
    """Destroy and undefine every domain named ``prefix...``; their names."""
    if not libvirt_usable():
        return []
    left = sorted(n for n in lv.domain_names() if n.startswith(prefix))
    for name in left:
        subprocess.run(["virsh", "-q", "-c", lv.URI, "destroy", name], capture_output=True)
        subprocess.run(["virsh", "-q", "-c", lv.URI, "undefine", "--managed-save", name],
                       capture_output=True)
    return left


@pytest.fixture(scope="module")
def virtstack_cloud(request):
    """``virtstack up`` in a subprocess, serving until the module's tests end.
    Guests a failed test left are destroyed quietly; after passing tests,
    any guest left is an error."""
    failed_before = request.session.testsfailed
    driver = os.environ.get("VIRTSTACK_E2E_DRIVER") or ("libvirt" if libvirt_usable() else "fake")
    # QEMU (libvirt-qemu) must traverse the state path: /tmp, mode 0711.
    state = tempfile.mkdtemp(prefix="virtstack-e2e-", dir="/tmp")
    os.chmod(state, 0o711)
    if driver == "libvirt":
        # The test guest is built once per machine; `up` registers it from there.
        lv.test_image()
        os.makedirs(os.path.join(state, "cache"))
        os.symlink(lv.image_dir(), os.path.join(state, "cache", "test-image"))
    prefix = f"vs-e2e-{uuid.uuid4().hex[:6]}-"
    ports = dict(zip(("compute", "volume", "image", "identity"), _free_ports(4)))
    conf_path = os.path.join(state, "virtstack.conf")
    _write_config(conf_path, state, ports, driver, prefix)
    log_path = os.path.join(state, "up.out")
    with open(log_path, "wb") as out:
        process = subprocess.Popen([VIRTSTACK, "--config-file", conf_path, "up"],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    cloud = RunningCloud(state_path=state, clouds_yaml=os.path.join(state, "clouds.yaml"),
                         identity_url=f"http://127.0.0.1:{ports['identity']}",
                         driver=driver, name_prefix=prefix, process=process, log_path=log_path)
    try:
        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"virtstack up exited ({process.returncode}):\n"
                                     + cloud.output())
            return os.path.exists(cloud.clouds_yaml) and _identity_answers(cloud.identity_url)

        poll(serving, START_TIMEOUT, "virtstack up to serve", interval=0.2)
        yield cloud
    finally:
        _stop(process)
        left = _destroy_left_domains(prefix)
        returncode = process.returncode
        output = cloud.output()
        shutil.rmtree(state, ignore_errors=True)
    if request.session.testsfailed == failed_before:
        assert not left, f"domains left in libvirtd after virtstack stopped: {left}"
    assert returncode == 0, f"virtstack up exited {returncode}:\n{output}"
