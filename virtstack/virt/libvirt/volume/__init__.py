"""Volumes on libvirt guests: one connector per ``driver_volume_type``, found
through one registry (DESIGN rule 2).

``CONNECTORS`` maps a ``driver_volume_type`` to its connector class, per
*initiator*: ``qemu`` when QEMU opens the volume itself (a file, or a
network disk through its own iSCSI client), ``host`` when the host's kernel
makes a block device of it first. A type without a ``host`` entry is always
attached the ``qemu`` way. ``[libvirt] iscsi_initiator`` picks the
initiator (``initiator.choose_initiator``); ``VolumeConnectors`` holds one
connector of each class the chosen initiator uses.

Connectors of other projects register through the
``virtstack.libvirt_volume_connectors`` entry-point group, named
``<driver_volume_type>`` (qemu) or ``<driver_volume_type>:host``.
"""

from __future__ import annotations

import threading
from importlib import metadata
from typing import Any

from virtstack import exception, registry
from virtstack.virt.libvirt.volume.base import VolumeConnector

INITIATORS = ("qemu", "host")

_FILE = "virtstack.virt.libvirt.volume.file:FileVolumeConnector"
#: driver_volume_type -> initiator -> "module:Class".
CONNECTORS: dict[str, dict[str, str]] = {
    "file": {"qemu": _FILE},
    "local": {"qemu": _FILE},  # what some volume services call a host-local file
    "iscsi": {"qemu": "virtstack.virt.libvirt.volume.iscsi:QemuISCSIVolumeConnector",
              "host": "virtstack.virt.libvirt.volume.iscsi_host:HostISCSIVolumeConnector"},
}

ENTRY_POINT_GROUP = "virtstack.libvirt_volume_connectors"


def available_connectors() -> dict[str, dict[str, str]]:
    """Every known driver_volume_type and its connector per initiator."""
    known = {kind: dict(by_initiator) for kind, by_initiator in CONNECTORS.items()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        kind, _, which = ep.name.partition(":")
        known.setdefault(kind, {}).setdefault(which or "qemu", ep.value)
    return known


def connector_class(driver_volume_type: str, initiator: str = "qemu") -> type[VolumeConnector]:
    """The connector class for ``driver_volume_type`` with ``initiator``.

    ``VolumeDriverNotFound`` naming the known types for an unknown one.
    """
    known = available_connectors()
    by_initiator = known.get(driver_volume_type) if isinstance(driver_volume_type, str) else None
    if not by_initiator:
        raise exception.VolumeDriverNotFound(driver_type=driver_volume_type,
                                             known=", ".join(sorted(known)))
    target = by_initiator.get(initiator) or by_initiator["qemu"]
    return registry.load_class(target, VolumeConnector, lambda: exception.ConfigError(
        reason=f"volume connector {target} for {driver_volume_type} is not a VolumeConnector"))


class VolumeConnectors:
    """The connectors of one driver: made lazily, one per class, all with
    the same Host, initiator (``qemu`` or ``host``, already resolved) and
    initiator name."""

    def __init__(self, host: Any, initiator: str, initiator_iqn: str) -> None:
        if initiator not in INITIATORS:
            raise ValueError(f"initiator must be one of {', '.join(INITIATORS)}, "
                             f"not {initiator!r}")
        self.host = host
        self.initiator = initiator
        self.initiator_iqn = initiator_iqn
        self._made: dict[type[VolumeConnector], VolumeConnector] = {}
        self._classes: dict[str, type[VolumeConnector]] = {}  # by driver_volume_type
        self._lock = threading.Lock()

    def _instance(self, cls: type[VolumeConnector]) -> VolumeConnector:
        with self._lock:
            if cls not in self._made:
                self._made[cls] = cls(self.host, self.initiator_iqn)
            return self._made[cls]

    def get(self, connection_info: dict[str, Any]) -> VolumeConnector:
        """The connector for ``connection_info["driver_volume_type"]``;
        ``VolumeDriverNotFound`` for an unknown or missing type. A type's
        class is looked up once (the lookup reads every installed
        distribution's entry points: ~7 ms of each attach and detach)."""
        kind = connection_info.get("driver_volume_type") if isinstance(
            connection_info, dict) else None
        cls = self._classes.get(kind) if isinstance(kind, str) else None
        if cls is None:
            cls = connector_class(kind, self.initiator)
            self._classes[kind] = cls
        return self._instance(cls)

    def forget_instance(self, instance_uuid: str) -> None:
        """Every connector this host uses removes what it keeps for a guest
        being destroyed (``VolumeConnector.forget_instance``)."""
        classes = {connector_class(kind, self.initiator) for kind in available_connectors()}
        for cls in sorted(classes, key=lambda c: c.__qualname__):
            self._instance(cls).forget_instance(instance_uuid)
