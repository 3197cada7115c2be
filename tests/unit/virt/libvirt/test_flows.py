"""Tests of the libvirt spawn flow's shape and of its tasks up to the point
where libvirt is needed (a Host stand-in, autospec'd, takes the domain XML).
The whole flow, failing at each step, runs against real libvirtd in
tests/functional/virt/libvirt/test_driver.py."""

from __future__ import annotations

import os
import shutil
from unittest import mock

import pytest

from virtstack import exception
from virtstack.flows.runner import FlowRunner
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt.libvirt import config, designer, flows, imagebackend, volume
from virtstack.virt.libvirt.guest import Guest
from virtstack.virt.libvirt.host import Host

UUID = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
FACTS = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1", disk_cache_mode="none")


def task_names(flow) -> list[str]:
    return [task.name for task in flow]


def test_spawn_flow_order():
    assert task_names(flows.get_spawn_flow()) == [
        "create_instance_dir", "fetch_kernel_and_ramdisk", "create_root_disk",
        "connect_volumes", "define_guest", "plug_vifs", "power_on", "wait_running"]


def test_spawn_flow_without_power_on_stops_at_the_definition():
    assert task_names(flows.get_spawn_flow(power_on=False))[-3:] == [
        "connect_volumes", "define_guest", "plug_vifs"]


def test_destroy_flow_disconnects_volumes_before_removing_files():
    assert task_names(flows.get_destroy_flow()) == [
        "power_off_guest", "undefine_guest", "disconnect_volumes", "delete_instance_files"]


def test_vifs_are_refused_until_they_are_implemented():
    instance = mock.sentinel.instance
    with pytest.raises(exception.NotSupported, match="plug_vifs"):
        flows.PlugVifs().execute(instance, [{"id": "vif-1"}])
    flows.PlugVifs().execute(instance, [])


@pytest.fixture
def files(tmp_path):
    """A raw root image and kernel/ramdisk files, by image id."""
    paths = {}
    for image_id, size in (("root", 4 * 1024 * 1024), ("kernel", 1024), ("ramdisk", 1024)):
        path = tmp_path / image_id
        with open(path, "wb") as f:
            f.truncate(size)
        paths[image_id] = str(path)
    return paths


@pytest.fixture
def inputs(tmp_path, files):
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    host = mock.create_autospec(Host, instance=True)
    host.find_guest.return_value = None
    instance = Instance(uuid=UUID, name="instance-00000007", display_name="t", project_id="p",
                        user_id="u", flavor=Flavor(flavorid="1", name="t", vcpus=1,
                                                   memory_mb=64, root_gb=1))
    return {"host": host, "backend": imagebackend.get_backend("qcow2", str(tmp_path / "state")),
            "facts": FACTS, "instance": instance,
            "image_meta": ImageMeta(id="root", disk_format="raw", properties={
                "kernel_id": "kernel", "ramdisk_id": "ramdisk"}),
            "image_paths": files.__getitem__, "network_info": [], "block_device_info": {},
            "volumes": volume.VolumeConnectors(host, "qemu", "iqn.2010-10.org.virtstack:t:1"),
            "running_timeout": 1.0}


def run(inputs, power_on=False):
    return FlowRunner("test", persist=False).run(
        "spawn", UUID, flows.get_spawn_flow, factory_kwargs={"power_on": power_on},
        transient=inputs)


def test_flow_defines_the_guest_on_the_files_it_made(inputs, files):
    results = run(inputs)
    backend = inputs["backend"]
    [(xml,), _] = inputs["host"].define_guest.call_args
    domain = config.Domain.from_xml(xml)
    assert (domain.uuid, domain.name) == (UUID, "instance-00000007")
    assert domain.os.kernel == results["boot_files"]["kernel"] == backend.boot_file_path(
        UUID, "kernel")
    assert os.path.samefile(domain.os.kernel, files["kernel"])
    [disk] = domain.devices_of(config.Disk)
    assert (disk.source_file, disk.driver_type) == (backend.disk_path(UUID), "qcow2")
    [serial] = domain.devices_of(config.Serial)
    assert serial.log_file == backend.console_log_path(UUID)


def test_failure_after_the_definition_removes_every_file(inputs):
    inputs["network_info"] = [{"id": "vif-1"}]  # PlugVifs fails
    guest = inputs["host"].find_guest.return_value = mock.create_autospec(Guest, instance=True)
    with pytest.raises(exception.NotSupported):
        run(inputs)
    assert not os.path.exists(inputs["backend"].instance_dir(UUID))
    guest.poweroff.assert_called_once_with()
    guest.delete_configuration.assert_called_once_with()


def test_reverts_find_nothing_to_undo_and_succeed(inputs):
    for task in (flows.CreateInstanceDir(), flows.FetchKernelAndRamdisk(),
                 flows.CreateRootDisk()):
        task.revert(backend=inputs["backend"], instance=inputs["instance"], result=None)
    flows.DefineGuest().revert(host=inputs["host"], instance=inputs["instance"], result=None)
    flows.PowerOn().revert(host=inputs["host"], instance=inputs["instance"], result=None)
    assert not os.path.exists(inputs["backend"].instance_dir(UUID))


# -- volumes at spawn -----------------------------------------------------------

def file_volume(tmp_path, volume_id: str) -> dict:
    path = tmp_path / f"volume-{volume_id}"
    with open(path, "wb") as f:
        f.truncate(1024 * 1024)
    return {"driver_volume_type": "file",
            "data": {"volume_id": volume_id, "device_path": str(path), "format": "raw"}}


def mapping(connection_info, mount_device, boot_index=None) -> dict:
    return {"connection_info": connection_info, "mount_device": mount_device,
            "boot_index": boot_index, "disk_bus": "virtio", "device_type": "disk",
            "delete_on_termination": False}


def test_mapped_volumes_are_in_the_definition(inputs, tmp_path):
    data = file_volume(tmp_path, "data-1")
    inputs["block_device_info"] = {"block_device_mapping": [mapping(data, "/dev/vdb")]}
    run(inputs)
    [(xml,), _] = inputs["host"].define_guest.call_args
    disks = config.Domain.from_xml(xml).devices_of(config.Disk)
    assert [(d.target_dev, d.serial) for d in disks] == [("vda", None), ("vdb", "data-1")]
    assert disks[1].source_file == data["data"]["device_path"]


def test_boot_from_volume_makes_no_root_disk(inputs, tmp_path):
    root = file_volume(tmp_path, "root-1")
    inputs["block_device_info"] = {"root_device_name": "/dev/vda",
                                   "block_device_mapping": [mapping(root, "/dev/vda", 0)]}
    results = run(inputs)
    assert results["root_disk"] is None
    assert not os.path.exists(inputs["backend"].disk_path(UUID))
    [(xml,), _] = inputs["host"].define_guest.call_args
    domain = config.Domain.from_xml(xml)
    [disk] = domain.devices_of(config.Disk)
    assert (disk.target_dev, disk.source_file) == ("vda", root["data"]["device_path"])
    assert domain.os.kernel and domain.os.cmdline == "root=/dev/vda console=ttyS0"


def test_a_volume_that_cannot_connect_undoes_the_others(inputs, tmp_path):
    iscsi = {"driver_volume_type": "iscsi", "data": {
        "volume_id": "v-1", "target_portal": "127.0.0.1:3260", "target_iqn": "iqn.x:v-1",
        "target_lun": 1, "auth_method": "CHAP", "auth_username": "u", "auth_password": "p"}}
    missing = {"driver_volume_type": "file", "data": {"volume_id": "v-2",
                                                      "device_path": "/nonexistent"}}
    inputs["block_device_info"] = {"block_device_mapping": [
        mapping(iscsi, "/dev/vdb"), mapping(missing, "/dev/vdc")]}
    inputs["host"].list_secrets.return_value = []
    with pytest.raises(exception.Invalid, match="/nonexistent is not a file"):
        run(inputs)
    host = inputs["host"]
    secret = designer.build_chap_secret(UUID, "v-1")
    host.define_secret.assert_called_once_with(secret, b"p")
    host.delete_secret.assert_called_once_with(secret.uuid)
    host.define_guest.assert_not_called()
    assert not os.path.exists(inputs["backend"].instance_dir(UUID))


def test_an_unknown_volume_type_fails_the_spawn(inputs):
    inputs["block_device_info"] = {"block_device_mapping": [
        mapping({"driver_volume_type": "rbd", "data": {"volume_id": "v"}}, "/dev/vdb")]}
    inputs["host"].list_secrets.return_value = []
    with pytest.raises(exception.VolumeDriverNotFound, match="known: file, iscsi, local"):
        run(inputs)
    inputs["host"].define_guest.assert_not_called()


def test_destroy_disconnects_listed_volumes_and_forgets_the_rest():
    host = mock.create_autospec(Host, instance=True)
    left = designer.build_chap_secret(UUID, "gone-from-the-list")
    host.list_secrets.return_value = [left]
    instance = mock.Mock(uuid=UUID)
    listed = {"driver_volume_type": "iscsi", "data": {"volume_id": "v-1"}}
    flows.DisconnectVolumes().execute(
        volumes=volume.VolumeConnectors(host, "qemu", "iqn"), instance=instance,
        block_device_info={"block_device_mapping": [
            mapping(listed, "/dev/vdb"),
            mapping({"driver_volume_type": "rbd", "data": {}}, "/dev/vdc")]})
    assert host.delete_secret.call_args_list == [
        mock.call(designer.build_chap_secret(UUID, "v-1").uuid), mock.call(left.uuid)]
