"""Boot disks as logical volumes (virtual disks) in a VIOS volume group.

``[powervm] volume_group_name`` names the group (empty: ``rootvg``). An
image is uploaded once into a cached virtual disk (``i_<image>``) and each
instance's boot disk is a copy of it made by the VIOS (``crt_copy_vdisk``
with the cached disk as ``BaseImage``): no image data crosses the REST API
after the first spawn. Storage is local to this host's VIOS.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import types
from typing import Any, Mapping

from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import storage as pvm_stg
from pypowervm.wrappers import storage as pvm_stor
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack import exception
from virtstack.objects import ImageMeta, Instance
from virtstack.virt.powervm.disk.driver import GiB, DiskAdapter

LOG = logging.getLogger(__name__)
DEFAULT_VG = "rootvg"

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

    def _cached_image(self, image_meta: ImageMeta, image_path: str) -> pvm_stor.VDisk:
        """The image's cached virtual disk, uploaded on first use (one upload
        per image at a time in this process)."""
        name = self.image_name(image_meta.id)
        with _image_lock(name):
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
        cached = self._cached_image(image_meta, image_path)
        image_bytes = int(math.ceil(float(cached.capacity) * GiB))
        return pvm_stg.crt_copy_vdisk(self.adapter, self._vios_uuid, self._vg_uuid,
                                      cached.udid, image_bytes, self.boot_name(instance),
                                      d_size=max(size_gb * GiB, image_bytes),
                                      file_format=cached.file_format)

    def delete_disks(self, instance: Instance) -> list[str]:
        disk = self.find_boot_disk(instance)
        if disk is None:
            return []
        pvm_stg.rm_vg_storage(self._vg(), vdisks=[disk])
        LOG.info("Deleted virtual disk %s of %s", disk.name, instance.uuid)
        return [disk.name]
