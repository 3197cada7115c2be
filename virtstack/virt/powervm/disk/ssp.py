"""Boot disks as logical units of a Shared Storage Pool.

``[powervm] cluster_name`` names the SSP cluster (empty: the only one). An
image is uploaded once into an image LU (``image_<image id>``); each boot
disk is a thin linked clone of it (``boot_<instance uuid>``), made by the
pool without copying data. Deleting the last clone of an image deletes the
image LU too (pypowervm ``rm_tier_storage(del_unused_images=True)``): that
is this adapter's image-cache management. Every VIOS of the cluster sees the
pool, so disks survive a move to another host of the cluster.
"""

from __future__ import annotations

import logging
import os
import threading
import types
from typing import Any, Mapping

from pypowervm.tasks import storage as pvm_stg
from pypowervm.wrappers import cluster as pvm_clust
from pypowervm.wrappers import managed_system as pvm_ms
from pypowervm.wrappers import storage as pvm_stor

from virtstack import exception
from virtstack.objects import ImageMeta, Instance
from virtstack.virt.powervm.disk.driver import DiskAdapter

LOG = logging.getLogger(__name__)

_image_locks: dict[str, threading.Lock] = {}
_image_locks_guard = threading.Lock()


def _image_lock(name: str) -> threading.Lock:
    with _image_locks_guard:
        return _image_locks.setdefault(name, threading.Lock())


class SSPDisk(DiskAdapter):
    name = "ssp"
    capabilities: Mapping[str, bool] = types.MappingProxyType(
        {"shared_storage": True, "has_imagecache": True, "snapshot": False})

    def __init__(self, adapter: Any, host_uuid: str, cluster_name: str = "") -> None:
        super().__init__(adapter, host_uuid)
        clusters = pvm_clust.Cluster.get(adapter)
        if cluster_name:
            clusters = [c for c in clusters if c.name == cluster_name]
        if len(clusters) != 1:
            raise exception.ConfigError(reason=(
                f"[powervm] cluster_name: {len(clusters)} SSP clusters match "
                f"{cluster_name!r}; exactly one is needed"))
        self._cluster = clusters[0]
        self._ssp_uuid = self._cluster.ssp_uuid
        ssp = pvm_stor.SSP.get(adapter, uuid=self._ssp_uuid)
        self._tier = pvm_stg.default_tier_for_ssp(ssp)
        # The cluster spans hosts; this host maps through its own VIOSes.
        host_mtms = pvm_ms.System.get(adapter, uuid=host_uuid).mtms.mtms_str
        self._vios = [node.vios_uuid for node in self._cluster.nodes
                      if node.mtms is not None and node.mtms.mtms_str == host_mtms]
        if not self._vios:
            raise exception.ConfigError(reason=(
                f"SSP cluster {self._cluster.name} has no node on this host ({host_mtms})"))

    @staticmethod
    def boot_name(instance: Instance) -> str:
        return "boot_" + instance.uuid

    @staticmethod
    def image_name(image_id: str) -> str:
        return "image_" + image_id

    def storage_class(self) -> type:
        return pvm_stor.LU

    def _lus(self) -> list[pvm_stor.LUEnt]:
        return pvm_stor.LUEnt.get(self.adapter, parent=self._tier)

    def _find(self, name: str) -> pvm_stor.LUEnt | None:
        return next((lu for lu in self._lus() if lu.name == name), None)

    def capacity_gb(self) -> tuple[float, float]:
        ssp = pvm_stor.SSP.get(self.adapter, uuid=self._ssp_uuid)
        return float(ssp.capacity), float(ssp.capacity) - float(ssp.free_space)

    def vios_uuids(self) -> list[str]:
        return list(self._vios)

    def find_boot_disk(self, instance: Instance) -> pvm_stor.LUEnt | None:
        return self._find(self.boot_name(instance))

    def _image_lu(self, image_meta: ImageMeta, image_path: str) -> pvm_stor.LUEnt:
        name = self.image_name(image_meta.id)
        with _image_lock(name):
            cached = self._find(name)
            if cached is not None:
                return cached
            size = os.path.getsize(image_path)
            LOG.info("Uploading image %s (%d bytes) into SSP LU %s", image_meta.id, size, name)
            with open(image_path, "rb") as stream:
                _, lu, _ = pvm_stg.upload_new_lu(self.vios_uuids()[0],
                                                 pvm_stor.SSP.get(self.adapter,
                                                                  uuid=self._ssp_uuid),
                                                 stream, name, size, return_ssp=True)
            return self._find(name) or lu

    def create_disk_from_image(self, instance: Instance, image_meta: ImageMeta,
                               image_path: str, size_gb: int) -> pvm_stor.LUEnt:
        existing = self.find_boot_disk(instance)
        if existing is not None:
            return existing
        image_lu = self._image_lu(image_meta, image_path)
        _, lu = pvm_stg.crt_lu(self._tier, self.boot_name(instance),
                               max(float(size_gb), float(image_lu.capacity)), thin=True,
                               typ=pvm_stor.LUType.DISK, clone=image_lu)
        return lu

    # remove_unused_images: the default (nothing). The pool deletes an image
    # LU with its last linked clone (delete_disks), so none is ever unused.

    def delete_disks(self, instance: Instance) -> list[str]:
        disk = self.find_boot_disk(instance)
        if disk is None:
            return []
        pvm_stg.rm_tier_storage([disk], tier=self._tier, del_unused_images=True)
        LOG.info("Deleted logical unit %s of %s", disk.name, instance.uuid)
        return [disk.name]
