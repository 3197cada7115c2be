"""Detaching a volume from a server on this host.

The API has already moved the volume to ``detaching`` (begin_detaching,
compare-and-set) before it cast the request here.

Inputs (store, persisted):
  ``instance_uuid``; ``volume_id``; ``bdm_uuid``; ``attachment_id``;
  ``device_name``; ``connection_info`` (from the BDM; may hold CHAP
  secrets: never logged).
Inputs (transient, supplied again on recovery):
  ``driver``, ``context``, ``instance``, ``volume_api``.

    RollDetachingOnFailure → DriverDetach → DestroyBdm → DeleteAttachment

A failure reverts: the device is attached again, the BDM row restored and
the volume rolled back to ``in-use`` (roll_detaching); the attachment was
never touched. Deleting the attachment comes last because it alone cannot
be undone (the volume service has terminated the connection): every step
before it can. A flow interrupted by a restart is resumed (a detach is a
cast: nobody waits for it), each step being idempotent.
"""

from __future__ import annotations

from taskflow import task
from taskflow.patterns import linear_flow
from virtstack import exception
from virtstack.db import block_device as db_bd


class RollDetachingOnFailure(task.Task):
    """Nothing going forward; on revert, the volume goes back from
    ``detaching`` to ``in-use``. Inputs: ``context``, ``volume_api``,
    ``volume_id``."""

    def execute(self, context, volume_api, volume_id):
        pass

    def revert(self, context, volume_api, volume_id, *args, **kwargs):
        volume_api.roll_detaching(context, volume_id)


class DriverDetach(task.Task):
    """The hypervisor removes the device (and waits until the guest let it
    go); whether there was one to remove. Revert attaches it again.

    Inputs: ``driver``, ``context``, ``instance``, ``connection_info``,
    ``device_name``.
    """

    default_provides = "device_was_attached"

    def execute(self, driver, context, instance, connection_info, device_name):
        try:
            driver.detach_volume(context, connection_info, instance, device_name)
        except (exception.DeviceNotFound, exception.InstanceNotFound):
            # Already gone (a re-run after a crash, or a guest that lost
            # it): the volume can be released all the same.
            return False
        return True

    def revert(self, driver, context, instance, connection_info, device_name, result,
               *args, **kwargs):
        if result is False:
            return  # there was no device to detach
        # After success, or a failure that may have come after the device
        # went: attach it again unless it is still there.
        try:
            driver.attach_volume(context, connection_info, instance, device_name,
                                 disk_bus="virtio", device_type="disk")
        except exception.DeviceInUse:
            pass


class DestroyBdm(task.Task):
    """Soft-delete the BDM (freeing its device name). Revert restores it.
    Inputs: ``bdm_uuid``."""

    def execute(self, bdm_uuid):
        db_bd.destroy(bdm_uuid)

    def revert(self, bdm_uuid, *args, **kwargs):
        db_bd.restore(bdm_uuid)  # a no-op when the row was never deleted


class DeleteAttachment(task.Task):
    """Delete the attachment: the volume service terminates the connection
    (export and ACL gone) and the volume becomes ``available``. Idempotent.
    Inputs: ``context``, ``volume_api``, ``attachment_id``."""

    def execute(self, context, volume_api, attachment_id):
        volume_api.attachment_delete(context, attachment_id)


def get_flow() -> linear_flow.Flow:
    """The detach flow (module level: the runner rebuilds it on recovery)."""
    return linear_flow.Flow("detach_volume").add(
        RollDetachingOnFailure("roll_detaching_on_failure"),
        DriverDetach("driver_detach"),
        DestroyBdm("destroy_bdm"),
        DeleteAttachment("delete_attachment"))
