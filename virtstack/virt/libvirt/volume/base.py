"""The volume connector interface: how this host reaches one kind of volume.

A connector serves one ``driver_volume_type`` of the volume service's
``connection_info`` (see ``virtstack.volume.backends.base.initialize_connection``).
It does the host side of an attach (``connect``: define a CHAP secret, log
in to a target...) and says where the volume's bytes are then
(``designer.VolumeSource``); the designer turns that into a ``<disk>`` and
``Guest`` attaches it. A connector decides nothing about the guest (bus,
device name) and never touches a domain.
"""

from __future__ import annotations

import abc
from typing import Any

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.libvirt import designer


class VolumeConnector(abc.ABC):
    """Base class of every volume connector.

    ``host`` is the driver's ``host.Host`` (for libvirt secrets);
    ``initiator_iqn`` is this host's iSCSI initiator name (what
    ``get_volume_connector`` told the volume service, so what its target
    ACL admits).
    """

    def __init__(self, host: Any, initiator_iqn: str) -> None:
        self.host = host
        self.initiator_iqn = initiator_iqn

    @abc.abstractmethod
    def connect(self, connection_info: dict[str, Any], instance: Instance) -> designer.VolumeSource:
        """Make the volume reachable from this host for ``instance``'s guest.

        ``connection_info`` as the volume service returned it, e.g.
        ``{"driver_volume_type": "file", "data": {"volume_id": "8f1e...",
        "device_path": "/var/lib/virtstack/volumes/volume-8f1e...", "format":
        "raw", "access_mode": "rw"}}``. Returns where the bytes are, e.g.
        ``VolumeSource(volume_id="8f1e...", source_type="file",
        path="/var/lib/virtstack/volumes/volume-8f1e...", format="raw")``.
        Idempotent. ``Invalid`` for connection_info this connector cannot
        use (naming what is wrong); on any failure nothing is left behind.
        """

    @abc.abstractmethod
    def disconnect(self, connection_info: dict[str, Any], instance: Instance) -> None:
        """Undo ``connect`` for ``instance``. Idempotent: a volume that is
        not connected (or only half) is fine."""

    def extend(self, connection_info: dict[str, Any], instance: Instance,
               requested_size: int) -> int:
        """Make this host see the volume grown to ``requested_size`` bytes;
        returns the size the guest's disk is to be resized to. The default
        suits volumes QEMU opens itself: QEMU finds the new size when the
        disk is resized."""
        return requested_size

    def forget_instance(self, instance_uuid: str) -> None:
        """Remove whatever this connector keeps on the host for a guest that
        is being destroyed, whether or not its volumes are known any more
        (e.g. CHAP secrets). Idempotent; the default keeps nothing."""


def volume_data(connection_info: dict[str, Any], *required: str) -> dict[str, Any]:
    """``connection_info["data"]``; ``Invalid`` naming what is missing."""
    data = connection_info.get("data") if isinstance(connection_info, dict) else None
    if not isinstance(data, dict):
        raise exception.Invalid(reason="connection_info has no 'data' mapping")
    missing = [key for key in ("volume_id", *required) if not data.get(key)]
    if missing:
        raise exception.Invalid(
            reason=f"connection_info of a {connection_info.get('driver_volume_type')} volume "
                   f"lacks {', '.join(missing)}")
    return data


def read_only(data: dict[str, Any]) -> bool:
    """Whether the volume service exported the volume read-only (``access_mode: "ro"``)."""
    return data.get("access_mode") == "ro"
