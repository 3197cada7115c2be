"""What the Compute API does, below HTTP: checks, database records, scheduling
and RPC to the compute host. HTTP controllers call only this."""

from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Any

from virtstack import exception
from virtstack.compute import rpcapi, states, volumes
from virtstack.conf import CONF
from virtstack.db import block_device as db_bd
from virtstack.db import flavor as db_flavor
from virtstack.db import host as db_host
from virtstack.db import image as db_image
from virtstack.db import instance as db_instance
from virtstack.db import models
from virtstack.scheduler import manager as scheduler

LOG = logging.getLogger(__name__)


def _project_scope(ctxt) -> str | None:
    """The project a request may see (None: every project, for admins)."""
    return None if ctxt.is_admin else ctxt.project_id


class ComputeAPI:
    def __init__(self) -> None:
        self.rpc = rpcapi.ComputeRPCAPI()
        self.scheduler = scheduler.Scheduler()
        #: os-volume_attachments and block devices (compute/volumes.py).
        self.volumes = volumes.VolumeAttachmentsAPI(self)

    # -- reading -----------------------------------------------------------

    def get(self, ctxt, uuid: str, read_deleted: bool = False) -> models.Instance:
        """The instance if the caller may see it; 404 (never 403) otherwise,
        so that ids of other projects' servers are not revealed."""
        return db_instance.get(uuid, project_id=_project_scope(ctxt), read_deleted=read_deleted)

    def list(self, ctxt, filters: dict[str, Any], limit: int | None, marker: str | None,
             sort_keys, sort_dirs) -> list[models.Instance]:
        filters = dict(filters)
        if not ctxt.is_admin or not filters.pop("all_tenants", False):
            filters["project_id"] = ctxt.project_id
        if marker is not None:
            # A marker the caller may not see is as unknown as one that does
            # not exist (else its answer would reveal that the id exists).
            try:
                db_instance.get(marker, project_id=_project_scope(ctxt), read_deleted=True)
            except exception.InstanceNotFound:
                raise exception.Invalid(reason=f"marker [{marker}] not found") from None
        return db_instance.list_(filters, limit=limit, marker=marker, sort_keys=sort_keys,
                                 sort_dirs=sort_dirs)

    # -- creating ----------------------------------------------------------

    def create(self, ctxt, *, name: str, flavor_ref: str, image_ref: str,
               metadata: dict[str, str] | None = None, description: str | None = None,
               key_name: str | None = None, user_data: str | None = None,
               availability_zone: str | None = None, access_ip_v4: str | None = None,
               access_ip_v6: str | None = None, config_drive: bool = False,
               min_count: int = 1, max_count: int = 1,
               block_device_mapping: list[dict[str, Any]] | None = None,
               ) -> tuple[list[models.Instance], str]:
        """Create ``max_count`` servers (at least ``min_count`` must fit the
        quota). Returns the rows and the reservation id. With
        ``block_device_mapping`` (v2) a server may boot from a volume
        (``image_ref`` then ""), see ``volumes.plan_block_devices``."""
        try:
            flavor = db_flavor.get(flavor_ref)
        except exception.FlavorNotFound:
            raise exception.FlavorNotFoundForCreate(flavor_id=flavor_ref)
        plan = volumes.plan_block_devices(
            ctxt, self.volumes.volume_api, block_device_mapping, image_ref, max_count,
            _project_scope(ctxt)) if block_device_mapping else None
        if plan is not None and plan.boot_from_volume:
            image = plan.image  # what the volume was made from, if known
        else:
            if not image_ref:
                raise exception.ValidationError(
                    field="imageRef", reason="is required unless a block device mapping "
                                             "with boot_index 0 gives the boot volume")
            try:
                image = db_image.get(image_ref, project_id=_project_scope(ctxt))
            except exception.ImageNotFound:
                raise exception.ImageNotFoundForCreate(image_id=image_ref)
            if image.status != "active":
                raise exception.ImageNotActive(image_id=image_ref)
            if flavor.root_gb and image.min_disk > flavor.root_gb:
                raise exception.FlavorTooSmall(what="Disk", flavor_id=flavor.flavorid,
                                               needed=f"{image.min_disk} GB")
        if image is not None and image.min_ram > flavor.memory_mb:
            raise exception.FlavorTooSmall(what="Memory", flavor_id=flavor.flavorid,
                                           needed=f"{image.min_ram} MB")
        if metadata and CONF.quota.metadata_items >= 0 and len(metadata) > CONF.quota.metadata_items:
            raise exception.QuotaExceeded(resources="metadata_items", requested=len(metadata),
                                          used=0, allowed=CONF.quota.metadata_items)
        count = self._count_within_quota(ctxt.project_id, flavor, min_count, max_count)

        reservation_id = "r-" + uuidlib.uuid4().hex[:8]
        fdict = db_flavor.to_dict(flavor)
        boots_from_volume = plan is not None and plan.boot_from_volume
        # A server booting from a volume uses no local disk for its root.
        root_gb = 0 if boots_from_volume else flavor.root_gb
        request = {"vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb, "root_gb": root_gb}
        properties = (image.properties or {}) if image is not None else {}
        rows = []
        for index in range(count):
            display = name if count == 1 else f"{name}-{index + 1}"
            values = {
                "uuid": str(uuidlib.uuid4()), "display_name": display,
                "display_description": description, "hostname": _hostname(display),
                "project_id": ctxt.project_id, "user_id": ctxt.user_id,
                "flavorid": flavor.flavorid, "flavor": fdict, "vcpus": flavor.vcpus,
                "memory_mb": flavor.memory_mb, "root_gb": root_gb,
                # As the Compute API shows it: no image for a volume-backed server.
                "image_ref": "" if boots_from_volume else image.id,
                "kernel_id": plan.kernel_id if boots_from_volume else properties.get(
                    "kernel_id", ""),
                "ramdisk_id": plan.ramdisk_id if boots_from_volume else properties.get(
                    "ramdisk_id", ""),
                "root_device_name": db_bd.ROOT_DEVICE if boots_from_volume else None,
                "vm_state": states.BUILDING, "task_state": None,
                "metadata_": dict(metadata or {}), "key_name": key_name, "user_data": user_data,
                "availability_zone": availability_zone, "access_ip_v4": access_ip_v4,
                "access_ip_v6": access_ip_v6, "config_drive": "True" if config_drive else "",
                "reservation_id": reservation_id, "launch_index": index,
            }
            rows.append(self._place_and_record(ctxt, values, request))
            if plan is not None and plan.mappings:
                volumes.record_block_devices(rows[-1].uuid, plan)
        for row in rows:
            if row.host is not None:
                self.rpc.build_and_run_instance(ctxt, row.host, row.uuid,
                                                image.id if image is not None else "")
        return rows, reservation_id

    def _place_and_record(self, ctxt, values: dict[str, Any],
                          request: dict[str, int]) -> models.Instance:
        """Claim a node for the new instance, then record it (placed, with its
        'create' action) in one transaction. With no valid host it is
        recorded in ERROR with the scheduler's reason as its fault."""
        action = {"action": "create", "request_id": ctxt.request_id,
                  "user_id": ctxt.user_id, "project_id": ctxt.project_id}
        try:
            host, node = self.scheduler.select_and_claim(request)
        except exception.NoValidHost as exc:
            LOG.warning("No host for instance %s: %s", values["uuid"], exc)
            return db_instance.create(dict(values, vm_state=states.ERROR), action=action,
                                      fault=(500, exc.format_message()))
        try:
            return db_instance.create(dict(values, host=host, node=node), action=action)
        except Exception:
            db_host.node_release(host, node, request["vcpus"], request["memory_mb"],
                                 request["root_gb"])
            raise

    def _count_within_quota(self, project_id: str, flavor, min_count: int, max_count: int) -> int:
        """How many of max_count servers fit the project's quota; QuotaExceeded
        when not even min_count do."""
        usage = db_instance.count_usage(project_id)
        limits = {"instances": (CONF.quota.instances, 1),
                  "cores": (CONF.quota.cores, flavor.vcpus),
                  "ram": (CONF.quota.ram, flavor.memory_mb)}
        fits = max_count
        for resource, (limit, per) in limits.items():
            if limit < 0 or per == 0:
                continue
            room = max(limit - usage[resource], 0) // per
            if room < min_count:
                raise exception.QuotaExceeded(resources=resource, requested=min_count * per,
                                              used=usage[resource], allowed=limit)
            fits = min(fits, room)
        return fits

    # -- acting --------------------------------------------------------------

    def action(self, ctxt, uuid: str, action: str, api_action: str | None = None) -> None:
        """Start a state-machine action (start, stop, reboot_soft, ...):
        409 when the instance's state does not allow it."""
        row = self.get(ctxt, uuid)
        if row.host is None and states.allowed(action, row.vm_state, row.task_state):
            # Scheduling failed (or is still running): no hypervisor holds a
            # guest to act on, and a message to host None would reach any
            # compute service. Only delete makes sense.
            raise exception.Conflict(
                message=f"Cannot '{action.split('_')[0]}' instance {uuid}: it has no compute "
                        f"host (vm_state {row.vm_state}); only delete is possible.")
        row = db_instance.start_action(uuid, action, project_id=_project_scope(ctxt))
        if row.host is None:
            # Lost its host between the check and the compare-and-set.
            db_instance.transition(uuid, None, [states.ACTIONS[action].task_state],
                                   {"task_state": None})
            raise exception.Conflict(
                message=f"Cannot '{action.split('_')[0]}' instance {uuid}: it has no compute host.")
        db_instance.action_start(uuid, api_action or action, ctxt.request_id, ctxt.user_id,
                                 ctxt.project_id)
        self.rpc.instance_action(ctxt, row.host, uuid, action)

    def delete(self, ctxt, uuid: str) -> None:
        row = self.get(ctxt, uuid)
        if row.task_state == states.DELETING:
            return  # already on its way
        db_instance.start_action(uuid, "delete", project_id=_project_scope(ctxt))
        db_instance.action_start(uuid, "delete", ctxt.request_id, ctxt.user_id, ctxt.project_id)
        if row.host is None:
            # Never reached a host (no valid host, or still scheduling): nothing
            # to undo on a hypervisor, and no volume was reserved for it.
            db_bd.destroy_all(uuid)
            db_instance.mark_deleted(uuid)
            return
        self.rpc.terminate_instance(ctxt, row.host, uuid)

    def update(self, ctxt, uuid: str, values: dict[str, Any]) -> models.Instance:
        self.get(ctxt, uuid)
        db_instance.update(uuid, values)
        return self.get(ctxt, uuid)

    def snapshot(self, ctxt, uuid: str, name: str, metadata: dict[str, str]) -> str:
        """Start capturing the server's root disk as a new private image of
        the caller's project; returns the image id (status ``queued`` until
        the compute host has written it, then ``active``)."""
        row = self.get(ctxt, uuid)
        if row.host is None:
            raise exception.InstanceInvalidState(action="createImage", instance_uuid=uuid,
                                                 attr="vm_state", state=row.vm_state)
        db_instance.start_action(uuid, "snapshot", project_id=_project_scope(ctxt))
        image_id = str(uuidlib.uuid4())
        try:
            source = db_image.get(row.image_ref)
            inherited = {k: v for k, v in (source.properties or {}).items()
                         if k in ("kernel_id", "ramdisk_id", "os_command_line", "os_distro")}
            min_ram, container = source.min_ram, source.container_format or "bare"
        except exception.ImageNotFound:
            inherited, min_ram, container = {}, 0, "bare"
        properties = dict(inherited, **metadata, image_type="snapshot", instance_uuid=uuid,
                          base_image_ref=row.image_ref, user_id=ctxt.user_id)
        db_image.create({"id": image_id, "name": name, "status": "queued",
                         "container_format": container, "owner": ctxt.project_id,
                         "visibility": "private", "min_disk": row.root_gb, "min_ram": min_ram,
                         "properties": properties})
        db_instance.action_start(uuid, "createImage", ctxt.request_id, ctxt.user_id,
                                 ctxt.project_id)
        self.rpc.snapshot_instance(ctxt, row.host, uuid, image_id)
        return image_id

    def vnc_console_url(self, ctxt, uuid: str) -> str:
        """A URL a VNC client can connect to (``vnc://host:port``)."""
        row = self.get(ctxt, uuid)
        if row.host is None or row.vm_state not in (states.ACTIVE, states.PAUSED,
                                                    states.RESCUED):
            raise exception.InstanceNotRunning(instance_id=uuid)
        console = self.rpc.get_vnc_console(ctxt, row.host, uuid)
        return f"vnc://{console['host']}:{console['port']}"

    def console_output(self, ctxt, uuid: str, length: int | None) -> str:
        row = self.get(ctxt, uuid)
        if row.vm_state not in (states.ACTIVE, states.PAUSED, states.RESCUED, states.STOPPED,
                                states.SUSPENDED) or row.host is None:
            raise exception.InstanceNotRunning(instance_id=uuid)
        return self.rpc.get_console_output(ctxt, row.host, uuid, length)


def _hostname(display_name: str) -> str:
    """A DNS-safe host name from a display name (as Nova sanitises it)."""
    out = []
    for ch in display_name.lower():
        if ch.isalnum() and ch.isascii():
            out.append(ch)
        elif ch in " -_.":
            out.append("-")
    name = "".join(out).strip("-.")[:63]
    return name or "server"
