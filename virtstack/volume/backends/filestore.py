"""Volumes and snapshots as sparse files in one directory, made with qemu-img.

Shared by the ``file`` backend (which hands the files to QEMU) and the
``iscsi`` backend (which exports them through tgt)::

    <volumes_dir>/volume-<id>         a volume (raw or qcow2)
    <volumes_dir>/snapshot-<id>       a snapshot: a full, independent copy
    <volumes_dir>/<name>.part         being made; renamed when complete

A file only appears under its final name when it is complete, so a create
that a crash interrupted is simply done again. Snapshots are full sparse
copies rather than qcow2 backing chains: a snapshot never changes when its
volume is written later, deleting either never waits for the other, and a
raw volume stays raw (tgt and QEMU read it directly).

Permissions: the directory is 0711 (QEMU, running as ``libvirt-qemu``, may
open files in it by name but not list it; the same as instance
directories) and the files 0600 root: libvirt's DAC driver
(``dynamic_ownership``, on by default in qemu.conf) hands a disk to the QEMU
process that attaches it and back on detach, so volume data is never
readable by other local users. tgtd runs as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any

from oslo_concurrency import processutils

from virtstack import exception
from virtstack.volume.backends.base import ModelUpdate, SnapshotRef, VolumeBackend, VolumeRef

GiB = 1024 ** 3
FORMATS = ("raw", "qcow2")
RAW = "raw"  # what the exporting backends serve (tgt's rdwr store, the FC emulation)
VOLUME_PREFIX = "volume-"
SNAPSHOT_PREFIX = "snapshot-"
PART_SUFFIX = ".part"


def qemu_img(*args: str) -> str:
    """Run ``qemu-img`` with ``args``; its stdout. ``VolumeBackendError``
    with qemu-img's message on failure."""
    try:
        stdout, _ = processutils.execute("qemu-img", *args)
    except FileNotFoundError as exc:
        raise exception.VolumeBackendError(
            reason="qemu-img is not installed (qemu-utils; tools/install-libvirt.sh)") from exc
    except processutils.ProcessExecutionError as exc:
        raise exception.VolumeBackendError(
            reason=f"qemu-img {args[0]} failed: {(exc.stderr or '').strip()}") from None
    return stdout


def image_info(path: str, fmt: str) -> dict:
    """``qemu-img info`` of ``path`` read as ``fmt`` (never probed: a raw
    volume may hold anything a guest wrote, qcow2 headers included). ``-U``:
    a file QEMU holds open is read without its lock."""
    return json.loads(qemu_img("info", "-U", "--output=json", "-f", fmt, path))


def unreachable_dirs(path: str) -> list[str]:
    """The existing directories on the way to ``path`` that users other than
    their owner cannot traverse (so QEMU, as libvirt-qemu, cannot either)."""
    blocked = []
    current = os.path.abspath(path)
    while True:
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(current).st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                blocked.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            return list(reversed(blocked))
        current = parent


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise exception.VolumeBackendError(
            reason=f"volume file format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class VolumeFileStore:
    """The files of one directory. Every method is idempotent."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))

    # -- paths -----------------------------------------------------------------

    def _path(self, prefix: str, ident: str) -> str:
        if not ident or os.sep in ident or ident.startswith(".") or "\0" in ident:
            raise exception.VolumeBackendError(reason=f"not a volume or snapshot id: {ident!r}")
        return os.path.join(self.directory, prefix + ident)

    def volume_path(self, volume_id: str) -> str:
        return self._path(VOLUME_PREFIX, volume_id)

    def snapshot_path(self, snapshot_id: str) -> str:
        return self._path(SNAPSHOT_PREFIX, snapshot_id)

    def prepare(self) -> None:
        """Make the directory (and missing parents), mode 0711."""
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o711)

    # -- making files ------------------------------------------------------------

    def create(self, path: str, size_gb: int, fmt: str) -> None:
        """An empty (all zero, sparse) file of ``size_gb`` GiB at ``path``."""
        _check_format(fmt)
        if os.path.exists(path):
            return
        self.prepare()
        part = path + PART_SUFFIX
        try:
            qemu_img("create", "-q", "-f", fmt, part, str(size_gb * GiB))
            self._publish(part, path)
        finally:
            _remove(part)

    def copy(self, source: str, source_fmt: str, dest: str, dest_fmt: str, size_gb: int) -> None:
        """``dest`` holding ``source``'s data, grown to ``size_gb`` GiB if
        that is larger (the tail reads as zeros); sparse. ``source`` may be
        in use by QEMU (read without its lock): the copy is then as
        consistent as the guest's data on disk at each moment of the copy."""
        _check_format(source_fmt)
        _check_format(dest_fmt)
        if os.path.exists(dest):
            return
        self.prepare()
        part = dest + PART_SUFFIX
        try:
            qemu_img("convert", "-q", "-U", "-f", source_fmt, "-O", dest_fmt, source, part)
            if self.virtual_size(part, dest_fmt) < size_gb * GiB:
                self._grow(part, dest_fmt, size_gb)
            self._publish(part, dest)
        finally:
            _remove(part)

    def _publish(self, part: str, path: str) -> None:
        os.chmod(part, 0o600)
        os.replace(part, path)

    def write_image(self, image_path: str, image_fmt: str, dest: str, dest_fmt: str) -> None:
        """Write the image's data to the start of the existing ``dest``
        (its size stays). ``VolumeBackendError`` if the image is bigger than
        ``dest``, is not ``image_fmt``, or refers to other files (a qcow2
        backing or data file, which would make qemu-img read any file on
        this host into the volume)."""
        _check_format(dest_fmt)
        if image_fmt not in FORMATS:
            raise exception.VolumeBackendError(
                reason=f"image disk_format {image_fmt!r} cannot be written to a volume; "
                       f"it must be one of {', '.join(FORMATS)}")
        info = image_info(image_path, image_fmt)
        if info.get("format") != image_fmt:
            raise exception.VolumeBackendError(
                reason=f"image is {info.get('format')!r}, not {image_fmt!r} as declared")
        data_file = (info.get("format-specific", {}).get("data", {}) or {}).get("data-file")
        if info.get("backing-filename") or info.get("full-backing-filename") or data_file:
            raise exception.VolumeBackendError(
                reason="image refers to a backing or data file; only self-contained "
                       "images can be written to a volume")
        needed, available = int(info["virtual-size"]), self.virtual_size(dest, dest_fmt)
        if needed > available:
            raise exception.VolumeBackendError(
                reason=f"image is {needed} bytes, larger than the volume ({available} bytes)")
        # -n: write into the volume as it is (size, format, mode, export).
        qemu_img("convert", "-q", "-n", "-f", image_fmt, "-O", dest_fmt, image_path, dest)

    # -- changing and removing ---------------------------------------------------

    def grow(self, path: str, fmt: str, size_gb: int) -> None:
        """Make ``path`` ``size_gb`` GiB unless it is that already;
        ``VolumeBackendError`` if it is larger (volumes never shrink)."""
        _check_format(fmt)
        current = self.virtual_size(path, fmt)
        if current > size_gb * GiB:
            raise exception.VolumeBackendError(
                reason=f"{os.path.basename(path)} is {current} bytes, larger than "
                       f"{size_gb} GiB: volumes do not shrink")
        if current < size_gb * GiB:
            self._grow(path, fmt, size_gb)

    @staticmethod
    def _grow(path: str, fmt: str, size_gb: int) -> None:
        if fmt == "raw":
            # Not qemu-img resize: that takes QEMU's write lock, which an
            # attached volume's QEMU holds; growing a raw file under QEMU is
            # safe (it learns the size from libvirt's blockResize).
            os.truncate(path, size_gb * GiB)
        else:
            # qcow2 metadata must only be changed by the one process that
            # has the image open: this fails (lock) while it is attached.
            qemu_img("resize", "-q", "-f", fmt, path, str(size_gb * GiB))

    def delete(self, path: str) -> None:
        _remove(path + PART_SUFFIX)
        _remove(path)

    # -- facts -------------------------------------------------------------------

    @staticmethod
    def virtual_size(path: str, fmt: str) -> int:
        """Bytes a reader of ``path`` as ``fmt`` sees."""
        if fmt == "raw":
            return os.stat(path).st_size
        return int(image_info(path, fmt)["virtual-size"])

    def capacity(self, cap_gb: int) -> dict[str, int]:
        """The filesystem's size and free space in whole GiB (rounded down),
        neither above ``cap_gb``."""
        self.prepare()
        fs = os.statvfs(self.directory)
        total = min(fs.f_blocks * fs.f_frsize // GiB, cap_gb)
        free = min(fs.f_bavail * fs.f_frsize // GiB, total)
        return {"total_capacity_gb": total, "free_capacity_gb": free}


class ExportedRawFileBackend(VolumeBackend):
    """What the backends that export raw files of a ``VolumeFileStore``
    (``iscsi``, ``fake_fc``) share: the data operations. A subclass sets
    ``self.store`` and ``self.conf`` and says how a volume is exported:
    ``_exported(volume)`` after its file is made (returns the model update;
    on failure removes the file). Deleting (unexport, then the file),
    extending and connecting stay the subclass's own."""

    store: VolumeFileStore
    conf: Any

    def _exported(self, volume: VolumeRef) -> ModelUpdate:
        raise NotImplementedError

    def get_capacity(self) -> dict[str, int]:
        return self.store.capacity(self.conf.volume.capacity_gb)

    def create_volume(self, volume: VolumeRef) -> ModelUpdate:
        self.store.create(self.store.volume_path(volume.id), volume.size, RAW)
        return self._exported(volume)

    def create_volume_from_snapshot(self, volume: VolumeRef, snapshot: SnapshotRef) -> ModelUpdate:
        self.store.copy(self.store.snapshot_path(snapshot.id), RAW,
                        self.store.volume_path(volume.id), RAW, volume.size)
        return self._exported(volume)

    def create_cloned_volume(self, volume: VolumeRef, source: VolumeRef) -> ModelUpdate:
        self.store.copy(self.store.volume_path(source.id), RAW,
                        self.store.volume_path(volume.id), RAW, volume.size)
        return self._exported(volume)

    def copy_image_to_volume(self, volume: VolumeRef, image_path: str, disk_format: str) -> None:
        self.store.write_image(image_path, disk_format, self.store.volume_path(volume.id), RAW)

    def create_snapshot(self, snapshot: SnapshotRef, volume: VolumeRef) -> ModelUpdate:
        self.store.copy(self.store.volume_path(volume.id), RAW,
                        self.store.snapshot_path(snapshot.id), RAW, volume.size)
        return {"provider_location": RAW}

    def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        self.store.delete(self.store.snapshot_path(snapshot.id))

    def local_path(self, volume: VolumeRef) -> str:
        return self.store.volume_path(volume.id)
