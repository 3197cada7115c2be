"""The local image store: image bits as files under ``state_path/images``,
described by rows of the image registry (``db/image.py``).

Drivers on this host read images by id (``path``), and write snapshots to
the path the store gives them (``new_path``). The Image API (upload,
download) builds on the same calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import uuid
from typing import Any, BinaryIO, Iterable

from virtstack import exception
from virtstack.conf import CONF
from virtstack.db import image as db_image
from virtstack.db import models
from virtstack.image import formats

DISK_FORMATS = formats.DISK_FORMATS
CONTAINER_FORMATS = formats.CONTAINER_FORMATS

#: The secure hash every stored image gets (``os_hash_algo``), as Glance's default.
HASH_ALGO = "sha512"

_CHUNK = 1 << 20


def images_dir() -> str:
    path = os.path.join(os.path.expanduser(CONF.state_path), "images")
    os.makedirs(path, exist_ok=True)
    # QEMU runs as another user (libvirt-qemu): it must be able to traverse
    # to the files it boots from.
    os.chmod(path, 0o755)
    return path


def new_path(image_id: str) -> str:
    """Where the bits of image ``image_id`` go."""
    return os.path.join(images_dir(), image_id)


def path(image_id: str) -> str:
    """The file holding an active image's bits; ``ImageNotFound`` if the
    image is unknown or has no local file."""
    row = db_image.get(image_id)
    if not row.location or not os.path.exists(row.location):
        raise exception.ImageNotFound(image_id=image_id)
    return row.location


@dataclasses.dataclass(frozen=True)
class StoredData:
    """An image file in the store and what was measured while writing it."""

    location: str
    size: int
    checksum: str            # md5 hex digest (the Image API's ``checksum``)
    os_hash_value: str       # HASH_ALGO hex digest
    virtual_size: int | None

    def values(self, properties: dict[str, Any] | None) -> dict[str, Any]:
        """Column values that record this data on an image whose properties
        are ``properties`` (``status`` is the caller's business)."""
        merged = dict(properties or {}, os_hash_algo=HASH_ALGO,
                      os_hash_value=self.os_hash_value, virtual_size=self.virtual_size)
        return {"location": self.location, "size": self.size, "checksum": self.checksum,
                "properties": merged}


class _Digests:
    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.secure = hashlib.new(HASH_ALGO)
        self.size = 0
        self.head = bytearray()

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.secure.update(chunk)
        self.size += len(chunk)
        if len(self.head) < formats.HEAD_BYTES:
            self.head += chunk[:formats.HEAD_BYTES - len(self.head)]

    def stored(self, location: str, virtual_size: int | None) -> StoredData:
        return StoredData(location=location, size=self.size, checksum=self.md5.hexdigest(),
                          os_hash_value=self.secure.hexdigest(), virtual_size=virtual_size)


def _measure(file_path: str, disk_format: str | None) -> StoredData:
    """Digests of a file already in place; a local file is trusted, so a
    format it does not match only leaves its virtual size unknown."""
    digests = _Digests()
    with open(file_path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digests.update(chunk)
    try:
        virtual = formats.virtual_size(disk_format, bytes(digests.head), digests.size)
    except exception.Invalid:
        virtual = None
    return digests.stored(file_path, virtual)


def write(image_id: str, chunks: Iterable[bytes], disk_format: str | None,
          size_cap: int) -> StoredData:
    """Stream ``chunks`` into the store as the bits of ``image_id``.

    Data goes to a part file that replaces the image's file only once
    complete and checked against ``disk_format`` (``formats``). Any error,
    from the source of ``chunks`` too, removes the part file and is raised:
    nothing partial is ever left. ``ImageTooLarge`` (413) past ``size_cap``
    bytes; ``Invalid`` (400) when the bits are not of ``disk_format``.
    The caller owns the image's upload (its status is ``saving``).
    """
    dest = new_path(image_id)
    part = f"{dest}.{uuid.uuid4().hex}.part"
    digests = _Digests()
    try:
        with open(part, "wb") as f:
            for chunk in chunks:
                if digests.size + len(chunk) > size_cap:
                    raise exception.ImageTooLarge(reason=f"more than {size_cap} bytes")
                digests.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        virtual = formats.virtual_size(disk_format, bytes(digests.head), digests.size)
        os.chmod(part, 0o644)
        os.replace(part, dest)
    except BaseException:
        remove_file(part)
        raise
    return digests.stored(dest, virtual)


def open_data(row: models.Image) -> BinaryIO | None:
    """The image's bits for reading, or None when it has none here."""
    if not row.location:
        return None
    try:
        return open(row.location, "rb")
    except FileNotFoundError:
        return None


def remove_file(file_path: str | None) -> None:
    """Remove a file of the store if it is there."""
    if file_path:
        try:
            os.unlink(file_path)
        except FileNotFoundError:
            pass


def add_file(src: str, name: str, disk_format: str, container_format: str = "bare",
             properties: dict[str, Any] | None = None, visibility: str = "public",
             owner: str | None = None, image_id: str | None = None,
             move: bool = False) -> models.Image:
    """Copy (or move) the local file ``src`` into the store as a new active
    image. Local files are trusted (tests register deliberately mislabelled
    ones); uploads through the Image API are checked (``write``)."""
    if disk_format not in DISK_FORMATS:
        raise exception.Invalid(reason=f"disk_format '{disk_format}' is not one of {DISK_FORMATS}")
    if container_format not in CONTAINER_FORMATS:
        raise exception.Invalid(
            reason=f"container_format '{container_format}' is not one of {CONTAINER_FORMATS}")
    image_id = image_id or str(uuid.uuid4())
    dest = new_path(image_id)
    (shutil.move if move else shutil.copyfile)(src, dest)
    os.chmod(dest, 0o644)
    stored = _measure(dest, disk_format)
    now = models.utcnow()
    return db_image.create({
        "id": image_id, "name": name, "status": "active", "disk_format": disk_format,
        "container_format": container_format, "visibility": visibility, "owner": owner,
        "min_disk": 0, "min_ram": 0, "created_at": now, "updated_at": now,
        **stored.values(properties)})


def finish_snapshot(image_id: str, location: str, disk_format: str) -> None:
    """Mark a snapshot image active once a driver has written its file; the
    file is removed if the image was deleted meanwhile."""
    stored = _measure(location, disk_format)
    try:
        db_image.modify(image_id, lambda row: dict(stored.values(row.properties), status="active",
                                                   disk_format=disk_format))
    except exception.ImageNotFound:
        remove_file(location)
        raise


def delete(image_id: str) -> None:
    """Mark an image deleted and remove its file."""
    row = db_image.modify(image_id, lambda row: {"status": "deleted", "deleted": True})
    remove_file(row.location)


#: The name of the image every new cloud starts with.
TEST_IMAGE_NAME = "virtstack-test"


def test_image_cache() -> str:
    return os.path.join(os.path.expanduser(CONF.state_path), "cache", "test-image")


def register_test_image(force: bool = False, cache_dir: str | None = None) -> models.Image:
    """Build the offline test guest (``image.testimage``) and register it as
    three images: kernel (aki), ramdisk (ari) and the root disk (qcow2, with
    ``kernel_id``/``ramdisk_id``/``os_command_line``), like a cloud image
    for direct kernel boot. Reuses what is registered when it is still on
    disk; replaces a placeholder registry entry (one without bits).
    ``cache_dir``: where the guest is built and kept (default: in state_path)."""
    from virtstack.image import testimage

    existing = [i for i in db_image.list_() if i.name == TEST_IMAGE_NAME]
    for row in existing:
        if not force and row.location and os.path.exists(row.location):
            return row
        db_image.update(row.id, {"status": "deleted", "deleted": True})
    built = testimage.build_test_image(cache_dir or test_image_cache())
    kernel = add_file(built["kernel_pvh"] or built["kernel"], f"{TEST_IMAGE_NAME}-kernel",
                      "aki", "aki")
    ramdisk = add_file(built["initrd"], f"{TEST_IMAGE_NAME}-ramdisk", "ari", "ari")
    root_src, root_format = ((built["root_disk_qcow2"], "qcow2") if built["root_disk_qcow2"]
                             else (built["root_disk"], "raw"))
    return add_file(root_src, TEST_IMAGE_NAME, root_format, "bare", properties={
        "kernel_id": kernel.id, "ramdisk_id": ramdisk.id, "os_command_line": built["cmdline"],
        "os_distro": "busybox", "kernel_version": built["kernel_version"]})
