"""Config drives on the PowerVM driver (fake PowerVM session): the ISO
holds the OpenStack metadata, becomes virtual optical media in the VIOS
media repository mapped to the LPAR, and goes with the LPAR; a spawn
failing on the way leaves no medium or mapping. Also through the API."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from oslo_context import context as oslo_context

from tests.unit.virt.powervm.conftest import inventory, new_instance, scsi_maps_of, session_of
from virtstack import exception
from virtstack.virt import power_state
from virtstack.virt.powervm import configdrive, media

CTX = oslo_context.RequestContext(user_id="u", project_id="p")
USER_DATA = b"#cloud-config\nhostname: lpar-one\n"


def _config_drive_instance():
    instance = new_instance()
    instance.config_drive = True
    instance.hostname = "lpar-one"
    instance.metadata = {"role": "db"}
    instance.user_data = base64.b64encode(USER_DATA).decode()
    return instance


def read_iso(data: bytes, tmp_path) -> dict:
    """Volume label and the files of ``openstack/latest`` of an ISO image,
    read back with xorriso."""
    iso = tmp_path / "read.iso"
    iso.write_bytes(data)
    out = tmp_path / "extracted"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)],
                   check=True, capture_output=True)
    info = subprocess.run(["xorriso", "-indev", str(iso), "-pvd_info"], check=True,
                          capture_output=True, text=True).stdout
    label = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("Volume Id"))
    latest = out / "openstack" / "latest"
    return {"label": label, **{p.name: p.read_bytes() for p in latest.iterdir()}}


def _optical_maps(driver, instance) -> list[str]:
    from virtstack.virt.powervm.fake import world as fw

    return [fw.text(m, "Storage/VirtualOpticalMedia/MediaName")
            for m in scsi_maps_of(driver, instance)
            if fw.find(m, "Storage/VirtualOpticalMedia") is not None]


def test_the_iso_holds_openstack_metadata(tmp_path):
    instance = _config_drive_instance()
    path = configdrive.build_iso(instance, str(tmp_path / "cd.iso"))
    got = read_iso(open(path, "rb").read(), tmp_path)
    assert got["label"] == "config-2"
    meta = json.loads(got["meta_data.json"])
    assert {k: meta[k] for k in ("uuid", "name", "hostname", "meta")} == {
        "uuid": instance.uuid, "name": "pvm-test", "hostname": "lpar-one", "meta": {"role": "db"}}
    assert got["user_data"] == USER_DATA
    assert json.loads(got["vendor_data.json"]) == {}


def test_without_user_data_there_is_no_user_data_file(tmp_path):
    instance = _config_drive_instance()
    instance.user_data = None
    got = read_iso(open(configdrive.build_iso(instance, str(tmp_path / "cd.iso")), "rb").read(),
                   tmp_path)
    assert "user_data" not in got and "meta_data.json" in got


def test_spawn_maps_the_config_drive_and_destroy_removes_it(driver, image_meta, tmp_path):
    before = inventory(driver)
    instance = _config_drive_instance()
    driver.spawn(CTX, instance, image_meta)
    name = media.media_name(instance)
    assert inventory(driver)["media"] - before["media"] == {name}
    assert _optical_maps(driver, instance) == [name]
    assert driver.get_info(instance).state == power_state.RUNNING
    # What the VIOS received is the instance's config drive.
    uploaded = session_of(driver).world.device_data[name].content
    assert json.loads(read_iso(uploaded, tmp_path)["meta_data.json"])["uuid"] == instance.uuid

    driver.destroy(CTX, instance)
    after = inventory(driver)
    assert name not in after["media"]
    assert after["scsi_maps"] == before["scsi_maps"] and after["lpars"] == before["lpars"]


def test_an_instance_without_a_config_drive_gets_no_medium(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    assert _optical_maps(driver, instance) == []
    assert media.media_name(instance) not in inventory(driver)["media"]


#: (step, request that fails, nth matching request, fail as a job error)
CONFIG_DRIVE_FAULTS = [
    ("upload_iso", r"PUT /rest/api/web/File/contents/", 2, False),
    ("map_iso", r"POST /rest/api/uom/VirtualIOServer/[^/]+$", 2, False),
    ("power_on", r"PUT /rest/api/uom/LogicalPartition/[^/]+/do/PowerOn", 1, True),
]


@pytest.mark.parametrize("step,pattern,nth,job_error", CONFIG_DRIVE_FAULTS,
                         ids=[fault[0] for fault in CONFIG_DRIVE_FAULTS])
def test_a_config_drive_spawn_failing_leaves_no_medium(driver, image_meta, step, pattern, nth,
                                                       job_error):
    before = inventory(driver)
    instance = _config_drive_instance()
    session = session_of(driver)
    session.inject_failure(pattern, nth=nth, status=500, job_error=job_error)
    with pytest.raises(Exception):
        driver.spawn(CTX, instance, image_meta)
    assert session.count(pattern, status=500) == (0 if job_error else 1)
    after = inventory(driver)
    assert after["media"] == before["media"] and after["scsi_maps"] == before["scsi_maps"]
    assert after["lpars"] == before["lpars"] and after["files"] == before["files"]
    driver.spawn(CTX, instance, image_meta)  # and it can be tried again
    assert _optical_maps(driver, instance) == [media.media_name(instance)]


def test_bad_user_data_fails_the_build_before_anything_is_uploaded(driver, image_meta):
    before = inventory(driver)
    instance = _config_drive_instance()
    instance.user_data = "not base64!"
    with pytest.raises(exception.Invalid, match="user_data"):
        driver.spawn(CTX, instance, image_meta)
    after = inventory(driver)
    assert after["media"] == before["media"] and after["lpars"] == before["lpars"]


def test_the_api_builds_a_config_drive_when_asked(powervm_cloud, tmp_path):
    cloud = powervm_cloud
    before = inventory(cloud.driver)
    sid = cloud.create_server(name="cd", flavor="1", config_drive=True,
                              metadata={"role": "web"},
                              user_data=base64.b64encode(USER_DATA).decode())
    cloud.wait_for_status(sid, "ACTIVE")
    (name,) = inventory(cloud.driver)["media"] - before["media"]
    got = read_iso(session_of(cloud.driver).world.device_data[name].content, tmp_path)
    meta = json.loads(got["meta_data.json"])
    assert (meta["uuid"], meta["name"], meta["meta"]) == (sid, "cd", {"role": "web"})
    assert meta["hostname"] == "cd"
    assert got["user_data"] == USER_DATA

    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    after = inventory(cloud.driver)
    assert after["media"] == before["media"] and after["scsi_maps"] == before["scsi_maps"]
