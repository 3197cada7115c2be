"""The libvirt driver against real libvirtd + QEMU (TCG): no mocks.

Guests are the offline test guest (``virtstack.image.testimage``), which
says on its serial console when it has booted (``VIRTSTACK-GUEST-BOOTED``)
and when the ACPI power button made it power off (``VIRTSTACK-POWEROFF``):
the tests watch the guest itself through ``get_console_output``, whose log
is kept across reboots. A boot takes ~5 s here, so each test boots as few
guests as what it proves needs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid as uuidlib
from unittest import mock

import pytest

from tests.functional.virt.libvirt import environment as lv
from virtstack import exception
from virtstack.db import image as db_image
from virtstack.image import store
from virtstack.virt import event as virtevent
from virtstack.virt import power_state
from virtstack.virt.driver import wait_for
from virtstack.virt.libvirt import config, flows, imagebackend
from virtstack.virt.libvirt.guest import Guest

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(600)]


def console(driver, instance) -> lv.Console:
    return lv.Console(lambda: driver.get_console_output(None, instance))


def state(driver, instance) -> int:
    return driver.get_info(instance).state


def domain_state(driver, instance) -> tuple[int, int]:
    """libvirt's own (state, reason) of the instance's domain."""
    return driver.host.get_connection().lookupByUUIDString(instance.uuid).state()


def nothing_left(driver, instance) -> None:
    """No domain (by uuid or name), no instance directory, no disk, no managed save."""
    assert driver.host.find_guest(instance.uuid) is None
    assert driver.host.find_guest_by_name(instance.name) is None
    assert instance.name not in lv.domain_names()
    assert not os.path.lexists(driver.backend.instance_dir(instance.uuid))
    assert not os.path.exists(f"/var/lib/libvirt/qemu/save/{instance.name}.save")


# -- power -------------------------------------------------------------------------

def test_soft_reboot_goes_through_the_guest_and_hard_reboot_does_not(
        libvirt_driver, image_meta, make_instance, recorder):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    out = console(driver, instance)
    out.wait_for(lv.BOOT_MARKER)

    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    driver.reboot(None, instance, None, "SOFT")
    # The guest heard the ACPI button and powered itself off, then booted again.
    out.wait_for(lv.POWEROFF_MARKER)
    out.wait_for(lv.BOOT_MARKER)
    assert stopped.wait(recorder.deadline)
    assert state(driver, instance) == power_state.RUNNING

    # HARD: power cut and back on at once; the guest is not asked.
    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    started = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STARTED)
    driver.reboot(None, instance, None, "HARD")
    assert state(driver, instance) == power_state.RUNNING
    assert stopped.wait(recorder.deadline) and started.wait(recorder.deadline)
    assert (out.count(lv.BOOT_MARKER), out.count(lv.POWEROFF_MARKER)) == (2, 1)


def test_soft_reboot_of_a_guest_that_does_not_hear_the_button_becomes_hard(
        libvirt_driver, image_meta, make_instance, conf, recorder):
    conf.config(group="compute", reboot_timeout=2, shutdown_retry_interval=1)
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    started = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STARTED)
    # The button presses get lost on the way to the guest.
    with mock.patch.object(Guest, "shutdown", autospec=True) as press:
        driver.reboot(None, instance, None, "SOFT")
    assert press.call_count >= 2  # pressed again every retry interval
    # ... so after reboot_timeout the power was cut and switched on again.
    assert stopped.wait(recorder.deadline) and started.wait(recorder.deadline)
    assert state(driver, instance) == power_state.RUNNING


def test_guest_shut_down_from_outside_is_reported_then_start_and_clean_stop(
        libvirt_driver, image_meta, make_instance, recorder):
    import libvirt

    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    out = console(driver, instance)
    out.wait_for(lv.BOOT_MARKER)

    # Someone else presses the power button, not through the driver: the
    # guest powers itself off and the listener hears of it.
    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    conn = libvirt.open(lv.URI)
    try:
        # A press can go unheard while the guest is busy (seen on a loaded
        # machine): press again every 2 s, as a person would, until it is off.
        deadline = time.monotonic() + recorder.deadline
        while not stopped.is_set() and time.monotonic() < deadline:
            try:
                conn.lookupByUUIDString(instance.uuid).shutdown()
            except libvirt.libvirtError:
                break  # already off
            stopped.wait(2.0)
    finally:
        conn.close()
    assert stopped.wait(1.0), recorder.events
    out.wait_for(lv.POWEROFF_MARKER, timeout=5)
    assert state(driver, instance) == power_state.SHUTDOWN

    started = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STARTED)
    driver.power_on(None, instance)
    assert started.wait(recorder.deadline)
    out.wait_for(lv.BOOT_MARKER)

    # A clean stop through the driver: the guest shuts down, no power cut.
    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    driver.power_off(instance, timeout=60, retry_interval=1)
    out.wait_for(lv.POWEROFF_MARKER, timeout=5)
    assert tuple(domain_state(driver, instance)) == (libvirt.VIR_DOMAIN_SHUTOFF,
                                                     libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)
    assert state(driver, instance) == power_state.SHUTDOWN
    assert stopped.wait(recorder.deadline)


def test_pause_and_unpause(libvirt_driver, image_meta, make_instance, recorder):
    import libvirt

    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    paused = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_PAUSED)
    driver.pause(instance)
    assert domain_state(driver, instance)[0] == libvirt.VIR_DOMAIN_PAUSED
    assert state(driver, instance) == power_state.PAUSED
    assert paused.wait(recorder.deadline)

    resumed = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_RESUMED)
    driver.unpause(instance)
    assert domain_state(driver, instance)[0] == libvirt.VIR_DOMAIN_RUNNING
    assert resumed.wait(recorder.deadline)
    with pytest.raises(exception.InstanceInvalidState):
        driver.unpause(instance)


def test_suspend_saves_memory_and_resume_restores_it(libvirt_driver, image_meta,
                                                      make_instance, recorder):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    out = console(driver, instance)
    out.wait_for(lv.BOOT_MARKER)

    suspended = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_SUSPENDED)
    driver.suspend(None, instance)
    guest = driver.host.get_guest(instance)
    assert not guest.is_active() and guest.has_managed_save()
    assert state(driver, instance) == power_state.SUSPENDED
    assert suspended.wait(recorder.deadline)

    resumed = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_RESUMED)
    driver.resume(None, instance)
    assert resumed.wait(recorder.deadline)
    assert state(driver, instance) == power_state.RUNNING
    assert not guest.has_managed_save()
    # The same guest runs on (no second boot) and still hears the button.
    driver.power_off(instance, timeout=60, retry_interval=1)
    out.wait_for(lv.POWEROFF_MARKER, timeout=5)
    assert out.count(lv.BOOT_MARKER) == 1


# -- boot, files, consoles, snapshot -----------------------------------------------

def test_spawned_guest_boots_and_its_snapshot_boots_too(libvirt_driver, image_meta,
                                                        make_instance):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    console(driver, instance).wait_for(lv.BOOT_MARKER)

    assert state(driver, instance) == power_state.RUNNING
    assert driver.get_info(instance).internal_id == instance.uuid
    assert instance.name in driver.list_instances()
    assert instance.uuid in driver.list_instance_uuids()
    # The root disk is a qcow2 overlay on the raw base of the image.
    info = imagebackend.image_info(driver.backend.disk_path(instance.uuid))
    base = info["full-backing-filename"]
    assert (info["format"], info["virtual-size"]) == ("qcow2", lv.FLAVOR.root_gb * 1024 ** 3)
    assert os.path.dirname(base) == driver.backend.base_dir
    assert imagebackend.image_info(base)["format"] == "raw"
    # The kernel is the image store's file, linked.
    kernel = os.path.join(driver.backend.instance_dir(instance.uuid), "kernel")
    assert os.path.samefile(kernel, store.path(image_meta.properties["kernel_id"]))
    # VNC on the configured address, on the port libvirt chose.
    vnc = driver.get_vnc_console(None, instance)
    [graphics] = driver.host.get_guest(instance).get_config().devices_of(config.Graphics)
    assert (vnc.host, vnc.port) == ("127.0.0.1", graphics.port)
    assert vnc.port >= 5900

    image_id = str(uuidlib.uuid4())
    # The compute manager registers the image (queued), with the properties
    # that make it boot the same way, before the driver captures it.
    db_image.create({"id": image_id, "name": "snap", "status": "queued", "visibility": "private",
                     "container_format": "bare", "disk_format": "qcow2",
                     "properties": dict(image_meta.properties), "min_disk": 0, "min_ram": 0})
    update_task_state = mock.Mock()
    snapshot = driver.snapshot(None, instance, image_id, update_task_state)

    assert [c.kwargs["task_state"] for c in update_task_state.call_args_list] == [
        "image_pending_upload", "image_uploading"]
    assert snapshot["location"] == store.new_path(image_id)
    assert snapshot["size"] == os.path.getsize(snapshot["location"])
    info = imagebackend.image_info(snapshot["location"])
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert state(driver, instance) == power_state.RUNNING  # paused for the copy only
    assert not [n for n in os.listdir(driver.backend.instance_dir(instance.uuid))
                if n.startswith("snapshot-")]

    store.finish_snapshot(image_id, snapshot["location"], snapshot["disk_format"])
    clone = make_instance()
    driver.spawn(None, clone, db_image.to_meta(db_image.get(image_id)))
    console(driver, clone).wait_for(lv.BOOT_MARKER)
    assert "VIRTSTACK-ROOT /dev/vda" in console(driver, clone).text()


# -- destroy and the image cache --------------------------------------------------

def test_destroy_leaves_nothing_and_the_base_goes_with_the_cache_cleanup(
        libvirt_driver, image_meta, make_instance):
    driver = libvirt_driver
    running, suspended = make_instance(), make_instance()
    for instance in (running, suspended):
        driver.spawn(None, instance, image_meta)
    driver.suspend(None, suspended)
    assert os.path.exists(f"/var/lib/libvirt/qemu/save/{suspended.name}.save")
    [base] = [os.path.join(driver.backend.base_dir, n) for n in os.listdir(driver.backend.base_dir)
              if not n.endswith(".lock")]

    driver.destroy(None, running)
    nothing_left(driver, running)
    assert driver.manage_image_cache() == []  # still used by the other one

    driver.destroy(None, suspended)
    nothing_left(driver, suspended)
    driver.destroy(None, suspended)  # again: nothing to do
    assert driver.manage_image_cache() == [base]
    assert os.listdir(driver.backend.base_dir) == []


def test_destroy_cleans_up_files_of_a_guest_whose_domain_is_gone(
        libvirt_driver, image_meta, make_instance):
    # As after a crash between the flow's steps: files without a domain.
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta, power_on=False)
    driver.host.get_guest(instance).delete_configuration()
    assert os.path.exists(driver.backend.disk_path(instance.uuid))
    driver.destroy(None, instance)
    nothing_left(driver, instance)


def test_flat_images_type_makes_a_raw_copy(request, conf, libvirt_conf, database, make_driver,
                                           make_instance):
    conf.config(group="libvirt", images_type="flat")
    image = lv.register_test_image()
    driver = make_driver()
    instance = make_instance()
    request.addfinalizer(lambda: driver.destroy(None, instance))
    driver.spawn(None, instance, image, power_on=False)
    info = imagebackend.image_info(driver.backend.disk_path(instance.uuid))
    assert info["format"] == "raw" and "backing-filename" not in info
    assert info["virtual-size"] == lv.FLAVOR.root_gb * 1024 ** 3
    assert state(driver, instance) == power_state.SHUTDOWN


# -- failures half-way through spawn ------------------------------------------------

SPAWN_TASKS = [flows.CreateInstanceDir, flows.FetchKernelAndRamdisk, flows.CreateRootDisk,
               flows.DefineGuest, flows.PlugVifs, flows.ConnectVolumes, flows.PowerOn,
               flows.WaitRunning]


def test_the_fault_injection_covers_every_spawn_task():
    assert {type(t) for t in flows.get_spawn_flow()} == set(SPAWN_TASKS)


class InjectedFailure(Exception):
    pass


# Each task fails after doing all its work (the hardest case for its own
# revert; and "task N+1 fails before its work" leaves what "task N fails
# after its work" leaves). The first also fails before doing anything.
# (tests/unit/virt/libvirt/test_flows.py runs each revert with nothing to undo.)
@pytest.mark.parametrize("task, when", [(SPAWN_TASKS[0], "before")]
                         + [(task, "after") for task in SPAWN_TASKS],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_spawn_failing_at_any_step_leaves_nothing(libvirt_driver, image_meta, make_instance,
                                                  task, when):
    driver, instance = libvirt_driver, make_instance()
    real_execute = task.execute

    def fail(self, *args, **kwargs):
        if when == "after":
            real_execute(self, *args, **kwargs)
        raise InjectedFailure(f"{task.__name__} failed {when} its work")

    with mock.patch.object(task, "execute", autospec=True, side_effect=fail):
        with pytest.raises(InjectedFailure):
            driver.spawn(None, instance, image_meta)
    nothing_left(driver, instance)
    # And the next spawn of the same instance works.
    driver.spawn(None, instance, image_meta, power_on=False)
    assert state(driver, instance) == power_state.SHUTDOWN


def test_spawn_with_vifs_it_cannot_plug_is_refused_cleanly(libvirt_driver, image_meta,
                                                           make_instance):
    driver, instance = libvirt_driver, make_instance()
    with pytest.raises(exception.NotSupported):
        driver.spawn(None, instance, image_meta, network_info=[{"id": "vif-1"}])
    nothing_left(driver, instance)


def test_spawn_of_an_image_that_lies_about_its_format_is_refused(
        libvirt_driver, image_meta, make_instance):
    # A qcow2 file registered as raw: QEMU would follow whatever backing
    # file its header names. The base is never made from it.
    built = lv.test_image()
    liar = store.add_file(built["root_disk_qcow2"], "liar", "raw",
                          properties=dict(image_meta.properties))
    driver, instance = libvirt_driver, make_instance()
    with pytest.raises(exception.Invalid, match="declared raw but its file is qcow2"):
        driver.spawn(None, instance, db_image.to_meta(liar))
    nothing_left(driver, instance)


# -- libvirtd restarts ---------------------------------------------------------------

def _libvirtd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out.split() else None


def _start_libvirtd() -> None:
    """As tools/install-libvirt.sh does: start it unless running, wait until it answers."""
    if _libvirtd_pid() is None:
        subprocess.run(["/usr/sbin/libvirtd", "--daemon"], check=True)
    wait_for(lambda: subprocess.run(["virsh", "-c", lv.URI, "version"],
                                    capture_output=True).returncode == 0,
             60, interval=0.2, what="libvirtd to answer")


def test_host_reconnects_after_libvirtd_restarts(libvirt_driver, image_meta, make_instance,
                                                 recorder, request):
    request.addfinalizer(_start_libvirtd)  # whatever happens here, libvirtd runs after
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    host = driver.host
    generation = host.generation

    pid = _libvirtd_pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 60, interval=0.05,
             what="libvirtd to exit")
    _start_libvirtd()

    host.wait_for(lambda: host.generation > generation, 60, poll_interval=0.2,
                  what="the Host to reconnect")
    # The guest ran on; the new connection sees it and delivers its events.
    assert state(driver, instance) == power_state.RUNNING
    assert instance.name in driver.list_instances()
    stopped = recorder.expect_lifecycle(instance.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    driver.power_off(instance)
    assert stopped.wait(recorder.deadline), recorder.events


# -- the guest type ----------------------------------------------------------------------

def test_auto_virt_type_probes_kvm_and_says_why(libvirt_driver, caplog):
    from virtstack.virt.libvirt import host as libvirt_host

    host = libvirt_driver.host
    libvirt_host._choices.pop(host.uri, None)  # probe again, not this process's cached answer
    with caplog.at_level("INFO", logger="virtstack.virt.libvirt.host"):
        chosen = host.choose_virt_type("auto", libvirt_driver.backend.instances_dir)
    assert chosen in ("kvm", "qemu")
    [record] = [r for r in caplog.records if "virt_type = auto" in r.getMessage()]
    assert f"using {chosen}: " in record.getMessage()
    assert host.choose_virt_type("auto", "/nonexistent") == chosen  # cached, no new probe
    assert host.choose_virt_type("qemu", "/nonexistent") == "qemu"
    # No probe domain or file is left.
    assert not [n for n in lv.domain_names() if n.startswith("virtstack-probe-")]
    assert not [n for n in os.listdir(libvirt_driver.backend.instances_dir)
                if n.startswith(".probe-")]


def test_probe_guest_boots_under_tcg(libvirt_driver):
    from virtstack.virt.libvirt import probe

    seconds = probe.time_probe_boot(libvirt_driver.host, "qemu",
                                    libvirt_driver.backend.instances_dir)
    assert 0 < seconds < probe.BOOT_TIMEOUT


def test_available_resource_describes_this_host(libvirt_driver, image_meta, make_instance):
    driver = libvirt_driver
    resources = driver.get_available_resource(driver.get_available_nodes()[0])
    assert resources["vcpus"] == os.cpu_count()
    assert resources["hypervisor_type"] == "QEMU"
    assert resources["hypervisor_version"] >= 1000000
    cpu = json.loads(resources["cpu_info"])
    assert cpu["arch"] == "x86_64" and cpu["topology"]["cores"] >= 1 and cpu["features"]
    st = os.statvfs(driver.backend.instances_dir)
    assert resources["local_gb"] == st.f_blocks * st.f_frsize // 1024 ** 3
    with pytest.raises(exception.HypervisorNotFound):
        driver.get_available_resource("some-other-node")


# -- failures half-way through snapshot ---------------------------------------------

SNAPSHOT_TASKS = [flows.NoteRunning, flows.PauseForCapture, flows.CaptureDisk,
                  flows.ResumeAfterCapture, flows.MoveToStore]


def test_the_fault_injection_covers_every_snapshot_task():
    assert [type(t) for t in flows.get_snapshot_flow()] == SNAPSHOT_TASKS


def test_snapshot_failing_at_any_step_resumes_the_guest_and_leaves_no_file(
        libvirt_driver, image_meta, make_instance):
    """Each snapshot task fails after doing its work, in turn, on one running
    guest: every time the guest is running again afterwards and neither the
    partial copy nor the image file is left; then a snapshot succeeds."""
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    instance_dir = driver.backend.instance_dir(instance.uuid)
    for task in SNAPSHOT_TASKS:
        image_id = f"snap-fail-{task.__name__}"
        real_execute = task.execute

        def fail(self, *args, _real=real_execute, _name=task.__name__, **kwargs):
            _real(self, *args, **kwargs)
            raise InjectedFailure(f"{_name} failed after its work")

        with mock.patch.object(task, "execute", autospec=True, side_effect=fail):
            with pytest.raises(InjectedFailure):
                driver.snapshot(None, instance, image_id, lambda **kw: None)
        assert state(driver, instance) == power_state.RUNNING, task.__name__
        assert not os.path.exists(store.new_path(image_id)), task.__name__
        assert not [f for f in os.listdir(instance_dir) if f.startswith("snapshot-")], \
            task.__name__
    calls = []
    result = driver.snapshot(None, instance, "snap-ok", lambda **kw: calls.append(kw))
    assert os.path.getsize(result["location"]) == result["size"] > 0
    assert [c["task_state"] for c in calls] == ["image_pending_upload", "image_uploading"]
    assert state(driver, instance) == power_state.RUNNING
