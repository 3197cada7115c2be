"""The hypervisor driver interface: one ``ComputeDriver`` ABC and its registry.

Every hypervisor is a subclass of ``ComputeDriver``. The compute manager is
the only caller; it passes plain data objects (``virtstack.objects``) and a
request context, and it serialises calls per instance (a driver never sees two
concurrent operations on one instance, but does see concurrent operations on
different instances).

Optional operations default to raising ``NotSupported``; a driver that
implements one also declares it in ``capabilities`` so that the API, the
support matrix and the contract suite know.

Drivers are found through one registry (``DRIVERS``, filled from the
``virtstack.compute_drivers`` entry-point group plus the built-ins) and made by
``load_driver()``.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
import time
import types
from typing import Any, Callable, Mapping

from virtstack import exception, registry
from virtstack.objects import ImageMeta, Instance
from virtstack.virt import event as virtevent

LOG = logging.getLogger(__name__)

# Every operation a driver may declare, with the methods that implement it.
# The support matrix and the contract suite are generated from this table;
# a capability key is ``supports_<operation>``.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "spawn": ("spawn",),
    "destroy": ("destroy",),
    "reboot_soft": ("reboot",),
    "reboot_hard": ("reboot",),
    "power_off": ("power_off",),
    "power_on": ("power_on",),
    "pause": ("pause", "unpause"),
    "suspend": ("suspend", "resume"),
    "snapshot": ("snapshot",),
    "rescue": ("rescue", "unrescue"),
    "attach_volume": ("attach_volume", "detach_volume"),
    "extend_volume": ("extend_volume",),
    "volume_connector": ("get_volume_connector",),
    "vif_plugging": ("plug_vifs", "unplug_vifs"),
    "console_output": ("get_console_output",),
    "vnc_console": ("get_vnc_console",),
    "live_migration": ("check_can_live_migrate_destination", "live_migration"),
    "cold_migration": ("migrate_disk_and_power_off", "finish_migration"),
    "lifecycle_events": ("register_event_listener",),
    "host_resources": ("get_available_resource", "get_host_uptime"),
}

# Operations every driver must support: they are abstract methods.
REQUIRED_OPERATIONS = ("spawn", "destroy", "power_off", "power_on", "reboot_hard",
                       "host_resources")


def capability_key(operation: str) -> str:
    return "supports_" + operation


@dataclasses.dataclass
class InstanceInfo:
    """What ``get_info`` reports about one guest."""

    state: int  # a virtstack.virt.power_state constant
    internal_id: str | None = None  # the hypervisor's own id (domain UUID, LPAR id)


@dataclasses.dataclass
class ConsoleVNC:
    """Where a VNC client connects for a guest's graphical console."""

    host: str
    port: int
    internal_access_path: str | None = None


class ComputeDriver(abc.ABC):
    """Base class of every hypervisor driver.

    Subclasses set ``name`` (the registry key) and ``capabilities``. The
    ``instance`` argument is always a ``virtstack.objects.Instance``; a
    driver must not keep references to it past the call.
    """

    name: str = "base"

    #: Which operations this driver implements; see ``OPERATIONS``. Read-only
    #: (a MappingProxyType): a driver that must vary it per instance copies
    #: it first (``dict(self.capabilities)``).
    capabilities: Mapping[str, bool] = types.MappingProxyType({
        capability_key(op): op in REQUIRED_OPERATIONS for op in OPERATIONS
    })

    #: Whether the driver reads image files (and so needs a real, bootable
    #: image in the store), as opposed to only their metadata.
    boots_images: bool = True

    def __init__(self) -> None:
        self._event_listener: Callable[[virtevent.Event], None] | None = None

    # -- host -------------------------------------------------------------

    def init_host(self, host: str) -> None:
        """Prepare the driver for use on ``host`` (connect, start event loops).

        Called once when the compute service starts, before any other call.
        Raises on a host that cannot run guests; the service then exits.
        """

    def cleanup_host(self, host: str) -> None:
        """Release what ``init_host`` acquired. Called at service shutdown."""

    @abc.abstractmethod
    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """Resources of ``nodename`` for the compute-node record.

        Raises ``HypervisorNotFound`` for a node this driver does not manage.

        Returns a dict with ``vcpus``, ``memory_mb``, ``local_gb`` (totals),
        ``vcpus_used``, ``memory_mb_used``, ``local_gb_used``,
        ``hypervisor_type`` (str), ``hypervisor_version`` (int),
        ``hypervisor_hostname`` (str) and ``cpu_info`` (JSON text).
        """

    @abc.abstractmethod
    def get_available_nodes(self) -> list[str]:
        """The node names this driver manages (usually one: the host name)."""

    @abc.abstractmethod
    def get_host_uptime(self) -> str:
        """The host's ``uptime`` line, as the os-hypervisors uptime API shows."""

    def manage_image_cache(self, min_age_seconds: float = 0.0) -> list[str]:
        """Remove cached images no guest uses that have been unused for
        ``min_age_seconds``; returns what was removed. Drivers without an
        image cache keep this default (nothing to do)."""
        return []

    # -- guests -----------------------------------------------------------

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """Hypervisor-side names of every guest this driver can see."""

    def list_instance_uuids(self) -> list[str]:
        """UUIDs of every guest this driver can see."""
        raise exception.NotSupported(operation="list_instance_uuids", driver=self.name)

    def instance_exists(self, instance: Instance) -> bool:
        """Whether the hypervisor has a guest for ``instance``."""
        try:
            self.get_info(instance)
            return True
        except exception.InstanceNotFound:
            return False

    @abc.abstractmethod
    def get_info(self, instance: Instance) -> InstanceInfo:
        """Power state of the guest. Raises ``InstanceNotFound`` if there is none."""

    @abc.abstractmethod
    def spawn(self, context: Any, instance: Instance, image_meta: ImageMeta,
              network_info: list[dict[str, Any]] | None = None,
              block_device_info: dict[str, Any] | None = None,
              power_on: bool = True) -> None:
        """Create the guest for ``instance`` from ``image_meta`` and start it.

        On return the guest exists and is running (``power_on``) or shut
        down (not ``power_on``). On any
        failure the driver leaves nothing behind (no guest, disk or device)
        and raises; the compute manager puts the instance in ERROR.
        ``InstanceExists`` if a guest of that name is already there.
        """

    @abc.abstractmethod
    def destroy(self, context: Any, instance: Instance,
                network_info: list[dict[str, Any]] | None = None,
                block_device_info: dict[str, Any] | None = None,
                destroy_disks: bool = True) -> None:
        """Power off and remove the guest and (if ``destroy_disks``) its disks.

        Idempotent: destroying a guest that is already gone succeeds.
        """

    @abc.abstractmethod
    def reboot(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, reboot_type: str,
               block_device_info: dict[str, Any] | None = None) -> None:
        """Reboot the guest. ``reboot_type`` is ``"SOFT"`` or ``"HARD"``.

        SOFT asks the guest OS to restart (ACPI) and falls back to HARD when
        the guest does not come back in time; HARD resets it. On return the
        guest is running. Drivers without ``supports_reboot_soft`` treat SOFT
        as HARD.
        """

    @abc.abstractmethod
    def power_off(self, instance: Instance, timeout: int = 0,
                  retry_interval: int = 0) -> None:
        """Stop the guest. With ``timeout`` > 0, ask the guest OS to shut down
        (ACPI) and wait up to ``timeout`` seconds, re-asking every
        ``retry_interval``; then (or with ``timeout`` 0) cut the power.
        Powering off a stopped guest succeeds.
        """

    @abc.abstractmethod
    def power_on(self, context: Any, instance: Instance,
                 network_info: list[dict[str, Any]] | None = None,
                 block_device_info: dict[str, Any] | None = None) -> None:
        """Start a stopped guest. Starting a running guest succeeds."""

    def pause(self, instance: Instance) -> None:
        """Freeze the guest's vCPUs, keeping its memory (power state PAUSED).
        ``InstanceNotRunning`` if the guest is not running."""
        raise exception.NotSupported(operation="pause", driver=self.name)

    def unpause(self, instance: Instance) -> None:
        """Resume a paused guest; ``Conflict`` if it is not paused."""
        raise exception.NotSupported(operation="unpause", driver=self.name)

    def suspend(self, context: Any, instance: Instance) -> None:
        """Save the guest's memory to disk and stop it (power state SUSPENDED).
        ``InstanceNotRunning`` if the guest is not running."""
        raise exception.NotSupported(operation="suspend", driver=self.name)

    def resume(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None = None,
               block_device_info: dict[str, Any] | None = None) -> None:
        """Restore a suspended guest from its saved memory; ``Conflict`` if it
        is not suspended."""
        raise exception.NotSupported(operation="resume", driver=self.name)

    def snapshot(self, context: Any, instance: Instance, image_id: str,
                 update_task_state: Callable[..., None]) -> dict[str, Any]:
        """Capture the guest's root disk as image ``image_id``.

        Calls ``update_task_state(task_state=..., expected_state=...)`` as it
        goes (``image_pending_upload``, then ``image_uploading``). Returns
        ``{"disk_format": ..., "size": ..., "location": ...}`` describing the
        captured image. The guest is in the same power state afterwards.
        """
        raise exception.NotSupported(operation="snapshot", driver=self.name)

    def rescue(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, image_meta: ImageMeta,
               rescue_password: str | None = None) -> None:
        """Boot the guest from ``image_meta`` with its own disk attached second.
        ``Conflict`` if it is already in rescue."""
        raise exception.NotSupported(operation="rescue", driver=self.name)

    def unrescue(self, context: Any, instance: Instance) -> None:
        """Undo ``rescue``: boot the guest from its own disk again; ``Conflict``
        if it is not in rescue."""
        raise exception.NotSupported(operation="unrescue", driver=self.name)

    # -- volumes ----------------------------------------------------------

    def get_volume_connector(self, instance: Instance) -> dict[str, Any]:
        """This host's connector properties for the volume service.

        Example: ``{"host": "cmp1", "ip": "192.0.2.10", "platform": "x86_64",
        "os_type": "linux", "multipath": False,
        "initiator": "iqn.1993-08.org.debian:01:abc"}`` (``wwpns`` for FC).
        The initiator name is stable for the life of the host: the volume
        service puts it in its target ACLs.
        """
        raise exception.NotSupported(operation="get_volume_connector", driver=self.name)

    def attach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str,
                      disk_bus: str | None = None,
                      device_type: str | None = None) -> None:
        """Attach a volume to the guest, live and persistently.

        ``connection_info`` is what the volume service returned from
        initialize_connection, e.g. ``{"driver_volume_type": "iscsi", "data":
        {"target_portal": "127.0.0.1:3260", "target_iqn": "iqn...", "target_lun": 1,
        "volume_id": "..."}}``. ``mountpoint`` is the device name reserved
        for it (``/dev/vdb``); ``disk_bus``/``device_type`` default to
        ``"virtio"``/``"disk"``. A running (or paused) guest gets the volume
        live and persistently, a stopped one persistently (it sees the volume
        when it starts). Raises ``DeviceInUse`` if the name is taken;
        ``VolumeDriverNotFound`` for a ``driver_volume_type`` the host cannot
        attach; on failure nothing is left attached or connected.
        """
        raise exception.NotSupported(operation="attach_volume", driver=self.name)

    def detach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str) -> None:
        """Detach the volume at ``mountpoint`` live and persistently.

        Returns when the hypervisor confirms the device is gone (and the host
        side is disconnected); raises ``DeviceNotFound`` if it was not
        attached, and ``DeviceDetachFailed`` when the guest does not release
        it after bounded retries: the volume then stays attached, live and
        persistently, so the caller can report it ``in-use`` again.
        """
        raise exception.NotSupported(operation="detach_volume", driver=self.name)

    def extend_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, requested_size: int) -> None:
        """Tell the guest an attached volume grew to ``requested_size`` bytes
        (``data["volume_id"]`` of ``connection_info`` names it; the volume
        service has grown it already). ``DeviceNotFound`` if the volume is
        not attached."""
        raise exception.NotSupported(operation="extend_volume", driver=self.name)

    # -- network ----------------------------------------------------------

    def plug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        """Create the host side of the guest's virtual NICs."""
        raise exception.NotSupported(operation="plug_vifs", driver=self.name)

    def unplug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        """Remove the host side of the guest's virtual NICs (idempotent)."""
        raise exception.NotSupported(operation="unplug_vifs", driver=self.name)

    # -- consoles ---------------------------------------------------------

    def get_console_output(self, context: Any, instance: Instance) -> bytes:
        """Everything the guest wrote to its serial console so far."""
        raise exception.NotSupported(operation="get_console_output", driver=self.name)

    def get_vnc_console(self, context: Any, instance: Instance) -> ConsoleVNC:
        """Where to connect a VNC client for the guest."""
        raise exception.NotSupported(operation="get_vnc_console", driver=self.name)

    # -- migration hooks --------------------------------------------------

    def check_can_live_migrate_destination(self, context: Any, instance: Instance,
                                           src_compute_info: dict[str, Any],
                                           dst_compute_info: dict[str, Any]) -> dict[str, Any]:
        """Run on the destination: can it take ``instance``? Returns data for
        the source side; raises ``Invalid`` with the reason if not."""
        raise exception.NotSupported(operation="live_migration", driver=self.name)

    def live_migration(self, context: Any, instance: Instance, dest: str,
                       post_method: Callable[..., None],
                       recover_method: Callable[..., None],
                       migrate_data: dict[str, Any] | None = None) -> None:
        """Move the running guest to ``dest``; call ``post_method`` on success
        or ``recover_method`` on failure."""
        raise exception.NotSupported(operation="live_migration", driver=self.name)

    def migrate_disk_and_power_off(self, context: Any, instance: Instance, dest: str,
                                   flavor: Any, network_info: list[dict[str, Any]] | None,
                                   block_device_info: dict[str, Any] | None = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        """Cold migration, source side: stop the guest and move its disks."""
        raise exception.NotSupported(operation="cold_migration", driver=self.name)

    def finish_migration(self, context: Any, migration: dict[str, Any], instance: Instance,
                         disk_info: str, network_info: list[dict[str, Any]] | None,
                         image_meta: ImageMeta, resize_instance: bool,
                         block_device_info: dict[str, Any] | None = None,
                         power_on: bool = True) -> None:
        """Cold migration, destination side: define and start the moved guest."""
        raise exception.NotSupported(operation="cold_migration", driver=self.name)

    # -- events -----------------------------------------------------------

    def register_event_listener(self, callback: Callable[[virtevent.Event], None] | None) -> None:
        """Have ``callback`` called (from any thread) for every driver event.

        ``NotSupported`` from drivers that do not declare ``lifecycle_events``
        (their callers rely on the periodic power-state sync instead);
        ``None`` (unregister) is always accepted.
        """
        if callback is not None and not self.supports("lifecycle_events"):
            raise exception.NotSupported(operation="register_event_listener", driver=self.name)
        self._event_listener = callback

    def emit_event(self, event: virtevent.Event) -> None:
        """Hand ``event`` to the registered listener; errors there are logged."""
        listener = self._event_listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:  # the listener must not break the driver's event loop
            LOG.exception("Error handling driver event %s", event)

    def supports(self, operation: str) -> bool:
        """Whether this driver declares ``operation`` (a key of OPERATIONS)."""
        return bool(self.capabilities.get(capability_key(operation), False))


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05,
             what: str = "condition") -> None:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass.

    For drivers that must wait on a hypervisor that has no event for it.
    Raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        event.wait(min(interval, remaining))


# -- registry ---------------------------------------------------------------

#: Built-in drivers: registry name -> "module:Class". Third-party drivers
#: register through the ``virtstack.compute_drivers`` entry-point group.
BUILTIN_DRIVERS: dict[str, str] = {
    "fake": "virtstack.virt.fake:FakeDriver",
    "libvirt": "virtstack.virt.libvirt.driver:LibvirtDriver",
    "powervm": "virtstack.virt.powervm.driver:PowerVMDriver",
}

ENTRY_POINT_GROUP = "virtstack.compute_drivers"


def available_drivers() -> dict[str, str]:
    """Every known driver name and where its class lives."""
    return registry.with_entry_points(BUILTIN_DRIVERS, ENTRY_POINT_GROUP)


def driver_class(name: str) -> type[ComputeDriver]:
    """The class registered as ``name``.

    ``DriverNotFound`` (naming the available drivers) for an unknown name;
    ``DriverLoadError`` when the registered target cannot be imported or is
    not a ComputeDriver.
    """
    drivers = available_drivers()
    try:
        target = drivers[name]
    except KeyError:
        raise exception.DriverNotFound(name=name, available=", ".join(sorted(drivers)))
    try:
        return registry.load_class(target, ComputeDriver, lambda: exception.DriverLoadError(
            name=name, target=target, reason="it is not a ComputeDriver subclass"))
    except (ImportError, AttributeError) as exc:
        raise exception.DriverLoadError(name=name, target=target, reason=str(exc))


def load_driver(name: str | None = None, **kwargs: Any) -> ComputeDriver:
    """Make the driver named ``name`` (default: ``[compute] compute_driver``)."""
    if name is None:
        from virtstack.conf import CONF
        name = CONF.compute.compute_driver
    cls = driver_class(name)
    LOG.info("Loading compute driver '%s' (%s.%s)", name, cls.__module__, cls.__name__)
    return cls(**kwargs)
