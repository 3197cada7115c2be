"""What the Block Storage API does, below HTTP: checks, quotas, guarded status
changes (compare-and-set) and RPC to the volume service. The Block Storage
HTTP controllers and the compute service (attach/detach flows, boot from
volume) call only this.

Contract (the compute side depends on it; keep the signatures):

* Every method takes a request context first; a volume of another project
  is ``VolumeNotFound`` (404) unless the context is admin.
* Status changes are compare-and-set: a request that finds the volume in a
  status that does not allow it gets ``InvalidVolume`` (400) whose message
  names the expected and the current status, e.g. "Volume <id> status must
  be available to reserve, but the current status is: in-use."
* Attachments follow the Cinder "new attach" flow::

    attachment_create  volume available -> reserved,   attachment reserved
    attachment_update  volume reserved  -> attaching,  attachment attaching
                       (the volume service's initialize_connection runs;
                        returns connection_info)
    attachment_complete volume attaching -> in-use,    attachment attached
    attachment_delete  volume -> available (when no other attachment is
                       left), attachment detached and deleted; the volume
                       service's terminate_connection runs if a connector
                       was given. Idempotent.

  ``begin_detaching`` (in-use -> detaching) and ``roll_detaching``
  (detaching -> in-use) bracket a detach.
"""

from __future__ import annotations

from typing import Any


class VolumeAPI:
    # -- volumes -------------------------------------------------------------

    def get(self, ctxt, volume_id: str):
        """The volume row (detached ORM object) or ``VolumeNotFound``."""
        raise NotImplementedError

    def create(self, ctxt, size: int | None, name: str | None = None,
               description: str | None = None, snapshot_id: str | None = None,
               source_volid: str | None = None, image_id: str | None = None,
               volume_type: str | None = None, metadata: dict[str, str] | None = None,
               availability_zone: str | None = None) -> Any:
        """Record a volume (``creating``), schedule it on a pool with room
        and cast its creation to that volume service; returns the row. The
        volume becomes ``available`` (or ``error``, with the reason logged)
        asynchronously. ``size`` may be None only with a snapshot, source
        volume or image (then their size). Raises ``Invalid`` for bad sizes,
        ``VolumeSizeExceedsAvailableQuota``/``VolumeLimitExceeded`` (413),
        ``SnapshotNotFound``/``VolumeNotFound``/``ImageNotFound`` (404) for
        unknown sources, ``InvalidVolume``/``InvalidSnapshot`` (400) for
        sources in the wrong status."""
        raise NotImplementedError

    def delete(self, ctxt, volume_id: str, force: bool = False) -> None:
        """available/error/error_* -> deleting, cast the delete. Refused with
        ``InvalidVolume`` (400) for an attached or attaching volume or one
        with snapshots (``force`` is admin-only and skips the status check
        but never the attachment check)."""
        raise NotImplementedError

    def extend(self, ctxt, volume_id: str, new_size: int) -> None:
        """available -> extending (or in-use -> extending, with the server
        told of the new size by the compute service afterwards)."""
        raise NotImplementedError

    # -- attachments ---------------------------------------------------------

    def attachment_create(self, ctxt, volume_id: str, instance_uuid: str,
                          connector: dict[str, Any] | None = None,
                          mode: str = "rw") -> dict[str, Any]:
        """Reserve the volume for ``instance_uuid``; with a connector, also
        do ``attachment_update``. Returns the attachment view:
        ``{"id", "volume_id", "instance", "status", "attach_mode",
        "connection_info", "attached_at", "detached_at"}``."""
        raise NotImplementedError

    def attachment_update(self, ctxt, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        """Export the volume to the connector's host; returns the attachment
        view whose ``connection_info`` the compute driver attaches."""
        raise NotImplementedError

    def attachment_complete(self, ctxt, attachment_id: str) -> None:
        raise NotImplementedError

    def attachment_delete(self, ctxt, attachment_id: str) -> None:
        raise NotImplementedError

    def attachment_get(self, ctxt, attachment_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def begin_detaching(self, ctxt, volume_id: str) -> None:
        raise NotImplementedError

    def roll_detaching(self, ctxt, volume_id: str) -> None:
        raise NotImplementedError
