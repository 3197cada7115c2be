"""What the image store knows about disk formats: which names exist, whether
uploaded bits are what their ``disk_format`` says, and their virtual size.

An upload is checked from its first ``HEAD_BYTES`` as it streams in, so a
file declared ``raw`` cannot be a qcow2 image in disguise (its backing file
would then be opened by whoever boots it) and a ``qcow2`` one must really be
qcow2. Formats virtstack does not read are stored as they come, with no
virtual size.
"""

from __future__ import annotations

import abc
import struct

from virtstack import exception

#: The disk and container formats the Image API accepts (Glance's defaults).
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

#: How much of the start of a file the inspectors need.
HEAD_BYTES = 512

_QCOW2_MAGIC = b"QFI\xfb"


class DiskFormat(abc.ABC):
    """One ``disk_format``'s rules for uploaded bits."""

    @abc.abstractmethod
    def virtual_size(self, head: bytes, size: int) -> int | None:
        """The disk's virtual size in bytes, from the file's first
        ``HEAD_BYTES`` (fewer for a smaller file) and its whole ``size``;
        None when this format has no size virtstack reads.

        Raises ``exception.Invalid`` when the bits are not of this format.
        """


class Raw(DiskFormat):
    """A plain disk: as large as its file."""

    def virtual_size(self, head: bytes, size: int) -> int | None:
        if head.startswith(_QCOW2_MAGIC):
            raise exception.Invalid(reason="the data is a qcow2 image, not 'raw': "
                                           "upload it with disk_format 'qcow2'")
        return size


class Qcow2(DiskFormat):
    """QEMU's copy-on-write format; the header holds the virtual size."""

    _HEADER = struct.Struct(">4sIQIIQ")  # magic, version, backing offset/size, cluster bits, size

    def virtual_size(self, head: bytes, size: int) -> int | None:
        if len(head) < self._HEADER.size or not head.startswith(_QCOW2_MAGIC):
            raise exception.Invalid(reason="the data is not a qcow2 image "
                                           "(it lacks the qcow2 header)")
        _magic, version, _bf_offset, _bf_size, _bits, virtual = self._HEADER.unpack_from(head)
        if version not in (2, 3):
            raise exception.Invalid(reason=f"qcow2 version {version} is not supported")
        return virtual


class Opaque(DiskFormat):
    """Bits virtstack stores and serves without reading them (kernels,
    ramdisks, ISO and foreign disk formats)."""

    def virtual_size(self, head: bytes, size: int) -> int | None:
        return None


#: disk_format -> its rules; every other known format is opaque.
INSPECTORS: dict[str, DiskFormat] = {"raw": Raw(), "qcow2": Qcow2()}
_OPAQUE = Opaque()


def virtual_size(disk_format: str | None, head: bytes, size: int) -> int | None:
    """``DiskFormat.virtual_size`` of the named format."""
    return INSPECTORS.get(disk_format or "", _OPAQUE).virtual_size(head, size)
