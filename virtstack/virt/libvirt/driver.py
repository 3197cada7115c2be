"""``compute_driver = libvirt``: guests as libvirt/QEMU domains on this host.

This module only orchestrates (DESIGN rule 3): the connection, events and
host facts are ``host.Host``; one domain's operations are ``guest.Guest``;
the XML comes from ``designer`` + ``config``; instance files and the image
cache are ``imagebackend``; spawn is the flow in ``flows``. It reads the
configuration ([libvirt], [compute], state_path) and hands values down;
the modules below it read none.

Instances map to domains one to one: domain UUID = instance uuid, domain
name = instance name. Power states follow ``power_state.from_libvirt``,
except that a stopped domain with a managed-save image is SUSPENDED.
"""

from __future__ import annotations

import logging
import os
import socket
import types
from typing import Any, Callable, Mapping

from virtstack import exception
from virtstack.conf import CONF
from virtstack.flows.runner import FlowRunner
from virtstack.image import store
from virtstack.objects import ImageMeta, Instance
from virtstack.virt import power_state
from virtstack.virt.driver import (OPERATIONS, ComputeDriver, ConsoleVNC, InstanceInfo,
                                   capability_key)
from virtstack.virt.libvirt import config, designer, flows, imagebackend
from virtstack.virt.libvirt import host as libvirt_host
from virtstack.virt.libvirt import volume
from virtstack.virt.libvirt.guest import Guest
from virtstack.virt.libvirt.volume import flows as volume_flows
from virtstack.virt.libvirt.volume import initiator

LOG = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"
#: What this driver implements. Not (yet): VIFs (no networking), rescue,
#: migrations.
_DECLARED = frozenset({
    "spawn", "destroy", "reboot_soft", "reboot_hard", "power_off", "power_on", "pause",
    "suspend", "snapshot", "attach_volume", "extend_volume", "volume_connector",
    "console_output", "vnc_console", "lifecycle_events", "host_resources"})
#: get_console_output returns at most the last this many bytes.
MAX_CONSOLE_BYTES = 100 * 1024


class LibvirtDriver(ComputeDriver):
    """Guests on this host's libvirtd (``[libvirt] connection_uri``)."""

    name = "libvirt"

    capabilities: Mapping[str, bool] = types.MappingProxyType({
        capability_key(op): op in _DECLARED for op in OPERATIONS
    })

    def __init__(self) -> None:
        super().__init__()
        libvirt_host.require_libvirt()
        self._nodename = CONF.host
        self._host = libvirt_host.Host(CONF.libvirt.connection_uri or DEFAULT_URI,
                                       event_handler=self.emit_event)
        self._backend = imagebackend.get_backend(CONF.libvirt.images_type, CONF.state_path)
        self._facts: designer.HostFacts | None = None
        self._volume_connectors: volume.VolumeConnectors | None = None
        self._runner = FlowRunner(f"libvirt:{self._nodename}", persist=False)

    @property
    def host(self) -> libvirt_host.Host:
        return self._host

    @property
    def backend(self) -> imagebackend.ImageBackend:
        return self._backend

    # -- host ------------------------------------------------------------------

    def init_host(self, host: str) -> None:
        """Connect (events on), make the instance directories, choose the
        guest type (``auto``: probe KVM) and find the disk cache mode."""
        self._nodename = host
        self._runner = FlowRunner(f"libvirt:{host}", persist=False)
        self._host.initialize()
        self._backend.prepare()
        blocked = imagebackend.unreachable_dirs(self._backend.instances_dir)
        if blocked:
            # Every guest would fail to start: say so now, once, with the fix.
            raise exception.ConfigError(reason=(
                f"QEMU runs as another user and cannot traverse {', '.join(blocked)} on the "
                f"way to {self._backend.instances_dir}: make them o+x or set [DEFAULT] "
                "state_path to a directory under one it can traverse (e.g. /var/lib)."))
        self._host_facts()
        self._volumes()

    def cleanup_host(self, host: str) -> None:
        """Close the connection; guests keep running."""
        self._host.close()

    def _host_facts(self) -> designer.HostFacts:
        if self._facts is None:
            self._backend.prepare()
            virt_type = self._host.choose_virt_type(CONF.libvirt.virt_type,
                                                    self._backend.instances_dir)
            self._facts = designer.HostFacts(
                virt_type=virt_type, vnc_listen=CONF.libvirt.vnc_listen,
                disk_cache_mode=designer.disk_cache_mode(self._backend.instances_dir),
                console_via_virtlogd=self._host.console_via_virtlogd(),
                arch=self._host.get_arch())
        return self._facts

    def _volumes(self) -> volume.VolumeConnectors:
        """The volume connectors, made once: who logs in to iSCSI targets
        (``[libvirt] iscsi_initiator``) and as which initiator name."""
        if self._volume_connectors is None:
            iqn = initiator.initiator_iqn(CONF.libvirt.iscsi_initiator_iqn, CONF.state_path,
                                          self._nodename)
            self._volume_connectors = volume.VolumeConnectors(
                self._host, initiator.choose_initiator(CONF.libvirt.iscsi_initiator), iqn)
        return self._volume_connectors

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        if nodename != self._nodename:
            raise exception.HypervisorNotFound(hypervisor_id=nodename)
        self._backend.prepare()
        disk = self._host.get_disk_stats(self._backend.instances_dir)
        return {
            "vcpus": self._host.get_cpu_count(),
            "memory_mb": self._host.get_memory_mb_total(),
            "local_gb": disk["total"],
            "vcpus_used": self._host.get_vcpus_used(),
            "memory_mb_used": self._host.get_memory_mb_used(),
            "local_gb_used": disk["used"],
            "hypervisor_type": self._host.get_hypervisor_type(),
            "hypervisor_version": self._host.get_hypervisor_version(),
            "hypervisor_hostname": nodename,
            "cpu_info": self._host.get_cpu_info(),
        }

    def get_available_nodes(self) -> list[str]:
        """The one node: the host given to ``init_host`` (``[DEFAULT] host`` before)."""
        return [self._nodename]

    def get_host_uptime(self) -> str:
        return self._host.get_uptime()

    def manage_image_cache(self, min_age_seconds: float = 0.0) -> list[str]:
        """Remove cached image bases no instance uses (for a periodic task of
        the compute manager); returns the files removed."""
        return self._backend.cleanup_unused_bases(min_age_seconds)

    # -- guests ------------------------------------------------------------------

    def list_instances(self) -> list[str]:
        return [guest.name for guest in self._host.list_guests()]

    def list_instance_uuids(self) -> list[str]:
        return [guest.uuid for guest in self._host.list_guests()]

    def instance_exists(self, instance: Instance) -> bool:
        return self._host.find_guest(instance.uuid) is not None

    def get_info(self, instance: Instance) -> InstanceInfo:
        guest = self._host.get_guest(instance)
        return InstanceInfo(state=guest.get_power_state(), internal_id=guest.uuid)

    def spawn(self, context: Any, instance: Instance, image_meta: ImageMeta,
              network_info: list[dict[str, Any]] | None = None,
              block_device_info: dict[str, Any] | None = None,
              power_on: bool = True) -> None:
        """Run the spawn flow (``flows.get_spawn_flow``). ``InstanceExists``
        if a domain has this uuid or name; anything the flow made is removed
        when it fails. ``NotSupported`` for VIFs.

        ``block_device_info``'s volumes are connected and in the domain from
        the start, e.g. ``{"root_device_name": "/dev/vda",
        "block_device_mapping": [{"connection_info": {...}, "mount_device":
        "/dev/vda", "boot_index": 0, "disk_bus": "virtio", "device_type":
        "disk", "delete_on_termination": False}]}``; the mapping with
        ``boot_index`` 0 is the root disk (boot from volume: no disk is made
        from the image, whose kernel and ramdisk are still booted if it
        names them)."""
        if (self._host.find_guest(instance.uuid) is not None
                or self._host.find_guest_by_name(instance.name) is not None):
            raise exception.InstanceExists(name=instance.name)
        self._runner.run("spawn", instance.uuid, flows.get_spawn_flow,
                         factory_kwargs={"power_on": power_on},
                         transient={
                             "host": self._host, "backend": self._backend,
                             "facts": self._host_facts(), "instance": instance,
                             "image_meta": image_meta, "image_paths": store.path,
                             "network_info": network_info or [],
                             "block_device_info": block_device_info or {},
                             "volumes": self._volumes(),
                             "running_timeout": CONF.libvirt.running_timeout})
        LOG.info("Spawned %s (%s)", instance.name, instance.uuid)

    def destroy(self, context: Any, instance: Instance,
                network_info: list[dict[str, Any]] | None = None,
                block_device_info: dict[str, Any] | None = None,
                destroy_disks: bool = True) -> None:
        """Power off and undefine the domain (with its managed-save image),
        disconnect the volumes of ``block_device_info`` and remove every
        host-side trace of the guest's volumes (CHAP secrets), then
        (``destroy_disks``) remove the instance directory: disk, overlay,
        kernel, console log. Volumes themselves are the volume service's.
        Idempotent; finishes the cleanup whether or not a domain exists."""
        self._runner.run("destroy", instance.uuid, flows.get_destroy_flow,
                         factory_kwargs={"destroy_disks": destroy_disks},
                         transient={"host": self._host, "backend": self._backend,
                                    "instance": instance, "volumes": self._volumes(),
                                    "block_device_info": block_device_info or {}})

    # -- power -------------------------------------------------------------------

    def _wait_running(self, guest: Guest) -> None:
        self._host.wait_for(lambda: guest.get_power_state() == power_state.RUNNING,
                            CONF.libvirt.running_timeout, what=f"{guest} to run")

    def _boot_afresh(self, guest: Guest) -> None:
        """Cut the power if on, forget saved memory, start: a reset."""
        guest.poweroff()
        guest.remove_managed_save()
        guest.launch()
        self._wait_running(guest)

    def _clean_shutdown(self, guest: Guest, timeout: float, retry_interval: float) -> bool:
        """Press the ACPI button every ``retry_interval`` s until QEMU has
        exited (libvirt's "shutting down" state is not off yet) or
        ``timeout`` s pass; whether it went off."""
        def off() -> bool:
            return not guest.is_active()

        retry_interval = max(1.0, min(retry_interval or timeout, timeout))
        remaining = float(timeout)
        while remaining > 0:
            if off():
                return True
            try:
                guest.shutdown()
            except libvirt_host.libvirt.libvirtError:
                if off():
                    return True
                raise
            wait = min(retry_interval, remaining)
            try:
                self._host.wait_for(off, wait, what=f"{guest} to shut down")
                return True
            except TimeoutError:
                remaining -= wait
        return off()

    def reboot(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, reboot_type: str,
               block_device_info: dict[str, Any] | None = None) -> None:
        """SOFT: ACPI shutdown, wait for the guest to go off (up to
        ``[compute] reboot_timeout``, pressing again every
        ``shutdown_retry_interval``), start it; HARD when it does not go off
        or is not running. HARD: power off, start (disks kept)."""
        if reboot_type not in ("SOFT", "HARD"):
            raise exception.Invalid(reason=f"reboot type must be SOFT or HARD, not {reboot_type!r}")
        guest = self._host.get_guest(instance)
        if reboot_type == "SOFT" and guest.get_power_state() == power_state.RUNNING:
            if self._clean_shutdown(guest, CONF.compute.reboot_timeout,
                                    CONF.compute.shutdown_retry_interval):
                guest.launch()
                self._wait_running(guest)
                return
            LOG.warning("%s did not shut down within %ss; rebooting it hard", guest,
                        CONF.compute.reboot_timeout)
        self._boot_afresh(guest)

    def power_off(self, instance: Instance, timeout: int = 0,
                  retry_interval: int = 0) -> None:
        guest = self._host.get_guest(instance)
        if timeout and guest.get_power_state() == power_state.RUNNING:
            if self._clean_shutdown(guest, timeout, retry_interval):
                return
            LOG.warning("%s did not shut down within %ss; cutting the power", guest, timeout)
        guest.poweroff()
        guest.remove_managed_save()  # a suspended guest powered off is off

    def power_on(self, context: Any, instance: Instance,
                 network_info: list[dict[str, Any]] | None = None,
                 block_device_info: dict[str, Any] | None = None) -> None:
        """Boot the guest; from PAUSED, SUSPENDED or CRASHED that is a reset
        (memory is lost). A running guest is left alone."""
        guest = self._host.get_guest(instance)
        if guest.get_power_state() != power_state.RUNNING:
            self._boot_afresh(guest)

    def pause(self, instance: Instance) -> None:
        guest = self._host.get_guest(instance)
        if guest.get_power_state() != power_state.RUNNING:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        guest.pause()

    def unpause(self, instance: Instance) -> None:
        guest = self._host.get_guest(instance)
        self._require_state(guest, "unpause", power_state.PAUSED)
        guest.resume()

    def suspend(self, context: Any, instance: Instance) -> None:
        """Managed save: memory to disk, QEMU stops (SUSPENDED)."""
        guest = self._host.get_guest(instance)
        if guest.get_power_state() not in (power_state.RUNNING, power_state.PAUSED):
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        guest.save_managed()

    def resume(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None = None,
               block_device_info: dict[str, Any] | None = None) -> None:
        """Restore the managed-save image; the guest runs on where it was."""
        guest = self._host.get_guest(instance)
        self._require_state(guest, "resume", power_state.SUSPENDED)
        guest.launch()
        self._wait_running(guest)

    @staticmethod
    def _require_state(guest: Guest, action: str, state: int) -> None:
        current = guest.get_power_state()
        if current != state:
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=guest.uuid, attr="power_state",
                state=power_state.name(current))

    # -- snapshot ------------------------------------------------------------------

    def snapshot(self, context: Any, instance: Instance, image_id: str,
                 update_task_state: Callable[..., None]) -> dict[str, Any]:
        """Capture the root disk (backing chain collapsed) as a qcow2 at the
        image store's ``new_path(image_id)``.

        A running guest is paused while the disk is copied (QEMU flushes its
        disks when it pauses, so the copy is crash-consistent) and resumed
        after; a paused, stopped or suspended guest is copied as it is. The
        caller copies the image properties (kernel_id, ramdisk_id,
        os_command_line) to the new image so that it boots the same way.
        """
        guest = self._host.get_guest(instance)
        root = self._root_disk(guest)
        dest = store.new_path(image_id)
        results = self._runner.run("snapshot", instance.uuid, flows.get_snapshot_flow, transient={
            "guest": guest, "backend": self._backend, "root_file": root.source_file,
            "root_format": root.driver_type or "raw",
            "part": os.path.join(self._backend.instance_dir(instance.uuid),
                                 f"snapshot-{image_id}.part"),
            "dest": dest, "update_task_state": update_task_state})
        LOG.info("Snapshot of %s written to %s (%d bytes)", guest, dest, results["size"])
        return {"disk_format": "qcow2", "size": results["size"], "location": dest}

    def _root_disk(self, guest: Guest) -> config.Disk:
        disk = guest.find_disk(designer.ROOT_DEVICE, inactive=True)
        # A volume (it has a serial) is the volume service's to snapshot.
        if disk is None or not disk.source_file or disk.serial:
            raise exception.InstanceInvalidState(
                action="snapshot", instance_uuid=guest.uuid, attr="root disk",
                state="not a local file")
        return disk

    # -- volumes -------------------------------------------------------------------

    def get_volume_connector(self, instance: Instance) -> dict[str, Any]:
        """This host as a volume client, from os-brick, e.g. ``{"host":
        "cmp1", "ip": "192.0.2.10", "platform": "x86_64", "os_type": "linux",
        "multipath": False, "initiator": "iqn.2010-10.org.virtstack:cmp1:4f1c0a9e2b7d"}``.
        The initiator is the name QEMU's iSCSI client presents too (see
        ``volume.initiator``), so a target's ACL for it admits the guest."""
        return initiator.connector_properties(_host_ip(), self._nodename,
                                              self._volumes().initiator_iqn)

    def _detach_limits(self) -> dict[str, Any]:
        return {"detach_timeout": CONF.libvirt.device_detach_timeout,
                "detach_attempts": CONF.libvirt.device_detach_attempts}

    @staticmethod
    def _refuse_suspended(guest: Guest, action: str) -> None:
        # The saved memory image holds the device list of its time: a
        # restore with another list fails.
        if guest.has_managed_save():
            raise exception.InstanceInvalidState(action=action, instance_uuid=guest.uuid,
                                                 attr="power_state", state="suspended")

    def attach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str,
                      disk_bus: str | None = None,
                      device_type: str | None = None) -> None:
        """Connect the volume on this host and attach it at ``mountpoint``
        (``/dev/vdb``): live and persistently when the guest runs (or is
        paused), persistently only when it is shut off. Runs
        ``volume.flows.get_attach_flow``: ``DeviceInUse`` if the target is
        taken, ``Conflict`` if the volume is attached already,
        ``VolumeDriverNotFound`` for a type this host cannot attach,
        ``Invalid`` for a bus, device type or mountpoint it cannot use,
        ``InstanceInvalidState`` for a suspended guest; on any failure no
        disk and no CHAP secret is left."""
        guest = self._host.get_guest(instance)
        self._refuse_suspended(guest, "attach_volume")
        target = designer.volume_target(mountpoint, disk_bus, device_type)
        connector = self._volumes().get(connection_info)
        self._runner.run("attach_volume", instance.uuid, volume_flows.get_attach_flow,
                         transient={"guest": guest, "instance": instance,
                                    "connector": connector, "connection_info": connection_info,
                                    "target": target, **self._detach_limits()})
        LOG.info("Attached volume %s to %s at %s", connection_info["data"]["volume_id"],
                 guest, mountpoint)

    def detach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str) -> None:
        """Detach the disk at ``mountpoint`` live (waiting for libvirt's
        device-removed event, asking again up to ``[libvirt]
        device_detach_attempts`` times, ``device_detach_timeout`` seconds
        apart) and then from the persistent definition, then disconnect the
        volume on this host (CHAP secret removed). ``DeviceNotFound`` if no
        disk of this volume is at ``mountpoint``; ``DeviceDetachFailed`` if
        the guest never lets go: the disk then stays attached, live and
        persistently, and the volume connected."""
        guest = self._host.get_guest(instance)
        self._refuse_suspended(guest, "detach_volume")
        connector = self._volumes().get(connection_info)
        dev = mountpoint.rpartition("/")[2]
        volume_id = (connection_info.get("data") or {}).get("volume_id")
        disk = guest.find_disk(dev) or guest.find_disk(dev, inactive=True)
        if disk is None or (volume_id and disk.serial != volume_id):
            raise exception.DeviceNotFound(device=f"{mountpoint} (volume {volume_id})",
                                           instance_id=instance.uuid)
        limits = self._detach_limits()
        guest.detach_disk(dev, timeout=limits["detach_timeout"],
                          attempts=limits["detach_attempts"])
        connector.disconnect(connection_info, instance)
        LOG.info("Detached volume %s from %s at %s", volume_id, guest, mountpoint)

    def extend_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, requested_size: int) -> None:
        """Show the guest its volume grown to ``requested_size`` bytes (the
        volume service grew the volume): the connector makes this host see
        the new size, then ``virDomainBlockResize`` tells QEMU, which tells
        the guest. A shut-off guest sees the size when it starts.
        ``DeviceNotFound`` if the volume is not attached; ``Invalid`` if the
        size is smaller than the guest's disk (that would cut it short)."""
        guest = self._host.get_guest(instance)
        connector = self._volumes().get(connection_info)
        volume_id = (connection_info.get("data") or {}).get("volume_id")
        active = guest.is_active()
        disk = next((d for d in guest.get_disks(inactive=not active)
                     if volume_id and d.serial == volume_id), None)
        if disk is None:
            raise exception.DeviceNotFound(device=f"volume {volume_id}",
                                           instance_id=instance.uuid)
        size = connector.extend(connection_info, instance, requested_size)
        if not active:
            return
        current = guest.get_disk_capacity(disk.target_dev)
        if size < current:
            raise exception.Invalid(reason=f"volume {volume_id} cannot shrink from {current} "
                                           f"to {size} bytes")
        guest.block_resize(disk.target_dev, size)
        LOG.info("Resized volume %s of %s (%s) to %d bytes", volume_id, guest,
                 disk.target_dev, size)

    # -- consoles ------------------------------------------------------------------

    def get_console_output(self, context: Any, instance: Instance) -> bytes:
        """The tail (at most ``MAX_CONSOLE_BYTES``) of the serial console log,
        kept across reboots (see ``designer.build_console_devices``)."""
        guest = self._host.get_guest(instance)
        path = None
        for serial in guest.get_config(inactive=True).devices_of(config.Serial):
            path = serial.log_file or serial.source_path
            if path:
                break
        if not path:
            return b""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - MAX_CONSOLE_BYTES))
                return f.read()
        except FileNotFoundError:
            return b""  # never started

    def get_vnc_console(self, context: Any, instance: Instance) -> ConsoleVNC:
        """The VNC server QEMU runs for the guest (port chosen by libvirt,
        read from the live XML); ``InstanceNotRunning`` if it has none."""
        guest = self._host.get_guest(instance)
        if guest.get_power_state() not in (power_state.RUNNING, power_state.PAUSED):
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        for graphics in guest.get_config().devices_of(config.Graphics):
            if graphics.graphics_type == "vnc" and graphics.port and graphics.port > 0:
                return ConsoleVNC(host=graphics.listen or CONF.libvirt.vnc_listen,
                                  port=graphics.port)
        raise exception.InstanceNotRunning(instance_id=instance.uuid)


def _host_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
