"""The ``file`` volume backend (the default): volumes are files that QEMU on
this same host opens directly.

Files live in ``[volume] volumes_dir`` (default ``state_path/volumes``;
layout and permissions in ``filestore``). New volumes take ``[volume]
file_format``; each volume's and snapshot's format is its
``provider_location`` (``"raw"`` or ``"qcow2"``), so changing the option
never makes an existing file be read in the wrong format. Only compute
hosts that see the same path can attach these volumes: all-in-one, or a
shared filesystem.

connection_info::

    {"driver_volume_type": "file",
     "data": {"volume_id": "<id>", "device_path": "/var/lib/virtstack/volumes/volume-<id>",
              "format": "raw", "access_mode": "rw"}}
"""

from __future__ import annotations

import os
import types
from typing import Any

from oslo_config import cfg

from virtstack import exception
from virtstack.volume.backends import filestore
from virtstack.volume.backends.base import ModelUpdate, SnapshotRef, VolumeBackend, VolumeRef


def volumes_dir(conf: cfg.ConfigOpts) -> str:
    """``[volume] volumes_dir``, or ``state_path/volumes``."""
    return conf.volume.volumes_dir or os.path.join(conf.state_path, "volumes")


class FileBackend(VolumeBackend):
    """Sparse raw or qcow2 files; snapshots and clones are full copies."""

    name = "file"
    capabilities = types.MappingProxyType({
        "driver_volume_type": "file",
        "thin_provisioning": True,
        # raw: the file grows under QEMU, which libvirt's blockResize tells.
        # qcow2: only QEMU may touch an open qcow2, so detached only.
        "online_extend": True,
    })

    def __init__(self, host: str, conf: cfg.ConfigOpts | None = None) -> None:
        super().__init__(host)
        if conf is None:
            from virtstack.conf import CONF as conf
        self.conf = conf
        self.store = filestore.VolumeFileStore(volumes_dir(conf))
        self.file_format: str = conf.volume.file_format
        self.capabilities = types.MappingProxyType(
            {**type(self).capabilities, "online_extend": self.file_format == "raw"})

    # -- service ----------------------------------------------------------------

    def check_setup(self) -> None:
        self.store.prepare()
        blocked = filestore.unreachable_dirs(self.store.directory)
        if blocked:
            raise exception.VolumeBackendError(
                reason=f"QEMU (user libvirt-qemu) cannot reach volumes in "
                       f"{self.store.directory}: {', '.join(blocked)} must be traversable "
                       f"by others (chmod o+x), or set [volume] volumes_dir elsewhere")

    def get_capacity(self) -> dict[str, int]:
        return self.store.capacity(self.conf.volume.capacity_gb)

    # -- volumes ------------------------------------------------------------------

    def _format(self, provider_location: str | None) -> str:
        # Rows made before provider_location held the format have none.
        return provider_location or self.file_format

    def create_volume(self, volume: VolumeRef) -> ModelUpdate:
        self.store.create(self.store.volume_path(volume.id), volume.size, self.file_format)
        return {"provider_location": self.file_format}

    def create_volume_from_snapshot(self, volume: VolumeRef, snapshot: SnapshotRef) -> ModelUpdate:
        self.store.copy(self.store.snapshot_path(snapshot.id),
                        self._format(snapshot.provider_location),
                        self.store.volume_path(volume.id), self.file_format, volume.size)
        return {"provider_location": self.file_format}

    def create_cloned_volume(self, volume: VolumeRef, source: VolumeRef) -> ModelUpdate:
        self.store.copy(self.store.volume_path(source.id), self._format(source.provider_location),
                        self.store.volume_path(volume.id), self.file_format, volume.size)
        return {"provider_location": self.file_format}

    def copy_image_to_volume(self, volume: VolumeRef, image_path: str, disk_format: str) -> None:
        self.store.write_image(image_path, disk_format, self.store.volume_path(volume.id),
                               self._format(volume.provider_location))

    def delete_volume(self, volume: VolumeRef) -> None:
        # Snapshots are independent copies: nothing depends on the volume.
        self.store.delete(self.store.volume_path(volume.id))

    def extend_volume(self, volume: VolumeRef, new_size: int) -> None:
        self.store.grow(self.store.volume_path(volume.id), self._format(volume.provider_location),
                        new_size)

    # -- snapshots ----------------------------------------------------------------

    def create_snapshot(self, snapshot: SnapshotRef, volume: VolumeRef) -> ModelUpdate:
        fmt = self._format(volume.provider_location)
        self.store.copy(self.store.volume_path(volume.id), fmt,
                        self.store.snapshot_path(snapshot.id), fmt, volume.size)
        return {"provider_location": fmt}

    def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        self.store.delete(self.store.snapshot_path(snapshot.id))

    # -- export -------------------------------------------------------------------

    def initialize_connection(self, volume: VolumeRef, connector: dict[str, Any]) -> dict[str, Any]:
        path = self.store.volume_path(volume.id)
        if not os.path.exists(path):
            raise exception.VolumeBackendError(reason=f"volume file {path} does not exist")
        return {"driver_volume_type": "file",
                "data": {"volume_id": volume.id, "device_path": path,
                         "format": self._format(volume.provider_location),
                         "access_mode": "rw"}}

    def terminate_connection(self, volume: VolumeRef, connector: dict[str, Any] | None) -> None:
        """Nothing to revoke: a file has no per-host access list."""

    # -- host-side access -----------------------------------------------------------

    def local_path(self, volume: VolumeRef) -> str:
        """The volume's file. For a qcow2 volume (``provider_location ==
        "qcow2"``) these are qcow2 bytes, not the volume's: read it through
        qemu-img (``qemu-img convert -f qcow2 -O raw``)."""
        return self.store.volume_path(volume.id)
