"""The volume backend interface: one ``VolumeBackend`` ABC.

A backend stores volumes and snapshots and exports them to compute hosts.
The volume manager is its only caller; it passes plain ``VolumeRef`` /
``SnapshotRef`` values (never database rows) and serialises calls per volume
(a backend never sees two concurrent operations on one volume, but does see
concurrent operations on different volumes).

Sizes are whole GiB, as the Block Storage API counts them. Every method is
idempotent where the docstring says so, because the manager retries an
operation that a crash interrupted.
"""

from __future__ import annotations

import abc
import dataclasses
import types
from typing import Any, Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class VolumeRef:
    """What a backend knows of a volume.

    ``provider_location`` and ``provider_auth`` are what the backend itself
    returned from a create call (a ``ModelUpdate``); the manager stores them
    and hands them back on every later call.
    """

    id: str
    size: int  # GiB
    provider_location: str | None = None
    # A secret: kept out of repr() so that logging a VolumeRef cannot leak it.
    provider_auth: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class SnapshotRef:
    id: str
    volume_id: str
    volume_size: int  # GiB
    provider_location: str | None = None


#: What a create call returns for the manager to store on the row:
#: ``{"provider_location": ..., "provider_auth": ...}`` (either may be absent).
ModelUpdate = dict[str, str | None]


@dataclasses.dataclass(frozen=True)
class VolumeExport:
    """A volume this host serves and the connectors of its live attachments,
    for ``VolumeBackend.ensure_exports``; e.g.
    ``VolumeExport(VolumeRef("1b2c...", 1, "127.0.0.1:3260,1
    iqn.2010-10.org.virtstack:volume-1b2c... 1", "CHAP <user> <secret>"),
    ({"host": "cmp1", "initiator": "iqn.1993-08.org.debian:01:abc", ...},))``.
    """

    volume: VolumeRef
    connectors: tuple[dict[str, Any], ...] = ()


class VolumeBackend(abc.ABC):
    """Base class of every volume backend.

    Subclasses set ``name`` (the registry key) and ``capabilities``.
    Errors are ``virtstack.exception.VolumeBackendError`` (with a message an
    operator can act on); ``VolumeNotFound``-style errors are never raised for
    a volume that is already gone from a delete: deletes are idempotent.
    """

    name: str = "base"

    #: Read-only; copy before varying per instance.
    capabilities: Mapping[str, Any] = types.MappingProxyType({
        "driver_volume_type": None,  # what initialize_connection returns
        "thin_provisioning": False,
        "online_extend": False,  # extend while attached
    })

    def __init__(self, host: str) -> None:
        #: The volume service host this backend runs on.
        self.host = host

    # -- service ----------------------------------------------------------

    def check_setup(self) -> None:
        """Verify the backend can work on this host (directories, daemons,
        tools). Called once at service start; raises ``VolumeBackendError``
        naming what is missing and how to fix it."""

    def ensure_exports(self, exports: Sequence[VolumeExport]) -> dict[str, str]:
        """Make the exports match the database: called at service start with
        every volume on this host (any status but deleted) and the connectors
        of its live attachments. Exports that live only in a daemon's memory
        (tgt) are gone after that daemon restarts; this puts back each
        volume's target, LUN and credentials and lets in exactly the given
        connectors (access for other hosts is revoked).

        Returns ``{volume_id: reason}`` for the volumes that could not be
        exported (the others are done; one bad volume does not stop the
        rest). Idempotent. The default does nothing: a backend whose exports
        persist by themselves (``file``) has nothing to restore.
        """
        return {}

    @abc.abstractmethod
    def get_capacity(self) -> dict[str, int]:
        """``{"total_capacity_gb": int, "free_capacity_gb": int}`` of the
        single pool this backend offers (the scheduler subtracts what it
        has claimed itself)."""

    # -- volumes ----------------------------------------------------------

    @abc.abstractmethod
    def create_volume(self, volume: VolumeRef) -> ModelUpdate:
        """Create an empty (zeroed) volume of ``volume.size`` GiB."""

    @abc.abstractmethod
    def create_volume_from_snapshot(self, volume: VolumeRef, snapshot: SnapshotRef) -> ModelUpdate:
        """Create ``volume`` holding the snapshot's data; if ``volume.size``
        is larger than the snapshot, the tail is zeroed."""

    @abc.abstractmethod
    def create_cloned_volume(self, volume: VolumeRef, source: VolumeRef) -> ModelUpdate:
        """Create ``volume`` as a copy of ``source`` (which may be attached:
        the copy is crash-consistent)."""

    @abc.abstractmethod
    def copy_image_to_volume(self, volume: VolumeRef, image_path: str, disk_format: str) -> None:
        """Write the image file at ``image_path`` (``raw`` or ``qcow2``) into
        an already created ``volume``, converting to the volume's format.
        ``VolumeBackendError`` if the image does not fit."""

    @abc.abstractmethod
    def delete_volume(self, volume: VolumeRef) -> None:
        """Remove the volume and its export. Idempotent. ``VolumeIsBusy``
        if the backend still has snapshots depending on it."""

    @abc.abstractmethod
    def extend_volume(self, volume: VolumeRef, new_size: int) -> None:
        """Grow the volume to ``new_size`` GiB (> ``volume.size``); when it is
        exported, the export reports the new size afterwards."""

    # -- snapshots --------------------------------------------------------

    @abc.abstractmethod
    def create_snapshot(self, snapshot: SnapshotRef, volume: VolumeRef) -> ModelUpdate:
        """Capture the volume's current data as ``snapshot``."""

    @abc.abstractmethod
    def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        """Remove the snapshot. Idempotent."""

    # -- export to compute hosts -------------------------------------------

    @abc.abstractmethod
    def initialize_connection(self, volume: VolumeRef, connector: dict[str, Any]) -> dict[str, Any]:
        """Let the host described by ``connector`` reach the volume and say how.

        ``connector`` is what the compute driver's ``get_volume_connector``
        returned, e.g. ``{"host": "cmp1", "ip": "127.0.0.1", "initiator":
        "iqn.1993-08.org.debian:01:abc", "multipath": False}``. Returns the
        connection_info, e.g. for a file volume::

            {"driver_volume_type": "file",
             "data": {"volume_id": "...", "device_path": "/var/lib/virtstack/volumes/volume-<id>",
                      "format": "raw", "access_mode": "rw"}}

        and for iSCSI::

            {"driver_volume_type": "iscsi",
             "data": {"volume_id": "...", "target_portal": "127.0.0.1:3260",
                      "target_iqn": "iqn.2010-10.org.virtstack:volume-<id>", "target_lun": 1,
                      "target_discovered": False, "auth_method": "CHAP",
                      "auth_username": "...", "auth_password": "...",
                      "access_mode": "rw", "encrypted": False}}

        Idempotent: a second call for the same connector returns the same.
        ``VolumeBackendError`` if the connector lacks what the protocol needs
        (an iSCSI initiator name).
        """

    @abc.abstractmethod
    def terminate_connection(self, volume: VolumeRef, connector: dict[str, Any] | None) -> None:
        """Undo ``initialize_connection`` for ``connector`` (``None``: for every
        host). Idempotent. Afterwards that host holds no access (ACL) to the
        volume."""

    # -- host-side access (tests, image upload, data checks) ----------------

    @abc.abstractmethod
    def local_path(self, volume: VolumeRef) -> str:
        """A path on the volume service host from which the volume's bytes
        can be read (``raw`` format), for content checks and image uploads."""
