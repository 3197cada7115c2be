"""The disk-adapter interface: where an instance's boot disk lives and how
it reaches the LPAR.

A disk adapter makes the boot disk from an image, maps it to the LPAR over
virtual SCSI through the VIOSes that serve its storage, unmaps it and
deletes it. Mapping changes are *subtasks added to a pypowervm FeedTask*
over the VIOS feed (the caller executes the FeedTask, so several changes go
to a VIOS in one POST, retried from a fresh GET when its etag is stale).

Names: an instance's boot disk is ``boot_name(instance)``; an image's cached
copy is ``image_name(image_id)``. Both are derived from ids, so a retried
step finds what an earlier try made.
"""

from __future__ import annotations

import abc
import types
from typing import Any, Mapping

from pypowervm.tasks import scsi_mapper as pvm_smap
from pypowervm.utils import transaction as pvm_tx

from virtstack.objects import ImageMeta, Instance
from virtstack.virt.powervm import vm

GiB = 1024 ** 3


class DiskAdapter(abc.ABC):
    """Boot disks of instances on one kind of PowerVM storage.

    ``capabilities`` (class level, read-only):

    - ``shared_storage``: every host of the cluster sees the disks, so a
      resize or cold migration moves no data;
    - ``has_imagecache``: images are kept on the storage and copied per
      instance;
    - ``snapshot``: ``capture`` can read an instance's boot disk back.
    """

    name: str = "base"
    capabilities: Mapping[str, bool] = types.MappingProxyType(
        {"shared_storage": False, "has_imagecache": False, "snapshot": False})

    def __init__(self, adapter: Any, host_uuid: str) -> None:
        self.adapter = adapter
        self.host_uuid = host_uuid

    # -- naming ----------------------------------------------------------------------

    @staticmethod
    def boot_name(instance: Instance) -> str:
        """The boot disk's name: ``b_`` and 13 hex digits of the instance uuid
        (virtual disk names are at most 15 characters)."""
        return "b_" + instance.uuid.replace("-", "")[:13]

    @staticmethod
    def image_name(image_id: str) -> str:
        """The cached image's name: ``i_`` and 13 hex digits of the image id."""
        return "i_" + image_id.replace("-", "")[:13]

    # -- storage ---------------------------------------------------------------------

    @abc.abstractmethod
    def capacity_gb(self) -> tuple[float, float]:
        """(total, used) GB of the storage boot disks are made on."""

    @abc.abstractmethod
    def vios_uuids(self) -> list[str]:
        """UUIDs of the VIOSes that serve this storage (and map it)."""

    @abc.abstractmethod
    def create_disk_from_image(self, instance: Instance, image_meta: ImageMeta,
                               image_path: str, size_gb: int) -> Any:
        """Make the instance's boot disk holding the image at ``image_path``
        (a local file), at least ``size_gb`` GB (0: the image's size).

        Returns the pypowervm storage element (``VDisk`` or ``LU``).
        Idempotent: an existing boot disk of the instance is returned as is.
        """

    @abc.abstractmethod
    def find_boot_disk(self, instance: Instance) -> Any | None:
        """The instance's boot disk element, or None."""

    @abc.abstractmethod
    def delete_disks(self, instance: Instance) -> list[str]:
        """Delete the instance's boot disk (unmapped first by the caller);
        the names deleted. Deleting what is not there succeeds."""

    def remove_unused_images(self, min_age_seconds: float) -> list[str]:
        """Delete cached images no instance uses that have been unused for
        ``min_age_seconds``; the names deleted. Adapters whose storage cleans
        its own cache (or has none) keep this default: nothing to do."""
        return []

    def capture(self, instance: Instance) -> Any:
        """Read the boot disk back (snapshot). Adapters that cannot keep the
        ``snapshot`` capability False and inherit this."""
        from virtstack import exception
        raise exception.NotSupported(operation="snapshot", driver=f"powervm ({self.name})")

    # -- mappings ----------------------------------------------------------------------

    def target_name(self, instance: Instance) -> str:
        """vSCSI target device name of the boot disk (VIOS-wide unique)."""
        return "vtb" + instance.uuid.replace("-", "")[:12]

    def connect_disk(self, instance: Instance, disk: Any, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Add, per VIOS of this storage, a subtask mapping ``disk`` to the
        instance's LPAR (no change when the mapping is there already)."""
        lpar_uuid = vm.pvm_uuid(instance)
        target = self.target_name(instance)

        def add(vios_w):
            mapping = pvm_smap.build_vscsi_mapping(None, vios_w, lpar_uuid, disk,
                                                   target_name=target)
            return pvm_smap.add_map(vios_w, mapping)

        for vios_uuid in self.vios_uuids():
            stg_ftsk.wrapper_tasks[vios_uuid].add_functor_subtask(add)

    def disconnect_disk(self, instance: Instance, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Add, per VIOS, a subtask removing the mappings of the instance's
        boot disk (nothing to do when there are none)."""
        lpar_uuid = vm.pvm_uuid(instance)
        names = [self.boot_name(instance)]

        def remove(vios_w):
            return pvm_smap.remove_maps(
                vios_w, lpar_uuid, match_func=pvm_smap.gen_match_func(
                    self.storage_class(), names=names))

        for vios_uuid in self.vios_uuids():
            stg_ftsk.wrapper_tasks[vios_uuid].add_functor_subtask(remove)

    @abc.abstractmethod
    def storage_class(self) -> type:
        """The pypowervm wrapper class of this adapter's disks (VDisk, LU)."""
