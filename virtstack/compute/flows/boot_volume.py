"""Boot from volume: the volume tasks of the spawn flow.

For volume ``i`` of a new server (its boot volume, ``boot_index`` 0, and any
extra volumes; their BDM rows were made by the API with device names):

    [CreateVolumeFromImage_i → WaitForVolume_i]     only for source_type image
    CreateAttachment_i → UpdateAttachment_i → SaveConnectionInfo_i
    ... BuildBlockDeviceInfo → DriverSpawn → CompleteAttachment_i ...

The attachment tasks are the attach flow's, bound to per-volume names
(``volume_id_i``, ``attachment_id_i``, ``connection_info_i``); there is no
DriverAttach: the driver's spawn gets the volumes in ``block_device_info``.
A failure reverts them like an attach: attachments deleted (volumes back to
``available``), and volumes made from the image deleted.

Inputs of the volume specs (``volumes`` of ``add_prepare_tasks``, persisted
as the factory's arguments): ``bdm_uuid``, ``volume_id`` (None when the
volume is made from ``image_id``), ``image_id``, ``volume_size`` (GiB).
Transient inputs: ``context``, ``volume_api``, ``driver``, ``instance``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack import context as vs_context
from virtstack import exception
from virtstack.compute.flows import attach
from virtstack.conf import CONF
from virtstack.db import block_device as db_bd

#: Seconds between looks at a volume being made.
POLL_INTERVAL = 0.25


class CreateVolumeFromImage(task.Task):
    """Ask the volume service for a volume made from the image and record it
    on the BDM; its id. Revert deletes the volume.

    Inputs: ``context``, ``volume_api``, ``bdm_uuid``, ``image_id``,
    ``volume_size``.
    """

    def execute(self, context, volume_api, bdm_uuid, image_id, volume_size):
        # Run again after a crash, this finds the volume it asked for.
        made = db_bd.get(bdm_uuid).volume_id
        if made:
            return made
        volume = volume_api.create(context, volume_size, image_id=image_id)
        db_bd.update(bdm_uuid, {"volume_id": volume.id})
        return volume.id

    def revert(self, context, volume_api, bdm_uuid, result, *args, **kwargs):
        if not isinstance(result, str):
            # Failed (perhaps after asking): the BDM says what was made.
            result = db_bd.get(bdm_uuid).volume_id
            if not result:
                return
        db_bd.update(bdm_uuid, {"volume_id": None})
        # Forced: the volume may still be 'creating' (the wait timed out);
        # force never skips the check that it is not attached.
        try:
            volume_api.delete(vs_context.get_admin_context(), result, force=True)
        except exception.VolumeNotFound:
            pass


class WaitForVolume(task.Task):
    """Wait (polling, with ``[compute] block_device_allocate_timeout``) until
    the volume is ``available``; ``InvalidVolume`` if it goes to ``error``.
    Inputs: ``context``, ``volume_api``, ``volume_id``."""

    def execute(self, context, volume_api, volume_id):
        deadline = time.monotonic() + CONF.compute.block_device_allocate_timeout
        tick = threading.Event()
        while True:
            status = volume_api.get(context, volume_id).status
            if status == "available":
                return
            if status.startswith("error"):
                raise exception.InvalidVolume(
                    reason=f"volume {volume_id} went to {status} while it was being made "
                           f"for the server to boot from")
            if time.monotonic() >= deadline:
                raise exception.InvalidVolume(
                    reason=f"volume {volume_id} did not become available within "
                           f"{CONF.compute.block_device_allocate_timeout}s (status {status})")
            tick.wait(POLL_INTERVAL)


class BuildBlockDeviceInfo(task.Task):
    """The ``block_device_info`` the driver's spawn gets, from the BDM rows.
    Inputs: ``instance_uuid``."""

    default_provides = "block_device_info"

    def execute(self, instance_uuid):
        from virtstack.compute import block_devices
        return block_devices.block_device_info(db_bd.list_for_instance(instance_uuid))


def _names(i: int) -> dict[str, str]:
    return {"volume_id": f"volume_id_{i}", "attachment_id": f"attachment_id_{i}",
            "connection_info": f"connection_info_{i}"}


def add_prepare_tasks(flow: linear_flow.Flow, volumes: Sequence[dict[str, Any]]) -> None:
    """Add, for each volume spec, the tasks that make it (if from an image)
    and export it to this host; then BuildBlockDeviceInfo."""
    flow.add(attach.GetConnector("get_connector"))
    for i, spec in enumerate(volumes):
        names = _names(i)
        # The volume's id: known (an existing volume) or made by a task here.
        volume: dict[str, Any]
        if spec.get("volume_id"):
            volume = {"inject": {"volume_id": spec["volume_id"]}}
        else:
            flow.add(
                CreateVolumeFromImage(f"create_volume_{i}", provides=names["volume_id"], inject={
                    "bdm_uuid": spec["bdm_uuid"], "image_id": spec["image_id"],
                    "volume_size": spec["volume_size"]}),
                WaitForVolume(f"wait_volume_{i}", rebind={"volume_id": names["volume_id"]}))
            volume = {"rebind": {"volume_id": names["volume_id"]}}
        save_inject = dict(volume.get("inject", {}), bdm_uuid=spec["bdm_uuid"])
        save_rebind = dict(volume.get("rebind", {}), attachment_id=names["attachment_id"],
                           connection_info=names["connection_info"])
        flow.add(
            attach.CreateAttachment(f"create_attachment_{i}", provides=names["attachment_id"],
                                    **volume),
            # The device name goes to the volume service as the attachment's
            # mountpoint (what the volume's attachments list shows).
            attach.UpdateAttachment(f"update_attachment_{i}", provides=names["connection_info"],
                                    rebind={"attachment_id": names["attachment_id"]},
                                    inject={"device_name": spec.get("device_name")}),
            attach.SaveConnectionInfo(f"save_connection_info_{i}", inject=save_inject,
                                      rebind=save_rebind))
    flow.add(BuildBlockDeviceInfo("build_block_device_info"))


def add_complete_tasks(flow: linear_flow.Flow, volumes: Sequence[dict[str, Any]]) -> None:
    """Add, for each volume spec, the task that marks it ``in-use``."""
    for i, _spec in enumerate(volumes):
        flow.add(attach.CompleteAttachment(
            f"complete_attachment_{i}", rebind={"attachment_id": _names(i)["attachment_id"]}))
