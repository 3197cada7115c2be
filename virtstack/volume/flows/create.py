"""Creating a volume on this host's backend.

Inputs (store, persisted): ``volume_id``. Transient: ``backend``
(VolumeBackend). The factory's ``source`` is what the volume is made from:
"empty", "snapshot", "volume" or "image" (the source's id is on the row).

    MarkErrorOnFailure → ReleaseClaimOnFailure → CreateOnBackend
        → [CopyImageToVolume, for "image"] → MarkAvailable

A failure reverts the earlier tasks: the backend's volume is deleted, the
pool claim the scheduler made is given back and the volume goes to
``error``. The claim is the API's (it chose the pool); the flow only owns
giving it back on failure.
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack.db import models
from virtstack.db import volume as db_volume
from virtstack.image import store as image_store
from virtstack.volume import flows

LOG = logging.getLogger(__name__)

SOURCES = ("empty", "snapshot", "volume", "image")


class MarkErrorOnFailure(task.Task):
    """Nothing going forward; on revert the volume goes creating -> error."""

    def execute(self, volume_id):
        pass

    def revert(self, volume_id, *args, **kwargs):
        LOG.warning("Creating volume %s failed; marking it error", volume_id)
        db_volume.volume_transition(volume_id, ["creating"], {"status": "error"})


class ReleaseClaimOnFailure(task.Task):
    """Nothing going forward (the scheduler claimed); on revert, give the
    volume's size back to its pool."""

    def execute(self, volume_id):
        pass

    def revert(self, volume_id, *args, **kwargs):
        row = flows.load_volume(volume_id)
        db_volume.pool_release(row.host, row.size)


class CreateOnBackend(task.Task):
    """The backend makes the volume (empty, from a snapshot or a clone) and
    says where it keeps it; revert deletes it."""

    default_provides = "model_update"

    def __init__(self, source: str, **kwargs):
        super().__init__(name=f"create_on_backend_{source}", **kwargs)
        self.source = source

    def execute(self, backend, volume_id):
        row = flows.load_volume(volume_id)
        ref = flows.volume_ref(row)
        # A resumed flow: what an interrupted create left is removed first
        # (deletes are idempotent), so the create starts clean.
        backend.delete_volume(ref)
        if self.source == "snapshot":
            snap = db_volume.snapshot_get(row.snapshot_id)
            update = backend.create_volume_from_snapshot(ref, flows.snapshot_ref(snap))
        elif self.source == "volume":
            source = db_volume.volume_get(row.source_volid)
            update = backend.create_cloned_volume(ref, flows.volume_ref(source))
        else:
            update = backend.create_volume(ref)
        return dict(update or {})

    def revert(self, backend, volume_id, result=None, *args, **kwargs):
        row = flows.load_volume(volume_id)
        update = result if isinstance(result, dict) else {}
        ref = flows.volume_ref(row)
        if update:
            ref = flows.VolumeRef(ref.id, ref.size, update.get("provider_location"),
                                  update.get("provider_auth"))
        backend.delete_volume(ref)


class CopyImageToVolume(task.Task):
    """Write the image's bits into the new volume (the volume's own revert
    removes them)."""

    def execute(self, backend, volume_id, model_update):
        row = flows.load_volume(volume_id)
        ref = flows.VolumeRef(row.id, row.size, model_update.get("provider_location"),
                              model_update.get("provider_auth"))
        image = image_store.path(row.image_id)
        disk_format = (row.image_metadata or {}).get("disk_format", "raw")
        backend.copy_image_to_volume(ref, image, disk_format)

    def revert(self, *args, **kwargs):
        pass  # CreateOnBackend's revert deletes the whole volume


class MarkAvailable(task.Task):
    """creating -> available, with where the backend keeps it."""

    def execute(self, volume_id, model_update):
        values = {"status": "available", "launched_at": models.utcnow()}
        for key in ("provider_location", "provider_auth"):
            if key in model_update:
                values[key] = model_update[key]
        if not db_volume.volume_transition(volume_id, ["creating"], values):
            LOG.warning("Volume %s left 'creating' while it was being created", volume_id)


def get_flow(source: str = "empty") -> linear_flow.Flow:
    """The create flow (module level: the runner rebuilds it on recovery,
    with the same arguments)."""
    if source not in SOURCES:
        raise ValueError(f"unknown volume source {source!r}; one of {SOURCES}")
    flow = linear_flow.Flow("volume_create").add(
        MarkErrorOnFailure("mark_error_on_failure"),
        ReleaseClaimOnFailure("release_claim_on_failure"),
        CreateOnBackend(source))
    if source == "image":
        flow.add(CopyImageToVolume("copy_image_to_volume"))
    return flow.add(MarkAvailable("mark_available"))
