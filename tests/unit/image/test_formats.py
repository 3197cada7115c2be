"""Disk-format inspection of uploaded bits (``image.formats``)."""

from __future__ import annotations

import os
import subprocess

import pytest

from virtstack import exception
from virtstack.image import formats


def qcow2_bytes(tmp_path, virtual_size: int) -> bytes:
    """A real qcow2 file made by qemu-img."""
    path = os.path.join(tmp_path, "disk.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(virtual_size)],
                   check=True)
    with open(path, "rb") as f:
        return f.read()


def test_qcow2_virtual_size_is_read_from_the_header(tmp_path):
    data = qcow2_bytes(tmp_path, 3 * 1024 ** 3)
    head = data[:formats.HEAD_BYTES]
    assert formats.virtual_size("qcow2", head, len(data)) == 3 * 1024 ** 3


def test_raw_virtual_size_is_its_size():
    assert formats.virtual_size("raw", b"\0" * 512, 123456) == 123456


@pytest.mark.parametrize("head", [b"", b"QFI", b"not a qcow2 header at all" * 10])
def test_qcow2_that_is_not_qcow2_is_refused(head):
    with pytest.raises(exception.Invalid, match="not a qcow2 image"):
        formats.virtual_size("qcow2", head, len(head))


def test_qcow2_bits_declared_raw_are_refused(tmp_path):
    data = qcow2_bytes(tmp_path, 1024 ** 2)
    with pytest.raises(exception.Invalid, match="qcow2 image, not 'raw'"):
        formats.virtual_size("raw", data[:formats.HEAD_BYTES], len(data))


def test_unsupported_qcow2_version_is_refused(tmp_path):
    data = bytearray(qcow2_bytes(tmp_path, 1024 ** 2))
    data[4:8] = (9).to_bytes(4, "big")
    with pytest.raises(exception.Invalid, match="version 9"):
        formats.virtual_size("qcow2", bytes(data[:formats.HEAD_BYTES]), len(data))


@pytest.mark.parametrize("disk_format", ["aki", "ari", "iso", "vmdk", None])
def test_opaque_formats_have_no_virtual_size(disk_format):
    assert formats.virtual_size(disk_format, b"QFI\xfb" + b"\0" * 100, 104) is None
