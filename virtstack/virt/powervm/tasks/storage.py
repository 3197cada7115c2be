"""Tasks on disks, volumes and VIOS mappings.

Mapping changes go through a pypowervm FeedTask over the active VIOSes
(``vios_feed_task``): the subtasks of one step reach each VIOS in one POST,
and a POST refused for a stale etag is redone from a fresh GET.

Inputs: ``adapter``, ``instance``, ``disk_adapter`` (disk.driver.DiskAdapter),
``image_meta``, ``image_path`` (local file of the image), ``block_device_info``
(``{"block_device_mapping": [{"connection_info": ..., "mount_device":
"/dev/vdb"}]}``), ``volume_factory`` (``(connection_info) ->
volume.driver.VolumeAdapter``), for one volume ``connection_info`` and
``mountpoint``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from pypowervm import const as pvm_const
from pypowervm.tasks import partition as pvm_tpar
from pypowervm.tasks import scsi_mapper as pvm_smap
from pypowervm.tasks import vfc_mapper as pvm_vfcm
from pypowervm.utils import transaction as pvm_tx
from taskflow import task

from virtstack.virt.powervm import vm

LOG = logging.getLogger(__name__)

ALL_MAPPING_XAGS = (pvm_const.XAG.VIO_STOR, pvm_const.XAG.VIO_SMAP, pvm_const.XAG.VIO_FMAP)


def vios_feed_task(adapter, name: str) -> pvm_tx.FeedTask:
    """A FeedTask over the active VIOSes, carrying their storage and mappings."""
    return pvm_tpar.build_active_vio_feed_task(adapter, name=name, xag=list(ALL_MAPPING_XAGS))


def _volumes(block_device_info) -> list[dict[str, Any]]:
    return list((block_device_info or {}).get("block_device_mapping") or [])


class CreateDiskFromImage(task.Task):
    """Make the boot disk from the image; provides ``boot_disk`` (the
    pypowervm storage element). Revert deletes the instance's boot disk
    (by name, so also one a failed try half made)."""

    default_provides = "boot_disk"

    def execute(self, disk_adapter, instance, image_meta, image_path: str):
        return disk_adapter.create_disk_from_image(instance, image_meta, image_path,
                                                   instance.flavor.root_gb)

    def revert(self, disk_adapter, instance, *args: Any, **kwargs: Any) -> None:
        disk_adapter.delete_disks(instance)


class ConnectDisk(task.Task):
    """Map the boot disk to the LPAR; revert removes the mapping."""

    def execute(self, adapter, disk_adapter, instance, boot_disk) -> None:
        ftsk = vios_feed_task(adapter, "connect_disk")
        disk_adapter.connect_disk(instance, boot_disk, ftsk)
        ftsk.execute()

    def revert(self, adapter, disk_adapter, instance, *args: Any, **kwargs: Any) -> None:
        ftsk = vios_feed_task(adapter, "disconnect_disk")
        disk_adapter.disconnect_disk(instance, ftsk)
        ftsk.execute()


class DisconnectDisk(task.Task):
    """Unmap the boot disk (destroy, snapshot clean-up; idempotent)."""

    def execute(self, adapter, disk_adapter, instance) -> None:
        ftsk = vios_feed_task(adapter, "disconnect_disk")
        disk_adapter.disconnect_disk(instance, ftsk)
        ftsk.execute()

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class DeleteDisks(task.Task):
    """Delete the boot disk (destroy; cannot be undone)."""

    def execute(self, disk_adapter, instance) -> None:
        disk_adapter.delete_disks(instance)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class ConnectVolumes(task.Task):
    """Attach the volumes to boot with (block-device mappings), all in one
    FeedTask; revert detaches every one of them."""

    def execute(self, adapter, instance, block_device_info,
                volume_factory: Callable[[dict[str, Any]], Any]) -> None:
        volumes = _volumes(block_device_info)
        if not volumes:
            return
        ftsk = vios_feed_task(adapter, "connect_volumes")
        for bdm in volumes:
            volume_factory(bdm["connection_info"]).connect_volume(bdm["mount_device"], ftsk)
        ftsk.execute()

    def revert(self, adapter, instance, block_device_info, volume_factory, *args: Any,
               **kwargs: Any) -> None:
        _disconnect(adapter, _volumes(block_device_info), volume_factory)


class DisconnectVolumes(task.Task):
    """Detach the block-device-mapped volumes (destroy; idempotent)."""

    def execute(self, adapter, instance, block_device_info, volume_factory) -> None:
        _disconnect(adapter, _volumes(block_device_info), volume_factory)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


def _disconnect(adapter, volumes: list[dict[str, Any]], volume_factory) -> None:
    if not volumes:
        return
    ftsk = vios_feed_task(adapter, "disconnect_volumes")
    adapters = [(volume_factory(bdm["connection_info"]), bdm["mount_device"]) for bdm in volumes]
    for volume, mountpoint in adapters:
        volume.disconnect_volume(mountpoint, ftsk)
    ftsk.execute()
    for volume, _ in adapters:
        volume.cleanup()


class ConnectVolume(task.Task):
    """Attach one volume at ``mountpoint``; revert detaches it."""

    def execute(self, adapter, connection_info, mountpoint: str, volume_factory) -> None:
        ftsk = vios_feed_task(adapter, "connect_volume")
        volume_factory(connection_info).connect_volume(mountpoint, ftsk)
        ftsk.execute()

    def revert(self, adapter, connection_info, mountpoint: str, volume_factory, *args: Any,
               **kwargs: Any) -> None:
        _disconnect(adapter, [{"connection_info": connection_info, "mount_device": mountpoint}],
                    volume_factory)


class DisconnectVolume(task.Task):
    """Detach one volume: its mappings, then host devices nothing uses.
    Revert is a no-op: a detach that failed half-way is retried, not undone."""

    def execute(self, adapter, connection_info, mountpoint: str, volume_factory) -> None:
        _disconnect(adapter, [{"connection_info": connection_info, "mount_device": mountpoint}],
                    volume_factory)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class RemoveLeftoverMappings(task.Task):
    """Remove every vSCSI and vFC mapping still pointing at the LPAR (media,
    volumes not in the block-device info, NPIV ports) before it is deleted,
    so no VIOS keeps a mapping to a partition that is gone. Idempotent."""

    def execute(self, adapter, instance) -> None:
        lpar_uuid = vm.pvm_uuid(instance)
        ftsk = vios_feed_task(adapter, "remove_leftover_mappings")
        ftsk.add_functor_subtask(pvm_smap.remove_maps, lpar_uuid, include_orphans=False)
        ftsk.add_functor_subtask(pvm_vfcm.remove_maps, lpar_uuid)
        ftsk.execute()

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass
