"""Unit tests of the test-guest builder's pure parts (module order, packages).

The whole build, against Debian's real packages, runs in
tests/functional/virt/libvirt/test_boot_smoke.py.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess

import pytest

from virtstack.image import testimage


def make_module(depends: str | None = None, name: str = "mod") -> bytes:
    """A minimal ELF64 file with a .modinfo section, as kernel modules have."""
    modinfo = b"license=GPL\0"
    if depends is not None:
        modinfo += f"depends={depends}\0".encode()
    modinfo += f"name={name}\0".encode()
    shstrtab = b"\0.shstrtab\0.modinfo\0"
    header_size, entry = 64, 64
    strtab_off = header_size
    modinfo_off = strtab_off + len(shstrtab)
    shoff = modinfo_off + len(modinfo)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0,
                                 header_size, 0, 0, entry, 3, 1)

    def section(name: int, offset: int, size: int, kind: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, 0, 0, 1, 0)

    sections = (bytes(entry) + section(1, strtab_off, len(shstrtab), 3)
                + section(11, modinfo_off, len(modinfo), 1))
    return header + shstrtab + modinfo + sections


def write_modules(tmp_path, modules: dict[str, str | None], builtin=()) -> str:
    root = tmp_path / "lib" / "modules" / "6.1.0-test"
    root.mkdir(parents=True)
    for rel, depends in modules.items():
        path = root / "kernel" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make_module(depends, name=testimage.module_name(rel))
        if rel.endswith(".xz"):
            data = lzma.compress(data)
        path.write_bytes(data)
    (root / "modules.builtin").write_text("".join(f"kernel/{b}\n" for b in builtin))
    return str(root)


def test_read_modinfo_finds_the_depends_line():
    info = testimage.read_modinfo(make_module("virtio,virtio_ring"))
    assert info["depends"] == ["virtio,virtio_ring"]
    assert info["license"] == ["GPL"]


def test_read_modinfo_refuses_what_is_not_elf64():
    with pytest.raises(testimage.TestImageError, match="not an ELF64"):
        testimage.read_modinfo(b"#!/bin/sh\n")


def test_module_name_normalises_dashes_and_compression():
    assert testimage.module_name("kernel/x/crc32c-intel.ko.xz") == "crc32c_intel"


def test_modules_load_dependencies_first_and_once(tmp_path):
    modules_dir = write_modules(tmp_path, {
        "drivers/virtio/virtio.ko": "",
        "drivers/virtio/virtio_ring.ko": "",
        "drivers/virtio/virtio_pci.ko": "virtio,virtio_ring",
        "drivers/block/virtio_blk.ko.xz": "virtio,virtio_ring",
        "fs/ext4/ext4.ko": "jbd2,crc16",
        "fs/jbd2/jbd2.ko": "",
    }, builtin=["lib/crc16.ko"])
    config = {"CONFIG_VIRTIO_PCI": "m", "CONFIG_VIRTIO_BLK": "m", "CONFIG_EXT4_FS": "m",
              "CONFIG_ACPI_BUTTON": "y"}
    features = (("CONFIG_VIRTIO_PCI", "virtio_pci"), ("CONFIG_VIRTIO_BLK", "virtio_blk"),
                ("CONFIG_ACPI_BUTTON", "button"), ("CONFIG_EXT4_FS", "ext4"))
    order = [testimage.module_name(m)
             for m in testimage.resolve_modules(modules_dir, config, features)]
    # crc16 is built in and button is =y: neither is loaded.
    assert order == ["virtio", "virtio_ring", "virtio_pci", "virtio_blk", "jbd2", "ext4"]


def test_a_feature_the_kernel_lacks_is_an_error(tmp_path):
    modules_dir = write_modules(tmp_path, {})
    with pytest.raises(testimage.TestImageError, match="kernel lacks CONFIG_EXT4_FS"):
        testimage.resolve_modules(modules_dir, {}, (("CONFIG_EXT4_FS", "ext4"),))


def test_a_missing_dependency_names_who_needs_it(tmp_path):
    modules_dir = write_modules(tmp_path, {"fs/ext4/ext4.ko": "jbd2"})
    with pytest.raises(testimage.TestImageError, match=r"jbd2 \(needed by ext4\) not found"):
        testimage.resolve_modules(modules_dir, {"CONFIG_EXT4_FS": "m"},
                                  (("CONFIG_EXT4_FS", "ext4"),))


def test_a_dependency_cycle_is_an_error(tmp_path):
    modules_dir = write_modules(tmp_path, {"a/a.ko": "b", "b/b.ko": "a"})
    with pytest.raises(testimage.TestImageError, match="cycle"):
        testimage.resolve_modules(modules_dir, {"CONFIG_A": "m"}, (("CONFIG_A", "a"),))


def test_read_kernel_config(tmp_path):
    path = tmp_path / "config"
    path.write_text("# comment\nCONFIG_EXT4_FS=m\nCONFIG_ACPI=y\n# CONFIG_X is not set\n"
                    'CONFIG_MODULE_SIG_HASH="sha256"\n')
    assert testimage.read_kernel_config(str(path)) == {
        "CONFIG_EXT4_FS": "m", "CONFIG_ACPI": "y", "CONFIG_MODULE_SIG_HASH": '"sha256"'}


def test_the_real_kernel_package_is_read_from_the_meta_package(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    control = tmp_path / "pkg" / "DEBIAN"
    control.mkdir(parents=True)
    (control / "control").write_text(
        "Package: linux-image-amd64\nVersion: 6.1.999-1\nArchitecture: amd64\n"
        "Maintainer: t <t@example.org>\nDescription: test\n"
        "Depends: linux-image-6.1.0-99-amd64 (= 6.1.999-1)\n")
    deb = tmp_path / "meta.deb"
    subprocess.run(["dpkg-deb", "--build", str(tmp_path / "pkg"), str(deb)],
                   check=True, capture_output=True)
    assert testimage.resolve_kernel_package(str(deb)) == ("linux-image-6.1.0-99-amd64",
                                                          "6.1.999-1")


def test_a_failing_command_names_the_step_and_shows_stderr(tmp_path):
    with pytest.raises(testimage.TestImageError,
                       match=r"extracting x\.deb: dpkg-deb -x .* failed: .*"):
        testimage._run(["dpkg-deb", "-x", str(tmp_path / "x.deb"), str(tmp_path)],
                       "extracting x.deb")


def test_a_missing_tool_is_named(tmp_path):
    with pytest.raises(testimage.TestImageError, match="no-such-tool-xyz is not installed"):
        testimage._run(["no-such-tool-xyz"], "probing")


def test_recipe_digest_changes_with_the_guest_scripts(monkeypatch):
    before = testimage._recipe_digest()
    monkeypatch.setattr(testimage, "_STAGE2_INIT", testimage._STAGE2_INIT + "# changed\n")
    assert testimage._recipe_digest() != before


def test_existing_outputs_are_reused_only_when_complete_and_current(tmp_path):
    digest = testimage._recipe_digest()
    files = {k: str(tmp_path / k) for k in ("kernel", "initrd", "root_disk")}
    for path in files.values():
        open(path, "w").close()
    manifest = {**files, "root_disk_qcow2": None, "recipe": digest}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert testimage._existing(str(tmp_path), digest) == manifest
    assert testimage._existing(str(tmp_path), "other-recipe") is None
    os.unlink(files["initrd"])
    assert testimage._existing(str(tmp_path), digest) is None


@pytest.mark.parametrize("compress", [lzma.compress, gzip.compress])
def test_vmlinux_is_found_inside_a_bzimage(compress):
    elf = b"\x7fELF" + bytes(200)
    # Setup code first; a decoy stream that is not a kernel; then the kernel.
    bzimage = b"MZ" + bytes(100) + compress(b"not a kernel") + compress(elf) + bytes(16)
    assert testimage.extract_vmlinux(bzimage) == elf


def test_no_vmlinux_in_an_image_without_a_known_stream():
    assert testimage.extract_vmlinux(b"MZ" + bytes(1000)) is None
