"""Volumes on ``compute_driver = powervm`` through the APIs, end to end: the
all-in-one cloud on the fake PowerVM session with the ``fake_fc`` volume
backend (an emulated Fibre Channel SAN). A volume made through the Block
Storage API is attached through ``os-volume_attachments`` (vSCSI: the VIOS
discovers the LUN masked to its ports and maps the hdisk; NPIV: the LPAR's
own WWPNs are mapped and the LUN is masked to them), extended while
attached, detached, and the server deleted; and a failed mapping update
leaves nothing behind."""

from __future__ import annotations

import pytest

from tests.unit.compute import volume_helpers as vh
from tests.unit.virt.powervm.conftest import inventory, scsi_maps_of, session_of
from tests.waiting import poll
from virtstack.db import instance as db_instance
from virtstack.virt.powervm import vm
from virtstack.virt.powervm.fake import world as fw

VIOS_PORTS = {"10000090FA1B6302", "10000090FA1B6303"}


@pytest.fixture(params=["vscsi", "npiv"])
def fc_cloud(request, conf):
    """The PowerVM cloud with ``[volume] backend = fake_fc`` and the
    parametrised ``[powervm] fc_attach_strategy``."""
    conf.config(backend="fake_fc", group="volume")
    conf.config(fc_attach_strategy=request.param, fabrics=["A"], ports_per_fabric=1,
                group="powervm")
    cloud = request.getfixturevalue("powervm_cloud")
    cloud.strategy = request.param
    return cloud


def _active_server(cloud, name) -> str:
    sid = cloud.create_server(name=name, flavor="1")  # 512 MB: a multiple of the LMB
    cloud.wait_for_status(sid, "ACTIVE")
    return sid


def _instance(sid):
    return db_instance.to_object(db_instance.get(sid))


def _volume_maps(cloud, sid) -> list:
    """The LPAR's vSCSI mappings of volumes (hdisks)."""
    return [m for m in scsi_maps_of(cloud.driver, _instance(sid))
            if fw.find(m, "Storage/PhysicalVolume") is not None]


def _client_wwpns(cloud, sid) -> set[str]:
    """The WWPNs of the LPAR's virtual FC adapters (NPIV mappings)."""
    lpar_uuid = vm.pvm_uuid(_instance(sid)).lower()
    world = session_of(cloud.driver).world
    with world.lock:
        return {wwpn.upper() for vios in world.all("VirtualIOServer")
                for m in fw.findall(vios.element,
                                    "VirtualFibreChannelMappings/VirtualFibreChannelMapping")
                if (fw.href_uuid(fw.link_href(fw.find(m, "AssociatedLogicalPartition")))
                    or "").lower() == lpar_uuid
                for wwpn in (fw.text(m, "ClientAdapter/WWPNs") or "").split()}


def _hdisk_mb(cloud, name) -> int | None:
    world = session_of(cloud.driver).world
    with world.lock:
        return next((int(fw.text(pv, "VolumeCapacity")) for vios in world.all("VirtualIOServer")
                     for pv in fw.findall(vios.element, "PhysicalVolumes/PhysicalVolume")
                     if fw.text(pv, "VolumeName") == name), None)


def _masked_to(cloud, vid) -> frozenset[str]:
    return cloud.volume_backend.fabric.export_of(vid).initiators


def _event_result(sid, action, event) -> str | None:
    for row in db_instance.actions_list(sid):
        if row.action == action:
            _, events = db_instance.action_get(sid, row.request_id)
            return next((e.result for e in events if e.event == event and e.finish_time), None)
    return None


def _extend(cloud, vid, new_size):
    resp = cloud.volume_request("POST", f"/v3/demo/volumes/{vid}/action",
                                {"os-extend": {"new_size": new_size}}, version="3.42")
    assert resp.status_int == 202, resp.text


def test_a_volume_is_attached_extended_and_detached_through_the_api(fc_cloud):
    cloud, driver = fc_cloud, fc_cloud.driver
    assert cloud.volume_backend.name == "fake_fc"
    baseline = inventory(driver)
    sid = _active_server(cloud, "pvm-vol")
    vid = vh.make_volume(cloud, size=1)
    before = inventory(driver)

    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 200, resp.text
    assert resp.json["volumeAttachment"]["device"] == "/dev/vdb"
    assert vh.volume_status(cloud, vid) == "in-use"
    assert [b.device_name for b in vh.live_bdms(sid)] == ["/dev/vdb"]
    after_attach = inventory(driver)
    if cloud.strategy == "vscsi":
        # The LUN is masked to the VIOS's ports; the VIOS found it as an
        # hdisk of the volume's size and mapped it to the LPAR.
        assert _masked_to(cloud, vid) == VIOS_PORTS
        (hdisk,) = after_attach["hdisks"] - before["hdisks"]
        (mapping,) = _volume_maps(cloud, sid)
        assert fw.text(mapping, "Storage/PhysicalVolume/VolumeName") == hdisk
        assert fw.text(mapping, "Storage/PhysicalVolume/Tag") == f"vol-{vid}"
        assert _hdisk_mb(cloud, hdisk) == 1024
    else:
        # The LPAR got virtual FC ports of its own; the LUN is masked to
        # exactly those, and the VIOS never sees it.
        wwpns = _client_wwpns(cloud, sid)
        assert len(wwpns) == 2 and not wwpns & VIOS_PORTS
        assert _masked_to(cloud, vid) == wwpns
        assert len(after_attach["vfc_maps"] - before["vfc_maps"]) == 1
        assert after_attach["hdisks"] == before["hdisks"] and _volume_maps(cloud, sid) == []

    assert driver.supports("extend_volume")
    _extend(cloud, vid, 2)
    vh.wait_volume(cloud, vid, "in-use")
    assert cloud.volume_backend.fabric.export_of(vid).size_bytes == 2 * 1024 ** 3
    poll(lambda: _event_result(sid, "extend_volume", "compute_extend_volume"), 30,
         "the compute service to extend the attached volume")
    assert _event_result(sid, "extend_volume", "compute_extend_volume") == "Success"
    if cloud.strategy == "vscsi":
        assert _hdisk_mb(cloud, hdisk) == 2048  # the VIOS rescanned the LUN

    resp = vh.detach(cloud, sid, vid)
    assert resp.status_int == 202, resp.text
    vh.wait_volume(cloud, vid, "available")
    assert vh.live_bdms(sid) == [] and vh.live_attachments(vid) == []
    assert _masked_to(cloud, vid) == frozenset()  # terminate_connection
    after_detach = inventory(driver)
    assert after_detach["scsi_maps"] == before["scsi_maps"]
    assert after_detach["hdisks"] == before["hdisks"]
    if cloud.strategy == "npiv":  # the instance keeps its ports until it is deleted
        assert after_detach["vfc_maps"] == after_attach["vfc_maps"]

    resp = cloud.request("DELETE", f"/v2.1/servers/{sid}")
    assert resp.status_int == 204, resp.text
    cloud.wait_for_status(sid, "DELETED")
    # What stays is the cached image, which the image cache manager removes.
    assert driver.manage_image_cache(0) == [driver.disk_adapter.image_name(cloud.image_id)]
    assert inventory(driver) == baseline


def test_a_failed_mapping_update_leaves_the_volume_available_and_nothing_mapped(fc_cloud):
    """vSCSI: the POST adding the hdisk mapping fails; NPIV: the POST adding
    the LPAR's virtual FC mappings (made for the connector) fails."""
    cloud, driver = fc_cloud, fc_cloud.driver
    sid = _active_server(cloud, "pvm-vol-fail")
    vid = vh.make_volume(cloud)
    before = inventory(driver)
    session = session_of(driver)
    pattern = r"POST /rest/api/uom/VirtualIOServer/[^/]+$"
    session.inject_failure(pattern, status=500)

    resp = vh.attach(cloud, sid, vid)
    assert resp.status_int == 500, resp.text
    assert f"Attaching volume {vid}" in resp.text
    assert session.count(pattern, status=500) == 1
    assert vh.volume_status(cloud, vid) == "available"
    assert vh.live_bdms(sid) == [] and vh.live_attachments(vid) == []
    assert vh.flow_logbooks() == 0
    assert inventory(driver) == before  # no mapping, hdisk or vFC port
    assert _masked_to(cloud, vid) == frozenset()
    assert cloud.wait_for_status(sid, "ACTIVE")["os-extended-volumes:volumes_attached"] == []

    resp = vh.attach(cloud, sid, vid)  # and the attach can be tried again
    assert resp.status_int == 200, resp.text
    assert vh.volume_status(cloud, vid) == "in-use"
