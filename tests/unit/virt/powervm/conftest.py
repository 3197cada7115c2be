"""Fixtures for the PowerVM driver tests: a driver on the fake PowerVM REST
session, instances, an image file, and ``inventory`` — what the fake
hypervisor holds (LPARs, disks, LUs, mappings, adapters), to prove that a
failed or undone operation left nothing behind."""

from __future__ import annotations

import itertools
import os
import uuid as uuidlib
from typing import Any, Callable

import pytest

from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt.driver import load_driver
from virtstack.virt.powervm.fake import world as fw

_names = itertools.count(1)


@pytest.fixture
def image_meta(tmp_path) -> ImageMeta:
    path = tmp_path / "image.raw"
    path.write_bytes(os.urandom(64 * 1024) + b"\0" * (1024 * 1024))
    return ImageMeta(id=str(uuidlib.uuid4()), name="test-image", disk_format="raw",
                     size=path.stat().st_size, location=str(path))


@pytest.fixture
def powervm_cloud(database, conf, tmp_path, request):
    """The ``cloud`` fixture with the PowerVM driver on the fake session
    (``[powervm]`` options a test set before asking for it are kept). The
    default image is a small file registered under the test-image name
    before the services start, so they use it instead of building the
    bootable x86 test guest (an LPAR would not boot that anyway)."""
    from virtstack.image import store

    conf.config(compute_driver="powervm", group="compute")
    conf.config(group="powervm", fake_session=True, disk_driver="localdisk",
                volume_group_name="image_pool")
    image = tmp_path / "ppc64le-root.raw"
    image.write_bytes(os.urandom(256 * 1024))
    store.add_file(str(image), store.TEST_IMAGE_NAME, "raw", "bare")
    return request.getfixturevalue("cloud")


@pytest.fixture
def make_driver(conf, request) -> Callable[..., Any]:
    """``make_driver(**powervm_options)``: a ready PowerVM driver on a new
    fake session (localdisk on ``image_pool`` unless told otherwise)."""
    def make(**options: Any):
        settings = {"fake_session": True, "disk_driver": "localdisk",
                    "volume_group_name": "image_pool"}
        settings.update(options)
        conf.config(group="powervm", **settings)
        driver = load_driver("powervm")
        driver.init_host("pvm-host")
        request.addfinalizer(lambda: driver.cleanup_host("pvm-host"))
        return driver
    return make


@pytest.fixture
def driver(make_driver):
    return make_driver()


def session_of(driver):
    return driver.adapter.session


def new_instance(flavor: Flavor | None = None) -> Instance:
    uuid = str(uuidlib.uuid4())
    return Instance(uuid=uuid, name=f"instance-{next(_names):08x}", display_name="pvm-test",
                    project_id="p", user_id="u",
                    flavor=flavor or Flavor(flavorid="1", name="m1.tiny", vcpus=1,
                                            memory_mb=512, root_gb=1))


def fc_connection_info(volume_id: str, lun: int = 1) -> dict[str, Any]:
    """A volume on the fake SAN, zoned to fcs0 (10000090FA1B6302) of the VIOS."""
    return {"driver_volume_type": "fibre_channel",
            "data": {"volume_id": volume_id, "target_wwn": ["500507680B215660"],
                     "target_lun": lun,
                     "initiator_target_map": {"10000090FA1B6302": ["500507680B215660"]}}}


def inventory(driver) -> dict[str, set]:
    """Everything of the fake hypervisor an instance could leave behind."""
    world = session_of(driver).world
    with world.lock:
        found: dict[str, set] = {
            "lpars": {fw.text(s.element, "PartitionName") for s in world.all("LogicalPartition")},
            "vdisks": {fw.text(d, "DiskName") for vg in world.all("VolumeGroup")
                       for d in fw.findall(vg.element, "VirtualDisks/VirtualDisk")},
            "media": {fw.text(m, "MediaName") for vg in world.all("VolumeGroup")
                      for m in vg.element.iter(fw.q("VirtualOpticalMedia"))},
            "lus": {fw.text(s.element, "UnitName") for s in world.all("LogicalUnit")},
            "cnas": {fw.text(s.element, "MACAddress") for s in world.all("ClientNetworkAdapter")},
            "files": {s.uuid for s in world.all("File")},
            "scsi_maps": set(), "vfc_maps": set(), "hdisks": set(),
        }
        for vios in world.all("VirtualIOServer"):
            for m in fw.findall(vios.element, "VirtualSCSIMappings/VirtualSCSIMapping"):
                storage = fw.find(m, "Storage")
                names = " ".join(storage.itertext()).split() if storage is not None else []
                found["scsi_maps"].add((fw.link_href(fw.find(m, "AssociatedLogicalPartition")),
                                        tuple(names)))
            for m in fw.findall(vios.element,
                                "VirtualFibreChannelMappings/VirtualFibreChannelMapping"):
                found["vfc_maps"].add((fw.link_href(fw.find(m, "AssociatedLogicalPartition")),
                                       fw.text(m, "ClientAdapter/WWPNs")))
            found["hdisks"] |= {fw.text(pv, "VolumeName")
                                for pv in fw.findall(vios.element, "PhysicalVolumes/PhysicalVolume")
                                if fw.text(pv, "Description") == "virtstack fake SAN FC disk"}
    return found


def scsi_maps_of(driver, instance: Instance) -> list:
    """The vSCSI mappings (element list) whose client is the instance's LPAR."""
    from virtstack.virt.powervm import vm

    world = session_of(driver).world
    lpar_uuid = vm.pvm_uuid(instance).lower()
    with world.lock:
        return [m for vios in world.all("VirtualIOServer")
                for m in fw.findall(vios.element, "VirtualSCSIMappings/VirtualSCSIMapping")
                if (fw.href_uuid(fw.link_href(fw.find(m, "AssociatedLogicalPartition"))) or ""
                    ).lower() == lpar_uuid]
