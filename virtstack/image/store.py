"""The local image store: image bits as files under ``state_path/images``,
described by rows of the image registry (``db/image.py``).

Drivers on this host read images by id (``path``), and write snapshots to
the path the store gives them (``new_path``). The Image API (upload,
download) builds on the same calls.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from typing import Any

from virtstack import exception
from virtstack.conf import CONF
from virtstack.db import image as db_image
from virtstack.db import models

DISK_FORMATS = ("qcow2", "raw", "aki", "ari", "ami", "iso", "vmdk", "vdi", "vhd")
CONTAINER_FORMATS = ("bare", "aki", "ari", "ami", "ova", "ovf", "docker")


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


def _checksum(file_path: str) -> tuple[str, int]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(file_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def add_file(src: str, name: str, disk_format: str, container_format: str = "bare",
             properties: dict[str, Any] | None = None, visibility: str = "public",
             owner: str | None = None, image_id: str | None = None,
             move: bool = False) -> models.Image:
    """Copy (or move) ``src`` into the store as a new active image."""
    if disk_format not in DISK_FORMATS:
        raise exception.Invalid(reason=f"disk_format '{disk_format}' is not one of {DISK_FORMATS}")
    if container_format not in CONTAINER_FORMATS:
        raise exception.Invalid(
            reason=f"container_format '{container_format}' is not one of {CONTAINER_FORMATS}")
    image_id = image_id or str(uuid.uuid4())
    dest = new_path(image_id)
    (shutil.move if move else shutil.copyfile)(src, dest)
    os.chmod(dest, 0o644)
    checksum, size = _checksum(dest)
    return db_image.create({
        "id": image_id, "name": name, "status": "active", "disk_format": disk_format,
        "container_format": container_format, "size": size, "checksum": checksum,
        "visibility": visibility, "owner": owner, "location": dest,
        "properties": dict(properties or {}), "min_disk": 0, "min_ram": 0})


def finish_snapshot(image_id: str, location: str, disk_format: str) -> None:
    """Mark a snapshot image active once a driver has written its file."""
    checksum, size = _checksum(location)
    db_image.update(image_id, {"status": "active", "location": location,
                               "disk_format": disk_format, "size": size, "checksum": checksum})


def delete(image_id: str) -> None:
    """Remove an image's file and mark its row deleted."""
    row = db_image.get(image_id)
    if row.location and os.path.exists(row.location):
        os.unlink(row.location)
    db_image.update(image_id, {"status": "deleted", "deleted": True})


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
