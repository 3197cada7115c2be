"""Tests of ``imagebackend`` on real files with the real ``qemu-img``
(no libvirt needed): bases, overlays, flat copies, image checks, the image
cache cleanup, locks and directory permissions."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import threading

import pytest

from virtstack import exception
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt.libvirt import imagebackend

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img not installed (tools/install-libvirt.sh)")

MiB = 1024 ** 2
GiB = 1024 ** 3


def make_instance(uuid: str = "3f0e8d2c-6b1a-4c5d-9e7f-0a1b2c3d4e5f", root_gb: int = 1) -> Instance:
    return Instance(uuid=uuid, name="instance-00000001", display_name="t", project_id="p",
                    user_id="u", flavor=Flavor(flavorid="f1", name="f", vcpus=1, memory_mb=64,
                                               root_gb=root_gb))


@pytest.fixture
def images(tmp_path):
    """A raw and a qcow2 image of 8 MiB holding recognisable bytes."""
    raw = tmp_path / "image.raw"
    with open(raw, "wb") as f:
        f.write(b"virtstack-image-data".ljust(4096, b"\0"))
        f.truncate(8 * MiB)
    qcow2 = tmp_path / "image.qcow2"
    imagebackend.qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    return {"raw": str(raw), "qcow2": str(qcow2)}


@pytest.fixture(params=sorted(imagebackend.BACKENDS))
def backend(request, tmp_path):
    return imagebackend.get_backend(request.param, str(tmp_path / "state"))


def read_start(path: str, fmt: str) -> bytes:
    """The first 20 bytes the guest would read from the disk image ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "start.raw")
        subprocess.run(["qemu-img", "dd", "-U", "-f", fmt, "-O", "raw", f"if={path}",
                        f"of={out}", "bs=4096", "count=1"], capture_output=True, check=True)
        with open(out, "rb") as f:
            return f.read(20)


def test_unknown_images_type_names_the_known_ones():
    with pytest.raises(exception.ConfigError, match="flat, qcow2"):
        imagebackend.get_backend("lvm", "/tmp")


@pytest.mark.parametrize("image_format", ["qcow2", "raw"])
def test_root_disk_holds_the_image_at_the_flavor_size(backend, images, image_format):
    instance = make_instance()
    backend.create_instance_dir(instance.uuid)
    disk = backend.create_root_disk(instance, ImageMeta(id="img-1", disk_format=image_format),
                                    images[image_format])
    assert disk == imagebackend.RootDisk(backend.disk_path(instance.uuid), backend.disk_format)
    info = imagebackend.image_info(disk.path)
    assert (info["format"], info["virtual-size"]) == (backend.disk_format, GiB)
    assert read_start(disk.path, disk.format) == b"virtstack-image-data"
    [base] = [n for n in os.listdir(backend.base_dir) if not n.endswith(".lock")]
    base_path = os.path.join(backend.base_dir, base)
    assert imagebackend.image_info(base_path)["format"] == "raw"
    if backend.name == "qcow2":
        assert info["full-backing-filename"] == base_path
    else:
        assert "backing-filename" not in info


def test_root_gb_zero_means_the_image_size(backend, images):
    instance = make_instance(root_gb=0)
    backend.create_instance_dir(instance.uuid)
    disk = backend.create_root_disk(instance, ImageMeta(id="img-1", disk_format="raw"),
                                    images["raw"])
    assert imagebackend.image_info(disk.path)["virtual-size"] == 8 * MiB


def test_base_is_made_once_and_shared(images, tmp_path):
    backend = imagebackend.get_backend("qcow2", str(tmp_path / "state"))
    image = ImageMeta(id="img-1", disk_format="qcow2")
    bases = set()
    for uuid in ("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"):
        backend.create_instance_dir(uuid)
        disk = backend.create_root_disk(make_instance(uuid), image, images["qcow2"])
        bases.add(imagebackend.image_info(disk.path)["full-backing-filename"])
    assert len(bases) == 1
    assert backend.bases_in_use() == bases


def test_image_bigger_than_the_flavor_is_refused(backend, tmp_path):
    big = tmp_path / "big.raw"
    with open(big, "wb") as f:
        f.truncate(2 * GiB)
    instance = make_instance(root_gb=1)
    backend.create_instance_dir(instance.uuid)
    with pytest.raises(exception.FlavorTooSmall):
        backend.create_root_disk(instance, ImageMeta(id="big", disk_format="raw"), str(big))
    assert not os.path.exists(backend.disk_path(instance.uuid))


def test_image_that_is_not_what_it_says_is_refused(backend, images):
    # A qcow2 header in an image declared raw could point QEMU at any file.
    instance = make_instance()
    backend.create_instance_dir(instance.uuid)
    with pytest.raises(exception.Invalid, match="declared raw but its file is qcow2"):
        backend.create_root_disk(instance, ImageMeta(id="liar", disk_format="raw"),
                                 images["qcow2"])
    assert [n for n in os.listdir(backend.base_dir) if not n.endswith(".lock")] == []


def test_image_with_a_backing_file_is_refused(backend, images, tmp_path):
    overlay = tmp_path / "overlay.qcow2"
    imagebackend.qemu_img("create", "-q", "-f", "qcow2", "-b", images["raw"], "-F", "raw",
                          str(overlay))
    instance = make_instance()
    backend.create_instance_dir(instance.uuid)
    with pytest.raises(exception.Invalid, match="backing file"):
        backend.create_root_disk(instance, ImageMeta(id="chained", disk_format="qcow2"),
                                 str(overlay))


def test_image_of_a_format_that_cannot_be_a_root_disk_is_refused(backend, images):
    with pytest.raises(exception.Invalid, match="disk_format 'iso'"):
        backend.create_root_disk(make_instance(), ImageMeta(id="cd", disk_format="iso"),
                                 images["raw"])


def test_instance_dir_is_traversable_and_a_stale_one_is_emptied(backend):
    uuid = "3f0e8d2c-6b1a-4c5d-9e7f-0a1b2c3d4e5f"
    path = backend.create_instance_dir(uuid)
    for directory in (backend.instances_dir, backend.base_dir, path):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o711
    with open(os.path.join(path, "leftover"), "w"):
        pass
    assert backend.create_instance_dir(uuid) == path
    assert os.listdir(path) == []
    assert backend.instance_uuids() == [uuid]
    backend.delete_instance_dir(uuid)
    backend.delete_instance_dir(uuid)  # idempotent
    assert backend.instance_uuids() == []


def test_instance_dir_names_are_checked(backend):
    for bad in ("", "../etc", "_base", ".hidden"):
        with pytest.raises(ValueError):
            backend.instance_dir(bad)


def test_boot_files_are_hard_links(backend, images):
    uuid = "3f0e8d2c-6b1a-4c5d-9e7f-0a1b2c3d4e5f"
    backend.create_instance_dir(uuid)
    kernel = backend.fetch_boot_file(uuid, "kernel", images["raw"])
    assert os.path.samefile(kernel, images["raw"])
    backend.remove_boot_files(uuid)
    assert not os.path.exists(kernel) and os.path.exists(images["raw"])


def test_capture_collapses_the_chain_into_a_standalone_qcow2(images, tmp_path):
    backend = imagebackend.get_backend("qcow2", str(tmp_path / "state"))
    instance = make_instance()
    backend.create_instance_dir(instance.uuid)
    disk = backend.create_root_disk(instance, ImageMeta(id="img-1", disk_format="raw"),
                                    images["raw"])
    dest = str(tmp_path / "snapshot.qcow2")
    size = backend.capture(disk.path, disk.format, dest)
    info = imagebackend.image_info(dest)
    assert size == os.path.getsize(dest)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert read_start(dest, "qcow2") == b"virtstack-image-data"
    assert not os.path.exists(dest + ".part")


def test_cache_cleanup_removes_only_unused_bases(images, tmp_path):
    backend = imagebackend.get_backend("qcow2", str(tmp_path / "state"))
    used, unused = make_instance("00000000-0000-0000-0000-00000000000a"), \
        make_instance("00000000-0000-0000-0000-00000000000b")
    for instance, image_id in ((used, "img-used"), (unused, "img-unused")):
        backend.create_instance_dir(instance.uuid)
        backend.create_root_disk(instance, ImageMeta(id=image_id, disk_format="raw"),
                                 images["raw"])
    with open(os.path.join(backend.base_dir, "deadbeef.part"), "wb"):
        pass  # a conversion that died half-way
    backend.delete_instance_dir(unused.uuid)
    [kept] = backend.bases_in_use()

    assert backend.cleanup_unused_bases(min_age_seconds=3600) == [
        os.path.join(backend.base_dir, "deadbeef.part")]  # the unused base is too recent
    [removed] = backend.cleanup_unused_bases()
    assert removed != kept and not os.path.exists(removed)
    assert sorted(os.listdir(backend.base_dir)) == sorted(
        [os.path.basename(kept), os.path.basename(kept) + ".lock"])
    assert backend.cleanup_unused_bases() == []


def test_file_lock_excludes_and_survives_removal_of_the_lock_file(tmp_path):
    path = str(tmp_path / "x.lock")
    order: list[str] = []

    def second():
        with imagebackend.file_lock(path):
            order.append("second")

    with imagebackend.file_lock(path):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.2)
        assert thread.is_alive()  # waiting for the lock
        order.append("first")
        os.unlink(path)  # as cleanup does, while holding it
    thread.join(10)
    assert order == ["first", "second"]


def test_unreachable_dirs_finds_parents_others_cannot_traverse(tmp_path):
    closed = tmp_path / "closed"
    inner = closed / "open" / "instances"
    inner.mkdir(parents=True)
    os.chmod(closed, 0o700)
    os.chmod(closed / "open", 0o755)
    blocked = imagebackend.unreachable_dirs(str(inner))
    assert str(closed) in blocked and str(closed / "open") not in blocked
    os.chmod(closed, 0o711)
    assert str(closed) not in imagebackend.unreachable_dirs(str(inner))


def test_qemu_img_failure_says_what_failed(tmp_path):
    with pytest.raises(imagebackend.ImageBackendError, match="qemu-img info"):
        imagebackend.image_info(str(tmp_path / "missing"))
