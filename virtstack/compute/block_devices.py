"""The compute manager's volume work: attach, detach and extend endpoints,
the volumes of a server being built or deleted, and ``block_device_info``.

Mixed into ``ComputeManager`` (which provides ``host``, ``driver`` and
``runner``); every entry point holds the per-instance lock, so one server's
attaches, detaches, power actions and delete never interleave.
"""

from __future__ import annotations

import logging
import traceback
import uuid as uuidlib
from typing import Any, Iterable

from oslo_concurrency import lockutils

from virtstack import exception
from virtstack.compute import states
from virtstack.compute.flows import attach as attach_flow
from virtstack.compute.flows import detach as detach_flow
from virtstack.db import block_device as db_bd
from virtstack.db import instance as db_instance
from virtstack.db import models

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3

#: vm_states a server may have volumes attached or detached in (the API
#: checks the same before it asks this host).
VOLUME_VM_STATES = (states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED)


def block_device_info(bdms: Iterable[models.BlockDeviceMapping]) -> dict[str, Any]:
    """The driver's ``block_device_info`` for a server's BDM rows: the
    volumes that have a connection (boot volume first), and the root device
    name when the server boots from one of them."""
    mappings = []
    for bdm in bdms:
        if bdm.destination_type != "volume" or not bdm.connection_info:
            continue
        mappings.append({"connection_info": bdm.connection_info,
                         "mount_device": bdm.device_name, "boot_index": bdm.boot_index,
                         "disk_bus": bdm.disk_bus or "virtio",
                         "device_type": bdm.device_type or "disk",
                         "delete_on_termination": bool(bdm.delete_on_termination)})
    boots = any(m["boot_index"] == 0 for m in mappings)
    return {"root_device_name": db_bd.ROOT_DEVICE if boots else None,
            "block_device_mapping": mappings}


def attachment_view(bdm: models.BlockDeviceMapping) -> dict[str, Any]:
    """What an attach call returns to the API (plain data for RPC)."""
    return {"bdm_uuid": bdm.uuid, "volume_id": bdm.volume_id, "device": bdm.device_name,
            "attachment_id": bdm.attachment_id, "tag": bdm.tag,
            "delete_on_termination": bool(bdm.delete_on_termination)}


class BlockDeviceManagerMixin:
    """Volume operations of ``ComputeManager``."""

    _volume_api = None

    @property
    def volume_api(self):
        if self._volume_api is None:
            from virtstack.volume import api as volume_api
            self._volume_api = volume_api.VolumeAPI()
        return self._volume_api

    def block_device_info_for(self, instance_uuid: str) -> dict[str, Any]:
        return block_device_info(db_bd.list_for_instance(instance_uuid))

    # -- RPC endpoints -------------------------------------------------------

    def attach_volume(self, ctxt, instance_uuid: str, volume_id: str, device: str | None = None,
                      tag: str | None = None, delete_on_termination: bool = False) -> dict:
        """Run the attach flow to its end (an RPC call: the API answers with
        the outcome). Returns ``attachment_view``; raises what made it fail
        after rolling every step back."""
        with lockutils.lock(instance_uuid):
            row = db_instance.get(instance_uuid)
            if row.vm_state not in VOLUME_VM_STATES or row.task_state == states.DELETING:
                attr, state = (("task_state", row.task_state) if row.vm_state in VOLUME_VM_STATES
                               else ("vm_state", row.vm_state))
                raise exception.InstanceInvalidState(action="attach_volume",
                                                     instance_uuid=instance_uuid,
                                                     attr=attr, state=state)
            if db_bd.get_by_volume(instance_uuid, volume_id) is not None:
                raise exception.InvalidVolume(
                    reason=f"volume {volume_id} is already attached to server {instance_uuid}")
            bdm_uuid = str(uuidlib.uuid4())
            with self._volume_event(ctxt, instance_uuid, "compute_attach_volume"):
                self.runner.run(
                    "attach", instance_uuid, attach_flow.get_flow,
                    store={"instance_uuid": instance_uuid, "volume_id": volume_id,
                           "bdm_uuid": bdm_uuid, "requested_device": device, "tag": tag,
                           "delete_on_termination": bool(delete_on_termination)},
                    transient=self._volume_transient(ctxt, row))
            return attachment_view(db_bd.get(bdm_uuid))

    def detach_volume(self, ctxt, instance_uuid: str, volume_id: str) -> None:
        """Run the detach flow (a cast: the API has moved the volume to
        ``detaching``). A failure leaves the volume ``in-use`` and attached
        and is recorded as an instance fault and an Error event."""
        with lockutils.lock(instance_uuid):
            try:
                row = db_instance.get(instance_uuid)
            except exception.InstanceNotFound:
                row = None
            bdm = db_bd.get_by_volume(instance_uuid, volume_id)
            if row is None or bdm is None or bdm.attachment_id is None:
                # Deleted meanwhile: the server's delete released its volumes.
                LOG.warning("Volume %s is not attached to instance %s; nothing to detach",
                            volume_id, instance_uuid)
                self._roll_detaching_quietly(ctxt, volume_id)
                return
            try:
                with self._volume_event(ctxt, instance_uuid, "compute_detach_volume"):
                    self.runner.run(
                        "detach", instance_uuid, detach_flow.get_flow,
                        store={"instance_uuid": instance_uuid, "volume_id": volume_id,
                               "bdm_uuid": bdm.uuid, "attachment_id": bdm.attachment_id,
                               "device_name": bdm.device_name,
                               "connection_info": bdm.connection_info},
                        transient=self._volume_transient(ctxt, row))
            except Exception as exc:
                LOG.error("Detach of volume %s from instance %s failed: %s", volume_id,
                          instance_uuid, _describe(exc))
                db_instance.add_fault(instance_uuid, getattr(exc, "code", 500),
                                      f"Detaching volume {volume_id} failed: {_describe(exc)}",
                                      traceback.format_exception(exc)[-1])

    def extend_volume(self, ctxt, instance_uuid: str, volume_id: str, new_size: int) -> None:
        """Tell the guest that an attached volume grew to ``new_size`` GiB
        (the volume service casts this after growing an in-use volume)."""
        with lockutils.lock(instance_uuid):
            try:
                row = db_instance.get(instance_uuid)
            except exception.InstanceNotFound:
                return
            bdm = db_bd.get_by_volume(instance_uuid, volume_id)
            if bdm is None or not bdm.connection_info:
                LOG.warning("Volume %s is not attached to instance %s; not extending",
                            volume_id, instance_uuid)
                return
            db_instance.action_start(instance_uuid, "extend_volume", ctxt.request_id,
                                     ctxt.user_id, ctxt.project_id)
            try:
                with self._volume_event(ctxt, instance_uuid, "compute_extend_volume"):
                    self.driver.extend_volume(ctxt, bdm.connection_info,
                                              db_instance.to_object(row), new_size * GiB)
            except Exception as exc:
                LOG.error("Extending volume %s of instance %s failed: %s", volume_id,
                          instance_uuid, _describe(exc))
                db_instance.add_fault(instance_uuid, getattr(exc, "code", 500),
                                      f"Extending volume {volume_id} failed: {_describe(exc)}")

    # -- builds and deletes --------------------------------------------------

    def volume_specs(self, instance_uuid: str) -> list[dict[str, Any]]:
        """The spawn flow's volume specs (``flows/boot_volume``) of a new
        server's volume BDMs, boot volume first."""
        return [{"bdm_uuid": b.uuid, "volume_id": b.volume_id, "image_id": b.image_id,
                 "volume_size": b.volume_size, "device_name": b.device_name}
                for b in db_bd.list_for_instance(instance_uuid)
                if b.destination_type == "volume"]

    def boot_image_id(self, instance_uuid: str) -> str:
        """The image a server booting from a volume was made from ("" if
        unknown): its kernel and ramdisk still come from there."""
        for bdm in db_bd.list_for_instance(instance_uuid):
            if bdm.boot_index == 0:
                return bdm.image_id or ""
        return ""

    def release_volumes(self, ctxt, instance_uuid: str,
                        bdms: list[models.BlockDeviceMapping]) -> None:
        """After the guest is destroyed: delete each volume's attachment (the
        volume becomes ``available``), delete the volumes marked
        ``delete_on_termination`` and the BDM rows. A volume that fails is
        logged and skipped: it never keeps the server from being deleted."""
        for bdm in bdms:
            if bdm.destination_type != "volume" or not bdm.volume_id:
                continue
            attachment_id = bdm.attachment_id or db_bd.live_attachment_id(bdm.volume_id,
                                                                          instance_uuid)
            try:
                if attachment_id:
                    self.volume_api.attachment_delete(ctxt, attachment_id)
                if bdm.delete_on_termination:
                    self.volume_api.delete(ctxt, bdm.volume_id)
            except Exception as exc:  # one stuck volume must not block the delete
                LOG.error("Releasing volume %s of deleted instance %s failed: %s",
                          bdm.volume_id, instance_uuid, _describe(exc))
        db_bd.destroy_all(instance_uuid)

    # -- helpers -------------------------------------------------------------

    def _volume_transient(self, ctxt, row) -> dict[str, Any]:
        return {"driver": self.driver, "context": ctxt, "instance": db_instance.to_object(row),
                "volume_api": self.volume_api, "resumed": False}

    def _volume_event(self, ctxt, instance_uuid: str, event: str):
        from virtstack.compute.manager import action_event
        return action_event(ctxt, instance_uuid, event, self.host)

    def _roll_detaching_quietly(self, ctxt, volume_id: str) -> None:
        try:
            self.volume_api.roll_detaching(ctxt, volume_id)
        except exception.VirtstackException:
            pass  # not detaching (any more): nothing to roll back


def _describe(exc: BaseException) -> str:
    """An error's message for logs and faults (never a connection_info)."""
    if isinstance(exc, exception.VirtstackException):
        return exc.format_message()
    return f"{type(exc).__name__}: {exc}"
