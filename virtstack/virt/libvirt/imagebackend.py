"""Instance disks as local files: where they live and how images become them.

Everything is under ``<state_path>/instances/``::

    _base/<sha1 of image id>        the image as a raw file, shared read-only
    _base/<sha1 of image id>.lock   taken to make, use or remove that base
    <uuid>/disk                     the root disk (qcow2 overlay, or a raw copy)
    <uuid>/kernel, <uuid>/ramdisk   the image's kernel and ramdisk, when it has them
    <uuid>/console.log              the serial console (virtlogd writes it)
    <uuid>/snapshot-<id>.part       a snapshot being captured

QEMU runs as ``libvirt-qemu``, not root: every directory on the way to these
files must be traversable by others (``instances`` and its children are made
``0711``; ``unreachable_dirs`` finds the parents that are not).

**Bases are raw.** An image is converted once per host to a sparse raw file
in ``_base`` and every instance of it gets a qcow2 overlay on that (or, with
``images_type = flat``, a raw copy of it). Raw, not the image's own qcow2,
because: the base never changes, so qcow2's features buy nothing there;
reads of untouched clusters then go overlay -> raw file, with no second set
of qcow2 lookups and L2 cache; converting with the *declared* format after
checking that the file really is that format and names no backing or data
file closes the hole where a "raw" image holding a qcow2 header makes QEMU
open any file on the host; and a sparse raw file on ext4/XFS costs about the
blocks a qcow2 would. The price is one conversion per image per host.

``images_type`` picks an ``ImageBackend`` from ``BACKENDS`` (one registry).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import time
from typing import ClassVar, Iterator

from virtstack import exception
from virtstack.objects import ImageMeta, Instance

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3
BASE_DIR_NAME = "_base"
DISK_NAME = "disk"
CONSOLE_LOG_NAME = "console.log"
BOOT_FILES = ("kernel", "ramdisk")
#: Image ``disk_format`` values a root disk can be made from, and what they are.
ROOT_DISK_FORMATS = {"raw": "raw", "ami": "raw", "qcow2": "qcow2"}


class ImageBackendError(exception.VirtstackException):
    msg_fmt = "Instance disk operation failed: %(reason)s"


# -- helpers -----------------------------------------------------------------

def qemu_img(*args: str) -> str:
    """Run ``qemu-img`` with ``args``; its stdout. ``ImageBackendError`` with
    qemu-img's message on failure."""
    cmd = ["qemu-img", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except FileNotFoundError as exc:
        raise ImageBackendError(reason="qemu-img is not installed (qemu-utils)") from exc
    except subprocess.CalledProcessError as exc:
        raise ImageBackendError(reason=f"{' '.join(cmd)}: {exc.stderr.strip()}") from exc


def image_info(path: str, fmt: str | None = None) -> dict:
    """``qemu-img info`` of ``path`` as a dict. ``-U``: a disk QEMU holds
    open is read without its lock (the numbers may be a moment old)."""
    args = ["info", "-U", "--output=json"] + (["-f", fmt] if fmt else []) + [path]
    return json.loads(qemu_img(*args))


def make_dir(path: str, mode: int = 0o711) -> str:
    """``path`` (and missing parents), with ``mode`` set on ``path`` itself:
    0711 lets QEMU (another user) open files in it by name, not list it."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    return path


def unreachable_dirs(path: str) -> list[str]:
    """The existing directories on the way to ``path`` that users other than
    their owner cannot traverse (so QEMU, as libvirt-qemu, cannot either)."""
    blocked = []
    current = os.path.abspath(path)
    while True:
        try:
            mode = os.stat(current).st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                blocked.append(current)
        except FileNotFoundError:
            pass
        parent = os.path.dirname(current)
        if parent == current:
            return list(reversed(blocked))
        current = parent


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (made if missing).

    The lock file may be removed by its holder (see ``_remove_base``): a
    waiter that then gets a lock on the removed file notices (another inode
    is at ``path`` now, or none) and locks again.
    """
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@dataclasses.dataclass(frozen=True)
class RootDisk:
    """An instance's root disk: the file and its format (``raw``/``qcow2``)."""

    path: str
    format: str


# -- backends ----------------------------------------------------------------

class ImageBackend(abc.ABC):
    """Instance directories, root disks from images, and the base cache.

    Subclasses set ``name`` (the ``images_type``) and make root disks in
    ``_make_root_disk``; the rest is shared.
    """

    name: ClassVar[str] = ""
    #: The format of the root disks this backend makes.
    disk_format: ClassVar[str] = ""

    def __init__(self, state_path: str) -> None:
        self.state_path = os.path.abspath(os.path.expanduser(state_path))
        self.instances_dir = os.path.join(self.state_path, "instances")
        self.base_dir = os.path.join(self.instances_dir, BASE_DIR_NAME)

    # -- paths -------------------------------------------------------------

    def instance_dir(self, uuid: str) -> str:
        if not uuid or os.sep in uuid or uuid.startswith((".", "_")):
            raise ValueError(f"not an instance uuid: {uuid!r}")
        return os.path.join(self.instances_dir, uuid)

    def disk_path(self, uuid: str) -> str:
        return os.path.join(self.instance_dir(uuid), DISK_NAME)

    def console_log_path(self, uuid: str) -> str:
        return os.path.join(self.instance_dir(uuid), CONSOLE_LOG_NAME)

    def boot_file_path(self, uuid: str, kind: str) -> str:
        if kind not in BOOT_FILES:
            raise ValueError(f"boot file kind must be one of {BOOT_FILES}, not {kind!r}")
        return os.path.join(self.instance_dir(uuid), kind)

    def prepare(self) -> None:
        """Make ``instances`` and ``_base`` (0711) if missing."""
        make_dir(self.instances_dir)
        make_dir(self.base_dir)

    # -- instance directories ------------------------------------------------

    def create_instance_dir(self, uuid: str) -> str:
        """A new, empty directory for ``uuid``. One left by an interrupted
        spawn is emptied first: the driver checked that no guest uses it."""
        self.prepare()
        path = self.instance_dir(uuid)
        if os.path.lexists(path):
            LOG.warning("Removing stale instance directory %s", path)
            self.delete_instance_dir(uuid)
        os.mkdir(path)
        os.chmod(path, 0o711)
        return path

    def delete_instance_dir(self, uuid: str) -> None:
        """Remove the instance's directory and everything in it (idempotent)."""
        path = self.instance_dir(uuid)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            os.unlink(path)

    def instance_uuids(self) -> list[str]:
        """The uuids that have an instance directory here."""
        try:
            names = os.listdir(self.instances_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith((".", "_"))
                      and os.path.isdir(os.path.join(self.instances_dir, n)))

    # -- kernel and ramdisk --------------------------------------------------

    def fetch_boot_file(self, uuid: str, kind: str, image_path: str) -> str:
        """Put the image file ``image_path`` in the instance directory as
        ``kind`` (``kernel``/``ramdisk``): a hard link (images never change,
        and the instance keeps booting if the image is deleted), or a copy
        across filesystems."""
        dest = self.boot_file_path(uuid, kind)
        _remove(dest)
        try:
            os.link(image_path, dest)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copyfile(image_path, dest)
            os.chmod(dest, 0o644)
        return dest

    def remove_boot_files(self, uuid: str) -> None:
        for kind in BOOT_FILES:
            _remove(self.boot_file_path(uuid, kind))

    # -- root disks ----------------------------------------------------------

    def create_root_disk(self, instance: Instance, image_meta: ImageMeta,
                         image_path: str) -> RootDisk:
        """Make ``instance``'s root disk from the image at ``image_path``.

        The disk is the flavor's ``root_gb`` (the image's own size if that is
        0). ``Invalid`` if the image is not raw or qcow2, is not what its
        ``disk_format`` says, or names a backing file; ``FlavorTooSmall`` if
        the image is bigger than the flavor's root disk.
        """
        fmt = ROOT_DISK_FORMATS.get(image_meta.disk_format)
        if fmt is None:
            raise exception.Invalid(
                reason=f"image {image_meta.id} has disk_format {image_meta.disk_format!r}; "
                       f"a root disk needs one of {', '.join(ROOT_DISK_FORMATS)}")
        dest = self.disk_path(instance.uuid)
        _remove(dest)
        name = hashlib.sha1(image_meta.id.encode()).hexdigest()
        # Held until the disk exists: image cache cleanup takes the same lock,
        # so it never removes a base between its making and its use.
        with file_lock(os.path.join(self.base_dir, name + ".lock")):
            base = self._ensure_base(name, image_meta.id, image_path, fmt)
            virtual_size = int(image_info(base, "raw")["virtual-size"])
            size = instance.flavor.root_gb * GiB or virtual_size
            if size < virtual_size:
                raise exception.FlavorTooSmall(
                    what="Root disk", flavor_id=instance.flavor.flavorid,
                    needed=f"{virtual_size} bytes for image {image_meta.id}")
            self._make_root_disk(base, dest, size)
        return RootDisk(path=dest, format=self.disk_format)

    @abc.abstractmethod
    def _make_root_disk(self, base: str, dest: str, size: int) -> None:
        """Make ``dest``, ``size`` bytes, holding the raw ``base``'s data."""

    def remove_root_disk(self, uuid: str) -> None:
        _remove(self.disk_path(uuid))

    def _ensure_base(self, name: str, image_id: str, image_path: str, fmt: str) -> str:
        # Caller holds the base's lock.
        base = os.path.join(self.base_dir, name)
        if os.path.exists(base):
            os.utime(base)  # last used now (image cache cleanup's min age)
            return base
        check_image(image_id, image_path, fmt)
        part = base + ".part"
        started = time.monotonic()
        qemu_img("convert", "-q", "-f", fmt, "-O", "raw", image_path, part)
        os.chmod(part, 0o644)
        os.replace(part, base)
        LOG.info("Cached image %s as raw base %s (%.1fs)", image_id, base,
                 time.monotonic() - started)
        return base

    # -- snapshots -----------------------------------------------------------

    @staticmethod
    def capture(disk_path: str, disk_format: str, dest: str) -> int:
        """Write the whole of ``disk_path`` (its backing chain collapsed) to
        ``dest`` as a standalone qcow2; its size in bytes. The caller keeps
        the disk still (guest paused or stopped) meanwhile."""
        part = dest + ".part"
        try:
            qemu_img("convert", "-q", "-U", "-f", disk_format, "-O", "qcow2", disk_path, part)
            os.chmod(part, 0o644)
            os.replace(part, dest)
        finally:
            _remove(part)
        return os.path.getsize(dest)

    # -- image cache ---------------------------------------------------------

    def bases_in_use(self) -> set[str]:
        """Paths of the bases some instance's root disk is an overlay on."""
        used = set()
        for uuid in self.instance_uuids():
            disk = self.disk_path(uuid)
            if not os.path.exists(disk):
                continue
            try:
                info = image_info(disk)
            except ImageBackendError as exc:
                LOG.warning("Cannot read %s (%s); keeping every base", disk, exc)
                raise
            backing = info.get("full-backing-filename") or info.get("backing-filename")
            if backing:
                used.add(os.path.realpath(os.path.join(os.path.dirname(disk), backing)))
        return used

    def cleanup_unused_bases(self, min_age_seconds: float = 0.0) -> list[str]:
        """Remove the bases no instance disk is an overlay on and that have
        not been used for ``min_age_seconds``, and leftovers of interrupted
        conversions. Returns the paths removed. Safe to run while spawns
        run: each base is checked again under its lock."""
        try:
            names = sorted(os.listdir(self.base_dir))
        except FileNotFoundError:
            return []
        candidates = {n.split(".", 1)[0] for n in names if not n.startswith(".")}
        removed = []
        now = time.time()
        for name in sorted(candidates):
            lock = os.path.join(self.base_dir, name + ".lock")
            base = os.path.join(self.base_dir, name)
            with file_lock(lock):
                if os.path.exists(base + ".part"):
                    _remove(base + ".part")  # nobody converts without the lock
                    removed.append(base + ".part")
                if os.path.exists(base):
                    if now - os.stat(base).st_mtime < min_age_seconds:
                        continue
                    if os.path.realpath(base) in self.bases_in_use():
                        continue
                    _remove(base)
                    removed.append(base)
                    LOG.info("Removed unused image base %s", base)
                _remove(lock)  # waiters see the inode change and lock again
        return removed


class Qcow2Backend(ImageBackend):
    """Root disks are qcow2 overlays on the shared raw base: instant to make,
    and they hold only what the guest changed."""

    name = "qcow2"
    disk_format = "qcow2"

    def _make_root_disk(self, base: str, dest: str, size: int) -> None:
        qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", dest, str(size))


class FlatBackend(ImageBackend):
    """Root disks are sparse raw copies of the base: no chain to follow, at
    the cost of a copy per instance."""

    name = "flat"
    disk_format = "raw"

    def _make_root_disk(self, base: str, dest: str, size: int) -> None:
        qemu_img("convert", "-q", "-f", "raw", "-O", "raw", "-S", "4k", base, dest)
        os.truncate(dest, size)


#: ``[libvirt] images_type`` -> backend class.
BACKENDS: dict[str, type[ImageBackend]] = {cls.name: cls for cls in (Qcow2Backend, FlatBackend)}


def get_backend(images_type: str, state_path: str) -> ImageBackend:
    """The backend for ``images_type``; ``ConfigError`` naming the known ones."""
    try:
        cls = BACKENDS[images_type]
    except KeyError:
        raise exception.ConfigError(
            reason=f"[libvirt] images_type {images_type!r} is unknown; available: "
                   f"{', '.join(sorted(BACKENDS))}") from None
    return cls(state_path)


def check_image(image_id: str, path: str, fmt: str) -> None:
    """``Invalid`` unless the file at ``path`` is a ``fmt`` image that refers
    to no other file (backing file, external data file)."""
    info = image_info(path)  # probed, not told: to catch a mislabelled image
    detected = info.get("format")
    if detected != fmt:
        raise exception.Invalid(
            reason=f"image {image_id} is declared {fmt} but its file is {detected}")
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise exception.Invalid(reason=f"image {image_id} names a backing file; "
                                       "images must stand alone")
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        raise exception.Invalid(reason=f"image {image_id} names an external data file")
