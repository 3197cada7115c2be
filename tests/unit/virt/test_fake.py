"""What only the fake driver does: injection, simulation and its bookkeeping.

The behaviour every driver shares is proven by test_driver_contract.py.
"""

from __future__ import annotations

import concurrent.futures
import re
import time
import uuid as uuidlib

import pytest
from oslo_context import context as oslo_context

from virtstack import exception
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt import event as virtevent
from virtstack.virt import fake, power_state
from virtstack.virt.driver import (OPERATIONS, REQUIRED_OPERATIONS, ComputeDriver,
                                   capability_key)

CTX = oslo_context.RequestContext(user_id="fake-user", project_id="fake-project")
HOST = "fake-host"
GiB = 1024 ** 3
FLAVOR = Flavor(flavorid="2", name="m1.small", vcpus=2, memory_mb=2048, root_gb=20,
                ephemeral_gb=5)
IMAGE = ImageMeta(id=str(uuidlib.uuid4()), name="cirros", disk_format="qcow2")
VIF = {"id": "5a3e1c3f-0000-4000-8000-000000000001", "address": "fa:16:3e:00:00:01"}
STARTED, STOPPED = virtevent.EVENT_LIFECYCLE_STARTED, virtevent.EVENT_LIFECYCLE_STOPPED
PAUSED, RESUMED = virtevent.EVENT_LIFECYCLE_PAUSED, virtevent.EVENT_LIFECYCLE_RESUMED
SUSPENDED, CRASHED = virtevent.EVENT_LIFECYCLE_SUSPENDED, virtevent.EVENT_LIFECYCLE_CRASHED


def _instance() -> Instance:
    uuid = str(uuidlib.uuid4())
    return Instance(uuid=uuid, name=f"instance-{uuid[:8]}", display_name="t",
                    project_id="fake-project", user_id="fake-user", flavor=FLAVOR)


def _volume(volume_id: str, **data) -> dict:
    return {"driver_volume_type": "iscsi", "data": {"volume_id": volume_id, **data}}


@pytest.fixture
def make_driver(conf):
    """Build a FakeDriver with the given [fake_driver] options (no injection by default)."""
    def make(**fake_driver_opts):
        conf.config(group="fake_driver", **{"latency": {}, "fail": [], **fake_driver_opts})
        drv = fake.FakeDriver()
        drv.init_host(HOST)
        return drv
    return make


@pytest.fixture
def driver(make_driver):
    return make_driver()


@pytest.fixture
def guest(driver):
    instance = _instance()
    driver.spawn(CTX, instance, IMAGE, [VIF])
    return instance


def _elapsed(call, *args) -> float:
    start = time.monotonic()
    call(*args)
    return time.monotonic() - start


# -- latency -------------------------------------------------------------------

def test_conf_latency_delays_the_method(make_driver):
    drv = make_driver(latency={"get_available_nodes": "0.2"})
    assert _elapsed(drv.get_available_nodes) >= 0.2


def test_set_latency_delays_only_that_method_and_zero_removes_it(driver, guest):
    driver.set_latency("get_info", 0.2)
    driver.set_latency("spawn", 30)
    assert _elapsed(driver.get_info, guest) >= 0.2
    assert _elapsed(driver.list_instances) < 30
    driver.set_latency("get_info", 30)
    driver.set_latency("get_info", 0)
    assert _elapsed(driver.get_info, guest) < 30


@pytest.mark.parametrize("method, seconds", [("spwan", 1), ("spawn", -1)])
def test_set_latency_rejects_unknown_methods_and_negative_delays(driver, method, seconds):
    with pytest.raises(ValueError, match="spwan|negative"):
        driver.set_latency(method, seconds)


@pytest.mark.parametrize("latency, complaint", [
    ({"spwan": "1"}, "unknown fake driver method 'spwan'; known: attach_volume, "),
    ({"spawn": "fast"}, "latency of 'spawn' is not a number: 'fast'"),
    ({"spawn": "-2"}, "latency of 'spawn' is negative"),
])
def test_bad_conf_latency_fails_at_start(make_driver, latency, complaint):
    expected = re.escape("[fake_driver] latency: " + complaint)
    with pytest.raises(exception.ConfigError, match=expected):
        make_driver(latency=latency)


# -- failures ------------------------------------------------------------------

def test_injected_failure_fires_times_then_succeeds(driver):
    boom = RuntimeError("hypervisor on fire")
    driver.inject_failure("spawn", boom, times=2)
    instance = _instance()
    for _ in range(2):
        with pytest.raises(RuntimeError) as raised:
            driver.spawn(CTX, instance, IMAGE)
        assert raised.value is boom
        assert driver.list_instances() == []  # the failed call changed nothing
    driver.spawn(CTX, instance, IMAGE)
    assert driver.get_info(instance).state == power_state.RUNNING


def test_injected_failure_defaults_to_a_virtstack_exception(driver, guest):
    driver.inject_failure("pause")
    with pytest.raises(exception.VirtstackException, match="Injected failure .*'pause'"):
        driver.pause(guest)
    assert driver.get_info(guest).state == power_state.RUNNING
    driver.pause(guest)
    assert driver.get_info(guest).state == power_state.PAUSED


def test_injected_exception_class_is_instantiated(driver, guest):
    driver.inject_failure("get_console_output", exception.NoValidHost)
    with pytest.raises(exception.NoValidHost):
        driver.get_console_output(CTX, guest)


@pytest.mark.parametrize("method, times, complaint", [
    ("spwan", 1, "unknown fake driver method 'spwan'"), ("spawn", 0, "at least 1")])
def test_inject_failure_rejects_bad_arguments(driver, method, times, complaint):
    with pytest.raises(ValueError, match=complaint):
        driver.inject_failure(method, times=times)


def test_conf_fail_always_fails_until_cleared(make_driver):
    drv = make_driver(fail=["power_off"])
    instance = _instance()
    drv.spawn(CTX, instance, IMAGE)
    for _ in range(3):
        with pytest.raises(exception.VirtstackException, match=r"\[fake_driver\] fail"):
            drv.power_off(instance)
    assert drv.get_info(instance).state == power_state.RUNNING
    drv.clear_failures()
    drv.power_off(instance)
    assert drv.get_info(instance).state == power_state.SHUTDOWN


def test_conf_fail_with_an_unknown_method_fails_at_start(make_driver):
    with pytest.raises(exception.ConfigError, match=r"\[fake_driver\] fail: .*'reboots'"):
        make_driver(fail=["reboots"])


def test_clear_failures_forgets_injected_failures(driver, guest):
    driver.inject_failure("get_info", times=5)
    driver.clear_failures()
    assert driver.get_info(guest).state == power_state.RUNNING


def test_injection_covers_every_interface_method():
    interface = {method for methods in OPERATIONS.values() for method in methods}
    interface |= {"get_info", "list_instances", "get_available_nodes", "init_host"}
    assert interface - fake.INJECTABLE_METHODS == {"register_event_listener"}


# -- simulating the guest ------------------------------------------------------

def test_simulate_guest_shutdown_emits_stopped(driver, guest, event_recorder):
    driver.register_event_listener(event_recorder)
    stopped = event_recorder.expect(guest.uuid, STOPPED)
    driver.simulate_guest_shutdown(guest.uuid)
    assert stopped.wait(event_recorder.deadline), event_recorder.events
    assert driver.get_info(guest).state == power_state.SHUTDOWN
    assert b"reached target Power-Off" in driver.get_console_output(CTX, guest)


def test_simulate_guest_shutdown_needs_a_running_guest(driver, guest):
    driver.pause(guest)
    with pytest.raises(exception.InstanceNotRunning):
        driver.simulate_guest_shutdown(guest.uuid)
    with pytest.raises(exception.InstanceNotFound):
        driver.simulate_guest_shutdown(str(uuidlib.uuid4()))
    assert driver.get_info(guest).state == power_state.PAUSED


def test_simulate_crash_then_power_on(driver, guest, event_recorder):
    driver.register_event_listener(event_recorder)
    driver.simulate_crash(guest.uuid)
    assert driver.get_info(guest).state == power_state.CRASHED
    assert b"Kernel panic" in driver.get_console_output(CTX, guest)
    driver.power_on(CTX, guest)
    assert driver.get_info(guest).state == power_state.RUNNING
    assert event_recorder.transitions(guest.uuid) == [CRASHED, STOPPED, STARTED]


# -- events (the fake emits synchronously, in the calling thread) ---------------

def test_every_power_transition_emits_its_event(driver, guest, event_recorder):
    driver.register_event_listener(event_recorder)
    driver.pause(guest)
    driver.unpause(guest)
    driver.suspend(CTX, guest)
    driver.resume(CTX, guest)
    driver.power_off(guest)
    driver.power_off(guest)  # already off: no transition, no event
    driver.power_on(CTX, guest)
    assert event_recorder.transitions(guest.uuid) == [PAUSED, RESUMED, SUSPENDED, RESUMED,
                                                      STOPPED, STARTED]


def test_reboots_log_a_boot_line_and_hard_ones_cycle_power(driver, guest, event_recorder):
    driver.register_event_listener(event_recorder)
    driver.reboot(CTX, guest, None, "SOFT")
    assert event_recorder.transitions(guest.uuid) == []
    driver.reboot(CTX, guest, None, "HARD")
    assert event_recorder.transitions(guest.uuid) == [STOPPED, STARTED]
    boot = f"virtstack fake guest {guest.uuid} booted\n".encode()
    assert driver.get_console_output(CTX, guest) == boot * 3


def test_reboot_type_must_be_soft_or_hard(driver, guest):
    with pytest.raises(exception.Invalid, match="SOFT or HARD"):
        driver.reboot(CTX, guest, None, "soft")


def test_destroy_emits_stopped_only_for_a_guest_that_was_on(driver, guest, event_recorder):
    other = _instance()
    driver.spawn(CTX, other, IMAGE, power_on=False)
    driver.register_event_listener(event_recorder)
    driver.destroy(CTX, guest)
    driver.destroy(CTX, other)
    assert event_recorder.transitions(guest.uuid) == [STOPPED]
    assert event_recorder.transitions(other.uuid) == []


def test_detach_emits_device_removed(driver, guest, event_recorder):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    driver.register_event_listener(event_recorder)
    driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    assert event_recorder.events == [virtevent.DeviceRemovedEvent(
        uuid=guest.uuid, dev="vdb", timestamp=event_recorder.events[0].timestamp)]


# -- the guest record ----------------------------------------------------------

def test_spawn_records_flavor_vifs_volumes_and_console(driver):
    instance = _instance()
    bdi = {"block_device_mapping": [
        {"mount_device": "/dev/vdb", "connection_info": _volume("v1", size=2)}]}
    driver.spawn(CTX, instance, IMAGE, [VIF], bdi)
    record = driver.get_guest(instance.uuid)
    assert (record.name, record.vcpus, record.memory_mb, record.disk_gb) == (
        instance.name, 2, 2048, 25)
    assert record.vifs == {VIF["id"]: VIF}
    assert record.volumes["/dev/vdb"].size == 2 * GiB
    assert record.volumes["/dev/vdb"].connection_info == _volume("v1", size=2)
    assert record.console == [f"virtstack fake guest {instance.uuid} booted"]
    assert (record.vnc_port, record.rescued) == (5900, False)


def test_spawn_powered_off_boots_nothing(driver, event_recorder):
    driver.register_event_listener(event_recorder)
    instance = _instance()
    driver.spawn(CTX, instance, IMAGE, power_on=False)
    assert driver.get_guest(instance.uuid).console == []
    assert event_recorder.events == []


@pytest.mark.parametrize("network_info, bdi", [
    ([{"address": "fa:16:3e:00:00:02"}], None),
    (None, {"block_device_mapping": [{"mount_device": "/dev/vdb", "connection_info": {}}]}),
    (None, {"block_device_mapping": [{"mount_device": "vdb", "connection_info": _volume("v")}]}),
])
def test_spawn_with_bad_inputs_creates_nothing(driver, network_info, bdi):
    with pytest.raises(exception.Invalid):
        driver.spawn(CTX, _instance(), IMAGE, network_info, bdi)
    assert driver.list_instances() == []


def test_spawn_of_a_taken_name_raises_instance_exists(driver, guest):
    twin = _instance()
    twin.name = guest.name
    with pytest.raises(exception.InstanceExists):
        driver.spawn(CTX, twin, IMAGE)
    assert driver.list_instance_uuids() == [guest.uuid]


def test_get_guest_returns_a_copy(driver, guest):
    driver.get_guest(guest.uuid).console.append("tampered")
    assert "tampered" not in driver.get_guest(guest.uuid).console
    with pytest.raises(exception.InstanceNotFound):
        driver.get_guest(str(uuidlib.uuid4()))


def test_rescue_boots_the_rescue_image(driver, guest):
    driver.rescue(CTX, guest, None, IMAGE)
    record = driver.get_guest(guest.uuid)
    assert record.rescued
    assert record.console[-1].endswith(f"booted from rescue image {IMAGE.id}")
    driver.unrescue(CTX, guest)
    assert not driver.get_guest(guest.uuid).rescued


def test_extend_volume_records_the_size_and_refuses_to_shrink(driver, guest):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    driver.extend_volume(CTX, _volume("v1"), guest, 3 * GiB)
    assert driver.get_guest(guest.uuid).volumes["/dev/vdb"].size == 3 * GiB
    with pytest.raises(exception.Invalid, match="cannot shrink"):
        driver.extend_volume(CTX, _volume("v1"), guest, GiB)
    assert driver.get_guest(guest.uuid).volumes["/dev/vdb"].size == 3 * GiB


@pytest.mark.parametrize("connection_info, mountpoint", [
    ({"data": {"volume_id": "v1"}}, "/dev/vdb"), (_volume("v1"), "vdb")])
def test_attach_volume_validates_its_inputs(driver, guest, connection_info, mountpoint):
    with pytest.raises(exception.Invalid):
        driver.attach_volume(CTX, connection_info, guest, mountpoint)
    assert driver.get_guest(guest.uuid).volumes == {}


def test_plug_and_unplug_vifs_update_the_record(driver, guest):
    second = {"id": "5a3e1c3f-0000-4000-8000-000000000002", "address": "fa:16:3e:00:00:02"}
    driver.plug_vifs(guest, [second])
    assert set(driver.get_guest(guest.uuid).vifs) == {VIF["id"], second["id"]}
    driver.unplug_vifs(guest, [VIF])
    assert set(driver.get_guest(guest.uuid).vifs) == {second["id"]}


def test_vifs_plugged_before_spawn_belong_to_the_guest(driver):
    instance = _instance()
    driver.plug_vifs(instance, [VIF])  # as the spawn flow does
    driver.spawn(CTX, instance, IMAGE)
    assert driver.get_guest(instance.uuid).vifs == {VIF["id"]: VIF}


def test_destroy_unplugs_the_vifs_it_is_given(driver, guest):
    driver.destroy(CTX, guest, [VIF])
    driver.spawn(CTX, guest, IMAGE)
    assert driver.get_guest(guest.uuid).vifs == {}
    driver.plug_vifs(guest, [VIF])
    driver.destroy(CTX, guest)  # without network_info the host side stays
    driver.spawn(CTX, guest, IMAGE)
    assert driver.get_guest(guest.uuid).vifs == {VIF["id"]: VIF}


def test_plug_vifs_needs_vif_ids(driver, guest):
    with pytest.raises(exception.Invalid, match="VIF without an 'id'"):
        driver.plug_vifs(guest, [{"address": "fa:16:3e:00:00:03"}])
    assert driver.get_guest(guest.uuid).vifs == {VIF["id"]: VIF}


def test_vnc_ports_are_reused_after_destroy(driver, guest):
    second, third = _instance(), _instance()
    driver.spawn(CTX, second, IMAGE)
    driver.destroy(CTX, guest)
    driver.spawn(CTX, third, IMAGE)
    assert driver.get_vnc_console(CTX, second).port == 5901
    assert driver.get_vnc_console(CTX, third).port == 5900


def test_vnc_console_needs_a_live_display(driver, guest):
    driver.power_off(guest)
    with pytest.raises(exception.InstanceNotRunning):
        driver.get_vnc_console(CTX, guest)


def test_concurrent_spawns_all_land(driver):
    instances = [_instance() for _ in range(32)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: driver.spawn(CTX, i, IMAGE), instances))
    assert sorted(driver.list_instance_uuids()) == sorted(i.uuid for i in instances)
    ports = {driver.get_guest(i.uuid).vnc_port for i in instances}
    assert ports == set(range(5900, 5932))


# -- the host ------------------------------------------------------------------

def test_resources_come_from_conf_and_guests(make_driver):
    drv = make_driver(vcpus=8, memory_mb=16384, local_gb=100)
    first, second = _instance(), _instance()
    drv.spawn(CTX, first, IMAGE)
    drv.spawn(CTX, second, IMAGE, power_on=False)  # claims resources while it exists
    resources = drv.get_available_resource(HOST)
    assert {k: resources[k] for k in ("vcpus", "memory_mb", "local_gb", "vcpus_used",
                                      "memory_mb_used", "local_gb_used")} == {
        "vcpus": 8, "memory_mb": 16384, "local_gb": 100,
        "vcpus_used": 4, "memory_mb_used": 4096, "local_gb_used": 50}
    drv.destroy(CTX, first)
    assert drv.get_available_resource(HOST)["vcpus_used"] == 2


def test_resources_of_another_node_raise_hypervisor_not_found(driver):
    with pytest.raises(exception.HypervisorNotFound):
        driver.get_available_resource("elsewhere")


def test_node_is_conf_host_until_init_host(conf):
    conf.config(host="conf-host")
    drv = fake.FakeDriver()
    assert drv.get_available_nodes() == ["conf-host"]
    drv.init_host("real-host")
    assert drv.get_available_nodes() == ["real-host"]
    assert drv.get_volume_connector(_instance())["host"] == "real-host"


def test_uptime_line_reports_running_vcpus_as_load(make_driver):
    drv = make_driver(vcpus=4)
    drv.spawn(CTX, _instance(), IMAGE)
    assert re.fullmatch(r" \d\d:\d\d:\d\d up 0 min,  0 users,  "
                        r"load average: 0\.50, 0\.50, 0\.50", drv.get_host_uptime())


# -- capabilities --------------------------------------------------------------

def test_capabilities_are_class_level_and_read_only(driver, make_driver):
    other = make_driver()
    other.set_latency("spawn", 1)
    other.inject_failure("pause")
    assert driver.capabilities is other.capabilities is fake.FakeDriver.capabilities
    with pytest.raises(TypeError):
        other.capabilities["supports_pause"] = False  # type: ignore[index]
    assert dict(fake.FakeDriver.capabilities) == {
        capability_key(op): op not in ("live_migration", "cold_migration") for op in OPERATIONS}
    assert dict(ComputeDriver.capabilities) == {
        capability_key(op): op in REQUIRED_OPERATIONS for op in OPERATIONS}


# -- volumes as the guest sees them ----------------------------------------------------

def test_a_running_guest_logs_volumes_coming_growing_and_going(driver, guest):
    driver.attach_volume(CTX, _volume("v1", size=1), guest, "/dev/vdb")
    driver.extend_volume(CTX, _volume("v1"), guest, 2 * GiB)
    driver.extend_volume(CTX, _volume("v1"), guest, 2 * GiB)  # no change, no line
    driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    lines = driver.get_console_output(CTX, guest).decode().splitlines()
    assert lines[-3:] == [f"VIRTSTACK-DISK-ADDED vdb {GiB // 512}",
                          f"VIRTSTACK-DISK-RESIZED vdb {2 * GiB // 512}",
                          "VIRTSTACK-DISK-REMOVED vdb"]


def test_a_stopped_guest_logs_nothing_but_keeps_the_volume(driver, guest):
    driver.power_off(guest)
    before = driver.get_console_output(CTX, guest)
    driver.attach_volume(CTX, _volume("v1", size=1), guest, "/dev/vdb")
    assert driver.get_console_output(CTX, guest) == before
    driver.power_on(CTX, guest)
    assert driver.get_guest(guest.uuid).volumes["/dev/vdb"].size == GiB


def test_a_volume_attached_twice_is_a_conflict(driver, guest):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    with pytest.raises(exception.Conflict, match="v1 is already attached .* at /dev/vdb"):
        driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdc")
    assert list(driver.get_guest(guest.uuid).volumes) == ["/dev/vdb"]


def test_volumes_of_a_suspended_guest_cannot_change(driver, guest):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    driver.suspend(CTX, guest)
    with pytest.raises(exception.InstanceInvalidState, match="suspended"):
        driver.attach_volume(CTX, _volume("v2"), guest, "/dev/vdc")
    with pytest.raises(exception.InstanceInvalidState, match="suspended"):
        driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    assert list(driver.get_guest(guest.uuid).volumes) == ["/dev/vdb"]


def test_a_held_volume_fails_to_detach_and_stays(driver, guest, event_recorder):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    driver.simulate_device_held(guest.uuid, "/dev/vdb")
    driver.register_event_listener(event_recorder)
    with pytest.raises(exception.DeviceDetachFailed, match="vdb was not detached"):
        driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    assert list(driver.get_guest(guest.uuid).volumes) == ["/dev/vdb"]
    assert event_recorder.events == []
    driver.simulate_device_held(guest.uuid, "/dev/vdb", held=False)
    driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    assert driver.get_guest(guest.uuid).volumes == {}


def test_a_held_volume_of_a_stopped_guest_detaches(driver, guest):
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    driver.simulate_device_held(guest.uuid, "/dev/vdb")
    driver.power_off(guest)
    driver.detach_volume(CTX, _volume("v1"), guest, "/dev/vdb")  # no guest to ask
    assert driver.get_guest(guest.uuid).volumes == {}


def test_simulate_device_held_of_nothing_attached_is_device_not_found(driver, guest):
    with pytest.raises(exception.DeviceNotFound):
        driver.simulate_device_held(guest.uuid, "/dev/vdz")


def test_injected_attach_failure_attaches_nothing(driver, guest):
    driver.inject_failure("attach_volume")
    with pytest.raises(exception.VirtstackException, match="Injected failure"):
        driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")
    assert driver.get_guest(guest.uuid).volumes == {}
    driver.attach_volume(CTX, _volume("v1"), guest, "/dev/vdb")  # only the next call failed
