"""Deleting a volume from this host's backend.

Inputs (store, persisted): ``volume_id``. Transient: ``backend``.

    MarkErrorDeletingOnFailure → DeleteSnapshots → DeleteOnBackend → MarkDeleted

Deletes cannot be undone: a failure leaves the volume ``error_deleting``
(what is already gone stays gone); every step is idempotent, so a delete
after a crash, or a retried one, finishes the job.
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack.db import volume as db_volume
from virtstack.volume import flows

LOG = logging.getLogger(__name__)


class MarkErrorDeletingOnFailure(task.Task):
    def execute(self, volume_id):
        pass

    def revert(self, volume_id, *args, **kwargs):
        LOG.warning("Deleting volume %s failed; marking it error_deleting", volume_id)
        db_volume.volume_transition(volume_id, ["deleting"], {"status": "error_deleting"})


class DeleteSnapshots(task.Task):
    """The volume's snapshots first (only a cascade delete has any: the API
    refuses to delete a volume with snapshots otherwise)."""

    def execute(self, backend, volume_id):
        for snap in db_volume.snapshots_of_volume(volume_id):
            db_volume.snapshot_transition(snap.id, None, {"status": "deleting"})
            backend.delete_snapshot(flows.snapshot_ref(snap))
            db_volume.snapshot_mark_deleted(snap.id)

    def revert(self, *args, **kwargs):
        pass  # a deleted snapshot cannot come back


class DeleteOnBackend(task.Task):
    def execute(self, backend, volume_id):
        backend.delete_volume(flows.volume_ref(flows.load_volume(volume_id)))

    def revert(self, *args, **kwargs):
        pass  # a deleted volume cannot come back


class MarkDeleted(task.Task):
    """The row is marked deleted and its size given back to the pool (once:
    only the caller that marks it gives it back)."""

    def execute(self, volume_id):
        row = flows.load_volume(volume_id)
        if db_volume.volume_mark_deleted(volume_id):
            db_volume.pool_release(row.host, row.size)


def get_flow() -> linear_flow.Flow:
    return linear_flow.Flow("volume_delete").add(
        MarkErrorDeletingOnFailure("mark_error_deleting_on_failure"),
        DeleteSnapshots("delete_snapshots"),
        DeleteOnBackend("delete_on_backend"),
        MarkDeleted("mark_deleted"))
