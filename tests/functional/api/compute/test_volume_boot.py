"""Boot from volume through the Compute API (block_device_mapping_v2) on the
fake driver and the real volume service: the volume made from an image or
given, extra volumes, what delete does to them, the 400s for combinations
that are not supported, and fault injection in the volume tasks of the
spawn flow."""

from __future__ import annotations

import functools

import pytest

from tests.unit.compute import volume_helpers as vh
from tests.waiting import poll
from virtstack.compute.flows import attach, boot_volume
from virtstack.db import volume as db_volume


@pytest.fixture(autouse=True)
def image_with_bits(cloud):
    """The fake cloud's image has no bits; a volume made from an image needs
    some: one MiB of raw disk in the image store."""
    import os

    from virtstack.db import image as db_image
    from virtstack.image import store

    location = store.new_path(cloud.image_id)
    os.makedirs(os.path.dirname(location), exist_ok=True)
    with open(location, "wb") as f:
        f.truncate(1024 * 1024)
    db_image.update(cloud.image_id, {"location": location, "size": 1024 * 1024,
                                     "disk_format": "raw"})


def _boot(cloud, mappings, image_ref="", **extra):
    body = {"server": {"name": "bfv", "flavorRef": "42", "block_device_mapping_v2": mappings,
                       **extra}}
    if image_ref is not None:
        body["server"]["imageRef"] = image_ref
    return cloud.request("POST", "/v2.1/servers", body)


def _from_image(cloud, size=1, delete=True, **extra):
    return {"source_type": "image", "destination_type": "volume", "uuid": cloud.image_id,
            "boot_index": 0, "volume_size": size, "delete_on_termination": delete, **extra}


def _volumes_of(cloud, sid):
    server = cloud.request("GET", f"/v2.1/servers/{sid}", version="2.3").json["server"]
    return server["os-extended-volumes:volumes_attached"]


def _gone(cloud, vid) -> bool:
    return cloud.volume_request("GET", f"/v3/demo/volumes/{vid}").status_int == 404


def test_boot_from_a_volume_made_from_the_image(cloud):
    resp = _boot(cloud, [_from_image(cloud)])
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["image"] == ""
    [volume] = _volumes_of(cloud, sid)
    assert volume["delete_on_termination"] is True
    vid = volume["id"]
    assert vh.volume_status(cloud, vid) == "in-use"
    guest = cloud.driver.get_guest(sid)
    assert list(guest.volumes) == ["/dev/vda"]
    assert guest.volumes["/dev/vda"].connection_info["data"]["volume_id"] == vid
    shown = cloud.volume_request("GET", f"/v3/demo/volumes/{vid}").json["volume"]
    assert shown["bootable"] in (True, "true")
    # Delete: the volume was marked delete_on_termination.
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    poll(lambda: _gone(cloud, vid), 30, "the boot volume to be deleted")


def test_boot_from_an_existing_volume_with_an_extra_one(cloud):
    boot, extra = vh.make_volume(cloud), vh.make_volume(cloud)
    resp = _boot(cloud, [
        {"source_type": "volume", "destination_type": "volume", "uuid": boot, "boot_index": 0},
        {"source_type": "volume", "destination_type": "volume", "uuid": extra,
         "device_name": "/dev/vdc"}])
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    cloud.wait_for_status(sid, "ACTIVE")
    assert [v["id"] for v in _volumes_of(cloud, sid)] == [boot, extra]
    assert sorted(cloud.driver.get_guest(sid).volumes) == ["/dev/vda", "/dev/vdc"]
    vh.assert_attached(cloud, sid, extra, "/dev/vdc")
    vh.assert_attached(cloud, sid, boot, "/dev/vda")
    listed = cloud.request("GET", f"/v2.1/servers/{sid}/os-volume_attachments").json
    assert [a["device"] for a in listed["volumeAttachments"]] == ["/dev/vda", "/dev/vdc"]
    # The Block Storage API shows where each volume of the new server is.
    for vid, device in ((boot, "/dev/vda"), (extra, "/dev/vdc")):
        shown = cloud.volume_request("GET", f"/v3/demo/volumes/{vid}").json["volume"]
        assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [(sid, device)]
    # The root volume cannot be detached; the extra one can.
    assert vh.detach(cloud, sid, boot).status_int == 400
    assert vh.detach(cloud, sid, extra).status_int == 202
    vh.wait_volume(cloud, extra, "available")
    # Delete keeps volumes not marked delete_on_termination.
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    vh.wait_volume(cloud, boot, "available")
    assert db_volume.attachment_list({"volume_id": boot}) == []


def test_an_image_server_with_an_extra_volume(cloud):
    extra = vh.make_volume(cloud)
    resp = _boot(cloud, [{"source_type": "volume", "destination_type": "volume",
                          "uuid": extra}], image_ref=cloud.image_id)
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    server = cloud.wait_for_status(sid, "ACTIVE")
    assert server["image"]["id"] == cloud.image_id
    vh.assert_attached(cloud, sid, extra, "/dev/vdb")


@pytest.mark.parametrize("mappings,image_ref,extra,needle", [
    ([{"source_type": "snapshot", "destination_type": "volume", "uuid": "x", "boot_index": 0}],
     "", {}, "not supported"),
    ([{"source_type": "blank", "destination_type": "local", "boot_index": -1}], None, {},
     "not supported"),
    ([{"source_type": "image", "destination_type": "volume", "uuid": "IMAGE",
       "boot_index": 0}], "", {}, "non-zero size"),
    ([{"source_type": "image", "destination_type": "volume", "uuid": "IMAGE",
       "boot_index": 0, "volume_size": 0}], "", {}, "non-zero size"),
    ([{"source_type": "image", "destination_type": "volume",
       "uuid": "00000000-0000-0000-0000-000000000000", "boot_index": 0, "volume_size": 1}],
     "", {}, "00000000-0000-0000-0000-000000000000"),
    ([{"source_type": "volume", "destination_type": "volume",
       "uuid": "00000000-0000-0000-0000-000000000000", "boot_index": 0}], "", {},
     "failed to get volume"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "boot_index": 1}], "", {}, "boot_index 0"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "boot_index": 0}], "", {"min_count": 2}, "multiple instances"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "boot_index": 0},
      {"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME"}], "", {},
     "given twice"),
    ([{"source_type": "image", "destination_type": "volume", "uuid": "IMAGE",
       "boot_index": 0, "volume_size": 1},
      {"source_type": "image", "destination_type": "volume", "uuid": "IMAGE",
       "boot_index": "0", "volume_size": 1}], "", {}, "twice"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "device_name": "/dev/sdb"}], "IMAGE", {}, "device path"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "boot_index": 0, "bogus": 1}], "", {}, "bogus"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "VOLUME",
       "boot_index": 0, "disk_bus": "ide"}], "", {}, "disk_bus"),
    ([{"destination_type": "volume", "uuid": "VOLUME", "boot_index": 0}], "", {},
     "source_type"),
    ([], None, {}, "imageRef"),
])
def test_unsupported_or_wrong_mappings_are_400(cloud, mappings, image_ref, extra, needle):
    vid = vh.make_volume(cloud)

    def fill(value):
        return {"IMAGE": cloud.image_id, "VOLUME": vid}.get(value, value)

    mappings = [{k: fill(v) for k, v in m.items()} for m in mappings]
    resp = _boot(cloud, mappings, image_ref=fill(image_ref) if image_ref else image_ref,
                 **extra)
    assert resp.status_int == 400, resp.text
    (body,) = resp.json.values()
    assert needle in body["message"], body
    assert vh.volume_status(cloud, vid) == "available"
    assert cloud.request("GET", "/v2.1/servers").json["servers"] == []


def test_a_volume_in_use_cannot_be_booted_from(cloud):
    sid = vh.active_server(cloud)
    vid = vh.make_volume(cloud)
    assert vh.attach(cloud, sid, vid).status_int == 200
    resp = _boot(cloud, [{"source_type": "volume", "destination_type": "volume", "uuid": vid,
                          "boot_index": 0}])
    assert resp.status_int == 400 and "must be available" in resp.text


BOOT_TASKS = [boot_volume.CreateVolumeFromImage, boot_volume.WaitForVolume,
              attach.CreateAttachment, attach.UpdateAttachment, attach.SaveConnectionInfo,
              boot_volume.BuildBlockDeviceInfo, attach.CompleteAttachment]


def test_every_volume_task_of_the_spawn_flow_is_covered():
    from virtstack.compute.flows import spawn

    flow = spawn.get_flow(volumes=[{"bdm_uuid": "b", "volume_id": None, "image_id": "i",
                                    "volume_size": 1}])
    assert {type(t) for t in flow} - {spawn.ReleaseClaimOnFailure, spawn.DriverSpawn,
                                      spawn.MarkActive, attach.GetConnector} == set(BOOT_TASKS)


@pytest.mark.parametrize("task", BOOT_TASKS + ["driver spawn"],
                         ids=lambda t: getattr(t, "__name__", t))
def test_a_failing_boot_volume_task_leaves_no_volume_behind(cloud, monkeypatch, task):
    kept = vh.make_volume(cloud)
    if task == "driver spawn":
        cloud.driver.inject_failure("spawn")
        message = "Injected failure"
    else:
        real_execute = task.execute
        message = f"{task.__name__} failed after its work"

        @functools.wraps(real_execute)
        def fail(self, *args, **kwargs):
            real_execute(self, *args, **kwargs)
            raise RuntimeError(message)

        monkeypatch.setattr(task, "execute", fail)
    resp = _boot(cloud, [_from_image(cloud),
                         {"source_type": "volume", "destination_type": "volume",
                          "uuid": kept}])
    assert resp.status_int == 202, resp.text
    sid = resp.json["server"]["id"]
    server = cloud.wait_for_status(sid, "ERROR")
    assert message in server["fault"]["message"]
    assert sid not in cloud.driver.list_instance_uuids()
    assert vh.volume_status(cloud, kept) == "available"
    assert vh.live_attachments(kept) == []
    # The volume made from the image is gone (or going).
    made = [v for v in db_volume.volume_list({"project_id": "demo"}) if v.id != kept]
    for volume in made:
        poll(lambda: _gone(cloud, volume.id), 30, "the made volume to be deleted")
    assert vh.flow_logbooks() == 0
    # And the server deletes cleanly.
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    assert vh.volume_status(cloud, kept) == "available"
