"""The driver contract: what every ComputeDriver does, operation by operation.

Every test here runs once per entry of ``CONTRACT_DRIVERS`` and is tagged
``@pytest.mark.operation(op)`` with the key of ``OPERATIONS`` it proves. A
test of an operation the driver does not declare is skipped; for those,
``test_declaration_matches_implementation[op]`` proves the declaration
itself (an undeclared operation raises NotSupported, a declared one never
does). ``tools/support_matrix.py`` runs this module and turns the outcomes
into docs/support-matrix.md.

Adding a driver: write a factory ``(request) -> ContractCase`` that builds a
ready driver (``init_host`` done, cleanup registered with
``request.addfinalizer``, ``pytest.skip`` if this machine cannot run it)
and the image, flavor, network and volume inputs that driver can really
use, then add ``ContractDriver("<registry name>", factory)`` to
``CONTRACT_DRIVERS``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import uuid as uuidlib
from typing import Any, Callable
from unittest import mock

import pytest
from oslo_context import context as oslo_context

from virtstack import exception
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt import event as virtevent
from virtstack.virt import power_state
from virtstack.virt.driver import (OPERATIONS, REQUIRED_OPERATIONS, ComputeDriver,
                                   ConsoleVNC, capability_key, driver_class,
                                   load_driver)

CTX = oslo_context.RequestContext(user_id="contract-user", project_id="contract-project")
GiB = 1024 ** 3


@dataclasses.dataclass
class ContractCase:
    """A ready driver and the inputs its contract tests hand it."""

    driver: ComputeDriver
    host: str  # what init_host was given
    image_meta: ImageMeta  # an image the driver can boot
    flavor: Flavor  # small enough for the host
    network_info: list[dict[str, Any]]  # VIFs the driver can plug
    #: volume_id -> connection_info of a volume the driver can attach
    connection_info: Callable[[str], dict[str, Any]]
    made: list[Instance] = dataclasses.field(default_factory=list)

    def new_instance(self) -> Instance:
        """A fresh instance (not spawned); destroyed after the test."""
        uuid = str(uuidlib.uuid4())
        instance = Instance(uuid=uuid, name=f"instance-{uuid[:8]}", display_name="contract",
                            project_id=CTX.project_id, user_id=CTX.user_id,
                            flavor=self.flavor, image_ref=self.image_meta.id,
                            host=self.host, node=self.host)
        self.made.append(instance)
        return instance

    def destroy_all(self) -> None:
        for instance in self.made:
            self.driver.destroy(CTX, instance, self.network_info)


@dataclasses.dataclass(frozen=True)
class ContractDriver:
    name: str  # the registry name, also the test id
    factory: Callable[[pytest.FixtureRequest], ContractCase]


def _iscsi_connection_info(volume_id: str) -> dict[str, Any]:
    return {"driver_volume_type": "iscsi",
            "data": {"target_portal": "127.0.0.1:3260",
                     "target_iqn": f"iqn.2010-10.org.openstack:volume-{volume_id}",
                     "target_lun": 1, "volume_id": volume_id}}


def _file_connection_info_in(volume_dir: str) -> Callable[[str], dict[str, Any]]:
    """volume_id -> connection_info of a 1 GiB (sparse) raw file volume in
    ``volume_dir``, made on first use: a volume the libvirt driver can
    really attach."""
    def make(volume_id: str) -> dict[str, Any]:
        path = os.path.join(volume_dir, f"volume-{volume_id}")
        if not os.path.exists(path):
            os.makedirs(volume_dir, mode=0o711, exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(GiB)
        return {"driver_volume_type": "file",
                "data": {"volume_id": volume_id, "device_path": path, "format": "raw",
                         "access_mode": "rw"}}
    return make


def _fake_case(request: pytest.FixtureRequest) -> ContractCase:
    request.getfixturevalue("conf").config(group="fake_driver", latency={}, fail=[])
    driver = load_driver("fake")
    driver.init_host("contract-host")
    request.addfinalizer(functools.partial(driver.cleanup_host, "contract-host"))
    return ContractCase(
        driver=driver, host="contract-host",
        image_meta=ImageMeta(id=str(uuidlib.uuid4()), name="cirros-0.6.2-x86_64-disk",
                             disk_format="qcow2", min_disk=1, size=21430272),
        flavor=Flavor(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1),
        network_info=[{"id": str(uuidlib.uuid4()), "address": "fa:16:3e:4c:2c:30",
                       "type": "bridge", "network": {"bridge": "br-int", "label": "private"}}],
        connection_info=_iscsi_connection_info)


def _libvirt_case(request: pytest.FixtureRequest) -> ContractCase:
    """The libvirt driver on this host's libvirtd (QEMU TCG), booting the
    offline test guest from a per-test image store and state_path."""
    from tests.functional.virt.libvirt import environment as lv

    lv.require_libvirt()
    conf = request.getfixturevalue("conf")
    state_path = lv.make_state_path(request, conf)
    lv.configure(conf)
    request.getfixturevalue("database")
    image_meta = lv.register_test_image()
    driver = load_driver("libvirt")
    request.addfinalizer(functools.partial(driver.cleanup_host, "contract-host"))
    driver.init_host("contract-host")
    return ContractCase(
        driver=driver, host="contract-host", image_meta=image_meta, flavor=lv.FLAVOR,
        network_info=[],  # no VIF driver yet: spawn refuses VIFs it cannot plug
        connection_info=_file_connection_info_in(os.path.join(state_path, "volumes")))


def _fc_connection_info(volume_id: str) -> dict[str, Any]:
    """A Fibre Channel volume the fake PowerVM SAN presents to the VIOS's
    port 10000090FA1B6302 (fcs0 of the recorded VIOS)."""
    return {"driver_volume_type": "fibre_channel",
            "data": {"volume_id": volume_id, "target_wwn": ["500507680B215660"],
                     "target_lun": abs(hash(volume_id)) % 250 + 1,
                     "initiator_target_map": {"10000090FA1B6302": ["500507680B215660"]}}}


def _powervm_case(request: pytest.FixtureRequest) -> ContractCase:
    """The PowerVM driver (pypowervm) on the fake PowerVM REST session,
    booting a small image file through the localdisk adapter."""
    conf = request.getfixturevalue("conf")
    conf.config(group="powervm", fake_session=True, disk_driver="localdisk",
                volume_group_name="image_pool")
    image = request.getfixturevalue("tmp_path") / "contract-image.raw"
    image.write_bytes(b"\0" * 1024 * 1024)
    driver = load_driver("powervm")
    driver.init_host("contract-host")
    request.addfinalizer(functools.partial(driver.cleanup_host, "contract-host"))
    return ContractCase(
        driver=driver, host="contract-host",
        image_meta=ImageMeta(id=str(uuidlib.uuid4()), name="contract-image", disk_format="raw",
                             size=image.stat().st_size, location=str(image)),
        flavor=Flavor(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1),
        network_info=[{"id": str(uuidlib.uuid4()), "address": "fa:16:3e:4c:2c:30",
                       "type": "bridge", "network": {"bridge": "ETHERNET0", "label": "private"}}],
        connection_info=_fc_connection_info)


CONTRACT_DRIVERS: list[ContractDriver] = [
    ContractDriver("fake", _fake_case),
    ContractDriver("libvirt", _libvirt_case),
    ContractDriver("powervm", _powervm_case),
]

_CASE = pytest.StashKey[ContractCase]()


@pytest.fixture(params=[entry.name for entry in CONTRACT_DRIVERS])
def driver(request: pytest.FixtureRequest) -> ComputeDriver:
    """Each contract driver in turn, ready; its ContractCase is ``case``."""
    factory = {entry.name: entry.factory for entry in CONTRACT_DRIVERS}[request.param]
    case = factory(request)
    request.addfinalizer(case.destroy_all)  # runs before the factory's cleanup
    request.node.stash[_CASE] = case
    return case.driver


@pytest.fixture
def case(driver: ComputeDriver, request: pytest.FixtureRequest) -> ContractCase:
    return request.node.stash[_CASE]


@pytest.fixture(autouse=True)
def _declared_operations_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("operation")
    if marker is None:
        return
    drv = request.getfixturevalue("driver")
    # What this driver instance declares (a driver may vary it by its
    # configuration): the support matrix reads it from the report.
    request.node.user_properties.append(("declared", drv.supports(marker.args[0])))
    if marker.kwargs.get("declaration"):
        return
    if not drv.supports(marker.args[0]):
        pytest.skip(f"the {drv.name} driver does not declare {marker.args[0]}")


@pytest.fixture
def instance(case: ContractCase) -> Instance:
    return case.new_instance()


@pytest.fixture
def running(case: ContractCase, instance: Instance) -> Instance:
    case.driver.spawn(CTX, instance, case.image_meta, case.network_info)
    return instance


def _state(driver: ComputeDriver, instance: Instance) -> int:
    return driver.get_info(instance).state


def _update_task_state(task_state: str, expected_state: str | None = None) -> None:
    """The signature of the callback the compute manager hands to snapshot."""


def _noop(*args: Any, **kwargs: Any) -> None:
    pass


# One call of every method in OPERATIONS, on an instance that may not exist.
_CALLS: dict[str, Callable[[ContractCase, Instance], Any]] = {
    "spawn": lambda c, i: c.driver.spawn(CTX, i, c.image_meta, c.network_info),
    "destroy": lambda c, i: c.driver.destroy(CTX, i, c.network_info),
    "reboot": lambda c, i: c.driver.reboot(CTX, i, c.network_info, "HARD"),
    "power_off": lambda c, i: c.driver.power_off(i),
    "power_on": lambda c, i: c.driver.power_on(CTX, i, c.network_info),
    "pause": lambda c, i: c.driver.pause(i),
    "unpause": lambda c, i: c.driver.unpause(i),
    "suspend": lambda c, i: c.driver.suspend(CTX, i),
    "resume": lambda c, i: c.driver.resume(CTX, i, c.network_info),
    "snapshot": lambda c, i: c.driver.snapshot(CTX, i, str(uuidlib.uuid4()), _noop),
    "rescue": lambda c, i: c.driver.rescue(CTX, i, c.network_info, c.image_meta),
    "unrescue": lambda c, i: c.driver.unrescue(CTX, i),
    "attach_volume": lambda c, i: c.driver.attach_volume(
        CTX, c.connection_info("contract-volume"), i, "/dev/vdb"),
    "detach_volume": lambda c, i: c.driver.detach_volume(
        CTX, c.connection_info("contract-volume"), i, "/dev/vdb"),
    "extend_volume": lambda c, i: c.driver.extend_volume(
        CTX, c.connection_info("contract-volume"), i, 2 * GiB),
    "get_volume_connector": lambda c, i: c.driver.get_volume_connector(i),
    "plug_vifs": lambda c, i: c.driver.plug_vifs(i, c.network_info),
    "unplug_vifs": lambda c, i: c.driver.unplug_vifs(i, c.network_info),
    "get_console_output": lambda c, i: c.driver.get_console_output(CTX, i),
    "get_vnc_console": lambda c, i: c.driver.get_vnc_console(CTX, i),
    "check_can_live_migrate_destination": lambda c, i:
        c.driver.check_can_live_migrate_destination(CTX, i, {}, {}),
    "live_migration": lambda c, i: c.driver.live_migration(CTX, i, "contract-dest", _noop, _noop),
    "migrate_disk_and_power_off": lambda c, i: c.driver.migrate_disk_and_power_off(
        CTX, i, "contract-dest", c.flavor, c.network_info),
    "finish_migration": lambda c, i: c.driver.finish_migration(
        CTX, {}, i, "{}", c.network_info, c.image_meta, False),
    # A listener, not None: unregistering is accepted from every driver.
    "register_event_listener": lambda c, i: c.driver.register_event_listener(_noop),
    "get_available_resource": lambda c, i: c.driver.get_available_resource(
        c.driver.get_available_nodes()[0]),
    "get_host_uptime": lambda c, i: c.driver.get_host_uptime(),
}


# -- the suite's own consistency ---------------------------------------------

def test_call_table_covers_every_operation_method():
    methods = {method for methods in OPERATIONS.values() for method in methods}
    assert set(_CALLS) == methods


def test_every_declared_operation_has_behaviour_tests():
    proven = {mark.args[0] for value in globals().values() if callable(value)
              for mark in getattr(value, "pytestmark", [])
              if mark.name == "operation" and not mark.kwargs.get("declaration")}
    declared = {op for entry in CONTRACT_DRIVERS for op in OPERATIONS
                if driver_class(entry.name).capabilities.get(capability_key(op))}
    assert declared - proven == set()


# -- declarations ------------------------------------------------------------

@pytest.mark.parametrize("op", [pytest.param(op, marks=pytest.mark.operation(op, declaration=True))
                                for op in OPERATIONS])
def test_declaration_matches_implementation(driver, case, instance, op):
    if op in REQUIRED_OPERATIONS:
        assert driver.supports(op), f"{op} is required but {driver.name} does not declare it"
    if op == "reboot_soft" and not driver.supports(op):
        # Without reboot_soft a SOFT reboot is a HARD one (ComputeDriver.reboot).
        driver.spawn(CTX, instance, case.image_meta, case.network_info)
        driver.reboot(CTX, instance, case.network_info, "SOFT")
        assert _state(driver, instance) == power_state.RUNNING
        return
    for method in OPERATIONS[op]:
        if not driver.supports(op):
            with pytest.raises(exception.NotSupported):
                _CALLS[method](case, instance)
            continue
        try:
            _CALLS[method](case, instance)
        except exception.NotSupported as exc:
            pytest.fail(f"{driver.name} declares {op} but {method} raised {exc}")
        except Exception:  # noqa: BLE001 - behaviour is proven by the tests below
            pass


# -- spawn and destroy ---------------------------------------------------------

@pytest.mark.operation("spawn")
def test_spawn_starts_the_guest(driver, running):
    assert _state(driver, running) == power_state.RUNNING
    assert running.name in driver.list_instances()
    assert driver.instance_exists(running)


@pytest.mark.operation("spawn")
def test_spawn_without_power_on_leaves_the_guest_off(driver, case, instance):
    driver.spawn(CTX, instance, case.image_meta, case.network_info, power_on=False)
    assert _state(driver, instance) == power_state.SHUTDOWN
    assert driver.instance_exists(instance)


@pytest.mark.operation("spawn")
def test_spawn_of_an_existing_guest_raises_instance_exists(driver, case, running):
    with pytest.raises(exception.InstanceExists):
        driver.spawn(CTX, running, case.image_meta, case.network_info)
    assert driver.list_instances().count(running.name) == 1
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("spawn")
def test_get_info_of_an_unknown_guest_raises_instance_not_found(driver, instance):
    with pytest.raises(exception.InstanceNotFound) as raised:
        driver.get_info(instance)
    assert raised.value.kwargs["instance_id"] == instance.uuid
    assert not driver.instance_exists(instance)


@pytest.mark.operation("destroy")
def test_destroy_removes_the_guest(driver, case, running):
    driver.destroy(CTX, running, case.network_info)
    assert running.name not in driver.list_instances()
    assert not driver.instance_exists(running)
    with pytest.raises(exception.InstanceNotFound):
        driver.get_info(running)


@pytest.mark.operation("destroy")
def test_destroy_is_idempotent(driver, case, running):
    other = case.new_instance()
    driver.destroy(CTX, running, case.network_info)
    driver.destroy(CTX, running, case.network_info)
    driver.destroy(CTX, other, case.network_info)  # never spawned
    assert not driver.instance_exists(running)


@pytest.mark.operation("destroy")
def test_destroy_of_a_stopped_guest(driver, case, running):
    driver.power_off(running)
    driver.destroy(CTX, running, case.network_info)
    assert not driver.instance_exists(running)


# -- power ---------------------------------------------------------------------

@pytest.mark.operation("reboot_soft")
def test_soft_reboot_leaves_the_guest_running(driver, case, running):
    driver.reboot(CTX, running, case.network_info, "SOFT")
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("reboot_hard")
def test_hard_reboot_leaves_the_guest_running(driver, case, running):
    driver.reboot(CTX, running, case.network_info, "HARD")
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("reboot_hard")
def test_hard_reboot_starts_a_stopped_guest(driver, case, running):
    driver.power_off(running)
    driver.reboot(CTX, running, case.network_info, "HARD")
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("reboot_hard")
def test_reboot_of_an_unknown_guest_raises_instance_not_found(driver, case, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.reboot(CTX, instance, case.network_info, "HARD")


@pytest.mark.operation("power_off")
def test_power_off_stops_the_guest(driver, running):
    driver.power_off(running)
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("power_off")
def test_clean_power_off_stops_the_guest(driver, running):
    driver.power_off(running, timeout=5, retry_interval=1)
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("power_off")
def test_power_off_of_a_stopped_guest_succeeds(driver, running):
    driver.power_off(running)
    driver.power_off(running)
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("power_off")
def test_power_off_of_an_unknown_guest_raises_instance_not_found(driver, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.power_off(instance)


@pytest.mark.operation("power_on")
def test_power_on_starts_a_stopped_guest(driver, case, running):
    driver.power_off(running)
    driver.power_on(CTX, running, case.network_info)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("power_on")
def test_power_on_of_a_running_guest_succeeds(driver, case, running):
    driver.power_on(CTX, running, case.network_info)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("power_on")
def test_power_on_of_an_unknown_guest_raises_instance_not_found(driver, case, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.power_on(CTX, instance, case.network_info)


@pytest.mark.operation("pause")
def test_pause_and_unpause(driver, running):
    driver.pause(running)
    assert _state(driver, running) == power_state.PAUSED
    driver.unpause(running)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("pause")
def test_pause_of_a_stopped_guest_raises_instance_not_running(driver, running):
    driver.power_off(running)
    with pytest.raises(exception.InstanceNotRunning):
        driver.pause(running)
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("pause")
def test_unpause_of_a_running_guest_raises_conflict(driver, running):
    with pytest.raises(exception.Conflict):
        driver.unpause(running)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("suspend")
def test_suspend_and_resume(driver, case, running):
    driver.suspend(CTX, running)
    assert _state(driver, running) == power_state.SUSPENDED
    driver.resume(CTX, running, case.network_info)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("suspend")
def test_suspend_of_a_stopped_guest_raises_instance_not_running(driver, running):
    driver.power_off(running)
    with pytest.raises(exception.InstanceNotRunning):
        driver.suspend(CTX, running)
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("suspend")
def test_resume_of_a_running_guest_raises_conflict(driver, case, running):
    with pytest.raises(exception.Conflict):
        driver.resume(CTX, running, case.network_info)
    assert _state(driver, running) == power_state.RUNNING


# -- snapshot and rescue -------------------------------------------------------

@pytest.mark.operation("snapshot")
def test_snapshot_reports_task_states_in_order(driver, running):
    update_task_state = mock.create_autospec(_update_task_state)
    image = driver.snapshot(CTX, running, str(uuidlib.uuid4()), update_task_state)
    assert update_task_state.call_args_list == [
        mock.call(task_state="image_pending_upload", expected_state="image_snapshot"),
        mock.call(task_state="image_uploading", expected_state="image_pending_upload"),
    ]
    assert set(image) == {"disk_format", "size", "location"}
    assert image["disk_format"] in ("qcow2", "raw", "vmdk", "vhd", "vdi", "iso")
    assert isinstance(image["size"], int) and image["size"] >= 0
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("snapshot")
def test_snapshot_keeps_a_stopped_guest_stopped(driver, running):
    driver.power_off(running)
    driver.snapshot(CTX, running, str(uuidlib.uuid4()), mock.create_autospec(_update_task_state))
    assert _state(driver, running) == power_state.SHUTDOWN


@pytest.mark.operation("snapshot")
def test_snapshot_of_an_unknown_guest_raises_instance_not_found(driver, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.snapshot(CTX, instance, str(uuidlib.uuid4()),
                        mock.create_autospec(_update_task_state))


@pytest.mark.operation("rescue")
def test_rescue_and_unrescue(driver, case, running):
    driver.rescue(CTX, running, case.network_info, case.image_meta)
    assert _state(driver, running) == power_state.RUNNING
    driver.unrescue(CTX, running)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("rescue")
def test_rescue_of_a_rescued_guest_raises_conflict(driver, case, running):
    driver.rescue(CTX, running, case.network_info, case.image_meta)
    with pytest.raises(exception.Conflict):
        driver.rescue(CTX, running, case.network_info, case.image_meta)


@pytest.mark.operation("rescue")
def test_unrescue_of_a_guest_not_in_rescue_raises_conflict(driver, running):
    with pytest.raises(exception.Conflict):
        driver.unrescue(CTX, running)
    assert _state(driver, running) == power_state.RUNNING


# -- volumes -------------------------------------------------------------------

@pytest.mark.operation("attach_volume")
def test_attach_to_a_taken_mountpoint_raises_device_in_use(driver, case, running):
    driver.attach_volume(CTX, case.connection_info("vol-1"), running, "/dev/vdb")
    with pytest.raises(exception.DeviceInUse):
        driver.attach_volume(CTX, case.connection_info("vol-2"), running, "/dev/vdb")
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("attach_volume")
def test_detach_of_a_detached_volume_raises_device_not_found(driver, case, running):
    connection_info = case.connection_info("vol-1")
    driver.attach_volume(CTX, connection_info, running, "/dev/vdb")
    driver.detach_volume(CTX, connection_info, running, "/dev/vdb")
    with pytest.raises(exception.DeviceNotFound):
        driver.detach_volume(CTX, connection_info, running, "/dev/vdb")


@pytest.mark.operation("attach_volume")
def test_detach_frees_the_mountpoint(driver, case, running):
    first, second = case.connection_info("vol-1"), case.connection_info("vol-2")
    driver.attach_volume(CTX, first, running, "/dev/vdb")
    driver.attach_volume(CTX, second, running, "/dev/vdc")
    driver.detach_volume(CTX, first, running, "/dev/vdb")
    driver.attach_volume(CTX, first, running, "/dev/vdb")  # would be DeviceInUse
    with pytest.raises(exception.DeviceInUse):
        driver.attach_volume(CTX, first, running, "/dev/vdc")


def _mapping(connection_info: dict[str, Any], mount_device: str) -> dict[str, Any]:
    return {"connection_info": connection_info, "mount_device": mount_device,
            "boot_index": None, "disk_bus": "virtio", "device_type": "disk",
            "delete_on_termination": False}


@pytest.mark.operation("attach_volume")
def test_attach_to_a_stopped_guest_is_there_after_power_on(driver, case, running):
    connection_info = case.connection_info("vol-1")
    driver.power_off(running)
    driver.attach_volume(CTX, connection_info, running, "/dev/vdb")
    assert _state(driver, running) == power_state.SHUTDOWN
    driver.power_on(CTX, running, case.network_info)
    with pytest.raises(exception.DeviceInUse):
        driver.attach_volume(CTX, case.connection_info("vol-2"), running, "/dev/vdb")
    driver.detach_volume(CTX, connection_info, running, "/dev/vdb")


@pytest.mark.operation("attach_volume")
def test_spawn_attaches_the_mapped_volumes(driver, case, instance):
    connection_info = case.connection_info("vol-1")
    driver.spawn(CTX, instance, case.image_meta, case.network_info, block_device_info={
        "root_device_name": None, "block_device_mapping": [_mapping(connection_info, "/dev/vdb")]})
    assert _state(driver, instance) == power_state.RUNNING
    with pytest.raises(exception.DeviceInUse):
        driver.attach_volume(CTX, case.connection_info("vol-2"), instance, "/dev/vdb")
    driver.detach_volume(CTX, connection_info, instance, "/dev/vdb")


@pytest.mark.operation("attach_volume")
def test_destroy_with_volumes_attached(driver, case, running):
    connection_info = case.connection_info("vol-1")
    driver.attach_volume(CTX, connection_info, running, "/dev/vdb")
    driver.destroy(CTX, running, case.network_info, {
        "root_device_name": None, "block_device_mapping": [_mapping(connection_info, "/dev/vdb")]})
    assert not driver.instance_exists(running)


@pytest.mark.operation("attach_volume")
def test_attach_to_an_unknown_guest_raises_instance_not_found(driver, case, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.attach_volume(CTX, case.connection_info("vol-1"), instance, "/dev/vdb")


@pytest.mark.operation("extend_volume")
def test_extend_an_attached_volume(driver, case, running):
    connection_info = case.connection_info("vol-1")
    driver.attach_volume(CTX, connection_info, running, "/dev/vdb")
    driver.extend_volume(CTX, connection_info, running, 2 * GiB)
    driver.extend_volume(CTX, connection_info, running, 3 * GiB)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("extend_volume")
def test_extend_of_a_volume_not_attached_raises_device_not_found(driver, case, running):
    with pytest.raises(exception.DeviceNotFound):
        driver.extend_volume(CTX, case.connection_info("vol-1"), running, 2 * GiB)


@pytest.mark.operation("volume_connector")
def test_volume_connector_describes_the_host(driver, instance):
    connector = driver.get_volume_connector(instance)
    assert isinstance(connector["host"], str) and connector["host"]
    assert {"ip", "platform", "os_type"} <= set(connector)
    assert isinstance(connector["multipath"], bool)
    assert connector.get("initiator") or connector.get("wwpns")


# -- network and consoles --------------------------------------------------------

@pytest.mark.operation("vif_plugging")
def test_plug_and_unplug_vifs_are_idempotent(driver, case, running):
    driver.plug_vifs(running, case.network_info)
    driver.plug_vifs(running, case.network_info)
    driver.unplug_vifs(running, case.network_info)
    driver.unplug_vifs(running, case.network_info)
    assert _state(driver, running) == power_state.RUNNING


@pytest.mark.operation("vif_plugging")
def test_vifs_can_be_plugged_before_spawn(driver, case, instance):
    driver.plug_vifs(instance, case.network_info)
    driver.spawn(CTX, instance, case.image_meta, case.network_info)
    assert _state(driver, instance) == power_state.RUNNING


@pytest.mark.operation("vif_plugging")
def test_unplug_vifs_of_a_destroyed_guest_succeeds(driver, case, running):
    driver.destroy(CTX, running, case.network_info)
    driver.unplug_vifs(running, case.network_info)
    assert not driver.instance_exists(running)


@pytest.mark.operation("console_output")
def test_console_output_is_bytes(driver, running):
    assert isinstance(driver.get_console_output(CTX, running), bytes)


@pytest.mark.operation("console_output")
def test_console_output_of_an_unknown_guest_raises_instance_not_found(driver, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.get_console_output(CTX, instance)


@pytest.mark.operation("vnc_console")
def test_vnc_console_of_a_running_guest(driver, running):
    console = driver.get_vnc_console(CTX, running)
    assert isinstance(console, ConsoleVNC)
    assert isinstance(console.host, str) and console.host
    assert 0 < console.port < 65536


@pytest.mark.operation("vnc_console")
def test_two_guests_have_different_vnc_ports(driver, case, running):
    other = case.new_instance()
    driver.spawn(CTX, other, case.image_meta, case.network_info)
    assert driver.get_vnc_console(CTX, running).port != driver.get_vnc_console(CTX, other).port


@pytest.mark.operation("vnc_console")
def test_vnc_console_of_an_unknown_guest_raises_instance_not_found(driver, instance):
    with pytest.raises(exception.InstanceNotFound):
        driver.get_vnc_console(CTX, instance)


# -- events --------------------------------------------------------------------

@pytest.mark.operation("lifecycle_events")
def test_power_off_emits_stopped(driver, running, event_recorder):
    driver.register_event_listener(event_recorder)
    stopped = event_recorder.expect(running.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
    driver.power_off(running)
    assert stopped.wait(event_recorder.deadline), event_recorder.events


@pytest.mark.operation("lifecycle_events")
def test_power_on_emits_started(driver, case, running, event_recorder):
    driver.power_off(running)
    driver.register_event_listener(event_recorder)
    started = event_recorder.expect(running.uuid, virtevent.EVENT_LIFECYCLE_STARTED)
    driver.power_on(CTX, running, case.network_info)
    assert started.wait(event_recorder.deadline), event_recorder.events


@pytest.mark.operation("lifecycle_events")
def test_spawn_emits_started(driver, case, instance, event_recorder):
    driver.register_event_listener(event_recorder)
    started = event_recorder.expect(instance.uuid, virtevent.EVENT_LIFECYCLE_STARTED)
    driver.spawn(CTX, instance, case.image_meta, case.network_info)
    assert started.wait(event_recorder.deadline), event_recorder.events


# -- host ----------------------------------------------------------------------

_RESOURCE_TYPES = {"vcpus": int, "memory_mb": int, "local_gb": int, "vcpus_used": int,
                   "memory_mb_used": int, "local_gb_used": int, "hypervisor_type": str,
                   "hypervisor_version": int, "hypervisor_hostname": str, "cpu_info": str}


@pytest.mark.operation("host_resources")
def test_available_nodes_name_the_host(driver):
    nodes = driver.get_available_nodes()
    assert nodes and all(isinstance(node, str) and node for node in nodes)


@pytest.mark.operation("host_resources")
def test_available_resource_reports_every_field(driver):
    node = driver.get_available_nodes()[0]
    resources = driver.get_available_resource(node)
    assert {key: type(resources.get(key)) for key in _RESOURCE_TYPES} == _RESOURCE_TYPES
    assert resources["hypervisor_hostname"] == node
    assert isinstance(json.loads(resources["cpu_info"]), dict)
    for total in ("vcpus", "memory_mb", "local_gb"):
        assert 0 <= resources[total + "_used"] <= resources[total], total


@pytest.mark.operation("host_resources")
def test_spawn_is_counted_in_vcpus_used(driver, case, instance):
    node = driver.get_available_nodes()[0]
    before = driver.get_available_resource(node)["vcpus_used"]
    driver.spawn(CTX, instance, case.image_meta, case.network_info)
    assert driver.get_available_resource(node)["vcpus_used"] - before == case.flavor.vcpus


@pytest.mark.operation("host_resources")
def test_host_uptime_is_an_uptime_line(driver):
    uptime = driver.get_host_uptime()
    assert " up " in uptime and "load average" in uptime
