"""Attaching a volume to a server on this host (DESIGN.md, "Attach volume").

Inputs (store, persisted):
  ``instance_uuid``; ``volume_id``; ``bdm_uuid`` (the BDM row's uuid, chosen
  by the manager before the run so that a re-run finds its own row);
  ``requested_device`` (None, ``"auto"`` or ``"/dev/vdX"``); ``tag``;
  ``delete_on_termination``.
Inputs (transient, supplied again on recovery):
  ``driver`` (ComputeDriver); ``context`` (RequestContext); ``instance``
  (objects.Instance); ``volume_api`` (volume.api.VolumeAPI); ``resumed``
  (bool: False on a normal run, True when the runner recovers the flow at
  start-up).

    ReserveDeviceName → CreateAttachment → GetConnector → UpdateAttachment
      → DriverAttach → CompleteAttachment → SaveConnectionInfo → RollBackIfResumed

Each task undoes its own step: the BDM row is deleted, the attachment is
deleted (the volume goes back to ``available``; the volume service's
terminate_connection removes the export and ACL made for the connector
UpdateAttachment sent), the device is detached from the guest. Update and
complete have no undo of their own: deleting the attachment undoes both.

An attach is an RPC *call*: its caller waits for the outcome. A flow found
unfinished when the service restarts has lost its caller, so it is rolled
back rather than finished: the interrupted task and those after it run
again (they are idempotent) and ``RollBackIfResumed`` then fails the flow,
which reverts every step.

The attachment tasks are shared with the boot-from-volume part of the spawn
flow, which binds their inputs to per-volume names (``rebind``/``inject``).
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow
from taskflow.types import failure

from virtstack import exception
from virtstack.db import block_device as db_bd

LOG = logging.getLogger(__name__)


class ReserveDeviceName(task.Task):
    """A BDM row holding the device name (atomic per instance); the name.

    Inputs: ``instance_uuid``, ``bdm_uuid``, ``volume_id``,
    ``requested_device``, ``tag``, ``delete_on_termination``.
    """

    default_provides = "device_name"

    def execute(self, instance_uuid, bdm_uuid, volume_id, requested_device=None, tag=None,
                delete_on_termination=False):
        return db_bd.reserve_device_name(
            instance_uuid, requested_device, uuid=bdm_uuid, volume_id=volume_id, tag=tag,
            delete_on_termination=bool(delete_on_termination)).device_name

    def revert(self, bdm_uuid, *args, **kwargs):
        # By uuid, whatever the result: the row is this flow's alone.
        db_bd.destroy(bdm_uuid)


class CreateAttachment(task.Task):
    """Reserve the volume for the instance (volume ``reserved``); the
    attachment id. Revert deletes the attachment (volume ``available``).

    Inputs: ``context``, ``volume_api``, ``volume_id``, ``instance_uuid``.
    """

    default_provides = "attachment_id"

    def execute(self, context, volume_api, volume_id, instance_uuid):
        # Run again after a crash, this finds the attachment it made before
        # (instead of failing on the volume it reserved itself).
        existing = db_bd.live_attachment_id(volume_id, instance_uuid)
        if existing is not None:
            return existing
        return volume_api.attachment_create(context, volume_id, instance_uuid)["id"]

    def revert(self, context, volume_api, volume_id, instance_uuid, result, *args, **kwargs):
        attachment_id = result if isinstance(result, str) else (
            # Failed after its work (or crashed): the attachment of this
            # volume to this instance can only be this flow's (the API and
            # the instance lock refuse a second one).
            db_bd.live_attachment_id(volume_id, instance_uuid))
        if attachment_id is not None:
            volume_api.attachment_delete(context, attachment_id)


class GetConnector(task.Task):
    """This host's connector (initiator IQN, IP...) for the volume service.

    Inputs: ``driver``, ``instance``.
    """

    default_provides = "connector"

    def execute(self, driver, instance):
        return driver.get_volume_connector(instance)


class UpdateAttachment(task.Task):
    """Export the volume to this host (volume ``attaching``); the
    connection_info the driver attaches (may hold CHAP secrets: never
    logged). Its undo is CreateAttachment's: deleting an attachment that
    has a connector runs terminate_connection.

    Inputs: ``context``, ``volume_api``, ``attachment_id``, ``connector``;
    optional ``device_name``, sent as the connector's ``mountpoint`` (the
    volume's attachment shows it as ``device``).
    """

    default_provides = "connection_info"

    def execute(self, context, volume_api, attachment_id, connector, device_name=None):
        if device_name is not None:
            connector = dict(connector, mountpoint=device_name)
        return volume_api.attachment_update(context, attachment_id, connector)["connection_info"]


class DriverAttach(task.Task):
    """The hypervisor attaches the device, live and persistently. Revert
    detaches it.

    Inputs: ``driver``, ``context``, ``instance``, ``connection_info``,
    ``device_name``, ``resumed``.
    """

    def execute(self, driver, context, instance, connection_info, device_name, resumed=False):
        try:
            driver.attach_volume(context, connection_info, instance, device_name,
                                 disk_bus="virtio", device_type="disk")
        except exception.DeviceInUse:
            if not resumed:
                raise
            # Re-run after a crash: the name is reserved by this flow's BDM,
            # so the device there is the one this flow attached before.
            LOG.info("Volume device %s of instance %s was attached before the restart",
                     device_name, instance.uuid)

    def revert(self, driver, context, instance, connection_info, device_name, result,
               *args, **kwargs):
        if isinstance(result, failure.Failure) and result.check(exception.DeviceInUse):
            return  # the device there is not the one this task attached
        # After success, or a failure that may have come after the device
        # went in: detach whatever is there under the reserved name.
        try:
            driver.detach_volume(context, connection_info, instance, device_name)
        except (exception.DeviceNotFound, exception.InstanceNotFound):
            pass  # no such device (or no guest at all): nothing to undo


class CompleteAttachment(task.Task):
    """Mark the volume ``in-use`` and the attachment ``attached``. Its undo is
    CreateAttachment's (the attachment is deleted whatever its status).

    Inputs: ``context``, ``volume_api``, ``attachment_id``.
    """

    def execute(self, context, volume_api, attachment_id):
        volume_api.attachment_complete(context, attachment_id)


class SaveConnectionInfo(task.Task):
    """Record the attachment and connection_info on the BDM (what detach,
    extend, reboot and delete use later). Its undo is ReserveDeviceName's.

    Inputs: ``bdm_uuid``, ``volume_id``, ``attachment_id``, ``connection_info``.
    """

    def execute(self, bdm_uuid, volume_id, attachment_id, connection_info):
        if not db_bd.update(bdm_uuid, {"volume_id": volume_id, "attachment_id": attachment_id,
                                       "connection_info": connection_info}):
            raise exception.NotFound(
                message=f"Block device mapping {bdm_uuid} disappeared during the attach.")


class RollBackIfResumed(task.Task):
    """Fail a flow resumed after a restart, so that it reverts (see the
    module docstring). Inputs: ``resumed``, ``volume_id``, ``instance_uuid``."""

    def execute(self, volume_id, instance_uuid, resumed=False):
        if resumed:
            raise exception.VolumeAttachRolledBack(volume_id=volume_id,
                                                   instance_uuid=instance_uuid)


def get_flow() -> linear_flow.Flow:
    """The attach flow (module level: the runner rebuilds it on recovery)."""
    return linear_flow.Flow("attach_volume").add(
        ReserveDeviceName("reserve_device_name"),
        CreateAttachment("create_attachment"),
        GetConnector("get_connector"),
        UpdateAttachment("update_attachment"),
        DriverAttach("driver_attach"),
        CompleteAttachment("complete_attachment"),
        SaveConnectionInfo("save_connection_info"),
        RollBackIfResumed("roll_back_if_resumed"))
