"""The volume service's long operations as TaskFlow flows (create, delete,
extend), one module each with a module-level factory, run by the shared
``flows.runner.FlowRunner`` (persisted, so a restarted volume service resumes
or rolls back an interrupted one).

Persisted inputs are ids and sizes; the backend is a transient value the
manager supplies again on recovery. Tasks read the volume row themselves,
so a resumed task sees what the database holds now.
"""

from __future__ import annotations

from virtstack.db import volume as db_volume
from virtstack.volume.backends.base import SnapshotRef, VolumeRef


def volume_ref(row, size: int | None = None) -> VolumeRef:
    """What a backend knows of a volume row (``size`` overrides the row's)."""
    return VolumeRef(id=row.id, size=row.size if size is None else size,
                     provider_location=row.provider_location, provider_auth=row.provider_auth)


def snapshot_ref(row) -> SnapshotRef:
    return SnapshotRef(id=row.id, volume_id=row.volume_id, volume_size=row.volume_size,
                       provider_location=row.provider_location)


def load_volume(volume_id: str):
    return db_volume.volume_get(volume_id, read_deleted=True)
