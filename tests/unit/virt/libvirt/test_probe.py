"""Tests of the KVM probe's program and its decision (the probe guest itself
boots against real libvirtd in tests/functional/virt/libvirt/test_driver.py)."""

from __future__ import annotations

import struct
from unittest import mock

import pytest

from virtstack.virt.libvirt import config, probe
from virtstack.virt.libvirt.host import Host


def test_boot_sector_is_a_bootable_mbr_that_prints_the_marker():
    disk = probe.boot_sector()
    assert len(disk) == 1024 * 1024
    assert disk[510:512] == b"\x55\xaa"
    assert len(probe.BOOT_SECTOR_CODE) <= 510
    assert probe.MARKER + b"\r\n\0" in disk[:512]
    # It starts with cli; xor ax, ax (the source in the module docstring).
    assert disk[:3] == b"\xfa\x31\xc0"
    # The GDT descriptor points into the sector, at the GDT (0x7c00-based).
    gdtr = disk.index(struct.pack("<H", 23))
    assert 0x7c00 <= struct.unpack_from("<I", disk, gdtr + 2)[0] < 0x7c00 + 512


def stub_host(domain_types: list[str]) -> Host:
    """A Host whose libvirt offers ``domain_types`` for x86_64 guests."""
    host = mock.create_autospec(Host, instance=True)
    host.get_capabilities.return_value = config.Capabilities(guests=[
        config.CapsGuest(os_type="hvm", arch="x86_64", domain_types=domain_types)])
    return host


def _choose(domain_types, timings):
    """choose_virt_type with probe boots taking ``timings[virt_type]`` seconds
    (an exception instance: that probe fails)."""
    def boot(host, virt_type, work_dir, timeout=probe.BOOT_TIMEOUT):
        result = timings[virt_type]
        if isinstance(result, Exception):
            raise result
        return result

    with mock.patch.object(probe, "time_probe_boot", autospec=True, side_effect=boot) as timed:
        choice = probe.choose_virt_type(stub_host(domain_types), "/work")
    return choice, [c.args[1] for c in timed.call_args_list]


def test_no_kvm_offered_means_qemu_without_probing():
    choice, probed = _choose(["qemu"], {})
    assert choice.virt_type == "qemu" and "offers no kvm" in choice.reason
    assert probed == []


def test_kvm_that_does_not_boot_the_probe_means_qemu():
    choice, probed = _choose(["qemu", "kvm"], {"kvm": probe.ProbeError("did not boot")})
    assert choice.virt_type == "qemu" and "did not boot" in choice.reason
    assert probed == ["kvm"]


def test_kvm_much_slower_than_tcg_means_qemu():
    # What these machines do: KVM (a nested PVM) runs the probe in ~4 s, TCG in 0.2 s.
    choice, _ = _choose(["qemu", "kvm"], {"kvm": 4.1, "qemu": 0.2})
    assert choice.virt_type == "qemu" and "emulates" in choice.reason


def test_kvm_about_as_fast_as_tcg_means_kvm():
    choice, probed = _choose(["qemu", "kvm"], {"kvm": 0.3, "qemu": 0.25})
    assert choice.virt_type == "kvm" and "0.30s" in choice.reason
    assert probed == ["kvm", "qemu"]


def test_kvm_that_boots_when_tcg_cannot_be_compared_means_kvm():
    choice, _ = _choose(["qemu", "kvm"], {"kvm": 0.3, "qemu": probe.ProbeError("no TCG")})
    assert choice.virt_type == "kvm" and "no TCG" in choice.reason


@pytest.mark.parametrize("kvm, tcg, expected", [
    (1.0, 0.1, "kvm"),   # within tcg + SLACK
    (1.2, 0.1, "qemu"),
    (4.0, 2.0, "kvm"),   # within SLOWDOWN_LIMIT x tcg
    (4.1, 2.0, "qemu"),
])
def test_the_slowdown_limit(kvm, tcg, expected):
    choice, _ = _choose(["qemu", "kvm"], {"kvm": kvm, "qemu": tcg})
    assert choice.virt_type == expected
