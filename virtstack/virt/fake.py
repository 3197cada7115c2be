"""An in-memory hypervisor: the whole driver interface, no hypervisor needed.

``FakeDriver`` keeps one ``FakeGuest`` record per instance and moves it through
the power states, errors and events a real hypervisor would. It ships in the
product (DESIGN.md rule 7): ``compute_driver = fake`` runs a cloud on a laptop;
``[fake_driver]`` sizes the simulated host and injects latency and failures.
Disks have no bytes (sizes are bookkeeping) and a driver is one node, so the
migration operations are not declared.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import logging
import platform
import sys
import threading
import time
import types
import uuid as uuidlib
from typing import Any, Callable, Mapping

from virtstack import exception
from virtstack.conf import CONF
from virtstack.objects import ImageMeta, Instance
from virtstack.virt import event as virtevent
from virtstack.virt import power_state
from virtstack.virt.driver import (OPERATIONS, ComputeDriver, ConsoleVNC,
                                   InstanceInfo, capability_key)

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3
VNC_BASE_PORT = 5900
BOOT_LINE = "virtstack fake guest {uuid} booted"

# Operations a one-node, in-memory hypervisor cannot honestly claim.
_UNDECLARED = frozenset({"live_migration", "cold_migration"})

#: Driver methods that latency and failure injection apply to: the public
#: interface of ComputeDriver, less the event plumbing.
INJECTABLE_METHODS = frozenset(
    name for name, attr in vars(ComputeDriver).items()
    if callable(attr) and not name.startswith("_")
    and name not in ("register_event_listener", "emit_event", "supports"))


SECTOR = 512
#: Lines a fake guest writes on its console when a running guest sees a
#: disk come, grow or go: the same as the libvirt test guest's
#: (``virtstack.image.testimage``), with sizes in 512-byte sectors.
DISK_ADDED_LINE = "VIRTSTACK-DISK-ADDED {dev} {sectors}"
DISK_RESIZED_LINE = "VIRTSTACK-DISK-RESIZED {dev} {sectors}"
DISK_REMOVED_LINE = "VIRTSTACK-DISK-REMOVED {dev}"


@dataclasses.dataclass
class FakeVolume:
    """A volume attached to a fake guest.

    ``held``: the guest does not let go of it (``simulate_device_held``), so
    a detach fails as a real guest's ignored unplug request does.
    """

    connection_info: dict[str, Any]
    size: int  # bytes; 0 until known (``data["size"]`` GiB or extend_volume)
    held: bool = False

    @property
    def volume_id(self) -> str | None:
        return (self.connection_info.get("data") or {}).get("volume_id")


@dataclasses.dataclass
class FakeGuest:
    """One simulated guest. ``FakeDriver.get_guest`` hands out copies.

    VIFs are host-side and may be plugged before the guest exists, so the
    driver keeps them per instance and ``vifs`` is filled in on the copy.
    """

    uuid: str
    name: str
    power_state: int
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    internal_id: str
    vnc_port: int
    volumes: dict[str, FakeVolume] = dataclasses.field(default_factory=dict)  # by mountpoint
    vifs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # by VIF id
    console: list[str] = dataclasses.field(default_factory=list)
    rescued: bool = False

    @property
    def disk_gb(self) -> int:
        return self.root_gb + self.ephemeral_gb


def _lifecycle(uuid: str, *transitions: int) -> list[virtevent.Event]:
    return [virtevent.LifecycleEvent(uuid=uuid, transition=t) for t in transitions]


def _check_method(method: str, error: Callable[[str], Exception] = ValueError) -> None:
    """Raise ``error(reason)`` unless ``method`` can take injected behaviour."""
    if method not in INJECTABLE_METHODS:
        raise error(f"unknown fake driver method '{method}'; known: "
                    + ", ".join(sorted(INJECTABLE_METHODS)))


def _conf_error(option: str) -> Callable[[str], Exception]:
    return lambda reason: exception.ConfigError(reason=f"[fake_driver] {option}: {reason}")


def _conf_latency() -> dict[str, float]:
    """``[fake_driver] latency`` as method -> seconds; ConfigError if bad."""
    latency, error = {}, _conf_error("latency")
    for method, value in CONF.fake_driver.latency.items():
        _check_method(method, error)
        try:
            latency[method] = float(value)
        except ValueError:
            raise error(f"latency of '{method}' is not a number: {value!r}") from None
        if latency[method] < 0:
            raise error(f"latency of '{method}' is negative: {value!r}")
    return latency


def _conf_fail() -> frozenset[str]:
    """``[fake_driver] fail`` as a set of methods; ConfigError if unknown."""
    for method in CONF.fake_driver.fail:
        _check_method(method, _conf_error("fail"))
    return frozenset(CONF.fake_driver.fail)


class FakeDriver(ComputeDriver):
    """A complete in-memory driver with latency and failure injection.

    Thread-safe: guests live in one dict behind a lock, and events are
    emitted after the lock is released, so a listener may call back into
    the driver. Every method in ``INJECTABLE_METHODS`` first waits its
    configured latency, then raises an injected failure if one is due.
    """

    name = "fake"
    boots_images = False  # guests are records; image bits are never read

    capabilities: Mapping[str, bool] = types.MappingProxyType({
        capability_key(op): op not in _UNDECLARED for op in OPERATIONS
    })

    def __init__(self) -> None:
        """Read ``[fake_driver] latency`` and ``fail``; ConfigError if bad."""
        super().__init__()
        self._lock = threading.Lock()
        self._guests: dict[str, FakeGuest] = {}
        self._plugged: dict[str, dict[str, dict[str, Any]]] = {}  # uuid -> VIF id -> VIF
        self._host: str | None = None
        self._started = time.monotonic()
        self._faults_lock = threading.Lock()
        self._latency = _conf_latency()
        self._always_fail = _conf_fail()
        self._failures: dict[str, tuple[BaseException | type[BaseException], int]] = {}
        # One wrapper per method here, rather than a decorator on each,
        # so that no method of the interface can miss it.
        for method in INJECTABLE_METHODS:
            setattr(self, method, self._injectable(method, getattr(self, method)))

    # -- latency and failure injection ---------------------------------------

    def set_latency(self, method: str, seconds: float) -> None:
        """Make every later call of ``method`` take ``seconds`` (0 removes it).

        Raises ValueError for an unknown method or a negative delay.
        """
        _check_method(method)
        if seconds < 0:
            raise ValueError(f"latency must not be negative, got {seconds}")
        with self._faults_lock:
            if seconds:
                self._latency[method] = float(seconds)
            else:
                self._latency.pop(method, None)

    def inject_failure(self, method: str,
                       exc: BaseException | type[BaseException] | None = None,
                       times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``exc`` (an exception
        or its class; by default a VirtstackException saying it was injected).

        The failing call changes nothing. ValueError for an unknown method or
        ``times`` < 1.
        """
        _check_method(method)
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        if exc is None:
            exc = exception.VirtstackException(
                f"Injected failure in fake driver method '{method}'.")
        with self._faults_lock:
            self._failures[method] = (exc, times)

    def clear_failures(self) -> None:
        """Forget every failure: injected ones and ``[fake_driver] fail``."""
        with self._faults_lock:
            self._failures.clear()
            self._always_fail = frozenset()

    def _injectable(self, method: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._inject(method)
            return func(*args, **kwargs)
        return wrapper

    def _inject(self, method: str) -> None:
        """Wait the latency of ``method``, then raise its failure if one is due."""
        with self._faults_lock:
            delay = self._latency.get(method, 0.0)
        if delay:
            # The simulated hypervisor being slow; not synchronisation.
            threading.Event().wait(delay)
        exc: BaseException | type[BaseException] | None = None
        with self._faults_lock:
            if method in self._failures:
                exc, remaining = self._failures.pop(method)
                if remaining > 1:
                    self._failures[method] = (exc, remaining - 1)
            elif method in self._always_fail:
                exc = exception.VirtstackException(
                    f"Injected failure in fake driver method '{method}' "
                    "(configured in [fake_driver] fail).")
        if exc is not None:
            LOG.info("Fake driver: injecting failure into %s", method)
            if isinstance(exc, type):
                raise exc()
            raise exc.with_traceback(None)

    # -- guest records -------------------------------------------------------

    def plugged_vifs(self, uuid: str) -> dict[str, dict[str, Any]]:
        """The VIFs plugged for ``uuid`` (by id), with or without a guest."""
        with self._lock:
            return copy.deepcopy(self._plugged.get(uuid, {}))

    def get_guest(self, uuid: str) -> FakeGuest:
        """A copy of the guest record of ``uuid``; InstanceNotFound if none."""
        with self._lock:
            return dataclasses.replace(copy.deepcopy(self._find(uuid)),
                                       vifs=copy.deepcopy(self._plugged.get(uuid, {})))

    def _find(self, uuid: str) -> FakeGuest:
        # Caller holds self._lock.
        try:
            return self._guests[uuid]
        except KeyError:
            raise exception.InstanceNotFound(instance_id=uuid) from None

    def _update(self, uuid: str,
                change: Callable[[FakeGuest], list[virtevent.Event] | None]) -> None:
        """Apply ``change`` to the guest under the lock, then emit its events."""
        with self._lock:
            events = change(self._find(uuid)) or []
        for event in events:
            self.emit_event(event)

    @staticmethod
    def _hard_boot(guest: FakeGuest, line: str) -> list[virtevent.Event]:
        """Reset the guest: cut its power if it is on, then boot it."""
        transitions = [] if guest.power_state == power_state.SHUTDOWN else [
            virtevent.EVENT_LIFECYCLE_STOPPED]
        guest.power_state = power_state.RUNNING
        guest.console.append(line)
        return _lifecycle(guest.uuid, *transitions, virtevent.EVENT_LIFECYCLE_STARTED)

    def _transition(self, uuid: str, action: str, allowed: tuple[int, ...],
                    to: int, transition: int, console: str | None = None) -> None:
        """Move the guest from one of ``allowed`` to ``to``, logging ``console``.

        From any other state: InstanceNotRunning if the action needs a
        running guest, else InstanceInvalidState.
        """
        def change(guest: FakeGuest) -> list[virtevent.Event]:
            if guest.power_state not in allowed:
                if power_state.RUNNING in allowed:
                    raise exception.InstanceNotRunning(instance_id=guest.uuid)
                raise exception.InstanceInvalidState(
                    action=action, instance_uuid=guest.uuid, attr="power_state",
                    state=power_state.name(guest.power_state))
            if console:
                guest.console.append(console)
            guest.power_state = to
            return _lifecycle(guest.uuid, transition)
        self._update(uuid, change)

    def _nodename(self) -> str:
        return self._host or CONF.host

    # -- host ----------------------------------------------------------------

    def init_host(self, host: str) -> None:
        """Remember ``host``: it becomes the node name and connector host."""
        self._host = host

    def cleanup_host(self, host: str) -> None:
        """Nothing to release: guests stay, as real guests outlive the service."""

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """Totals from ``[fake_driver]``; used is the sum over every guest.

        Raises HypervisorNotFound for a node this driver does not manage.
        """
        if nodename != self._nodename():
            raise exception.HypervisorNotFound(hypervisor_id=nodename)
        conf = CONF.fake_driver
        with self._lock:
            guests = list(self._guests.values())
        cpu_info = {"arch": platform.machine() or "x86_64", "model": "virtstack-fake",
                    "vendor": "virtstack", "features": [],
                    "topology": {"sockets": 1, "cores": conf.vcpus, "threads": 1}}
        return {"vcpus": conf.vcpus, "memory_mb": conf.memory_mb, "local_gb": conf.local_gb,
                "vcpus_used": sum(g.vcpus for g in guests),
                "memory_mb_used": sum(g.memory_mb for g in guests),
                "local_gb_used": sum(g.disk_gb for g in guests),
                "hypervisor_type": "fake", "hypervisor_version": 1000,
                "hypervisor_hostname": nodename, "cpu_info": json.dumps(cpu_info, sort_keys=True)}

    def get_available_nodes(self) -> list[str]:
        """The one node: the host given to ``init_host`` (``[DEFAULT] host`` before)."""
        return [self._nodename()]

    def get_host_uptime(self) -> str:
        """An ``uptime`` line; the host "booted" when the driver was made and
        its load is the running guests' vCPUs over the host's."""
        days, rest = divmod(int(time.monotonic() - self._started), 86400)
        hours, minutes = rest // 3600, rest % 3600 // 60
        up = f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
        if days:
            up = f"{days} day{'s' if days != 1 else ''}, {hours:2d}:{minutes:02d}"
        with self._lock:
            busy = sum(g.vcpus for g in self._guests.values()
                       if g.power_state == power_state.RUNNING)
        load = busy / CONF.fake_driver.vcpus
        return (f" {time.strftime('%H:%M:%S')} up {up},  0 users,  "
                f"load average: {load:.2f}, {load:.2f}, {load:.2f}")

    # -- guests --------------------------------------------------------------

    def list_instances(self) -> list[str]:
        with self._lock:
            return [guest.name for guest in self._guests.values()]

    def list_instance_uuids(self) -> list[str]:
        with self._lock:
            return list(self._guests)

    def instance_exists(self, instance: Instance) -> bool:
        with self._lock:
            return instance.uuid in self._guests

    def get_info(self, instance: Instance) -> InstanceInfo:
        with self._lock:
            guest = self._find(instance.uuid)
            return InstanceInfo(state=guest.power_state, internal_id=guest.internal_id)

    def spawn(self, context: Any, instance: Instance, image_meta: ImageMeta,
              network_info: list[dict[str, Any]] | None = None,
              block_device_info: dict[str, Any] | None = None,
              power_on: bool = True) -> None:
        """Create the guest sized by ``instance.flavor``, with the VIFs of
        ``network_info`` plugged and the volumes of ``block_device_info``
        (``block_device_mapping``: ``mount_device`` + ``connection_info``)
        attached. Invalid for malformed VIFs or mappings, InstanceExists
        for a uuid or name already present; nothing is created on error.
        """
        vifs = self._vifs(network_info)
        volumes: dict[str, FakeVolume] = {}
        for bdm in (block_device_info or {}).get("block_device_mapping", []):
            mountpoint = bdm.get("mount_device")
            if mountpoint in volumes:
                raise exception.DeviceInUse(device=mountpoint, instance_id=instance.uuid)
            volumes[mountpoint] = self._volume(bdm.get("connection_info"), mountpoint)
        flavor = instance.flavor
        with self._lock:
            ports = {guest.vnc_port for guest in self._guests.values()}
            if instance.uuid in self._guests or instance.name in (
                    g.name for g in self._guests.values()):
                raise exception.InstanceExists(name=instance.name)
            guest = FakeGuest(
                uuid=instance.uuid, name=instance.name, power_state=power_state.SHUTDOWN,
                vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
                ephemeral_gb=flavor.ephemeral_gb, internal_id=str(uuidlib.uuid4()),
                vnc_port=next(p for p in itertools.count(VNC_BASE_PORT) if p not in ports),
                volumes=volumes)
            self._plugged.setdefault(instance.uuid, {}).update(vifs)
            events = self._hard_boot(guest, BOOT_LINE.format(uuid=instance.uuid)) \
                if power_on else []
            self._guests[instance.uuid] = guest
        for event in events:
            self.emit_event(event)

    def destroy(self, context: Any, instance: Instance,
                network_info: list[dict[str, Any]] | None = None,
                block_device_info: dict[str, Any] | None = None,
                destroy_disks: bool = True) -> None:
        """Forget the guest (emitting STOPPED if it was on) and unplug the VIFs
        of ``network_info``; a no-op for a guest that is not there."""
        with self._lock:
            guest = self._guests.pop(instance.uuid, None)
            self._unplug(instance.uuid, network_info)
        if guest is not None and guest.power_state != power_state.SHUTDOWN:
            self.emit_event(virtevent.LifecycleEvent(
                uuid=instance.uuid, transition=virtevent.EVENT_LIFECYCLE_STOPPED))

    def reboot(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, reboot_type: str,
               block_device_info: dict[str, Any] | None = None) -> None:
        """SOFT restarts a running guest in place (no power events); HARD, or
        SOFT of a guest that is not running, resets it (STOPPED, STARTED).
        Either way a boot line is logged and the guest ends RUNNING.
        """
        if reboot_type not in ("SOFT", "HARD"):
            raise exception.Invalid(reason=f"reboot type must be SOFT or HARD, not {reboot_type!r}")

        def change(guest: FakeGuest) -> list[virtevent.Event]:
            line = BOOT_LINE.format(uuid=guest.uuid)
            if reboot_type == "SOFT" and guest.power_state == power_state.RUNNING:
                guest.console.append(line)
                return []
            return self._hard_boot(guest, line)
        self._update(instance.uuid, change)

    def power_off(self, instance: Instance, timeout: int = 0,
                  retry_interval: int = 0) -> None:
        """Stop the guest (SHUTDOWN, STOPPED event). A fake guest honours a
        clean shutdown request at once, so ``timeout`` is never waited."""
        def change(guest: FakeGuest) -> list[virtevent.Event]:
            if guest.power_state == power_state.SHUTDOWN:
                return []
            if timeout and guest.power_state == power_state.RUNNING:
                guest.console.append(f"virtstack fake guest {guest.uuid} shutting down")
            guest.power_state = power_state.SHUTDOWN
            return _lifecycle(guest.uuid, virtevent.EVENT_LIFECYCLE_STOPPED)
        self._update(instance.uuid, change)

    def power_on(self, context: Any, instance: Instance,
                 network_info: list[dict[str, Any]] | None = None,
                 block_device_info: dict[str, Any] | None = None) -> None:
        """Boot the guest; from PAUSED, SUSPENDED or CRASHED that is a reset
        (its memory is lost). A running guest is left alone."""
        def change(guest: FakeGuest) -> list[virtevent.Event]:
            if guest.power_state == power_state.RUNNING:
                return []
            return self._hard_boot(guest, BOOT_LINE.format(uuid=guest.uuid))
        self._update(instance.uuid, change)

    def pause(self, instance: Instance) -> None:
        """RUNNING -> PAUSED; InstanceNotRunning from any other state."""
        self._transition(instance.uuid, "pause", (power_state.RUNNING,),
                         power_state.PAUSED, virtevent.EVENT_LIFECYCLE_PAUSED)

    def unpause(self, instance: Instance) -> None:
        """PAUSED -> RUNNING; InstanceInvalidState from any other state."""
        self._transition(instance.uuid, "unpause", (power_state.PAUSED,),
                         power_state.RUNNING, virtevent.EVENT_LIFECYCLE_RESUMED)

    def suspend(self, context: Any, instance: Instance) -> None:
        """RUNNING or PAUSED -> SUSPENDED; InstanceNotRunning otherwise."""
        self._transition(instance.uuid, "suspend", (power_state.RUNNING, power_state.PAUSED),
                         power_state.SUSPENDED, virtevent.EVENT_LIFECYCLE_SUSPENDED)

    def resume(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None = None,
               block_device_info: dict[str, Any] | None = None) -> None:
        """SUSPENDED -> RUNNING; InstanceInvalidState from any other state."""
        self._transition(instance.uuid, "resume", (power_state.SUSPENDED,),
                         power_state.RUNNING, virtevent.EVENT_LIFECYCLE_RESUMED)

    def snapshot(self, context: Any, instance: Instance, image_id: str,
                 update_task_state: Callable[..., None]) -> dict[str, Any]:
        """Report a qcow2 image the virtual size of the root disk; the guest's
        power state is untouched. InstanceNotFound if the guest is gone
        before or during the upload."""
        with self._lock:
            size = self._find(instance.uuid).root_gb * GiB
        update_task_state(task_state="image_pending_upload", expected_state="image_snapshot")
        update_task_state(task_state="image_uploading", expected_state="image_pending_upload")
        with self._lock:
            self._find(instance.uuid)
        return {"disk_format": "qcow2", "size": size, "location": None}

    def rescue(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, image_meta: ImageMeta,
               rescue_password: str | None = None) -> None:
        """Reset the guest into ``image_meta``; InstanceInvalidState if already rescued."""
        self._set_rescued(instance.uuid, True, f" from rescue image {image_meta.id}")

    def unrescue(self, context: Any, instance: Instance) -> None:
        """Reset the guest into its own disk; InstanceInvalidState if not rescued."""
        self._set_rescued(instance.uuid, False, "")

    def _set_rescued(self, uuid: str, rescued: bool, boot_from: str) -> None:
        def change(guest: FakeGuest) -> list[virtevent.Event]:
            if guest.rescued == rescued:
                raise exception.InstanceInvalidState(
                    action="rescue" if rescued else "unrescue", instance_uuid=guest.uuid,
                    attr="rescue", state="rescued" if rescued else "not rescued")
            guest.rescued = rescued
            return self._hard_boot(guest, BOOT_LINE.format(uuid=guest.uuid) + boot_from)
        self._update(uuid, change)

    # -- volumes -------------------------------------------------------------

    def get_volume_connector(self, instance: Instance) -> dict[str, Any]:
        host = self._nodename()
        return {"host": host, "ip": "127.0.0.1", "platform": platform.machine() or "x86_64",
                "os_type": sys.platform, "multipath": False,
                "initiator": f"iqn.2010-10.org.virtstack:{host}"}

    @staticmethod
    def _volume(connection_info: Any, mountpoint: Any) -> FakeVolume:
        """The record of a volume to attach; Invalid for malformed input."""
        if not isinstance(connection_info, dict) or "driver_volume_type" not in connection_info:
            raise exception.Invalid(
                reason=f"connection_info without a driver_volume_type: {connection_info!r}")
        if not (isinstance(mountpoint, str) and mountpoint.startswith("/dev/")):
            raise exception.Invalid(reason=f"mountpoint must be a /dev/ path, not {mountpoint!r}")
        size_gb = connection_info.get("data", {}).get("size") or 0
        return FakeVolume(connection_info=copy.deepcopy(connection_info), size=int(size_gb) * GiB)

    @staticmethod
    def _guest_sees(guest: FakeGuest, line: str, **values: Any) -> None:
        """A running guest notices a disk change at once and says so; a
        stopped one finds its disks when it boots."""
        if guest.power_state == power_state.RUNNING:
            guest.console.append(line.format(**values))

    @staticmethod
    def _refuse_suspended(guest: FakeGuest, action: str) -> None:
        # As on libvirt: a saved memory image holds the device list of its time.
        if guest.power_state == power_state.SUSPENDED:
            raise exception.InstanceInvalidState(action=action, instance_uuid=guest.uuid,
                                                 attr="power_state", state="suspended")

    def attach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str,
                      disk_bus: str | None = None,
                      device_type: str | None = None) -> None:
        """Record the volume at ``mountpoint``; a running guest logs
        ``VIRTSTACK-DISK-ADDED vdb <sectors>``. Invalid for connection_info
        without ``driver_volume_type`` or a mountpoint outside /dev/;
        DeviceInUse if the mountpoint is taken; Conflict if the volume is
        attached already; InstanceInvalidState for a suspended guest."""
        volume = self._volume(connection_info, mountpoint)

        def change(guest: FakeGuest) -> None:
            self._refuse_suspended(guest, "attach_volume")
            if mountpoint in guest.volumes:
                raise exception.DeviceInUse(device=mountpoint, instance_id=guest.uuid)
            for taken, other in guest.volumes.items():
                if volume.volume_id and other.volume_id == volume.volume_id:
                    raise exception.Conflict(
                        reason=f"volume {volume.volume_id} is already attached to instance "
                               f"{guest.uuid} at {taken}")
            guest.volumes[mountpoint] = volume
            self._guest_sees(guest, DISK_ADDED_LINE, dev=mountpoint.rpartition("/")[2],
                             sectors=volume.size // SECTOR)
        self._update(instance.uuid, change)

    def detach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str) -> None:
        """Forget the volume at ``mountpoint`` and emit a DeviceRemovedEvent;
        a running guest logs ``VIRTSTACK-DISK-REMOVED vdb``. DeviceNotFound
        if nothing is attached there; DeviceDetachFailed (the volume stays)
        if the guest holds on to it (``simulate_device_held``)."""
        dev = mountpoint.rpartition("/")[2]

        def change(guest: FakeGuest) -> list[virtevent.Event]:
            self._refuse_suspended(guest, "detach_volume")
            volume = guest.volumes.get(mountpoint)
            if volume is None:
                raise exception.DeviceNotFound(device=mountpoint, instance_id=guest.uuid)
            if volume.held and guest.power_state != power_state.SHUTDOWN:
                raise exception.DeviceDetachFailed(
                    device=dev, instance_id=guest.uuid, attempts=1,
                    reason="the guest did not acknowledge the unplug (simulated)")
            del guest.volumes[mountpoint]
            self._guest_sees(guest, DISK_REMOVED_LINE, dev=dev)
            return [virtevent.DeviceRemovedEvent(uuid=guest.uuid, dev=dev)]
        self._update(instance.uuid, change)

    def extend_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, requested_size: int) -> None:
        """Set the size of the attached volume ``data["volume_id"]``.

        DeviceNotFound if it is not attached; Invalid if it would shrink.
        """
        volume_id = connection_info.get("data", {}).get("volume_id")

        def change(guest: FakeGuest) -> None:
            for mountpoint, volume in guest.volumes.items():
                if volume.volume_id == volume_id:
                    if requested_size < volume.size:
                        raise exception.Invalid(
                            reason=f"volume {volume_id} cannot shrink from {volume.size} "
                                   f"to {requested_size} bytes")
                    if requested_size != volume.size:
                        self._guest_sees(guest, DISK_RESIZED_LINE,
                                         dev=mountpoint.rpartition("/")[2],
                                         sectors=requested_size // SECTOR)
                    volume.size = requested_size
                    return
            raise exception.DeviceNotFound(device=volume_id, instance_id=guest.uuid)
        self._update(instance.uuid, change)

    # -- network -------------------------------------------------------------

    @staticmethod
    def _vifs(network_info: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        vifs = {}
        for vif in network_info or []:
            if not isinstance(vif, dict) or not vif.get("id"):
                raise exception.Invalid(reason=f"VIF without an 'id': {vif!r}")
            vifs[vif["id"]] = copy.deepcopy(vif)
        return vifs

    def _unplug(self, uuid: str, network_info: list[dict[str, Any]] | None) -> None:
        # Caller holds self._lock.
        plugged = self._plugged.get(uuid, {})
        for vif in network_info or []:
            if isinstance(vif, dict):
                plugged.pop(vif.get("id"), None)
        if not plugged:
            self._plugged.pop(uuid, None)

    def plug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        """Plug each VIF (by ``id``), before or after spawn; plugging one
        twice is harmless. Invalid for a VIF without an ``id``."""
        vifs = self._vifs(network_info)
        with self._lock:
            self._plugged.setdefault(instance.uuid, {}).update(vifs)

    def unplug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        """Unplug each VIF; absent VIFs and guests are not an error."""
        with self._lock:
            self._unplug(instance.uuid, network_info)

    # -- consoles ------------------------------------------------------------

    def get_console_output(self, context: Any, instance: Instance) -> bytes:
        """The guest's console lines, newline-terminated, as UTF-8."""
        with self._lock:
            lines = list(self._find(instance.uuid).console)
        return "".join(line + "\n" for line in lines).encode()

    def get_vnc_console(self, context: Any, instance: Instance) -> ConsoleVNC:
        """The guest's own port (from 5900 up); InstanceNotRunning unless the
        guest has a live display (RUNNING or PAUSED)."""
        with self._lock:
            guest = self._find(instance.uuid)
            if guest.power_state not in (power_state.RUNNING, power_state.PAUSED):
                raise exception.InstanceNotRunning(instance_id=guest.uuid)
            return ConsoleVNC(host=self._nodename(), port=guest.vnc_port)

    # -- simulating the guest's side -----------------------------------------

    def simulate_guest_shutdown(self, uuid: str) -> None:
        """The guest OS powers itself off: SHUTDOWN and a STOPPED event.

        InstanceNotFound if there is no such guest, InstanceNotRunning if it
        is not running.
        """
        self._transition(uuid, "shutdown", (power_state.RUNNING,), power_state.SHUTDOWN,
                         virtevent.EVENT_LIFECYCLE_STOPPED,
                         console=f"virtstack fake guest {uuid} reached target Power-Off")

    def simulate_device_held(self, uuid: str, mountpoint: str, held: bool = True) -> None:
        """The guest does (``held``) or no longer does ignore unplug requests
        for the volume at ``mountpoint``: while it does, ``detach_volume`` of
        a guest that is not shut off fails with DeviceDetachFailed and the
        volume stays. InstanceNotFound / DeviceNotFound if there is no such
        guest or volume."""
        def change(guest: FakeGuest) -> None:
            if mountpoint not in guest.volumes:
                raise exception.DeviceNotFound(device=mountpoint, instance_id=guest.uuid)
            guest.volumes[mountpoint].held = held
        self._update(uuid, change)

    def simulate_crash(self, uuid: str) -> None:
        """The guest crashes: CRASHED, a kernel panic on its console and a
        CRASHED event. Same errors as ``simulate_guest_shutdown``."""
        self._transition(uuid, "crash", (power_state.RUNNING,), power_state.CRASHED,
                         virtevent.EVENT_LIFECYCLE_CRASHED,
                         console="Kernel panic - not syncing: virtstack fake crash")
