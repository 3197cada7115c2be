"""What the Block Storage API does, below HTTP: checks, quotas, guarded status
changes (compare-and-set) and RPC to the volume service. The Block Storage
HTTP controllers and the compute service (attach/detach flows, boot from
volume) call only this.

Contract (the compute side depends on it; keep the signatures):

* Every method takes a request context first; a volume of another project
  is ``VolumeNotFound`` (404) unless the context is admin.
* Status changes are compare-and-set: a request that finds the volume in a
  status that does not allow it gets ``InvalidVolume`` (400) whose message
  names the expected and the current status, e.g. "Volume <id> status must
  be available to reserve, but the current status is: in-use."
* Attachments follow the Cinder "new attach" flow::

    attachment_create  volume available -> reserved,   attachment reserved
    attachment_update  volume reserved  -> attaching,  attachment attaching
                       (the volume service's initialize_connection runs;
                        returns connection_info)
    attachment_complete volume attaching -> in-use,    attachment attached
    attachment_delete  volume -> available (when no other attachment is
                       left), attachment detached and deleted; the volume
                       service's terminate_connection runs if a connector
                       was given. Idempotent.

  ``begin_detaching`` (in-use -> detaching) and ``roll_detaching``
  (detaching -> in-use) bracket a detach.
"""

from __future__ import annotations

import logging
import math
import uuid as uuidlib
from typing import Any

from virtstack import exception
from virtstack.conf import CONF
from virtstack.db import image as db_image
from virtstack.db import models
from virtstack.db import volume as db_volume
from virtstack.volume import quota, rpcapi, scheduler

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3

#: Statuses a volume may be deleted from (without ``force``).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
#: Statuses whose volume an attachment holds (attachment_delete frees it).
HELD = ("reserved", "attaching", "in-use", "detaching", "error_attaching", "error_detaching")
VOLUME_STATUSES = ("creating", "available", "reserved", "attaching", "in-use", "detaching",
                   "extending", "deleting", "error", "error_deleting", "error_extending",
                   "downloading", "maintenance", "error_restoring", "error_managing",
                   "uploading", "backing-up", "restoring-backup")
ATTACH_STATUSES = ("attached", "detached", "reserved", "attaching", "detaching",
                   "error_attaching", "error_detaching")
SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting")


def _scope(ctxt) -> str | None:
    """The project a request may see (None: every project, for admins)."""
    return None if ctxt.is_admin else ctxt.project_id


def _status_error(what: str, id_: str, expected, current: str, action: str) -> str:
    expected = " or ".join(expected) if isinstance(expected, (list, tuple)) else expected
    return (f"{what} {id_} status must be {expected} to {action}, but the current status "
            f"is: {current}.")


def check_size(size: Any, field: str = "size") -> int:
    """A volume size in GiB: an integer > 0 (the API's JSON may carry a
    numeric string); ``Invalid`` (400) otherwise."""
    if isinstance(size, bool):
        size = None
    try:
        value = int(str(size), 10) if isinstance(size, (int, str)) else None
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise exception.Invalid(reason=f"Volume {field} '{size}' must be an integer and "
                                       f"greater than 0")
    if value > 2 ** 31 - 1:
        raise exception.Invalid(reason=f"Volume {field} '{size}' must be at most "
                                       f"{2 ** 31 - 1}")
    return value


class VolumeAPI:
    def __init__(self) -> None:
        self.rpc = rpcapi.VolumeRPCAPI()
        self.scheduler = scheduler.VolumeScheduler()

    # -- volumes -------------------------------------------------------------

    def get(self, ctxt, volume_id: str):
        """The volume row (detached ORM object) or ``VolumeNotFound``."""
        return db_volume.volume_get(volume_id, project_id=_scope(ctxt))

    def list(self, ctxt, filters: dict[str, Any] | None = None, limit: int | None = None,
             marker: str | None = None, sort_keys=("created_at",), sort_dirs=("desc",)):
        """Volumes the caller may see (admins: every project's only with
        ``all_tenants``; a ``project_id`` filter then narrows)."""
        filters = dict(filters or {})
        all_tenants = filters.pop("all_tenants", False)
        if not (ctxt.is_admin and all_tenants):
            filters["project_id"] = ctxt.project_id
        if marker is not None:
            # A marker the caller may not see is as unknown as a missing one.
            try:
                db_volume.volume_get(marker, project_id=_scope(ctxt), read_deleted=True)
            except exception.VolumeNotFound:
                raise exception.Invalid(reason=f"marker [{marker}] not found") from None
        return db_volume.volume_list(filters, limit=limit, marker=marker, sort_keys=sort_keys,
                                     sort_dirs=sort_dirs)

    def create(self, ctxt, size: int | None, name: str | None = None,
               description: str | None = None, snapshot_id: str | None = None,
               source_volid: str | None = None, image_id: str | None = None,
               volume_type: str | None = None, metadata: dict[str, str] | None = None,
               availability_zone: str | None = None) -> Any:
        """Record a volume (``creating``), schedule it on a pool with room
        and cast its creation to that volume service; returns the row. The
        volume becomes ``available`` (or ``error``, with the reason logged)
        asynchronously. ``size`` may be None only with a snapshot, source
        volume or image (then their size). Raises ``Invalid`` for bad sizes,
        ``VolumeSizeExceedsAvailableQuota``/``VolumeLimitExceeded`` (413),
        ``SnapshotNotFound``/``VolumeNotFound``/``ImageNotFound`` (404) for
        unknown sources, ``InvalidVolume``/``InvalidSnapshot`` (400) for
        sources in the wrong status. A volume no pool has room for is
        refused (``NoValidBackend``, 400) and not recorded."""
        sources = [s for s in (snapshot_id, source_volid, image_id) if s]
        if len(sources) > 1:
            raise exception.Invalid(reason="Only one of snapshot_id, source_volid and imageRef "
                                           "may be given.")
        if size is None and not sources:
            raise exception.Invalid(reason="Volume size is required when the volume is not "
                                           "created from a snapshot, a volume or an image.")
        size = None if size is None else check_size(size)
        pool = None
        values: dict[str, Any] = {}
        if snapshot_id:
            snap = db_volume.snapshot_get(snapshot_id, project_id=_scope(ctxt))
            if snap.status != "available":
                raise exception.InvalidSnapshot(reason=_status_error(
                    "Snapshot", snapshot_id, "available", snap.status, "create a volume from it"))
            source = db_volume.volume_get(snap.volume_id, read_deleted=True)
            size = size or snap.volume_size
            if size < snap.volume_size:
                raise exception.Invalid(reason=(
                    f"Volume size '{size}'GB cannot be smaller than the snapshot size "
                    f"{snap.volume_size}GB. They must be >= original snapshot size."))
            pool = source.host
            values.update(snapshot_id=snapshot_id, volume_type_id=source.volume_type_id,
                          bootable=source.bootable, image_metadata=dict(source.image_metadata))
        elif source_volid:
            source = db_volume.volume_get(source_volid, project_id=_scope(ctxt))
            if source.status not in ("available", "in-use"):
                raise exception.InvalidVolume(reason=_status_error(
                    "Source volume", source_volid, ("available", "in-use"), source.status,
                    "clone it"))
            size = size or source.size
            if size < source.size:
                raise exception.Invalid(reason=(
                    f"Volume size '{size}'GB cannot be smaller than the source volume size "
                    f"{source.size}GB. They must be >= original volume size."))
            pool = source.host
            values.update(source_volid=source_volid, volume_type_id=source.volume_type_id,
                          bootable=source.bootable, image_metadata=dict(source.image_metadata))
        elif image_id:
            image = db_image.get(image_id, project_id=_scope(ctxt))
            if image.status != "active":
                raise exception.InvalidVolume(
                    reason=f"Image {image_id} is not active (status: {image.status}).")
            image_gb = max(math.ceil((image.size or 0) / GiB), 1)
            size = size or max(image_gb, image.min_disk or 0)
            if image_gb > size:
                raise exception.Invalid(reason=(
                    f"Size of specified image {image_gb}GB is larger than volume size "
                    f"{size}GB."))
            if (image.min_disk or 0) > size:
                raise exception.Invalid(reason=(
                    f"Volume size {size}GB cannot be smaller than the image minDisk size "
                    f"{image.min_disk}GB."))
            values.update(image_id=image_id, bootable=True,
                          image_metadata=_image_metadata(image))
        if volume_type is not None:
            vtype = db_volume.type_get(volume_type)
            values["volume_type_id"] = vtype.id
        elif not values.get("volume_type_id"):
            values["volume_type_id"] = db_volume.type_seed_default().id
        zone = availability_zone or CONF.volume.availability_zone
        if zone != CONF.volume.availability_zone:
            raise exception.Invalid(reason=f"Availability zone '{zone}' is invalid.")

        limits = quota.limits(ctxt.project_id)
        db_volume.check_quota(quota.usage(ctxt.project_id), limits, volumes=1, gigabytes=size)
        pool = self.scheduler.select_and_claim(size, pool=pool)
        values.update(id=str(uuidlib.uuid4()), project_id=ctxt.project_id,
                      user_id=ctxt.user_id, host=pool, size=size, availability_zone=zone,
                      status="creating", attach_status="detached", display_name=name,
                      display_description=description, metadata_=dict(metadata or {}))
        try:
            row = db_volume.volume_create_within_quota(values, limits)
        except Exception:
            db_volume.pool_release(pool, size)
            raise
        self.rpc.create_volume(ctxt, pool, row.id)
        return row

    def update(self, ctxt, volume_id: str, values: dict[str, Any]):
        """Change name, description or metadata (no status involved)."""
        self.get(ctxt, volume_id)
        allowed = {k: v for k, v in values.items()
                   if k in ("display_name", "display_description", "metadata_")}
        db_volume.volume_update(volume_id, allowed)
        return self.get(ctxt, volume_id)

    def delete(self, ctxt, volume_id: str, force: bool = False, cascade: bool = False) -> None:
        """available/error/error_* -> deleting, cast the delete. Refused with
        ``InvalidVolume`` (400) for an attached or attaching volume or one
        with snapshots (``force``, which the API allows admins only -- rules
        ``volume:force_delete``, ``...:volume_admin_actions:force_delete`` --
        skips the status check but never the attachment check). ``cascade``:
        its snapshots (all available or error) are deleted with it."""
        row = self.get(ctxt, volume_id)
        if cascade:
            busy = [s.id for s in db_volume.snapshots_of_volume(volume_id)
                    if s.status not in ("available", "error")]
            if busy:
                raise exception.InvalidVolume(reason=(
                    f"Volume {volume_id} has snapshots that are not available or error "
                    f"({', '.join(busy)}): they cannot be deleted with it."))
        statuses = None if force else DELETABLE
        if force:
            # Even forced, a volume being deleted or attached is left alone.
            statuses = [s for s in VOLUME_STATUSES if s not in HELD and s != "deleting"]
        won = db_volume.volume_transition(
            volume_id, statuses, {"status": "deleting", "previous_status": row.status},
            no_attachments=True, no_snapshots=not cascade)
        if not won:
            raise exception.InvalidVolume(reason=self._why_not_deletable(volume_id, statuses))
        if row.host is None:
            db_volume.volume_mark_deleted(volume_id)  # never reached a backend
            return
        self.rpc.delete_volume(ctxt, row.host, volume_id)

    def _why_not_deletable(self, volume_id: str, statuses) -> str:
        row = db_volume.volume_get(volume_id)
        attachments = db_volume.attachment_list({"volume_id": volume_id})
        if attachments or row.status in HELD:
            servers = sorted({a.instance_uuid for a in attachments if a.instance_uuid})
            on = f" to server(s) {', '.join(servers)}" if servers else ""
            return (f"Volume {volume_id} is attached{on} or being attached (status "
                    f"{row.status}); detach it before deleting it.")
        snaps = db_volume.snapshots_of_volume(volume_id)
        if snaps:
            return (f"Volume {volume_id} still has {len(snaps)} dependent snapshot(s); delete "
                    f"them first or delete with cascade.")
        return _status_error("Volume", volume_id, list(statuses or ()), row.status, "delete")

    def extend(self, ctxt, volume_id: str, new_size: int, allow_in_use: bool = True) -> None:
        """available -> extending (or in-use -> extending, with the server
        told of the new size by the compute service afterwards)."""
        row = self.get(ctxt, volume_id)
        new_size = check_size(new_size, "new_size")
        if new_size <= row.size:
            raise exception.Invalid(reason=(
                f"New size for extend must be greater than current size. (current: "
                f"{row.size}, extended: {new_size})."))
        statuses = ("available", "in-use") if allow_in_use else ("available",)
        if row.status not in statuses:
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, list(statuses), row.status, "extend"))
        grow = new_size - row.size
        quota.check(row.project_id, gigabytes=grow)
        self.scheduler.claim_on(row.host, grow)
        if not db_volume.volume_transition(volume_id, [row.status],
                                           {"status": "extending",
                                            "previous_status": row.status}):
            db_volume.pool_release(row.host, grow)
            current = db_volume.volume_get(volume_id).status
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, list(statuses), current, "extend"))
        self.rpc.extend_volume(ctxt, row.host, volume_id, new_size)

    def set_bootable(self, ctxt, volume_id: str, bootable: bool) -> None:
        self.get(ctxt, volume_id)
        db_volume.volume_update(volume_id, {"bootable": bool(bootable)})

    def update_readonly_flag(self, ctxt, volume_id: str, readonly: bool) -> None:
        row = self.get(ctxt, volume_id)
        if row.status != "available":
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, "available", row.status, "update its readonly flag"))
        admin_md = dict(row.admin_metadata or {}, readonly=str(bool(readonly)))
        db_volume.volume_update(volume_id, {"admin_metadata": admin_md})

    def reset_status(self, ctxt, volume_id: str, status: str | None,
                     attach_status: str | None = None) -> None:
        """Set the status words without any check (operators repair a volume
        a failure left stuck; the API allows admins only, rule
        ``volume_extension:volume_admin_actions:reset_status``)."""
        self.get(ctxt, volume_id)
        values = {}
        if status is not None:
            if status not in VOLUME_STATUSES:
                raise exception.Invalid(reason=f"Must specify a valid status: '{status}' is "
                                               f"not one of {', '.join(VOLUME_STATUSES)}")
            values["status"] = status
        if attach_status is not None:
            if attach_status not in ("attached", "detached"):
                raise exception.Invalid(reason=f"Must specify a valid attach status: "
                                               f"'{attach_status}' is not attached or detached")
            values["attach_status"] = attach_status
        if not values:
            raise exception.Invalid(reason="Must specify 'status', 'attach_status' or "
                                           "'migration_status' for update.")
        db_volume.volume_update(volume_id, values)

    # -- legacy attach actions (os-reserve, os-attach, ...) -------------------

    def reserve(self, ctxt, volume_id: str) -> None:
        """os-reserve: available -> attaching."""
        self.get(ctxt, volume_id)
        db_volume.attachment_reserve(volume_id, ["available"], {"status": "attaching"}, None)

    def unreserve(self, ctxt, volume_id: str) -> None:
        """os-unreserve: attaching -> available (when nothing is attached)."""
        row = self.get(ctxt, volume_id)
        if not db_volume.volume_transition(volume_id, ["attaching"], {"status": "available"},
                                           no_attachments=True):
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, "attaching", db_volume.volume_get(volume_id).status
                if row else "", "unreserve"))

    def attach(self, ctxt, volume_id: str, instance_uuid: str | None, mountpoint: str,
               mode: str = "rw", host_name: str | None = None) -> dict[str, Any]:
        """os-attach: the volume (available, reserved or attaching) is now
        in-use by ``instance_uuid`` at ``mountpoint``."""
        self.get(ctxt, volume_id)
        row = db_volume.attachment_reserve(
            volume_id, ["available", "reserved", "attaching"],
            {"status": "in-use", "attach_status": "attached"},
            {"instance_uuid": instance_uuid, "mountpoint": mountpoint, "attach_mode": mode,
             "attach_status": "attached", "attached_host": host_name,
             "attach_time": models.utcnow()})
        return attachment_view(row)

    def detach(self, ctxt, volume_id: str, attachment_id: str | None = None) -> None:
        """os-detach: end an attachment (the only one when none is named)."""
        self.get(ctxt, volume_id)
        live = db_volume.attachment_list({"volume_id": volume_id})
        if attachment_id is None:
            if len(live) != 1:
                raise exception.InvalidVolume(reason=(
                    f"Volume {volume_id} has {len(live)} attachments: name the attachment_id "
                    f"to detach."))
            attachment_id = live[0].id
        elif attachment_id not in {a.id for a in live}:
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
        db_volume.attachment_finish_delete(attachment_id, volume_id, HELD)

    def initialize_connection(self, ctxt, volume_id: str,
                              connector: dict[str, Any]) -> dict[str, Any]:
        """os-initialize_connection: the connection_info for ``connector``."""
        row = self.get(ctxt, volume_id)
        if row.host is None or row.status in ("creating", "deleting", "error", "error_deleting"):
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, ["available", "attaching", "reserved", "in-use"],
                row.status, "initialize a connection"))
        return self.rpc.initialize_connection(ctxt, row.host, volume_id, connector)

    def terminate_connection(self, ctxt, volume_id: str,
                             connector: dict[str, Any] | None) -> None:
        row = self.get(ctxt, volume_id)
        if row.host is not None:
            self.rpc.terminate_connection(ctxt, row.host, volume_id, connector)

    # -- attachments ---------------------------------------------------------

    def attachment_create(self, ctxt, volume_id: str, instance_uuid: str,
                          connector: dict[str, Any] | None = None,
                          mode: str = "rw") -> dict[str, Any]:
        """Reserve the volume for ``instance_uuid``; with a connector, also
        do ``attachment_update``. Returns the attachment view:
        ``{"id", "volume_id", "instance", "status", "attach_mode",
        "connection_info", "attached_at", "detached_at"}``."""
        if mode not in ("rw", "ro"):
            raise exception.Invalid(reason=f"Invalid attachment mode '{mode}': use rw or ro")
        vol = self.get(ctxt, volume_id)
        if vol.host is None:
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, "available", vol.status, "reserve"))
        row = db_volume.attachment_reserve(
            volume_id, ["available"], {"status": "reserved"},
            {"instance_uuid": instance_uuid, "attach_status": "reserved", "attach_mode": mode})
        if connector is None:
            return attachment_view(row)
        try:
            return self.attachment_update(ctxt, row.id, connector)
        except Exception:
            # Nothing half-made: the reservation goes with the failure.
            db_volume.attachment_finish_delete(row.id, volume_id, HELD)
            raise

    def _attachment(self, ctxt, attachment_id: str):
        row = db_volume.attachment_get(attachment_id)
        try:
            vol = db_volume.volume_get(row.volume_id, project_id=_scope(ctxt))
        except exception.VolumeNotFound:
            raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id) from None
        return row, vol

    def attachment_update(self, ctxt, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        """Export the volume to the connector's host; returns the attachment
        view whose ``connection_info`` the compute driver attaches."""
        if not isinstance(connector, dict) or not connector:
            raise exception.Invalid(reason="A connector (a non-empty object) is required.")
        row, vol = self._attachment(ctxt, attachment_id)
        if not db_volume.attachment_transition(attachment_id, ["reserved", "attaching",
                                                               "error_attaching"],
                                               {"attach_status": "attaching"}):
            current = db_volume.attachment_get(attachment_id).attach_status
            raise exception.InvalidVolume(reason=_status_error(
                "Attachment", attachment_id, "reserved", current, "update it with a connector"))
        if not db_volume.volume_transition(vol.id, ["reserved", "attaching"],
                                           {"status": "attaching"}):
            db_volume.attachment_transition(attachment_id, ["attaching"],
                                            {"attach_status": row.attach_status})
            current = db_volume.volume_get(vol.id).status
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", vol.id, "reserved", current, "attach"))
        try:
            info = self.rpc.initialize_connection(ctxt, vol.host, vol.id, connector)
        except Exception:
            LOG.warning("Exporting volume %s for attachment %s failed", vol.id, attachment_id)
            db_volume.attachment_transition(attachment_id, ["attaching"],
                                            {"attach_status": "error_attaching"})
            db_volume.volume_transition(vol.id, ["attaching"], {"status": "reserved"})
            raise
        info = dict(info)
        info.setdefault("data", {})
        info["data"] = dict(info["data"], access_mode=row.attach_mode)
        info["attachment_id"] = attachment_id
        db_volume.attachment_transition(attachment_id, None, {
            "connector": connector, "connection_info": info,
            "attached_host": connector.get("host"),
            "mountpoint": connector.get("mountpoint")})
        return attachment_view(db_volume.attachment_get(attachment_id))

    def attachment_complete(self, ctxt, attachment_id: str) -> None:
        """attaching -> attached; the volume attaching -> in-use."""
        row, vol = self._attachment(ctxt, attachment_id)
        if not db_volume.attachment_transition(
                attachment_id, ["attaching", "attached"],
                {"attach_status": "attached", "attach_time": row.attach_time or models.utcnow()}):
            current = db_volume.attachment_get(attachment_id).attach_status
            raise exception.InvalidVolume(reason=_status_error(
                "Attachment", attachment_id, "attaching", current, "complete it"))
        if not db_volume.volume_transition(vol.id, ["attaching", "in-use"],
                                           {"status": "in-use", "attach_status": "attached"}):
            current = db_volume.volume_get(vol.id).status
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", vol.id, "attaching", current, "complete the attachment"))

    def attachment_delete(self, ctxt, attachment_id: str) -> None:
        """Unexport (when a connector was given) and delete the attachment;
        the volume is available again once no attachment holds it.
        Idempotent: an attachment already deleted is not an error."""
        try:
            row, vol = self._attachment(ctxt, attachment_id)
        except exception.VolumeAttachmentNotFound:
            gone = db_volume.attachment_get(attachment_id, read_deleted=True)
            db_volume.volume_get(gone.volume_id, project_id=_scope(ctxt), read_deleted=True)
            return  # already deleted
        if row.connector and vol.host:
            try:
                self.rpc.terminate_connection(ctxt, vol.host, vol.id, row.connector)
            except Exception:
                LOG.warning("Unexporting volume %s for attachment %s failed", vol.id,
                            attachment_id)
                db_volume.attachment_transition(attachment_id, None,
                                                {"attach_status": "error_detaching"})
                raise
        db_volume.attachment_finish_delete(attachment_id, vol.id, HELD)

    def attachment_get(self, ctxt, attachment_id: str) -> dict[str, Any]:
        row, _vol = self._attachment(ctxt, attachment_id)
        return attachment_view(row)

    def attachment_list(self, ctxt, filters: dict[str, Any] | None = None,
                        limit: int | None = None, marker: str | None = None,
                        sort_keys=("created_at",), sort_dirs=("desc",)) -> list[dict[str, Any]]:
        filters = dict(filters or {})
        if not (ctxt.is_admin and filters.pop("all_tenants", False)):
            filters["project_id"] = ctxt.project_id
        if marker is not None:
            try:
                self._attachment(ctxt, marker)
            except exception.VolumeAttachmentNotFound:
                raise exception.Invalid(reason=f"marker [{marker}] not found") from None
        rows = db_volume.attachment_list(filters, limit=limit, marker=marker,
                                         sort_keys=sort_keys, sort_dirs=sort_dirs)
        return [attachment_view(r) for r in rows]

    def begin_detaching(self, ctxt, volume_id: str) -> None:
        self.get(ctxt, volume_id)
        if not db_volume.volume_transition(volume_id, ["in-use"], {"status": "detaching"}):
            current = db_volume.volume_get(volume_id).status
            raise exception.InvalidVolume(reason=_status_error(
                "Volume", volume_id, "in-use", current, "begin detaching"))

    def roll_detaching(self, ctxt, volume_id: str) -> None:
        """detaching -> in-use (a detach failed); a no-op in any other status."""
        self.get(ctxt, volume_id)
        db_volume.volume_transition(volume_id, ["detaching"], {"status": "in-use"})

    # -- snapshots -----------------------------------------------------------

    def snapshot_get(self, ctxt, snapshot_id: str):
        return db_volume.snapshot_get(snapshot_id, project_id=_scope(ctxt))

    def snapshot_list(self, ctxt, filters: dict[str, Any] | None = None,
                      limit: int | None = None, marker: str | None = None,
                      sort_keys=("created_at",), sort_dirs=("desc",)):
        filters = dict(filters or {})
        if not (ctxt.is_admin and filters.pop("all_tenants", False)):
            filters["project_id"] = ctxt.project_id
        if marker is not None:
            try:
                self.snapshot_get(ctxt, marker)
            except exception.SnapshotNotFound:
                # 404, as the Block Storage API answers for a snapshot marker.
                raise exception.NotFound(f"Marker {marker} could not be found.") from None
        return db_volume.snapshot_list(filters, limit=limit, marker=marker,
                                       sort_keys=sort_keys, sort_dirs=sort_dirs)

    def snapshot_create(self, ctxt, volume_id: str, name: str | None = None,
                        description: str | None = None,
                        metadata: dict[str, str] | None = None, force: bool = False):
        """Record a snapshot (``creating``) of an available volume (or an
        in-use one with ``force``) and cast its creation."""
        vol = self.get(ctxt, volume_id)
        statuses = ["available", "in-use"] if force else ["available"]
        values = {"id": str(uuidlib.uuid4()), "volume_id": volume_id,
                  "project_id": ctxt.project_id, "user_id": ctxt.user_id, "status": "creating",
                  "volume_size": vol.size, "display_name": name,
                  "display_description": description, "metadata_": dict(metadata or {}),
                  "progress": "0%"}
        row = db_volume.snapshot_create_within_quota(values, quota.limits(ctxt.project_id),
                                                     statuses)
        self.rpc.create_snapshot(ctxt, vol.host, row.id)
        return row

    def snapshot_update(self, ctxt, snapshot_id: str, values: dict[str, Any]):
        self.snapshot_get(ctxt, snapshot_id)
        allowed = {k: v for k, v in values.items()
                   if k in ("display_name", "display_description", "metadata_")}
        db_volume.snapshot_transition(snapshot_id, None, allowed)
        return self.snapshot_get(ctxt, snapshot_id)

    def snapshot_delete(self, ctxt, snapshot_id: str) -> None:
        snap = self.snapshot_get(ctxt, snapshot_id)
        statuses = ["available", "error"]
        if not db_volume.snapshot_transition(snapshot_id, statuses, {"status": "deleting"}):
            current = db_volume.snapshot_get(snapshot_id).status
            raise exception.InvalidSnapshot(reason=_status_error(
                "Snapshot", snapshot_id, statuses, current, "delete"))
        vol = db_volume.volume_get(snap.volume_id, read_deleted=True)
        self.rpc.delete_snapshot(ctxt, vol.host, snapshot_id)

    def snapshot_reset_status(self, ctxt, snapshot_id: str, status: str) -> None:
        """Set a snapshot's status without any check (the API allows admins
        only, rule ``volume_extension:snapshot_admin_actions:reset_status``)."""
        self.snapshot_get(ctxt, snapshot_id)
        if status not in SNAPSHOT_STATUSES:
            raise exception.Invalid(reason=f"Must specify a valid status: '{status}' is not "
                                           f"one of {', '.join(SNAPSHOT_STATUSES)}")
        db_volume.snapshot_transition(snapshot_id, None, {"status": status})


def _image_metadata(image) -> dict[str, str]:
    """What a volume made from ``image`` shows as volume_image_metadata:
    the image's identity and formats plus its properties (kernel_id,
    ramdisk_id, ...), all as strings."""
    meta = {"image_id": image.id, "image_name": image.name or "",
            "container_format": image.container_format or "bare",
            "disk_format": image.disk_format or "raw", "min_disk": str(image.min_disk or 0),
            "min_ram": str(image.min_ram or 0), "size": str(image.size or 0),
            "checksum": image.checksum or ""}
    for key, value in (image.properties or {}).items():
        meta[str(key)] = value if isinstance(value, str) else str(value)
    return meta


def attachment_view(row) -> dict[str, Any]:
    """The attachment as the compute service and the attachments API see it."""
    return {"id": row.id, "volume_id": row.volume_id, "instance": row.instance_uuid,
            "status": row.attach_status, "attach_mode": row.attach_mode,
            "connection_info": row.connection_info or {}, "attached_at": row.attach_time,
            "detached_at": row.detach_time, "connector": row.connector,
            "attached_host": row.attached_host, "mountpoint": row.mountpoint}
