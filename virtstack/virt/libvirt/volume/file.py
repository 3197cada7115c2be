"""Volumes that are files on this host (``driver_volume_type`` ``file`` or
``local``): QEMU opens the file itself, as ``<disk type='file'>``.

libvirt gives the file to QEMU's user for the time it is attached
(``dynamic_ownership``) and gives it back on detach, so the volume service
may keep its files root-owned; every directory on the way must be
traversable, as for instance disks.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.libvirt import designer
from virtstack.virt.libvirt.volume import base

FORMATS = ("raw", "qcow2")


@functools.lru_cache(maxsize=64)
def _direct_io(dirpath: str) -> bool:
    # One probe per directory per process: volumes of one backend share it.
    return designer.supports_direct_io(dirpath)


class FileVolumeConnector(base.VolumeConnector):
    """``{"driver_volume_type": "file", "data": {"volume_id": "8f1e...",
    "device_path": "/var/lib/virtstack/volumes/volume-8f1e...", "format":
    "raw", "access_mode": "rw"}}`` -> a file disk of that path and format."""

    def connect(self, connection_info: dict[str, Any], instance: Instance) -> designer.VolumeSource:
        data = base.volume_data(connection_info, "device_path")
        path, fmt = data["device_path"], data.get("format") or "raw"
        if fmt not in FORMATS:
            raise exception.Invalid(reason=f"volume {data['volume_id']}: format {fmt!r} is not "
                                           f"one of {', '.join(FORMATS)}")
        if not os.path.isfile(path):
            raise exception.Invalid(reason=f"volume {data['volume_id']}: {path} is not a file "
                                           "on this host")
        return designer.VolumeSource(volume_id=data["volume_id"], source_type="file", path=path,
                                     format=fmt, direct_io=_direct_io(os.path.dirname(path)),
                                     read_only=base.read_only(data))

    def disconnect(self, connection_info: dict[str, Any], instance: Instance) -> None:
        """Nothing to undo: the file stays where the volume service keeps it."""
