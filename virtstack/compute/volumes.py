"""Volumes of servers, below HTTP: os-volume_attachments (attach, detach,
list, show) and the block devices a new server asks for
(``block_device_mapping_v2``). HTTP controllers call only this.

An attach is decided synchronously: the server and the volume are checked
here, then an RPC *call* runs the attach flow on the server's host to its
end (reserving the volume is a compare-and-set in the volume service, so of
many racing attaches of one volume exactly one wins). A detach moves the
volume to ``detaching`` here (compare-and-set) and casts the rest.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import oslo_messaging as messaging

from virtstack import exception
from virtstack.compute.block_devices import VOLUME_VM_STATES
from virtstack.db import block_device as db_bd
from virtstack.db import image as db_image
from virtstack.db import instance as db_instance
from virtstack.db import models


def _volume_api():
    from virtstack.volume import api as volume_api
    return volume_api.VolumeAPI()


class VolumeAttachmentsAPI:
    """Attach, detach and list the volumes of servers."""

    def __init__(self, compute_api, volume_api=None):
        self.compute = compute_api
        self._volume_api = volume_api

    @property
    def volume_api(self):
        if self._volume_api is None:
            self._volume_api = _volume_api()
        return self._volume_api

    def _server(self, ctxt, server_id: str, action: str) -> models.Instance:
        """The server (404 if the caller may not see it), in a state that
        allows ``action`` (409 otherwise)."""
        row = self.compute.get(ctxt, server_id)
        if row.vm_state not in VOLUME_VM_STATES:
            raise exception.InstanceInvalidState(action=action, instance_uuid=server_id,
                                                 attr="vm_state", state=row.vm_state)
        if row.task_state is not None:
            raise exception.InstanceInvalidState(action=action, instance_uuid=server_id,
                                                 attr="task_state", state=row.task_state)
        if row.host is None:
            raise exception.InstanceInvalidState(action=action, instance_uuid=server_id,
                                                 attr="host", state="None")
        return row

    # -- reading -----------------------------------------------------------

    def list(self, ctxt, server_id: str, limit: int | None = None,
             offset: int = 0) -> list[models.BlockDeviceMapping]:
        """The server's volume BDMs in attach order (404 for an unknown
        server)."""
        self.compute.get(ctxt, server_id)
        rows = db_bd.volumes_by_instance([server_id]).get(server_id, [])
        rows = rows[offset:]
        return rows if limit is None else rows[:limit]

    def show(self, ctxt, server_id: str, volume_id: str) -> models.BlockDeviceMapping:
        self.compute.get(ctxt, server_id)
        bdm = db_bd.get_by_volume(server_id, volume_id)
        if bdm is None:
            raise exception.VolumeNotFound(
                message=f"Volume {volume_id} is not attached to server {server_id}.")
        return bdm

    # -- attaching -----------------------------------------------------------

    def attach(self, ctxt, server_id: str, volume_id: str, device: str | None = None,
               tag: str | None = None, delete_on_termination: bool = False) -> dict[str, Any]:
        """Attach the volume and answer when it is ``in-use`` (see the module
        docstring). Returns the compute host's ``attachment_view``."""
        row = self._server(ctxt, server_id, "attach_volume")
        volume = self.volume_api.get(ctxt, volume_id)  # 404, also for other projects'
        if db_bd.get_by_volume(server_id, volume_id) is not None:
            raise exception.InvalidVolume(
                reason=f"volume {volume_id} is already attached to server {server_id}")
        if volume.status != "available":
            raise exception.InvalidVolume(
                reason=f"volume {volume_id} status must be available to attach, but the "
                       f"current status is: {volume.status}")
        if device is not None and device != "auto":
            db_bd.check_device_name(device)
            if device == db_bd.ROOT_DEVICE:
                raise exception.DeviceInUse(device=device, instance_id=server_id)
        db_instance.action_start(server_id, "attach_volume", ctxt.request_id, ctxt.user_id,
                                 ctxt.project_id)
        try:
            return self.compute.rpc.attach_volume(ctxt, row.host, server_id, volume_id, device,
                                                  tag, bool(delete_on_termination))
        except exception.VirtstackException:
            raise
        except messaging.MessagingTimeout:
            raise exception.VolumeAttachFailed(
                volume_id=volume_id, server_id=server_id,
                reason=f"compute host {row.host} did not answer in time") from None
        except messaging.RemoteError as exc:  # not a virtstack error: say what it was
            raise exception.VolumeAttachFailed(volume_id=volume_id, server_id=server_id,
                                               reason=f"{exc.exc_type}: {exc.value}") from None
        except Exception as exc:  # a builtin error crosses RPC as itself
            raise exception.VolumeAttachFailed(volume_id=volume_id, server_id=server_id,
                                               reason=f"{type(exc).__name__}: {exc}") from None

    def detach(self, ctxt, server_id: str, volume_id: str) -> None:
        """Begin detaching (volume ``detaching``) and cast the detach."""
        row = self._server(ctxt, server_id, "detach_volume")
        self.volume_api.get(ctxt, volume_id)  # 404 for an unknown volume
        bdm = db_bd.get_by_volume(server_id, volume_id)
        if bdm is None:
            raise exception.InvalidVolume(
                reason=f"volume {volume_id} is not attached to server {server_id}")
        if bdm.attachment_id is None:
            raise exception.Conflict(
                reason=f"volume {volume_id} is still being attached to server {server_id}")
        if bdm.boot_index == 0:
            raise exception.Invalid(
                reason=f"volume {volume_id} is the root disk of server {server_id} and "
                       f"cannot be detached")
        self.volume_api.begin_detaching(ctxt, volume_id)  # 400 unless in-use
        db_instance.action_start(server_id, "detach_volume", ctxt.request_id, ctxt.user_id,
                                 ctxt.project_id)
        self.compute.rpc.detach_volume(ctxt, row.host, server_id, volume_id)


# -- block_device_mapping_v2 -------------------------------------------------

@dataclasses.dataclass
class BlockDevicePlan:
    """What a server create's ``block_device_mapping_v2`` asks for, checked.

    ``boot_from_volume``: its root disk is a volume (the server's image_ref
    is then ""); ``image``: the image its kernel, ramdisk and metadata come
    from (None if unknown); ``mappings``: BDM column values per device, the
    boot volume first (``device_name`` None: pick one).
    """

    boot_from_volume: bool
    image: models.Image | None
    mappings: list[dict[str, Any]]
    kernel_id: str = ""
    ramdisk_id: str = ""


def _boot_index(value: Any) -> int | None:
    if value is None or value == "none":
        return None
    try:
        index = int(str(value), 10)
    except ValueError:
        raise exception.InvalidBDM(reason=f"boot_index '{value}' is not an integer") from None
    return index if index >= 0 else None


def _to_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise exception.InvalidBDM(reason=f"{field} '{value}' is not a boolean")


def plan_block_devices(ctxt, volume_api, mappings: list[dict[str, Any]], image_ref: str,
                       count: int, project_scope: str | None) -> BlockDevicePlan:
    """Check ``block_device_mapping_v2`` (already schema-valid) against the
    volumes and images it names; 400 with the reason for anything wrong.

    Supported: ``source_type`` image or volume to ``destination_type``
    volume (boot volume with ``boot_index`` 0, or extra volumes), and image
    to local with ``boot_index`` 0 (the same as ``imageRef``).
    """
    planned: list[dict[str, Any]] = []
    boot: dict[str, Any] | None = None
    seen_volumes: set[str] = set()
    seen_indexes: set[int] = set()
    seen_devices: set[str] = set()
    for number, bdm in enumerate(mappings):
        source, dest = bdm.get("source_type"), bdm.get("destination_type", "volume")
        index = _boot_index(bdm.get("boot_index"))
        if index is not None:
            if index in seen_indexes:
                raise exception.InvalidBDM(reason=f"boot_index {index} is given twice")
            seen_indexes.add(index)
        if source == "image" and dest == "local":
            if index != 0:
                raise exception.InvalidBDM(
                    reason="a mapping of source_type image to destination_type local must "
                           "be the boot device (boot_index 0)")
            if image_ref and bdm.get("uuid") != image_ref:
                raise exception.InvalidBDM(
                    reason="the boot image of the mapping differs from imageRef")
            image_ref = bdm["uuid"]
            continue
        if dest != "volume" or source not in ("image", "volume"):
            raise exception.InvalidBDM(
                reason=f"source_type {source} with destination_type {dest} is not supported "
                       f"by this cloud; use source_type image or volume with "
                       f"destination_type volume")
        if not bdm.get("uuid"):
            raise exception.InvalidBDM(reason=f"mapping {number} has no uuid of its {source}")
        device = bdm.get("device_name")
        if index == 0:
            device = db_bd.ROOT_DEVICE  # the boot disk is always the first one
        elif device is not None:
            try:
                db_bd.check_device_name(device)
            except exception.Invalid as exc:
                raise exception.InvalidBDM(reason=exc.format_message()) from None
            if device == db_bd.ROOT_DEVICE or device in seen_devices:
                raise exception.InvalidBDM(reason=f"device name {device} is used twice (or "
                                                  f"is the root disk's)")
            seen_devices.add(device)
        values: dict[str, Any] = {
            "source_type": source, "destination_type": "volume", "boot_index": index,
            "device_name": device, "device_type": "disk", "disk_bus": "virtio",
            "delete_on_termination": _to_bool(bdm.get("delete_on_termination", False),
                                              "delete_on_termination"),
            "tag": bdm.get("tag"), "volume_type": bdm.get("volume_type")}
        if source == "image":
            image = _bdm_image(bdm["uuid"], project_scope)
            size = bdm.get("volume_size")
            size = int(size) if size not in (None, "") else 0
            if size < 1:
                raise exception.InvalidBDM(
                    reason="Images with destination_type 'volume' need to have a non-zero "
                           "size specified")
            needed = max(image.min_disk or 0, math.ceil((image.size or 0) / 1024 ** 3))
            if size < needed:
                raise exception.InvalidBDM(
                    reason=f"volume_size {size} GiB is smaller than image {image.id} "
                           f"needs ({needed} GiB)")
            values.update(image_id=image.id, volume_size=size)
        else:
            volume_id = bdm["uuid"]
            if volume_id in seen_volumes:
                raise exception.InvalidBDM(reason=f"volume {volume_id} is given twice")
            seen_volumes.add(volume_id)
            if count > 1:
                raise exception.InvalidBDM(
                    reason="Cannot attach one or more volumes to multiple instances")
            try:
                volume = volume_api.get(ctxt, volume_id)
            except exception.VolumeNotFound:
                raise exception.InvalidBDM(reason=f"failed to get volume {volume_id}.") from None
            if volume.status != "available":
                raise exception.InvalidVolume(
                    reason=f"volume {volume_id} status must be available to attach, but "
                           f"the current status is: {volume.status}")
            values.update(volume_id=volume_id, volume_size=volume.size,
                          image_id=volume.image_id)
            values["_image_metadata"] = dict(volume.image_metadata or {})
        if index == 0:
            boot = values
        planned.append(values)
    if seen_indexes and 0 not in seen_indexes:
        raise exception.InvalidBDM(
            reason="Boot sequence for the instance and image/block device mapping "
                   "combination is not valid: no mapping has boot_index 0")
    planned.sort(key=lambda v: v["boot_index"] != 0)
    if boot is None:
        for values in planned:
            values.pop("_image_metadata", None)
        image = _bdm_image(image_ref, project_scope) if image_ref else None
        return BlockDevicePlan(False, image, planned)
    if image_ref and image_ref != boot.get("image_id"):
        raise exception.InvalidBDM(reason="imageRef must be empty when the server boots "
                                          "from a volume")
    metadata = boot.get("_image_metadata", {})
    for values in planned:
        values.pop("_image_metadata", None)
    image = None
    if boot.get("image_id"):
        try:
            image = db_image.get(boot["image_id"])
        except exception.ImageNotFound:
            image = None  # a volume made from an image deleted since
    properties = (image.properties or {}) if image is not None else {}
    return BlockDevicePlan(
        True, image, planned,
        kernel_id=metadata.get("kernel_id") or properties.get("kernel_id", ""),
        ramdisk_id=metadata.get("ramdisk_id") or properties.get("ramdisk_id", ""))


def _bdm_image(image_id: str, project_scope: str | None) -> models.Image:
    try:
        image = db_image.get(image_id, project_id=project_scope)
    except exception.ImageNotFound:
        raise exception.ImageNotFoundForCreate(image_id=image_id) from None
    if image.status != "active":
        raise exception.ImageNotActive(image_id=image_id)
    return image


def record_block_devices(instance_uuid: str, plan: BlockDevicePlan) -> None:
    """The new server's BDM rows (device names reserved now; the volumes
    are made, reserved and exported by its host's spawn flow)."""
    for values in plan.mappings:
        values = dict(values)
        if values["boot_index"] == 0:
            db_bd.create(dict(values, instance_uuid=instance_uuid))
        else:
            db_bd.reserve_device_name(instance_uuid, values.pop("device_name"), **values)

