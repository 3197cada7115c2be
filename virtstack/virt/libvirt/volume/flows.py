"""Attaching a volume to a libvirt guest, as a TaskFlow flow of thin tasks.

``get_attach_flow()`` (module level, as ``FlowRunner`` wants)::

    CheckTargetFree -> ConnectVolume -> DesignDisk -> AttachDisk

Each task makes one call and its ``revert`` undoes exactly that, by what
exists rather than by a result that may be missing (TaskFlow reverts the
failing task too): a failed attach leaves no disk in the live or the
persistent definition and no host-side connection (CHAP secret, iSCSI
session). The compute manager serialises operations per instance, so a disk
found at the target after ``CheckTargetFree`` passed is this flow's own.

Inputs (all transient: an attach is short and is simply asked for again):

- ``guest``: the ``guest.Guest``; ``instance``: ``objects.Instance``;
- ``connector``: the ``volume.base.VolumeConnector`` for the volume's type;
- ``connection_info``: what the volume service returned (holds secrets:
  never logged, never stored);
- ``target``: ``designer.VolumeTarget`` (where the volume goes in the guest);
- ``detach_timeout``, ``detach_attempts``: how AttachDisk's revert waits
  for a guest to release a disk that did get attached live.
"""

from __future__ import annotations

import logging
from typing import Any

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack import exception
from virtstack.virt.libvirt import designer

LOG = logging.getLogger(__name__)


class CheckTargetFree(task.Task):
    """``DeviceInUse`` if a disk already sits at the target, live or in the
    persistent definition; ``Conflict`` if the volume is attached already
    (at another target: attaching it twice would share, and on failure
    remove, its host-side connection)."""

    def execute(self, guest, target, connection_info) -> None:
        disks = guest.get_disks() + guest.get_disks(inactive=True)
        if any(disk.target_dev == target.dev for disk in disks):
            raise exception.DeviceInUse(device=f"/dev/{target.dev}", instance_id=guest.uuid)
        volume_id = (connection_info.get("data") or {}).get("volume_id")
        for disk in disks:
            if volume_id and disk.serial == volume_id:
                raise exception.Conflict(reason=f"volume {volume_id} is already attached to "
                                                f"instance {guest.uuid} at /dev/{disk.target_dev}")

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # only looked


class ConnectVolume(task.Task):
    """The host side (``VolumeConnector.connect``); provides ``volume_source``.
    Revert disconnects (idempotent, so also after a half-done connect)."""

    default_provides = "volume_source"

    def execute(self, connector, connection_info, instance) -> designer.VolumeSource:
        return connector.connect(connection_info, instance)

    def revert(self, connector, connection_info, instance, *args: Any, **kwargs: Any) -> None:
        connector.disconnect(connection_info, instance)


class DesignDisk(task.Task):
    """The volume's ``<disk>`` (designer policy); provides ``disk``."""

    default_provides = "disk"

    def execute(self, volume_source, target):
        return designer.build_volume_disk(volume_source, target)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # nothing made outside this process


class AttachDisk(task.Task):
    """Attach the disk live (when the guest runs) and persistently. Revert
    removes a disk at the target from wherever it got to."""

    def execute(self, guest, disk) -> None:
        guest.attach_device(disk, persistent=True, live=True)

    def revert(self, guest, target, detach_timeout: float, detach_attempts: int,
               *args: Any, **kwargs: Any) -> None:
        try:
            guest.detach_disk(target.dev, timeout=detach_timeout, attempts=detach_attempts)
            LOG.info("%s: removed %s again after a failed attach", guest, target.dev)
        except exception.DeviceNotFound:
            pass  # never got there


def get_attach_flow() -> linear_flow.Flow:
    return linear_flow.Flow("libvirt-attach-volume").add(
        CheckTargetFree("check_target_free"),
        ConnectVolume("connect_volume"),
        DesignDisk("design_disk"),
        AttachDisk("attach_disk"),
    )
