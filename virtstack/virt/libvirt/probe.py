"""Can this host run guests under KVM? A probe guest answers.

``[libvirt] virt_type = auto`` must not trust ``/dev/kvm`` or libvirt's
capabilities alone: on some hosts (a nested hypervisor's PVM module, as on
these build machines) KVM accepts a guest and then emulates it, slower than
QEMU's own TCG, or never gets a Linux kernel booted. So the probe *runs* a
guest: a 512-byte boot sector that does what a kernel does first (leave real
mode, turn on paging, enter 64-bit long mode) and then writes
``VIRTSTACK-PROBE-OK`` to the first serial port. It boots under ``kvm`` and,
for comparison, under ``qemu`` (TCG). KVM is chosen only when its probe
prints the line and is not markedly slower than TCG's: real hardware
virtualisation boots this in about the time TCG does, an emulating KVM
takes several times longer.

The boot sector was assembled from this source (GNU as, ``-Ttext 0x7c00``,
``--oformat binary``)::

    .intel_syntax noprefix
    .code16
        cli
        xor ax, ax                  # ds = es = ss = 0, stack below 0x7c00
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        mov di, 0x1000              # zero three pages: PML4, PDPT, PD
        mov cx, 0x1800
        rep stosw
        mov dword ptr [0x1000], 0x2003   # PML4[0] -> PDPT
        mov dword ptr [0x2000], 0x3003   # PDPT[0] -> PD
        mov dword ptr [0x3000], 0x0083   # PD[0]: identity-map 2 MiB
        lgdt [gdtr]
        mov eax, cr4                # PAE
        or eax, 0x20
        mov cr4, eax
        mov eax, 0x1000
        mov cr3, eax
        mov ecx, 0xC0000080         # EFER.LME
        rdmsr
        or eax, 0x100
        wrmsr
        mov eax, cr0                # PG | PE: straight into long mode
        or eax, 0x80000001
        mov cr0, eax
        ljmp 0x08, offset long_mode
    .code64
    long_mode:
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        lea rsi, [rip + msg]
        mov dx, 0x3f8               # COM1
    1:  lodsb
        test al, al
        jz 2f
        out dx, al
        jmp 1b
    2:  cli
    3:  hlt
        jmp 3b
    .align 8
    gdt:  .quad 0, 0x00209A0000000000, 0x0000920000000000
    gdtr: .word gdtr - gdt - 1
          .long gdt
    msg:  .asciz "VIRTSTACK-PROBE-OK\\r\\n"
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import uuid
from typing import TYPE_CHECKING

from virtstack.virt.driver import wait_for
from virtstack.virt.libvirt import designer

if TYPE_CHECKING:
    from virtstack.virt.libvirt.host import Host

MARKER = b"VIRTSTACK-PROBE-OK"

BOOT_SECTOR_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007cbf0010b90018f3ab66c70600100320000066c706"
    "00200330000066c7060030830000000f0116a87c0f20e06683c8200f22e066b8"
    "001000000f22d866b9800000c00f32660d000100000f300f20c0660d01000080"
    "0f22c0ea687c080066b810008ed88ec08ed0488d353500000066baf803ac84c0"
    "7403eeebf8faf4ebfd0f1f8000000000000000000000000000000000009a2000"
    "00000000009200001700907c000056495254535441434b2d50524f42452d4f4b"
    "0d0a00")

#: Seconds a probe guest gets to print its line (TCG needs well under one).
BOOT_TIMEOUT = 30.0
#: KVM may be this many times slower than TCG at the probe, plus SLACK
#: seconds, before it counts as emulating (real KVM is about as fast).
SLOWDOWN_LIMIT = 2.0
SLACK = 1.0


class ProbeError(Exception):
    """The probe guest could not be started or did not print its line."""


@dataclasses.dataclass(frozen=True)
class VirtTypeChoice:
    """The guest type to use and why (for the log and for operators)."""

    virt_type: str  # "kvm" or "qemu"
    reason: str


def boot_sector() -> bytes:
    """The probe's disk image: the code above as a bootable MBR, padded to 1 MiB."""
    sector = BOOT_SECTOR_CODE.ljust(510, b"\0") + b"\x55\xaa"
    return sector.ljust(1024 * 1024, b"\0")


def time_probe_boot(host: Host, virt_type: str, work_dir: str,
                    timeout: float = BOOT_TIMEOUT) -> float:
    """Seconds from starting a probe guest of ``virt_type`` to its line.

    The guest is transient and gone afterwards, as are its files (under a
    new directory in ``work_dir``, which QEMU must be able to traverse).
    Raises ``ProbeError`` saying why when it does not boot.
    """
    probe_dir = tempfile.mkdtemp(prefix=f".probe-{virt_type}-", dir=work_dir)
    try:
        os.chmod(probe_dir, 0o711)
        disk = os.path.join(probe_dir, "probe.img")
        log = os.path.join(probe_dir, "serial.log")
        with open(disk, "wb") as f:
            f.write(boot_sector())
        os.chmod(disk, 0o644)
        conf = designer.build_probe_domain(f"virtstack-probe-{uuid.uuid4().hex[:12]}",
                                           virt_type, disk, log)
        started = time.monotonic()
        try:
            guest = host.create_transient_guest(conf.to_xml())
        except Exception as exc:  # libvirt refuses the domain type or QEMU fails
            raise ProbeError(f"the probe guest did not start: {exc}") from exc
        try:
            def printed() -> bool:
                try:
                    with open(log, "rb") as f:
                        return MARKER in f.read()
                except FileNotFoundError:
                    return False

            try:
                wait_for(printed, timeout, interval=0.02, what=f"the {virt_type} probe guest")
            except TimeoutError:
                raise ProbeError(f"the probe guest did not boot within {timeout:.0f}s") \
                    from None
            return time.monotonic() - started
        finally:
            guest.poweroff()  # transient: destroying it removes it
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def choose_virt_type(host: Host, work_dir: str, arch: str = "x86_64",
                     timeout: float = BOOT_TIMEOUT) -> VirtTypeChoice:
    """``kvm`` when a probe guest boots under KVM about as fast as under TCG
    or faster, else ``qemu``; the reason says which test decided."""
    offered = host.get_capabilities().domain_types(arch)
    if "kvm" not in offered:
        return VirtTypeChoice("qemu", f"libvirt offers no kvm guests for {arch} "
                                      "(no /dev/kvm, or QEMU without KVM support)")
    try:
        kvm_seconds = time_probe_boot(host, "kvm", work_dir, timeout)
    except ProbeError as exc:
        return VirtTypeChoice("qemu", f"kvm is offered but unusable: {exc}")
    try:
        tcg_seconds = time_probe_boot(host, "qemu", work_dir, timeout)
    except ProbeError as exc:
        return VirtTypeChoice("kvm", f"the probe guest booted under kvm in "
                                     f"{kvm_seconds:.2f}s (TCG could not be compared: {exc})")
    limit = max(SLOWDOWN_LIMIT * tcg_seconds, tcg_seconds + SLACK)
    if kvm_seconds > limit:
        return VirtTypeChoice("qemu", f"the probe guest booted under kvm in {kvm_seconds:.2f}s "
                                      f"but under TCG in {tcg_seconds:.2f}s: this KVM emulates "
                                      "rather than virtualises")
    return VirtTypeChoice("kvm", f"the probe guest booted under kvm in {kvm_seconds:.2f}s "
                                 f"(TCG: {tcg_seconds:.2f}s)")
