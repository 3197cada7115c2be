"""Images uploaded through the Image API boot servers: the test guest's
kernel (aki), ramdisk (ari) and root disk (qcow2 with ``kernel_id``,
``ramdisk_id`` and ``os_command_line``), as a cloud image for direct kernel
boot is registered, on the fake driver and on libvirt + QEMU."""

from __future__ import annotations

import pytest

from tests.functional.api.image.conftest import ADMIN, DEMO, ImageClient
from tests.functional.compute.test_libvirt_cloud import _console, libvirt_cloud  # noqa: F401
from tests.functional.virt.libvirt import environment as lv
from tests.waiting import poll


def _upload(images: ImageClient, path: str, **attributes) -> dict:
    image = images.create(token=ADMIN, visibility="public", **attributes)
    with open(path, "rb") as f:
        resp = images.upload(image["id"], f.read(), token=ADMIN)
    assert resp.status_int == 204, resp.text
    return images.show(image["id"], token=ADMIN)


def upload_test_guest(images: ImageClient) -> dict:
    """The test guest as three public images; the root disk's view."""
    built = lv.test_image()
    kernel = _upload(images, built["kernel_pvh"] or built["kernel"], name="guest-kernel",
                     disk_format="aki", container_format="aki")
    ramdisk = _upload(images, built["initrd"], name="guest-ramdisk", disk_format="ari",
                      container_format="ari")
    root = _upload(images, built["root_disk_qcow2"], name="guest", disk_format="qcow2",
                   container_format="bare", kernel_id=kernel["id"], ramdisk_id=ramdisk["id"],
                   os_command_line=built["cmdline"], min_ram=128)
    assert root["status"] == "active" and root["virtual_size"] > root["size"] > 0
    return root


def _boot(cloud, image_id: str, flavor: str) -> str:
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "from-image-api", "flavorRef": flavor, "imageRef": image_id}}, token=DEMO)
    assert resp.status_int == 202, resp.text
    return resp.json["server"]["id"]


def test_uploaded_images_boot_on_the_fake_driver(cloud):
    from virtstack.api.image import ImageApp
    from virtstack.db import instance as db_instance

    images = ImageClient(ImageApp())
    root = upload_test_guest(images)
    sid = _boot(cloud, root["id"], "84")
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["image"]["id"] == root["id"]
    row = db_instance.get(sid)
    assert (row.kernel_id, row.ramdisk_id) == (root["kernel_id"], root["ramdisk_id"])

    # A deactivated image boots nothing; reactivated, it boots again.
    path = f"/v2/images/{root['id']}/actions"
    assert images.request("POST", f"{path}/deactivate", token=ADMIN).status_int == 204
    resp = cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "x", "flavorRef": "84", "imageRef": root["id"]}}, token=DEMO)
    assert resp.status_int == 400 and "not active" in resp.text
    assert images.request("POST", f"{path}/reactivate", token=ADMIN).status_int == 204
    cloud.wait_for_status(_boot(cloud, root["id"], "84"), "ACTIVE")


@pytest.mark.libvirt
def test_uploaded_images_boot_a_real_guest(libvirt_cloud):  # noqa: F811
    from virtstack.api.image import ImageApp

    cloud = libvirt_cloud
    root = upload_test_guest(ImageClient(ImageApp()))
    sid = _boot(cloud, root["id"], "84")  # m1.micro: 192 MB, 1 GB disk
    cloud.wait_for_status(sid, "ACTIVE", timeout=lv.BOOT_TIMEOUT)
    poll(lambda: lv.BOOT_MARKER in _console(cloud, sid), lv.BOOT_TIMEOUT, "the boot marker")
    assert "VIRTSTACK-ROOT /dev/vda" in _console(cloud, sid)
    resp = cloud.request("DELETE", f"/v2.1/servers/{sid}", token=DEMO)
    assert resp.status_int == 204
    cloud.wait_for_status(sid, "DELETED", timeout=90)
