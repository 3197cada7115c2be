"""``compute_driver = powervm``: guests as LPARs on an IBM POWER system,
through the PowerVM REST API (NovaLink) with pypowervm.

This module only orchestrates (DESIGN rule 3): the session is
``connection``; one LPAR's life is ``vm``; the managed system's resources
are ``host``; boot disks are a ``disk`` adapter (``[powervm] disk_driver``),
volumes a ``volume`` adapter (by ``driver_volume_type`` and ``[powervm]
fc_attach_strategy``), NICs ``vif``; the multi-step operations are the
flows of ``tasks.flows``. It reads the configuration and hands values down.

With ``[powervm] fake_session = true`` the same code runs against the fake
PowerVM REST server (``fake``); docs/powervm.md says what was verified only
that way.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
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
from virtstack.virt.powervm import connection, disk, host, vif, vm, volume
from virtstack.virt.powervm.tasks import flows
from virtstack.volume.backends import fake_fc

LOG = logging.getLogger(__name__)

#: What this driver implements in every configuration. Not: pause/suspend
#: (PowerVM suspends only with a reserved storage pool), rescue, console
#: output (the terminal is a VNC/telnet console), live migration, lifecycle
#: events (pypowervm's event feed is not wired yet). Declared per driver
#: instance in ``init_host``: cold migration (disks on shared storage) and
#: snapshot (a connection that can read disks: the fake session only).
_DECLARED = frozenset({
    "spawn", "destroy", "reboot_soft", "reboot_hard", "power_off", "power_on",
    "attach_volume", "extend_volume", "volume_connector", "vif_plugging", "vnc_console",
    "host_resources"})


class PowerVMDriver(ComputeDriver):
    """LPARs on the managed system of this NovaLink (or the fake one)."""

    name = "powervm"

    capabilities: Mapping[str, bool] = types.MappingProxyType({
        capability_key(op): op in _DECLARED for op in OPERATIONS
    })

    def __init__(self) -> None:
        super().__init__()
        self._nodename = CONF.host
        self._conn: connection.Connection | None = None
        self._host_uuid: str | None = None
        self._disk: disk.DiskAdapter | None = None
        self._runner = FlowRunner(f"powervm:{self._nodename}", persist=False)

    # -- host ---------------------------------------------------------------------

    def init_host(self, host_name: str) -> None:
        """Log on, wait for the VIOSes, find the managed system and make the
        disk adapter. Cold migration is declared when boot disks are on
        shared storage."""
        self._nodename = host_name
        self._runner = FlowRunner(f"powervm:{host_name}", persist=False)
        self._conn = connection.connect(CONF.powervm.fake_session, CONF.powervm.vnc_listen,
                                        fabric_dir=fake_fc.fabric_dir(CONF))
        connection.wait_for_vioses(self.adapter, CONF.powervm.vios_active_wait_timeout)
        self._host_uuid = host.host_wrapper(self.adapter).uuid
        options = {"localdisk": {"volume_group_name": CONF.powervm.volume_group_name},
                   "ssp": {"cluster_name": CONF.powervm.cluster_name}}
        self._disk = disk.get_disk_adapter(CONF.powervm.disk_driver, self.adapter,
                                           self._host_uuid,
                                           **options.get(CONF.powervm.disk_driver, {}))
        capabilities = dict(type(self).capabilities)
        capabilities[capability_key("cold_migration")] = bool(
            self._disk.capabilities["shared_storage"])
        capabilities[capability_key("snapshot")] = self._conn.read_disk is not None
        self.capabilities = types.MappingProxyType(capabilities)
        LOG.info("PowerVM driver ready on %s: managed system %s, %s disks, %s",
                 host_name, self._host_uuid, self._disk.name, connection.describe(self.adapter))

    def cleanup_host(self, host_name: str) -> None:
        self._conn = None

    @property
    def adapter(self):
        if self._conn is None:
            raise exception.VirtstackException("the PowerVM driver is not initialised "
                                               "(init_host was not called)")
        return self._conn.adapter

    @property
    def disk_adapter(self) -> disk.DiskAdapter:
        if self._disk is None:
            raise exception.VirtstackException("the PowerVM driver is not initialised")
        return self._disk

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        if nodename != self._nodename:
            raise exception.HypervisorNotFound(hypervisor_id=nodename)
        return host.resources(self.adapter, nodename, self.disk_adapter)

    def get_available_nodes(self) -> list[str]:
        return [self._nodename]

    def get_host_uptime(self) -> str:
        return host.uptime()

    def manage_image_cache(self, min_age_seconds: float = 0.0) -> list[str]:
        """Delete cached images no instance uses, unused for
        ``min_age_seconds`` (localdisk; SSP deletes an image LU with its last
        clone). The names deleted."""
        return self.disk_adapter.remove_unused_images(min_age_seconds)

    # -- guests -------------------------------------------------------------------

    def list_instances(self) -> list[str]:
        return [lpar.name for lpar in vm.list_lpars(self.adapter)]

    def get_info(self, instance: Instance) -> InstanceInfo:
        lpar = vm.get_lpar(self.adapter, instance)
        return InstanceInfo(state=vm.state_of(lpar), internal_id=lpar.uuid)

    def _transient(self, instance: Instance, **extra: Any) -> dict[str, Any]:
        """The values every PowerVM task may take (see tasks.*)."""
        values = {
            "adapter": self.adapter, "host_w": host.host_wrapper(self.adapter),
            "instance": instance, "disk_adapter": self.disk_adapter,
            "proc_units_factor": CONF.powervm.proc_units_factor,
            "vswitch_name": CONF.powervm.vswitch_name,
            "power_timeout": CONF.compute.shutdown_timeout,
            "volume_factory": self._volume_factory(instance),
            "network_info": [], "block_device_info": {},
        }
        values.update(extra)
        return values

    def spawn(self, context: Any, instance: Instance, image_meta: ImageMeta,
              network_info: list[dict[str, Any]] | None = None,
              block_device_info: dict[str, Any] | None = None,
              power_on: bool = True) -> None:
        """Run the spawn flow (``tasks.flows.get_spawn_flow``); anything it
        made is removed when it fails. ``InstanceExists`` if the LPAR is there.
        An instance with ``config_drive`` gets one as virtual optical media."""
        if vm.find_lpar(self.adapter, instance) is not None:
            raise exception.InstanceExists(name=instance.name)
        image_path = image_meta.location
        if not image_path or not os.path.exists(image_path):
            image_path = store.path(image_meta.id)
        # The ISO is only needed until it is uploaded to the VIOS.
        with tempfile.TemporaryDirectory(prefix="powervm-spawn-") as workdir:
            self._runner.run("spawn", instance.uuid, flows.get_spawn_flow,
                             factory_kwargs={"power_on": power_on,
                                             "config_drive": bool(instance.config_drive)},
                             transient=self._transient(
                                 instance, image_meta=image_meta, image_path=image_path,
                                 network_info=network_info or [],
                                 block_device_info=block_device_info or {},
                                 config_drive_dir=workdir))
        LOG.info("Spawned %s (%s)", instance.name, instance.uuid)

    def destroy(self, context: Any, instance: Instance,
                network_info: list[dict[str, Any]] | None = None,
                block_device_info: dict[str, Any] | None = None,
                destroy_disks: bool = True) -> None:
        """Stop the LPAR, remove its mappings, (``destroy_disks``) its boot
        disk, its NICs and the LPAR. Idempotent."""
        self._runner.run("destroy", instance.uuid, flows.get_destroy_flow,
                         factory_kwargs={"destroy_disks": destroy_disks},
                         transient=self._transient(
                             instance, network_info=network_info or [],
                             block_device_info=block_device_info or {}, power_timeout=0))

    # -- power --------------------------------------------------------------------

    def reboot(self, context: Any, instance: Instance,
               network_info: list[dict[str, Any]] | None, reboot_type: str,
               block_device_info: dict[str, Any] | None = None) -> None:
        """HARD: VSP restart. SOFT: OS shutdown with restart (RMC), hard after
        ``[compute] reboot_timeout``. A stopped LPAR is started."""
        if reboot_type not in ("SOFT", "HARD"):
            raise exception.Invalid(reason=f"reboot type must be SOFT or HARD, not {reboot_type!r}")
        vm.reboot(self.adapter, instance, hard=reboot_type == "HARD",
                  timeout=CONF.compute.reboot_timeout)

    def power_off(self, instance: Instance, timeout: int = 0, retry_interval: int = 0) -> None:
        vm.power_off(self.adapter, instance, timeout=timeout)

    def power_on(self, context: Any, instance: Instance,
                 network_info: list[dict[str, Any]] | None = None,
                 block_device_info: dict[str, Any] | None = None) -> None:
        vm.power_on(self.adapter, instance)

    # -- snapshot -----------------------------------------------------------------

    def snapshot(self, context: Any, instance: Instance, image_id: str,
                 update_task_state: Callable[..., None]) -> dict[str, Any]:
        """Copy the boot disk's data to the image store's ``new_path(image_id)``
        (the guest keeps running: the copy is crash-consistent at best)."""
        if not self.supports("snapshot"):
            raise exception.NotSupported(operation="snapshot", driver=self.name)
        vm.get_lpar(self.adapter, instance)
        boot_disk = self.disk_adapter.find_boot_disk(instance)
        if boot_disk is None:
            raise exception.InstanceInvalidState(
                action="snapshot", instance_uuid=instance.uuid, attr="boot disk", state="missing")
        dest = store.new_path(image_id)
        results = self._runner.run("snapshot", instance.uuid, flows.get_snapshot_flow, transient={
            "read_disk": self._conn.read_disk, "disk_udid": boot_disk.udid,
            "part": dest + ".part", "dest": dest, "update_task_state": update_task_state})
        disk_format = getattr(boot_disk, "file_format", None) or "raw"
        LOG.info("Snapshot of %s written to %s (%d bytes)", instance.uuid, dest, results["size"])
        return {"disk_format": disk_format, "size": results["size"], "location": dest}

    # -- volumes ------------------------------------------------------------------

    def _volume_options(self) -> dict[str, Any]:
        return {"fabrics": CONF.powervm.fabrics,
                "fabric_port_wwpns": CONF.powervm.fabric_port_wwpns,
                "ports_per_fabric": CONF.powervm.ports_per_fabric}

    def _volume_factory(self, instance: Instance) -> Callable[[dict[str, Any]], Any]:
        def make(connection_info: dict[str, Any]):
            return volume.get_volume_adapter(self.adapter, self._host_uuid, instance,
                                             connection_info,
                                             CONF.powervm.fc_attach_strategy,
                                             self._volume_options())
        return make

    def get_volume_connector(self, instance: Instance) -> dict[str, Any]:
        """This host for the volume service: its FC WWPNs (vSCSI: the VIOSes'
        physical ports; NPIV: the instance's own virtual ports)."""
        cls = volume.volume_adapter_class("fibre_channel", CONF.powervm.fc_attach_strategy)
        connector = {"host": self._nodename, "ip": _host_ip(), "platform": "ppc64le",
                     "os_type": "linux", "multipath": False}
        connector.update(cls.host_connector(self.adapter, self._host_uuid, instance,
                                            self._volume_options()))
        return connector

    def attach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str, disk_bus: str | None = None,
                      device_type: str | None = None) -> None:
        vm.get_lpar(self.adapter, instance)
        attached = self._volume_factory(instance)(connection_info).attached_at(mountpoint)
        if attached:
            raise exception.DeviceInUse(device=mountpoint, instance_id=instance.uuid)
        self._runner.run("attach_volume", instance.uuid, flows.get_attach_volume_flow,
                         transient=self._transient(instance, connection_info=connection_info,
                                                   mountpoint=mountpoint))

    def detach_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, mountpoint: str) -> None:
        vm.get_lpar(self.adapter, instance)
        attached = self._volume_factory(instance)(connection_info).attached_at(mountpoint)
        if attached is False:
            raise exception.DeviceNotFound(device=mountpoint, instance_id=instance.uuid)
        self._runner.run("detach_volume", instance.uuid, flows.get_detach_volume_flow,
                         transient=self._transient(instance, connection_info=connection_info,
                                                   mountpoint=mountpoint))

    def extend_volume(self, context: Any, connection_info: dict[str, Any],
                      instance: Instance, requested_size: int) -> None:
        vm.get_lpar(self.adapter, instance)
        self._volume_factory(instance)(connection_info).extend_volume()

    # -- network ------------------------------------------------------------------

    def plug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        """Client network adapters for the VIFs; before spawn (no LPAR yet)
        there is nothing to plug them into and spawn plugs them."""
        if vm.find_lpar(self.adapter, instance) is not None:
            vif.plug(self.adapter, instance, network_info, CONF.powervm.vswitch_name)

    def unplug_vifs(self, instance: Instance, network_info: list[dict[str, Any]]) -> None:
        vif.unplug(self.adapter, instance, network_info)

    # -- consoles -----------------------------------------------------------------

    def get_vnc_console(self, context: Any, instance: Instance) -> ConsoleVNC:
        """The VNC server of the LPAR's virtual terminal on the management
        partition; ``InstanceNotRunning`` for a stopped LPAR."""
        lpar = vm.get_lpar(self.adapter, instance)
        if vm.state_of(lpar) != power_state.RUNNING:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        port = self._conn.open_vnc(lpar.uuid)
        return ConsoleVNC(host=CONF.powervm.vnc_listen, port=int(port))

    # -- cold migration / resize (shared storage) -----------------------------------

    def migrate_disk_and_power_off(self, context: Any, instance: Instance, dest: str,
                                   flavor: Any, network_info: list[dict[str, Any]] | None,
                                   block_device_info: dict[str, Any] | None = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        """Source side. On shared storage the disks stay; the LPAR is stopped
        (same host: resized in place; another host: removed here, its disk
        kept for the destination). Returns disk info (JSON) for finish_migration."""
        if not self.supports("cold_migration"):
            raise exception.NotSupported(operation="cold_migration", driver=self.name)
        vm.get_lpar(self.adapter, instance)
        if dest == self._nodename:
            self._runner.run("migrate", instance.uuid, flows.get_migrate_flow,
                             factory_kwargs={"resize": True},
                             transient=self._transient(instance, new_flavor=flavor,
                                                       power_timeout=timeout))
        else:
            self._runner.run("migrate", instance.uuid, flows.get_destroy_flow,
                             factory_kwargs={"destroy_disks": False},
                             transient=self._transient(
                                 instance, network_info=network_info or [],
                                 block_device_info=block_device_info or {},
                                 power_timeout=timeout))
        return "{}"

    def finish_migration(self, context: Any, migration: dict[str, Any], instance: Instance,
                         disk_info: str, network_info: list[dict[str, Any]] | None,
                         image_meta: ImageMeta, resize_instance: bool,
                         block_device_info: dict[str, Any] | None = None,
                         power_on: bool = True) -> None:
        """Destination side: the LPAR (made here with the instance's flavor
        if it came from another host) gets its existing boot disk back."""
        if not self.supports("cold_migration"):
            raise exception.NotSupported(operation="cold_migration", driver=self.name)
        if vm.find_lpar(self.adapter, instance) is None:
            if self.disk_adapter.find_boot_disk(instance) is None:
                raise exception.InstanceNotFound(instance_id=instance.uuid)
            self.spawn(context, instance, image_meta, network_info, block_device_info,
                       power_on=power_on)
            return
        if power_on:
            vm.power_on(self.adapter, instance)


def _host_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
