"""``Guest`` and ``Host`` against real libvirtd + QEMU: devices and events.

One booted test guest takes a disk live and persistently, grows it, and
gives it back when asked, each step seen from inside the guest (its console
lines) and from libvirt (its XML, its device-removed event).
"""

from __future__ import annotations

import os

import pytest

from tests.functional.virt.libvirt import environment as lv
from virtstack import exception
from virtstack.virt import event as virtevent
from virtstack.virt import power_state
from virtstack.virt.libvirt import designer, imagebackend

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(600)]

GiB = 1024 ** 3
SECTOR = 512


def test_disk_attach_resize_and_detach_seen_by_the_guest(libvirt_driver, image_meta,
                                                         make_instance, recorder):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta)
    out = lv.Console(lambda: driver.get_console_output(None, instance))
    out.wait_for(lv.BOOT_MARKER)
    guest = driver.host.get_guest(instance)

    extra = os.path.join(driver.backend.instance_dir(instance.uuid), "extra.raw")
    with open(extra, "wb") as f:
        f.truncate(GiB)
    disk = designer.build_file_disk(extra, "vdb", "raw", "writeback", serial="extra")
    guest.attach_device(disk, persistent=True, live=True)
    out.wait_for(f"VIRTSTACK-DISK-ADDED vdb {GiB // SECTOR}", timeout=60)
    assert guest.find_disk("vdb").alias  # libvirt named the live device
    assert guest.find_disk("vdb", inactive=True).source_file == extra

    guest.block_resize("vdb", 2 * GiB)
    out.wait_for(f"VIRTSTACK-DISK-RESIZED vdb {2 * GiB // SECTOR}", timeout=60)
    assert imagebackend.image_info(extra, "raw")["virtual-size"] == 2 * GiB

    removed = recorder.expect(lambda e: isinstance(e, virtevent.DeviceRemovedEvent)
                              and e.uuid == instance.uuid)
    guest.detach_disk("vdb")  # returns once libvirt says the device is gone
    assert guest.find_disk("vdb") is None
    assert guest.find_disk("vdb", inactive=True) is None
    assert removed.wait(recorder.deadline)
    assert [e.dev for e in recorder.events if isinstance(e, virtevent.DeviceRemovedEvent)] \
        == ["vdb"]
    out.wait_for("VIRTSTACK-DISK-REMOVED vdb", timeout=60)
    with pytest.raises(exception.DeviceNotFound):
        guest.detach_disk("vdb")


def test_persistent_only_attach_and_detach_of_a_stopped_guest(libvirt_driver, image_meta,
                                                              make_instance):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta, power_on=False)
    guest = driver.host.get_guest(instance)
    extra = os.path.join(driver.backend.instance_dir(instance.uuid), "extra.raw")
    open(extra, "wb").close()
    guest.attach_device(designer.build_file_disk(extra, "vdb", "raw", "writeback"))
    assert guest.find_disk("vdb", inactive=True).source_file == extra
    guest.detach_disk("vdb")
    assert guest.find_disk("vdb", inactive=True) is None


def test_guest_operations_on_a_domain_gone_raise_instance_not_found(libvirt_driver, image_meta,
                                                                     make_instance):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta, power_on=False)
    guest = driver.host.get_guest(instance)
    guest.delete_configuration()
    guest.delete_configuration()  # gone already: fine
    for operation in (guest.launch, guest.get_power_state, guest.get_config, guest.shutdown):
        with pytest.raises(exception.InstanceNotFound):
            operation()


def test_host_wait_for_wakes_on_lifecycle_events(libvirt_driver, image_meta, make_instance):
    driver, instance = libvirt_driver, make_instance()
    driver.spawn(None, instance, image_meta, power_on=False)
    guest = driver.host.get_guest(instance)
    guest.launch(pause=True)
    # A poll interval far beyond the deadline: only the event can wake it in time.
    driver.host.wait_for(lambda: guest.get_power_state() == power_state.PAUSED, 10,
                         poll_interval=60, what="paused")
    guest.resume()
    driver.host.wait_for(lambda: guest.get_power_state() == power_state.RUNNING, 10,
                         poll_interval=60, what="running")
    with pytest.raises(TimeoutError, match="never"):
        driver.host.wait_for(lambda: False, 0.2, what="never")


def test_host_facts(libvirt_driver):
    host = libvirt_driver.host
    caps = host.get_capabilities()
    assert "qemu" in caps.domain_types(host.get_arch())
    assert host.get_cpu_count() == os.cpu_count()
    assert 0 < host.get_memory_mb_used() <= host.get_memory_mb_total()
    assert host.get_hostname()
    assert " up " in host.get_uptime()
    assert host.console_via_virtlogd() == os.path.exists("/run/libvirt/virtlogd-sock")


def test_closed_host_reconnects_on_next_use(make_driver):
    driver = make_driver()
    host = driver.host
    generation = host.generation
    host.close()
    assert host.get_hostname()  # connects again, lazily
    assert host.generation == generation + 1
