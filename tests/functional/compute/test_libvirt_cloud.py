"""The whole cloud on real libvirt + QEMU: servers made and driven through the
Compute API are real guests (no mocks). The test guest prints markers on its
serial console, which the API's console output shows.
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid

import pytest

from tests.functional.virt.libvirt import environment as lv
from tests.waiting import poll
from virtstack.virt.libvirt import flows as libvirt_flows

TOKEN = "demo:demo"



@pytest.fixture
def libvirt_cloud(request, conf, monkeypatch):
    """API + compute service on the libvirt driver, in a state_path QEMU can
    reach, with a per-test domain-name prefix so nothing collides with other
    clouds on this libvirtd. Every domain of the test is gone afterwards."""
    import futurist._thread

    from virtstack import rpc, service
    from virtstack.api.compute import ComputeApp
    from virtstack.db import api as db_api
    from tests.conftest import Cloud

    lv.require_libvirt()
    state = lv.make_state_path(request, conf)
    lv.configure(conf)
    prefix = f"vs-apitest-{uuid.uuid4().hex[:6]}-"
    conf.config(compute_driver="libvirt", group="compute")
    conf.config(instance_name_template=prefix + "%08x", group="compute")
    conf.config(host="libvirt-testhost")
    monkeypatch.setattr(futurist._thread.ThreadWorker, "MAX_IDLE_FOR", 0.02)
    # The test guest, built once per machine, registered from its cache.
    os.makedirs(os.path.join(state, "cache"), exist_ok=True)
    os.symlink(lv.image_dir(), os.path.join(state, "cache", "test-image"))
    lv.test_image()
    db_api.dispose()
    rpc.cleanup()
    seeded = service.prepare_database()
    compute = service.ComputeService()
    compute.start(periodic=False)
    cloud = Cloud(compute, ComputeApp(), seeded["image_id"])
    cloud.prefix = prefix
    try:
        yield cloud
    finally:
        for name in _domains(prefix):
            subprocess.run(["virsh", "-q", "-c", lv.URI, "destroy", name], capture_output=True)
            subprocess.run(["virsh", "-q", "-c", lv.URI, "undefine", "--managed-save", name],
                           capture_output=True)
        compute.stop()
        rpc.cleanup()
        db_api.dispose()


def _domains(prefix: str) -> list[str]:
    out = subprocess.run(["virsh", "-q", "-c", lv.URI, "list", "--all", "--name"],
                         capture_output=True, text=True, check=True).stdout
    return [n for n in out.split() if n.startswith(prefix)]


def _console(cloud, sid: str) -> str:
    resp = cloud.request("POST", f"/v2.1/servers/{sid}/action",
                         {"os-getConsoleOutput": {"length": None}}, token=TOKEN)
    assert resp.status_int == 200, resp.text
    return resp.json["output"]


def _boot(cloud, name: str = "lv") -> str:
    sid = cloud.create_server(name=name, flavor="84")  # m1.micro: 192 MB, 1 GB disk
    cloud.wait_for_status(sid, "ACTIVE", timeout=lv.BOOT_TIMEOUT)
    poll(lambda: lv.BOOT_MARKER in _console(cloud, sid), lv.BOOT_TIMEOUT, "the boot marker")
    return sid


def _action(cloud, sid: str, body: dict) -> None:
    resp = cloud.request("POST", f"/v2.1/servers/{sid}/action", body, token=TOKEN)
    assert resp.status_int == 202, resp.text


def test_a_server_is_a_real_guest_through_its_whole_life(libvirt_cloud):
    cloud = libvirt_cloud
    sid = _boot(cloud)
    [domain] = _domains(cloud.prefix)
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:instance_name"] == domain
    assert server["OS-EXT-STS:power_state"] == 1

    _action(cloud, sid, {"os-stop": None})
    assert cloud.wait_for_status(sid, "SHUTOFF", timeout=90)["OS-EXT-STS:power_state"] == 4
    assert lv.POWEROFF_MARKER in _console(cloud, sid), "a clean (ACPI) shutdown"
    _action(cloud, sid, {"os-start": None})
    cloud.wait_for_status(sid, "ACTIVE", timeout=90)
    poll(lambda: _console(cloud, sid).count(lv.BOOT_MARKER) == 2, lv.BOOT_TIMEOUT,
          "the guest to boot again")

    resp = cloud.request("DELETE", f"/v2.1/servers/{sid}", token=TOKEN)
    assert resp.status_int == 204
    cloud.wait_for_status(sid, "DELETED", timeout=90)
    assert _domains(cloud.prefix) == []
    from virtstack.conf import CONF
    assert not os.path.exists(os.path.join(CONF.state_path, "instances", sid))


def test_a_guest_that_powers_itself_off_goes_shutoff_through_events(libvirt_cloud):
    """The periodic sync is off (tests' default): only the lifecycle event
    can tell the API. ACPI from outside makes the guest run its own
    power-off, as a user typing 'poweroff' inside would."""
    cloud = libvirt_cloud
    sid = _boot(cloud)
    [domain] = _domains(cloud.prefix)

    def off_in_api() -> bool:
        # Press the button (again: a press can go unheard on a busy machine)
        # until the API shows the server off.
        subprocess.run(["virsh", "-q", "-c", lv.URI, "shutdown", domain], capture_output=True)
        resp = cloud.request("GET", f"/v2.1/servers/{sid}", token=TOKEN)
        return resp.json["server"]["status"] == "SHUTOFF"

    poll(off_in_api, 60, "SHUTOFF in the API", interval=2.0)
    server = cloud.wait_for_status(sid, "SHUTOFF", timeout=10)
    assert server["OS-EXT-STS:power_state"] == 4
    assert lv.POWEROFF_MARKER in _console(cloud, sid)


def test_snapshot_through_the_api_boots_a_new_server(libvirt_cloud):
    from virtstack.db import image as db_image

    cloud = libvirt_cloud
    sid = _boot(cloud)
    resp = cloud.request("POST", f"/v2.1/servers/{sid}/action",
                         {"createImage": {"name": "lv-snap"}}, token=TOKEN)
    assert resp.status_int == 202, resp.text
    image_id = resp.headers["Location"].rsplit("/", 1)[1]
    poll(lambda: db_image.get(image_id).status == "active", 120, "the snapshot image")
    image = db_image.get(image_id)
    assert image.disk_format == "qcow2" and image.size > 0 and os.path.exists(image.location)
    assert image.properties["kernel_id"] and image.properties["ramdisk_id"]
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "from-snap", "flavorRef": "84", "imageRef": image_id}}, token=TOKEN)
    assert resp.status_int == 202, resp.text
    new = resp.json["server"]["id"]
    cloud.wait_for_status(new, "ACTIVE", timeout=lv.BOOT_TIMEOUT)
    poll(lambda: lv.BOOT_MARKER in _console(cloud, new), lv.BOOT_TIMEOUT,
          "the snapshot's guest to boot")


def _spawn_tasks() -> list[str]:
    """Every task of the libvirt spawn flow, from the flow itself."""
    return [type(t).__name__ for t in libvirt_flows.get_spawn_flow(power_on=True)]


@pytest.mark.parametrize("task_name", _spawn_tasks())
def test_each_spawn_task_failing_leaves_error_and_nothing_behind(libvirt_cloud, monkeypatch,
                                                                 task_name):
    """Inject a failure after each libvirt spawn task's real work: the server
    is ERROR with a fault, and there is no domain, no instance directory and
    no claim left."""
    from virtstack.conf import CONF

    cloud = libvirt_cloud
    cls = getattr(libvirt_flows, task_name)
    real_execute = cls.execute

    # TaskFlow reads a task's inputs from execute's signature: keep it, or
    # the real work never runs and the test proves nothing.
    @functools.wraps(real_execute)
    def failing_execute(self, *args, **kwargs):
        real_execute(self, *args, **kwargs)
        raise RuntimeError(f"injected failure after {task_name}")

    monkeypatch.setattr(cls, "execute", failing_execute)
    sid = cloud.create_server(name="doomed", flavor="84")
    server = cloud.wait_for_status(sid, "ERROR", timeout=lv.BOOT_TIMEOUT)
    assert f"injected failure after {task_name}" in server["fault"]["message"]
    assert _domains(cloud.prefix) == []
    assert not os.path.exists(os.path.join(CONF.state_path, "instances", sid))
    hyp = cloud.request("GET", "/v2.1/os-hypervisors/detail", token="admin:admin").json
    assert hyp["hypervisors"][0]["vcpus_used"] == 0
