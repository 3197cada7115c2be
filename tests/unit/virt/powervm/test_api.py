"""The all-in-one API on ``compute_driver = powervm`` (fake PowerVM REST
session): a server is created, stopped, started, snapshotted and deleted,
and the fake hypervisor shows each step."""

from __future__ import annotations

import hashlib

from tests.unit.virt.powervm.conftest import inventory
from tests.waiting import poll
from virtstack.db import image as db_image
from virtstack.image import store


def test_a_flavor_powervm_cannot_build_fails_the_server_with_the_reason(powervm_cloud):
    server_id = powervm_cloud.create_server(name="nano", flavor="42")  # 128 MB
    server = powervm_cloud.wait_for_status(server_id, "ERROR")
    assert "logical memory block size (256)" in server["fault"]["message"]
    assert inventory(powervm_cloud.driver)["lpars"] == set()


def _action(cloud, server_id, body):
    resp = cloud.request("POST", f"/v2.1/servers/{server_id}/action", body)
    assert resp.status_int == 202, resp.text
    return resp


def test_server_lifecycle_on_powervm(powervm_cloud):
    cloud = powervm_cloud
    driver = cloud.driver
    assert driver.name == "powervm"
    before = inventory(driver)

    server_id = cloud.create_server(name="pvm-1", flavor="1")  # 512 MB: LMB multiple
    server = cloud.wait_for_status(server_id, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 1
    (lpar_name,) = inventory(driver)["lpars"] - before["lpars"]
    assert lpar_name == server["OS-EXT-SRV-ATTR:instance_name"]

    _action(cloud, server_id, {"os-stop": None})
    assert cloud.wait_for_status(server_id, "SHUTOFF")["OS-EXT-STS:power_state"] == 4
    _action(cloud, server_id, {"os-start": None})
    assert cloud.wait_for_status(server_id, "ACTIVE")["OS-EXT-STS:power_state"] == 1

    resp = _action(cloud, server_id, {"createImage": {"name": "pvm-snap"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[1]
    poll(lambda: db_image.get(image_id).status == "active", timeout=30, what="snapshot active")
    with open(store.path(image_id), "rb") as snap, \
            open(store.path(cloud.image_id), "rb") as base:
        assert hashlib.sha256(snap.read()).digest() == hashlib.sha256(base.read()).digest()
    cloud.wait_for_status(server_id, "ACTIVE")

    resp = cloud.request("DELETE", f"/v2.1/servers/{server_id}")
    assert resp.status_int == 204, resp.text
    cloud.wait_for_status(server_id, "DELETED")
    after = inventory(driver)
    assert after["lpars"] == before["lpars"]
    assert after["scsi_maps"] == before["scsi_maps"]
    assert after["cnas"] == before["cnas"]
