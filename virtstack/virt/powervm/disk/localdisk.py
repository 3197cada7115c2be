"""Boot disks as logical volumes (virtual disks) in a VIOS volume group.

``[powervm] volume_group_name`` names the group (empty: ``rootvg``). An
image is uploaded once into a cached virtual disk (``i_<image>``) and each
instance's boot disk is a copy of it made by the VIOS (a new virtual disk
with the cached disk as ``BaseImage``): no image data crosses the REST API
after the first spawn. Storage is local to this host's VIOS.

Image cache: a boot disk's ``DiskLabel`` names the cached disk it was
copied from (the REST API returns labels, not ``BaseImage``), which is how
``remove_unused_images`` tells which cached images instances use. PowerVM
keeps no time stamp on a virtual disk, so an image's age is counted by this
process: from the last spawn that used it or the last pass that found a
boot disk made from it, else from when this process first saw it. A
restart starts every clock again (it can only delay a removal).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import types
from typing import Any, Callable, Mapping

from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import storage as pvm_stg
from pypowervm.utils import retry as pvm_retry
from pypowervm.wrappers import storage as pvm_stor
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack import exception
from virtstack.objects import ImageMeta, Instance
from virtstack.virt.powervm.disk.driver import GiB, DiskAdapter

LOG = logging.getLogger(__name__)
DEFAULT_VG = "rootvg"
#: What ``DiskAdapter.image_name`` makes: only such disks are the cache's.
_CACHED_NAME = re.compile(r"^i_[0-9a-f]{13}$")

_image_locks: dict[str, threading.Lock] = {}
_image_locks_guard = threading.Lock()


def _image_lock(name: str) -> threading.Lock:
    with _image_locks_guard:
        return _image_locks.setdefault(name, threading.Lock())


class LocalDisk(DiskAdapter):
    name = "localdisk"
    capabilities: Mapping[str, bool] = types.MappingProxyType(
        {"shared_storage": False, "has_imagecache": True, "snapshot": False})

    def __init__(self, adapter: Any, host_uuid: str, volume_group_name: str = "") -> None:
        super().__init__(adapter, host_uuid)
        self.vg_name = volume_group_name or DEFAULT_VG
        try:
            vios_w, vg_w = pvm_stg.find_vg(adapter, self.vg_name)
        except pvm_exc.VGNotFound:
            raise exception.ConfigError(reason=(
                f"[powervm] volume_group_name: no VIOS has a volume group {self.vg_name}"))
        self._vios_uuid = vios_w.uuid
        self._vg_uuid = vg_w.uuid
        #: seconds (monotonic) at which each cached image was last known used
        self._last_used: dict[str, float] = {}
        #: the clock image ages are measured with (seconds; tests set their own)
        self.clock: Callable[[], float] = time.monotonic

    def storage_class(self) -> type:
        return pvm_stor.VDisk

    def _vg(self) -> pvm_stor.VG:
        return pvm_stor.VG.get(self.adapter, uuid=self._vg_uuid, parent_type=pvm_vios.VIOS,
                               parent_uuid=self._vios_uuid)

    def _find(self, name: str) -> pvm_stor.VDisk | None:
        return next((disk for disk in self._vg().virtual_disks if disk.name == name), None)

    def capacity_gb(self) -> tuple[float, float]:
        vg = self._vg()
        return float(vg.capacity), float(vg.capacity) - float(vg.available_size)

    def vios_uuids(self) -> list[str]:
        return [self._vios_uuid]

    def find_boot_disk(self, instance: Instance) -> pvm_stor.VDisk | None:
        return self._find(self.boot_name(instance))

    def _cached_image(self, name: str, image_meta: ImageMeta,
                      image_path: str) -> pvm_stor.VDisk:
        """The image's cached virtual disk ``name``, uploaded on first use.
        The caller holds the image's lock."""
        cached = self._find(name)
        if cached is not None:
            return cached
        size = os.path.getsize(image_path)
        LOG.info("Uploading image %s (%d bytes) into %s/%s", image_meta.id, size,
                 self.vg_name, name)
        file_format = (pvm_stor.FileFormatType.QCOW2 if image_meta.disk_format == "qcow2"
                       else None)
        with open(image_path, "rb") as stream:
            disk, _ = pvm_stg.upload_new_vdisk(self.adapter, self._vios_uuid, self._vg_uuid,
                                               stream, name, size, file_format=file_format)
        return disk

    def create_disk_from_image(self, instance: Instance, image_meta: ImageMeta,
                               image_path: str, size_gb: int) -> pvm_stor.VDisk:
        existing = self.find_boot_disk(instance)
        if existing is not None:
            return existing
        name = self.image_name(image_meta.id)
        # Held until the copy exists: the cache manager must not remove the
        # image between the two (one upload per image at a time, too).
        with _image_lock(name):
            cached = self._cached_image(name, image_meta, image_path)
            self._last_used[name] = self.clock()
            image_bytes = int(math.ceil(float(cached.capacity) * GiB))
            size = math.ceil(max(size_gb * GiB, image_bytes) / GiB)
            boot = pvm_stor.VDisk.bld(self.adapter, self.boot_name(instance), size,
                                      label=name, base_image=cached.udid,
                                      file_format=cached.file_format)
            vg = _add_vdisk(self._vg(), boot)
        return next(d for d in vg.virtual_disks if d.name == self.boot_name(instance))

    def remove_unused_images(self, min_age_seconds: float) -> list[str]:
        """Delete the cached images no boot disk was copied from that have
        been unused for ``min_age_seconds`` (see the module docstring for
        how age is counted); the names deleted. Each image is checked again
        under its lock, so a spawn copying it keeps it."""
        removed = []
        for name in sorted(d.name for d in self._vg().virtual_disks
                           if _CACHED_NAME.match(d.name or "")):
            with _image_lock(name):
                now = self.clock()
                vg = self._vg()
                cached = next((d for d in vg.virtual_disks if d.name == name), None)
                if cached is None:
                    self._last_used.pop(name, None)
                    continue
                if any(d.label == name for d in vg.virtual_disks if d.name != name):
                    self._last_used[name] = now
                    continue
                if now - self._last_used.setdefault(name, now) < min_age_seconds:
                    continue
                pvm_stg.rm_vg_storage(vg, vdisks=[cached])
                self._last_used.pop(name, None)
                removed.append(name)
                LOG.info("Removed cached image %s/%s: no instance uses it", self.vg_name, name)
        return removed

    def delete_disks(self, instance: Instance) -> list[str]:
        disk = self.find_boot_disk(instance)
        if disk is None:
            return []
        pvm_stg.rm_vg_storage(self._vg(), vdisks=[disk])
        LOG.info("Deleted virtual disk %s of %s", disk.name, instance.uuid)
        return [disk.name]


@pvm_retry.retry(argmod_func=pvm_retry.refresh_wrapper, tries=60,
                 delay_func=pvm_retry.STEPPED_RANDOM_DELAY)
def _add_vdisk(vg: pvm_stor.VG, vdisk: pvm_stor.VDisk) -> pvm_stor.VG:
    """Add ``vdisk`` to the volume group (the VIOS makes it, copying its
    ``BaseImage``); redone from a fresh read when the etag was stale. A disk
    of that name already there is kept."""
    if not any(d.name == vdisk.name for d in vg.virtual_disks):
        vg.virtual_disks.append(vdisk)
        vg = vg.update()
    return vg
