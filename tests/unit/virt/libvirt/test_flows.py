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
from virtstack.virt.libvirt import config, designer, flows, imagebackend
from virtstack.virt.libvirt.guest import Guest
from virtstack.virt.libvirt.host import Host

UUID = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
FACTS = designer.HostFacts(virt_type="qemu", vnc_listen="127.0.0.1", disk_cache_mode="none")


def task_names(flow) -> list[str]:
    return [task.name for task in flow]


def test_spawn_flow_order():
    assert task_names(flows.get_spawn_flow()) == [
        "create_instance_dir", "fetch_kernel_and_ramdisk", "create_root_disk", "define_guest",
        "plug_vifs", "connect_volumes", "power_on", "wait_running"]


def test_spawn_flow_without_power_on_stops_at_the_definition():
    assert task_names(flows.get_spawn_flow(power_on=False))[-3:] == [
        "define_guest", "plug_vifs", "connect_volumes"]


def test_vifs_and_volumes_are_refused_until_they_are_implemented():
    instance = mock.sentinel.instance
    with pytest.raises(exception.NotSupported, match="plug_vifs"):
        flows.PlugVifs().execute(instance, [{"id": "vif-1"}])
    with pytest.raises(exception.NotSupported, match="attach_volume"):
        flows.ConnectVolumes().execute(instance, {"block_device_mapping": [{"x": 1}]})
    flows.PlugVifs().execute(instance, [])
    flows.ConnectVolumes().execute(instance, {})


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
