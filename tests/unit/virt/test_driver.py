"""The driver interface's defaults and the driver registry (virt/driver.py)."""

from __future__ import annotations

import logging
import types
from importlib import metadata
from unittest import mock

import pytest

from virtstack import exception
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt import driver as virtdriver
from virtstack.virt import event as virtevent
from virtstack.virt import fake

FLAVOR = Flavor(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1)
INSTANCE = Instance(uuid="0e4c3bd0-7c1a-4b51-9d0e-1f3b0c8a1d21", name="instance-00000001",
                    display_name="t", project_id="p", user_id="u", flavor=FLAVOR)
IMAGE = ImageMeta(id="1b6b3f0e-5c71-4a55-8c0f-8f1c2f3e4d5a")


class MinimalDriver(virtdriver.ComputeDriver):
    """Only the abstract methods, as a third-party driver might start."""

    name = "minimal"

    def get_available_resource(self, nodename):
        return {}

    def get_available_nodes(self):
        return ["minimal-host"]

    def get_host_uptime(self):
        return " 10:00:00 up 1 day,  1 user,  load average: 0.00, 0.00, 0.00"

    def list_instances(self):
        return []

    def get_info(self, instance):
        raise exception.InstanceNotFound(instance_id=instance.uuid)

    def spawn(self, context, instance, image_meta, network_info=None,
              block_device_info=None, power_on=True):
        pass

    def destroy(self, context, instance, network_info=None, block_device_info=None,
                destroy_disks=True):
        pass

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None):
        pass

    def power_off(self, instance, timeout=0, retry_interval=0):
        pass

    def power_on(self, context, instance, network_info=None, block_device_info=None):
        pass


class NotADriver:
    name = "impostor"


def not_a_class():
    return MinimalDriver()


def _entry_point(name: str, target: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=f"{__name__}:{target}",
                               group=virtdriver.ENTRY_POINT_GROUP)


@pytest.fixture
def entry_points():
    """importlib.metadata.entry_points, answering no entry points by default."""
    with mock.patch.object(metadata, "entry_points", autospec=True, return_value=[]) as patched:
        yield patched


# -- registry ------------------------------------------------------------------

def test_load_driver_makes_the_fake():
    drv = virtdriver.load_driver("fake")
    assert type(drv) is fake.FakeDriver
    assert drv.name == "fake"


def test_load_driver_defaults_to_the_configured_driver(conf, entry_points):
    entry_points.return_value = [_entry_point("minimal", "MinimalDriver")]
    conf.config(group="compute", compute_driver="minimal")
    assert type(virtdriver.load_driver()) is MinimalDriver


def test_unknown_driver_names_the_available_ones_in_one_line(entry_points):
    entry_points.return_value = [_entry_point("minimal", "MinimalDriver")]
    with pytest.raises(exception.DriverNotFound) as raised:
        virtdriver.load_driver("nope")
    expected = ", ".join(sorted(set(virtdriver.BUILTIN_DRIVERS) | {"minimal"}))
    assert str(raised.value) == ("Unknown compute driver 'nope'; "
                                 f"available drivers: {expected}")
    assert "\n" not in str(raised.value) and "minimal" in expected and "fake" in expected


def test_entry_point_driver_is_found(entry_points):
    entry_points.return_value = [_entry_point("minimal", "MinimalDriver")]
    assert virtdriver.driver_class("minimal") is MinimalDriver
    assert virtdriver.available_drivers() == dict(
        virtdriver.BUILTIN_DRIVERS, minimal=f"{__name__}:MinimalDriver")
    entry_points.assert_called_with(group=virtdriver.ENTRY_POINT_GROUP)


def test_builtin_driver_wins_over_an_entry_point_of_the_same_name(entry_points):
    entry_points.return_value = [_entry_point("fake", "MinimalDriver")]
    assert virtdriver.driver_class("fake") is fake.FakeDriver


@pytest.mark.parametrize("target", ["NotADriver", "not_a_class"])
def test_a_target_that_is_not_a_compute_driver_is_refused(entry_points, target):
    entry_points.return_value = [_entry_point("impostor", target)]
    with pytest.raises(exception.DriverLoadError, match="'impostor'.*not a ComputeDriver"):
        virtdriver.load_driver("impostor")


# -- the interface's defaults --------------------------------------------------

_noop = mock.create_autospec(lambda **kwargs: None)

# Every optional method whose default raises NotSupported, with a valid call.
OPTIONAL_CALLS = {
    "list_instance_uuids": lambda d: d.list_instance_uuids(),
    "pause": lambda d: d.pause(INSTANCE),
    "unpause": lambda d: d.unpause(INSTANCE),
    "suspend": lambda d: d.suspend(None, INSTANCE),
    "resume": lambda d: d.resume(None, INSTANCE),
    "snapshot": lambda d: d.snapshot(None, INSTANCE, IMAGE.id, _noop),
    "rescue": lambda d: d.rescue(None, INSTANCE, None, IMAGE),
    "unrescue": lambda d: d.unrescue(None, INSTANCE),
    "get_volume_connector": lambda d: d.get_volume_connector(INSTANCE),
    "attach_volume": lambda d: d.attach_volume(None, {}, INSTANCE, "/dev/vdb"),
    "detach_volume": lambda d: d.detach_volume(None, {}, INSTANCE, "/dev/vdb"),
    "extend_volume": lambda d: d.extend_volume(None, {}, INSTANCE, 2 ** 30),
    "plug_vifs": lambda d: d.plug_vifs(INSTANCE, []),
    "unplug_vifs": lambda d: d.unplug_vifs(INSTANCE, []),
    "get_console_output": lambda d: d.get_console_output(None, INSTANCE),
    "get_vnc_console": lambda d: d.get_vnc_console(None, INSTANCE),
    "check_can_live_migrate_destination":
        lambda d: d.check_can_live_migrate_destination(None, INSTANCE, {}, {}),
    "live_migration": lambda d: d.live_migration(None, INSTANCE, "dest", _noop, _noop),
    "migrate_disk_and_power_off":
        lambda d: d.migrate_disk_and_power_off(None, INSTANCE, "dest", FLAVOR, None),
    "finish_migration":
        lambda d: d.finish_migration(None, {}, INSTANCE, "", None, IMAGE, False),
}

# Concrete methods of ComputeDriver that do something by default.
WORKING_DEFAULTS = {"init_host", "cleanup_host", "instance_exists", "register_event_listener",
                    "emit_event", "supports", "manage_image_cache"}


def test_every_concrete_method_is_known_here():
    concrete = {name for name, attr in vars(virtdriver.ComputeDriver).items()
                if callable(attr) and not name.startswith("_")
                and not getattr(attr, "__isabstractmethod__", False)}
    assert concrete == set(OPTIONAL_CALLS) | WORKING_DEFAULTS


@pytest.mark.parametrize("method", sorted(OPTIONAL_CALLS))
def test_default_optional_methods_raise_not_supported(method):
    with pytest.raises(exception.NotSupported, match="by the minimal driver") as raised:
        OPTIONAL_CALLS[method](MinimalDriver())
    assert raised.value.code == 501


def test_base_capabilities_declare_only_the_required_operations():
    drv = MinimalDriver()
    declared = {op for op in virtdriver.OPERATIONS if drv.supports(op)}
    assert declared == set(virtdriver.REQUIRED_OPERATIONS)
    assert not drv.supports("teleport")


def test_capability_key():
    assert virtdriver.capability_key("pause") == "supports_pause"


def test_instance_exists_defaults_to_get_info():
    assert MinimalDriver().instance_exists(INSTANCE) is False


class EventfulDriver(MinimalDriver):
    capabilities = types.MappingProxyType(dict(
        MinimalDriver.capabilities, **{virtdriver.capability_key("lifecycle_events"): True}))


def test_base_capabilities_are_read_only():
    with pytest.raises(TypeError):
        MinimalDriver.capabilities["supports_pause"] = True


def test_a_driver_without_events_refuses_a_listener_but_accepts_none():
    drv = MinimalDriver()
    with pytest.raises(exception.NotSupported, match="register_event_listener"):
        drv.register_event_listener(lambda event: None)
    drv.register_event_listener(None)


def test_a_module_that_does_not_import_is_one_clear_error(entry_points):
    entry_points.return_value = [_entry_point("ghost", "Ghost")]
    with pytest.raises(exception.DriverLoadError, match="'ghost'.*cannot be loaded"):
        virtdriver.driver_class("ghost")


def test_events_reach_the_listener_until_it_is_removed():
    listener = mock.create_autospec(lambda event: None)
    drv = EventfulDriver()
    event = virtevent.LifecycleEvent(uuid=INSTANCE.uuid,
                                     transition=virtevent.EVENT_LIFECYCLE_STOPPED)
    drv.register_event_listener(listener)
    drv.emit_event(event)
    drv.register_event_listener(None)
    drv.emit_event(event)
    listener.assert_called_once_with(event)
    assert event.name == "Stopped"


def test_a_failing_listener_is_logged_not_raised(caplog):
    drv = EventfulDriver()
    drv.register_event_listener(mock.create_autospec(lambda event: None,
                                                     side_effect=RuntimeError("bad listener")))
    with caplog.at_level(logging.ERROR, logger=virtdriver.__name__):
        drv.emit_event(virtevent.LifecycleEvent(uuid=INSTANCE.uuid))
    assert "Error handling driver event" in caplog.text
    assert "bad listener" in caplog.text


# -- wait_for ------------------------------------------------------------------

def test_wait_for_times_out_naming_what_it_waited_for():
    with pytest.raises(TimeoutError, match="timed out after 0.05s waiting for the widget"):
        virtdriver.wait_for(lambda: False, timeout=0.05, interval=0.01, what="the widget")


def test_wait_for_returns_once_the_predicate_holds():
    answers = iter([False, False, True])
    predicate = mock.create_autospec(lambda: None, side_effect=lambda: next(answers))
    virtdriver.wait_for(predicate, timeout=10, interval=0.001)
    assert predicate.call_count == 3


def test_a_driver_without_an_image_cache_has_nothing_to_clean():
    assert MinimalDriver().manage_image_cache(0) == []
