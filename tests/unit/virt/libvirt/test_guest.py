"""Tests of ``Guest``'s decisions on a stand-in domain (autospec of
``virDomain``): error translation, the suspended state, retries and
fallbacks. The operations themselves run against real QEMU in
tests/functional/virt/libvirt/test_guest.py."""

from __future__ import annotations

import errno
import threading
from unittest import mock

import pytest

libvirt = pytest.importorskip("libvirt")

from virtstack import exception  # noqa: E402
from virtstack.virt import power_state  # noqa: E402
from virtstack.virt.libvirt import config  # noqa: E402
from virtstack.virt.libvirt.guest import DeviceDetachFailed, Guest  # noqa: E402
from virtstack.virt.libvirt.host import Host  # noqa: E402

UUID = "5d3c2b1a-0f9e-4d8c-b7a6-958473625140"


def libvirt_error(code: int, message: str = "error", int1: int = -1) -> libvirt.libvirtError:
    exc = libvirt.libvirtError(message)
    exc.err = (code, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR, None, None, None,
               int1, -1)
    return exc


@pytest.fixture
def domain():
    dom = mock.create_autospec(libvirt.virDomain, instance=True)
    dom.UUIDString.return_value = UUID
    dom.name.return_value = "instance-00000001"
    dom.hasManagedSaveImage.return_value = 0
    return dom


@pytest.mark.parametrize("state, saved, expected", [
    (libvirt.VIR_DOMAIN_RUNNING, 0, power_state.RUNNING),
    (libvirt.VIR_DOMAIN_PAUSED, 0, power_state.PAUSED),
    (libvirt.VIR_DOMAIN_SHUTOFF, 0, power_state.SHUTDOWN),
    (libvirt.VIR_DOMAIN_SHUTOFF, 1, power_state.SUSPENDED),
    (libvirt.VIR_DOMAIN_CRASHED, 0, power_state.CRASHED),
])
def test_power_state(domain, state, saved, expected):
    domain.state.return_value = [state, 0]
    domain.hasManagedSaveImage.return_value = saved
    assert Guest(domain).get_power_state() == expected


def test_no_domain_becomes_instance_not_found(domain):
    domain.state.side_effect = libvirt_error(libvirt.VIR_ERR_NO_DOMAIN)
    with pytest.raises(exception.InstanceNotFound) as raised:
        Guest(domain).get_power_state()
    assert raised.value.kwargs["instance_id"] == UUID


def test_other_libvirt_errors_pass_through(domain):
    domain.createWithFlags.side_effect = libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR)
    with pytest.raises(libvirt.libvirtError):
        Guest(domain).launch()


def test_launch_paused(domain):
    Guest(domain).launch(pause=True)
    domain.createWithFlags.assert_called_once_with(libvirt.VIR_DOMAIN_START_PAUSED)


def test_poweroff_of_a_stopped_domain_does_nothing(domain):
    domain.destroy.side_effect = libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID)
    domain.isActive.return_value = 0
    Guest(domain).poweroff()
    domain.destroy.assert_called_once_with()


def test_poweroff_tries_again_while_qemu_is_busy(domain):
    busy = libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, "Device or resource busy", errno.EBUSY)
    domain.destroy.side_effect = [busy, busy, 0]
    Guest(domain).poweroff()
    assert domain.destroy.call_count == 3


def test_poweroff_gives_up_when_qemu_stays_busy(domain):
    domain.destroy.side_effect = libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, "busy", errno.EBUSY)
    with pytest.raises(libvirt.libvirtError):
        Guest(domain).poweroff()
    assert domain.destroy.call_count == 3


def test_shutdown_presses_the_acpi_button(domain):
    Guest(domain).shutdown()
    domain.shutdownFlags.assert_called_once_with(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)


def test_reboot_asks_the_guest_through_acpi(domain):
    Guest(domain).reboot()
    domain.reboot.assert_called_once_with(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)


def test_managed_save_restores_running(domain):
    Guest(domain).save_managed()
    domain.managedSave.assert_called_once_with(libvirt.VIR_DOMAIN_SAVE_RUNNING)


def test_delete_configuration_removes_managed_save_snapshots_and_nvram(domain):
    Guest(domain).delete_configuration()
    [(flags,), _] = domain.undefineFlags.call_args
    for flag in (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
                 libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
                 libvirt.VIR_DOMAIN_UNDEFINE_NVRAM):
        assert flags & flag


def test_delete_configuration_of_a_domain_gone_is_fine(domain):
    domain.undefineFlags.side_effect = libvirt_error(libvirt.VIR_ERR_NO_DOMAIN)
    Guest(domain).delete_configuration()


def test_delete_configuration_falls_back_without_flag_support(domain):
    domain.undefineFlags.side_effect = libvirt_error(libvirt.VIR_ERR_NO_SUPPORT)
    domain.hasManagedSaveImage.return_value = 1
    Guest(domain).delete_configuration()
    domain.managedSaveRemove.assert_called_once_with(0)
    domain.undefine.assert_called_once_with()


def _xml_with(*disks: config.Disk) -> str:
    return config.Domain(virt_type="qemu", name="instance-00000001", uuid=UUID,
                         devices=list(disks)).to_xml()


def test_detach_of_a_disk_not_attached_raises_device_not_found(domain):
    domain.isActive.return_value = 1
    domain.XMLDesc.return_value = _xml_with()
    with pytest.raises(exception.DeviceNotFound):
        Guest(domain, mock.create_autospec(Host, instance=True)).detach_disk("vdb")
    domain.detachDeviceFlags.assert_not_called()


def test_live_detach_asks_again_then_gives_up(domain):
    disk = config.Disk(source_type="file", device="disk", source_file="/x", target_dev="vdb",
                       alias="virtio-disk1")
    domain.isActive.return_value = 1
    domain.XMLDesc.return_value = _xml_with(disk)  # never goes away
    host = mock.create_autospec(Host, instance=True)
    never = mock.create_autospec(threading.Event, instance=True)
    never.wait.return_value = False
    host.expect_device_removal.return_value = never
    with pytest.raises(DeviceDetachFailed, match="after 3 requests"):
        Guest(domain, host).detach_disk("vdb", persistent=False, timeout=0.01, attempts=3)
    assert domain.detachDeviceFlags.call_count == 3
    host.expect_device_removal.assert_called_once_with(UUID, "virtio-disk1", "vdb")
    host.forget_device_removal.assert_called_once_with(UUID, "virtio-disk1")


def test_attach_to_a_stopped_domain_is_persistent_only(domain):
    domain.isActive.return_value = 0
    disk = config.Disk(source_type="file", device="disk", source_file="/x", target_dev="vdb")
    Guest(domain).attach_device(disk)
    domain.attachDeviceFlags.assert_called_once_with(disk.to_xml(pretty=False),
                                                     libvirt.VIR_DOMAIN_AFFECT_CONFIG)


VOLUME_DISK = config.Disk(source_type="file", device="disk", source_file="/vol",
                          target_dev="vdb", serial="vol-1", alias="virtio-disk1")


def detaching_domain(domain, removed_after: int):
    """``domain`` whose live disk vdb goes after ``removed_after`` live
    detach requests; records which definition each request was for."""
    requests = []

    def xml(flags):
        live_gone = sum(1 for f in requests if f == libvirt.VIR_DOMAIN_AFFECT_LIVE) \
            >= removed_after
        config_gone = libvirt.VIR_DOMAIN_AFFECT_CONFIG in requests
        gone = config_gone if flags & libvirt.VIR_DOMAIN_XML_INACTIVE else live_gone
        return _xml_with(*([] if gone else [VOLUME_DISK]))

    domain.isActive.return_value = 1
    domain.XMLDesc.side_effect = xml
    domain.detachDeviceFlags.side_effect = lambda _xml, flags: requests.append(flags)
    return requests


def waiting_host(sets_on_request: int | None):
    """A Host whose removal event fires on the given live request (never: None)."""
    host = mock.create_autospec(Host, instance=True)
    removed = mock.create_autospec(threading.Event, instance=True)
    calls = {"n": 0}

    def wait(timeout):
        calls["n"] += 1
        return sets_on_request is not None and calls["n"] >= sets_on_request
    removed.wait.side_effect = wait
    host.expect_device_removal.return_value = removed
    return host


def test_detach_is_live_first_and_persistent_after(domain):
    requests = detaching_domain(domain, removed_after=1)
    Guest(domain, waiting_host(1)).detach_disk("vdb", timeout=0.01, attempts=3)
    assert requests == [libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG]


def test_detach_asks_again_until_the_guest_lets_go(domain):
    requests = detaching_domain(domain, removed_after=2)
    host = waiting_host(2)
    Guest(domain, host).detach_disk("vdb", timeout=0.01, attempts=3)
    assert requests == [libvirt.VIR_DOMAIN_AFFECT_LIVE] * 2 + [libvirt.VIR_DOMAIN_AFFECT_CONFIG]
    host.forget_device_removal.assert_called_once_with(UUID, "virtio-disk1")


def test_detach_the_guest_never_acknowledges_keeps_the_persistent_disk(domain):
    requests = detaching_domain(domain, removed_after=99)
    with pytest.raises(exception.DeviceDetachFailed, match="vdb was not detached .* after 2 "
                                                           "requests: the guest did not"):
        Guest(domain, waiting_host(None)).detach_disk("vdb", timeout=0.01, attempts=2)
    assert requests == [libvirt.VIR_DOMAIN_AFFECT_LIVE] * 2  # never the persistent copy


def test_detach_refused_because_already_under_way_keeps_waiting(domain):
    # QEMU refuses a second unplug request of a device on its way out.
    requests = detaching_domain(domain, removed_after=99)
    busy = libvirt_error(libvirt.VIR_ERR_OPERATION_FAILED, "already in the process of unplug")

    def detach(xml, flags):
        requests.append(flags)
        if flags == libvirt.VIR_DOMAIN_AFFECT_LIVE and len(requests) > 1:
            raise busy
    domain.detachDeviceFlags.side_effect = detach
    Guest(domain, waiting_host(2)).detach_disk("vdb", timeout=0.01, attempts=3)
    assert requests[-1] == libvirt.VIR_DOMAIN_AFFECT_CONFIG


def test_detach_of_a_stopped_domain_is_persistent_only(domain):
    requests = detaching_domain(domain, removed_after=99)
    domain.isActive.return_value = 0
    Guest(domain).detach_disk("vdb")
    assert requests == [libvirt.VIR_DOMAIN_AFFECT_CONFIG]


def test_disk_capacity_comes_from_block_info(domain):
    domain.blockInfo.return_value = [2 * 1024 ** 3, 4096, 4096]
    assert Guest(domain).get_disk_capacity("vdb") == 2 * 1024 ** 3
    domain.blockInfo.assert_called_once_with("vdb", 0)
