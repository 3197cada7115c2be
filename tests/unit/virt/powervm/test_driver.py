"""The PowerVM driver on the fake PowerVM REST session: disks, volumes,
VIFs and what a failed spawn leaves (nothing). The behaviour every driver
shares is proven by tests/unit/virt/test_driver_contract.py."""

from __future__ import annotations

import threading

import pytest
from oslo_context import context as oslo_context

from tests.unit.virt.powervm.conftest import (fc_connection_info, inventory, new_instance,
                                              scsi_maps_of, session_of)
from virtstack import exception
from virtstack.objects import Flavor
from virtstack.virt import power_state
from virtstack.virt.powervm import vm
from virtstack.virt.powervm.fake import world as fw

CTX = oslo_context.RequestContext(user_id="u", project_id="p")
VIF = {"id": "vif-1", "address": "fa:16:3e:00:00:01", "details": {"vlan": 7}}


def _vdisk(driver, name):
    world = session_of(driver).world
    return next((d for vg in world.all("VolumeGroup")
                 for d in fw.findall(vg.element, "VirtualDisks/VirtualDisk")
                 if fw.text(d, "DiskName") == name), None)


# -- localdisk ------------------------------------------------------------------

def test_spawn_copies_the_cached_image_into_a_boot_disk_and_maps_it(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta, [VIF])
    boot = driver.disk_adapter.boot_name(instance)
    cached = driver.disk_adapter.image_name(image_meta.id)
    boot_disk, cached_disk = _vdisk(driver, boot), _vdisk(driver, cached)
    assert boot_disk is not None and cached_disk is not None
    assert fw.text(boot_disk, "BaseImage") == fw.text(cached_disk, "UniqueDeviceID")
    data = session_of(driver).world.device_data
    assert data[fw.text(boot_disk, "UniqueDeviceID")].size == image_meta.size
    (mapping,) = scsi_maps_of(driver, instance)
    assert fw.text(mapping, "Storage/VirtualDisk/DiskName") == boot
    assert fw.text(mapping, "TargetDevice/LogicalVolumeVirtualTargetDevice/TargetName") == \
        driver.disk_adapter.target_name(instance)
    assert driver.get_info(instance).state == power_state.RUNNING
    assert inventory(driver)["cnas"] == {"FA163E000001"}


def test_a_second_spawn_of_the_image_uploads_nothing(driver, image_meta):
    first, second = new_instance(), new_instance()
    driver.spawn(CTX, first, image_meta)
    uploads = session_of(driver).count(r"PUT /rest/api/web/File/contents/")
    driver.spawn(CTX, second, image_meta)
    assert session_of(driver).count(r"PUT /rest/api/web/File/contents/") == uploads == 1
    assert {driver.disk_adapter.boot_name(first), driver.disk_adapter.boot_name(second)} <= \
        inventory(driver)["vdisks"]


def test_destroy_leaves_only_the_image_cache(driver, image_meta):
    before = inventory(driver)
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta, [VIF])
    driver.destroy(CTX, instance, [VIF])
    after = inventory(driver)
    assert after["vdisks"] - before["vdisks"] == {driver.disk_adapter.image_name(image_meta.id)}
    assert {k: v for k, v in after.items() if k != "vdisks"} == \
        {k: v for k, v in before.items() if k != "vdisks"}


def test_destroy_keeps_the_disk_when_asked(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    driver.destroy(CTX, instance, destroy_disks=False)
    assert driver.disk_adapter.boot_name(instance) in inventory(driver)["vdisks"]
    assert scsi_maps_of(driver, instance) == []
    assert vm.find_lpar(driver.adapter, instance) is None


def test_a_failed_destroy_runs_again_to_the_end(driver, image_meta):
    before = inventory(driver)
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta, [VIF])
    session_of(driver).inject_failure(r"DELETE /rest/api/uom/LogicalPartition/", status=500)
    with pytest.raises(Exception):
        driver.destroy(CTX, instance, [VIF])
    driver.destroy(CTX, instance, [VIF])
    after = inventory(driver)
    assert after["lpars"] == before["lpars"] and after["scsi_maps"] == before["scsi_maps"]
    assert driver.disk_adapter.boot_name(instance) not in after["vdisks"]


def test_a_mapped_disk_cannot_be_deleted_before_its_mapping(driver, image_meta):
    """The fake refuses what the VIOS refuses, so a wrong order would show."""
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    with pytest.raises(Exception, match="mapped"):
        driver.disk_adapter.delete_disks(instance)


# -- every spawn step failing ------------------------------------------------------

#: (step, request that fails, nth matching request, fail as a job error)
SPAWN_FAULTS = [
    ("create_vm", r"PUT /rest/api/uom/ManagedSystem/[^/]+/LogicalPartition$", 1, False),
    ("plug_vifs", r"PUT /rest/api/uom/LogicalPartition/[^/]+/ClientNetworkAdapter$", 1, False),
    ("upload_image", r"PUT /rest/api/web/File/contents/", 1, False),
    ("copy_image", r"POST /rest/api/uom/VirtualIOServer/[^/]+/VolumeGroup/", 2, False),
    ("connect_disk", r"POST /rest/api/uom/VirtualIOServer/[^/]+$", 1, False),
    ("discover_volume", r"PUT /rest/api/uom/VirtualIOServer/[^/]+/do/LUARecovery", 1, True),
    ("connect_volumes", r"POST /rest/api/uom/VirtualIOServer/[^/]+$", 2, False),
    ("power_on", r"PUT /rest/api/uom/LogicalPartition/[^/]+/do/PowerOn", 1, True),
]


@pytest.mark.parametrize("step,pattern,nth,job_error", SPAWN_FAULTS,
                         ids=[fault[0] for fault in SPAWN_FAULTS])
def test_a_spawn_failing_at_any_step_leaves_nothing(driver, image_meta, step, pattern, nth,
                                                    job_error):
    before = inventory(driver)
    instance = new_instance()
    bdi = {"block_device_mapping": [{"connection_info": fc_connection_info("vol-boot", 3),
                                     "mount_device": "/dev/vdb"}]}
    session = session_of(driver)
    session.inject_failure(pattern, nth=nth, status=500, job_error=job_error)
    with pytest.raises(Exception):
        driver.spawn(CTX, instance, image_meta, [VIF], bdi)
    assert session.count(pattern, status=500) == (0 if job_error else 1)
    after = inventory(driver)
    # The image cache may keep an image that was uploaded; nothing else may stay.
    cache = {driver.disk_adapter.image_name(image_meta.id)}
    assert after["vdisks"] - cache == before["vdisks"]
    assert {k: v for k, v in after.items() if k != "vdisks"} == \
        {k: v for k, v in before.items() if k != "vdisks"}
    assert not driver.instance_exists(instance)
    driver.spawn(CTX, instance, image_meta, [VIF], bdi)  # and it can be tried again
    assert driver.get_info(instance).state == power_state.RUNNING


# -- concurrency -------------------------------------------------------------------

def test_concurrent_spawns_lose_no_mapping_update(driver, image_meta):
    """Both spawns read the VIOS (same etag) before either maps its disk: the
    second POST is refused (412) and pypowervm redoes it from a fresh GET."""
    session = session_of(driver)
    driver.spawn(CTX, new_instance(), image_meta)  # image cached: the race is on the VIOS
    session.gate(r"GET /rest/api/uom/VirtualIOServer$", parties=2)
    instances = [new_instance(), new_instance()]
    errors: list[BaseException] = []

    def spawn(instance):
        try:
            driver.spawn(CTX, instance, image_meta)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=spawn, args=(i,)) for i in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert session.count(r"POST /rest/api/uom/VirtualIOServer/[^/]+$", status=412) >= 1
    for instance in instances:
        (mapping,) = scsi_maps_of(driver, instance)
        assert fw.text(mapping, "Storage/VirtualDisk/DiskName") == \
            driver.disk_adapter.boot_name(instance)


def test_a_stale_etag_is_refused(driver):
    from pypowervm import exceptions as pvm_exc
    from pypowervm.wrappers import virtual_io_server as pvm_vios

    stale = pvm_vios.VIOS.get(driver.adapter)[0]
    fresh = pvm_vios.VIOS.get(driver.adapter)[0]
    fresh.update()
    with pytest.raises(pvm_exc.HttpError) as raised:
        stale.update()
    assert raised.value.response.status == 412


# -- volumes -------------------------------------------------------------------------

def test_vscsi_attach_discovers_the_lun_and_maps_the_hdisk(driver, image_meta):
    before = inventory(driver)
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    info = fc_connection_info("vol-a", lun=1)
    driver.attach_volume(CTX, info, instance, "/dev/vdb")
    (hdisk,) = inventory(driver)["hdisks"] - before["hdisks"]
    volume_maps = [m for m in scsi_maps_of(driver, instance)
                   if fw.find(m, "Storage/PhysicalVolume") is not None]
    assert [fw.text(m, "Storage/PhysicalVolume/VolumeName") for m in volume_maps] == [hdisk]
    assert fw.text(volume_maps[0], "Storage/PhysicalVolume/Tag") == "vol-vol-a"
    driver.extend_volume(CTX, info, instance, 2 * 1024 ** 3)
    assert ("VirtualIOServer", "RescanVirtualDisk") in \
        {(g, op) for g, op, _ in session_of(driver).server.jobs.submitted}
    driver.detach_volume(CTX, info, instance, "/dev/vdb")
    after = inventory(driver)
    assert after["hdisks"] == before["hdisks"]  # RemoveDevice ran
    assert [fw.find(m, "Storage/PhysicalVolume") for m in scsi_maps_of(driver, instance)] == [None]


def test_vscsi_attach_of_a_lun_no_port_reaches_fails_cleanly(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    before = inventory(driver)
    info = fc_connection_info("vol-x")
    # The SAN zones the target to a port that is not on the VIOS.
    session_of(driver).world.san_zones["500507680B215660"] = {"C0FFEE0000000001"}
    with pytest.raises(exception.VolumeNotFound):
        driver.attach_volume(CTX, info, instance, "/dev/vdb")
    assert inventory(driver) == before


def test_vscsi_connector_names_the_vios_ports(driver):
    connector = driver.get_volume_connector(new_instance())
    assert connector["wwpns"] == ["10000090FA1B6302", "10000090FA1B6303"]
    assert connector["host"] == "pvm-host"


def test_npiv_gives_the_instance_its_own_wwpns(make_driver, image_meta):
    driver = make_driver(fc_attach_strategy="npiv", fabrics=["A"], ports_per_fabric=1)
    before = inventory(driver)
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    connector = driver.get_volume_connector(instance)
    assert len(connector["wwpns"]) == 2
    assert not set(connector["wwpns"]) & {"10000090FA1B6302", "10000090FA1B6303"}
    assert driver.get_volume_connector(instance)["wwpns"] == connector["wwpns"]  # stable
    (vfc,) = inventory(driver)["vfc_maps"] - before["vfc_maps"]
    assert vfc[1] == " ".join(connector["wwpns"])
    info = fc_connection_info("vol-n")
    driver.attach_volume(CTX, info, instance, "/dev/vdb")
    driver.detach_volume(CTX, info, instance, "/dev/vdb")
    assert inventory(driver)["hdisks"] == before["hdisks"]  # the VIOS never saw the LUN
    driver.destroy(CTX, instance)
    assert inventory(driver)["vfc_maps"] == before["vfc_maps"]


def test_npiv_connector_of_an_instance_without_lpar(make_driver):
    driver = make_driver(fc_attach_strategy="npiv")
    with pytest.raises(exception.InstanceNotFound):
        driver.get_volume_connector(new_instance())


def test_an_unknown_volume_type_is_refused_with_the_supported_ones(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    with pytest.raises(exception.Invalid, match=r"fibre_channel \(npiv\), fibre_channel"):
        driver.attach_volume(CTX, {"driver_volume_type": "iscsi", "data": {"volume_id": "v"}},
                             instance, "/dev/vdb")


# -- SSP ---------------------------------------------------------------------------------

def test_ssp_boot_disks_are_linked_clones_of_one_image_lu(make_driver, image_meta):
    driver = make_driver(disk_driver="ssp")
    before = inventory(driver)
    first, second = new_instance(), new_instance()
    driver.spawn(CTX, first, image_meta)
    driver.spawn(CTX, second, image_meta)
    world = session_of(driver).world
    lus = {fw.text(s.element, "UnitName"): s.element for s in world.all("LogicalUnit")}
    image = lus[f"image_{image_meta.id}"]
    assert fw.text(image, "LogicalUnitType") == "VirtualIO_Image"
    for instance in (first, second):
        clone = lus[f"boot_{instance.uuid}"]
        assert fw.text(clone, "ClonedFrom") == fw.text(image, "UniqueDeviceID")
        (mapping,) = scsi_maps_of(driver, instance)
        assert fw.text(mapping, "Storage/LogicalUnit/UnitName") == f"boot_{instance.uuid}"
    assert driver.supports("cold_migration")
    driver.destroy(CTX, first)
    assert f"image_{image_meta.id}" in inventory(driver)["lus"]  # the other clone uses it
    driver.destroy(CTX, second)
    assert inventory(driver)["lus"] == before["lus"]  # last clone gone: the image LU too


def test_ssp_resize_on_the_same_host_keeps_the_disk(make_driver, image_meta):
    driver = make_driver(disk_driver="ssp")
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    bigger = Flavor(flavorid="2", name="m1.small", vcpus=2, memory_mb=2048, root_gb=1)
    driver.migrate_disk_and_power_off(CTX, instance, "pvm-host", bigger, [])
    lpar = vm.get_lpar(driver.adapter, instance)
    assert (lpar.mem_config.desired, lpar.proc_config.shared_proc_cfg.desired_virtual) == \
        (2048, 2)
    driver.finish_migration(CTX, {}, instance, "{}", [], image_meta, True)
    assert driver.get_info(instance).state == power_state.RUNNING
    assert len(scsi_maps_of(driver, instance)) == 1


def test_localdisk_does_not_cold_migrate(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    assert not driver.supports("cold_migration")
    with pytest.raises(exception.NotSupported):
        driver.migrate_disk_and_power_off(CTX, instance, "other", instance.flavor, [])


# -- network and console -------------------------------------------------------------------

def test_vifs_are_client_network_adapters_on_the_vswitch(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta, [VIF])
    world = session_of(driver).world
    (cna,) = world.children("LogicalPartition", vm.pvm_uuid(instance), "ClientNetworkAdapter")
    assert fw.text(cna.element, "MACAddress") == "FA163E000001"
    assert fw.text(cna.element, "PortVLANID") == "7"
    assert fw.text(cna.element, "VirtualSwitchID") == "0"  # ETHERNET0
    second = dict(VIF, id="vif-2", address="fa:16:3e:00:00:02")
    driver.plug_vifs(instance, [VIF, second])
    assert inventory(driver)["cnas"] == {"FA163E000001", "FA163E000002"}
    driver.unplug_vifs(instance, [second])
    assert inventory(driver)["cnas"] == {"FA163E000001"}


def test_vnc_console_of_a_stopped_guest_raises_not_running(driver, image_meta):
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta, power_on=False)
    with pytest.raises(exception.InstanceNotRunning):
        driver.get_vnc_console(CTX, instance)
    driver.power_on(CTX, instance)
    lpar = vm.get_lpar(driver.adapter, instance)
    assert driver.get_vnc_console(CTX, instance).port == 5900 + lpar.id


# -- host ---------------------------------------------------------------------------------

def test_host_resources_follow_the_managed_system_and_partitions(driver, image_meta):
    before = driver.get_available_resource("pvm-host")
    assert before["vcpus"] == 8 and before["memory_mb"] == 98304  # the recorded 8246-L1C
    flavor = Flavor(flavorid="3", name="m1.medium", vcpus=2, memory_mb=4096, root_gb=1)
    driver.spawn(CTX, new_instance(flavor), image_meta)
    after = driver.get_available_resource("pvm-host")
    assert after["vcpus_used"] - before["vcpus_used"] == 2
    assert after["memory_mb_used"] - before["memory_mb_used"] == 4096
    assert after["local_gb_used"] >= before["local_gb_used"] + 1
    assert after["hypervisor_type"] == "phyp"


# -- snapshot ----------------------------------------------------------------------------

def test_snapshot_reads_back_what_the_boot_disk_holds(driver, image_meta, conf):
    import hashlib

    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    states = []
    image = driver.snapshot(CTX, instance, "snap-1",
                            lambda task_state, expected_state: states.append(task_state))
    assert states == ["image_pending_upload", "image_uploading"]
    with open(image["location"], "rb") as got, open(image_meta.location, "rb") as want:
        assert hashlib.sha256(got.read()).digest() == hashlib.sha256(want.read()).digest()
    assert image["disk_format"] == "raw" and image["size"] == image_meta.size


def test_a_failed_snapshot_leaves_no_file(driver, image_meta):
    import os

    from virtstack.image import store

    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)

    def fail_on_upload(task_state, expected_state):
        if task_state == "image_uploading":
            raise exception.Conflict(reason="the instance was deleted meanwhile")

    with pytest.raises(exception.Conflict):
        driver.snapshot(CTX, instance, "snap-2", fail_on_upload)
    dest = store.new_path("snap-2")
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


# -- media ---------------------------------------------------------------------------------

def test_an_iso_is_uploaded_to_the_media_repository_and_mapped(driver, image_meta, tmp_path):
    from virtstack.virt.powervm import media

    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    iso = tmp_path / "config.iso"
    iso.write_bytes(b"CD001" + b"\0" * 4096)
    before = inventory(driver)
    name = media.attach_iso(driver.adapter, instance, str(iso))
    assert inventory(driver)["media"] - before["media"] == {name}
    assert [fw.text(m, "Storage/VirtualOpticalMedia/MediaName")
            for m in scsi_maps_of(driver, instance)
            if fw.find(m, "Storage/VirtualOpticalMedia") is not None] == [name]
    media.detach_iso(driver.adapter, instance)
    media.detach_iso(driver.adapter, instance)  # idempotent
    after = inventory(driver)
    assert name not in after["media"]
    assert after["scsi_maps"] == before["scsi_maps"]


# -- the emulated SAN of the fake_fc volume backend ------------------------------------

def _hdisk_mb(driver, name):
    world = session_of(driver).world
    return next(int(fw.text(pv, "VolumeCapacity")) for vios in world.all("VirtualIOServer")
                for pv in fw.findall(vios.element, "PhysicalVolumes/PhysicalVolume")
                if fw.text(pv, "VolumeName") == name)


def test_vscsi_sees_only_the_luns_the_emulated_san_masks_to_its_ports(driver, image_meta):
    from virtstack.volume.backends import fake_fc
    from virtstack.volume.backends.base import VolumeRef

    backend = fake_fc.FakeFCBackend("volhost")  # same state_path: the driver's fabric
    made = backend.create_volume(VolumeRef("vol-fc", 1))
    volume = VolumeRef("vol-fc", 1, made["provider_location"])
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    before = inventory(driver)

    # Masked to another host's port: the VIOS finds nothing.
    elsewhere = backend.initialize_connection(volume, {"wwpns": ["C0FFEE0000000001"]})
    with pytest.raises(exception.VolumeNotFound):
        driver.attach_volume(CTX, elsewhere, instance, "/dev/vdb")
    assert inventory(driver) == before

    info = backend.initialize_connection(volume, driver.get_volume_connector(instance))
    driver.attach_volume(CTX, info, instance, "/dev/vdb")
    (hdisk,) = inventory(driver)["hdisks"] - before["hdisks"]
    assert _hdisk_mb(driver, hdisk) == 1024
    backend.extend_volume(volume, 3)
    assert _hdisk_mb(driver, hdisk) == 1024  # until the host rescans
    driver.extend_volume(CTX, info, instance, 3 * 1024 ** 3)
    assert _hdisk_mb(driver, hdisk) == 3072
    driver.detach_volume(CTX, info, instance, "/dev/vdb")
    assert inventory(driver) == before


# -- image cache ---------------------------------------------------------------------------

def test_the_image_cache_removes_unused_images_once_old_enough(driver, image_meta, tmp_path):
    import uuid as uuidlib

    from virtstack.objects import ImageMeta

    path = tmp_path / "other.raw"
    path.write_bytes(b"\1" * 4096)
    other = ImageMeta(id=str(uuidlib.uuid4()), disk_format="raw", size=4096,
                      location=str(path))
    now = [1000.0]
    driver.disk_adapter.clock = lambda: now[0]
    before = inventory(driver)
    kept, dropped = new_instance(), new_instance()
    driver.spawn(CTX, kept, image_meta)
    driver.spawn(CTX, dropped, other)
    kept_image = driver.disk_adapter.image_name(image_meta.id)
    dropped_image = driver.disk_adapter.image_name(other.id)
    assert fw.text(_vdisk(driver, driver.disk_adapter.boot_name(kept)), "DiskLabel") == kept_image
    driver.destroy(CTX, dropped)

    assert driver.manage_image_cache(3600) == []  # unused, but used a moment ago
    now[0] += 3599
    assert driver.manage_image_cache(3600) == []
    now[0] += 2
    assert driver.manage_image_cache(3600) == [dropped_image]
    assert inventory(driver)["vdisks"] - before["vdisks"] == {
        kept_image, driver.disk_adapter.boot_name(kept)}

    now[0] += 10 ** 6
    assert driver.manage_image_cache(3600) == []  # in use: kept whatever its age
    driver.destroy(CTX, kept)
    assert driver.manage_image_cache(0) == [kept_image]
    assert inventory(driver) == before  # the recorded disks are no cache of ours

    uploads = session_of(driver).count(r"PUT /rest/api/web/File/contents/")
    driver.spawn(CTX, new_instance(), image_meta)  # a removed image is uploaded again
    assert session_of(driver).count(r"PUT /rest/api/web/File/contents/") == uploads + 1


def test_the_image_cache_leaves_ssp_alone(make_driver, image_meta):
    driver = make_driver(disk_driver="ssp")
    instance = new_instance()
    driver.spawn(CTX, instance, image_meta)
    driver.destroy(CTX, instance)
    assert driver.manage_image_cache(0) == []  # the last clone took the image LU along
