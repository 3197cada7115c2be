"""Growing a volume on this host's backend.

Inputs (store, persisted): ``volume_id``, ``new_size`` (GiB), ``old_size``.
Transient: ``backend``.

    MarkErrorExtendingOnFailure → ExtendOnBackend → MarkExtended

A failure gives the extra claim back to the pool and leaves the volume
``error_extending`` (its data intact at the old size). The API claimed the
extra GiB; the flow only owns giving them back on failure.
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack.db import volume as db_volume
from virtstack.volume import flows

LOG = logging.getLogger(__name__)


class MarkErrorExtendingOnFailure(task.Task):
    def execute(self, volume_id):
        pass

    def revert(self, volume_id, new_size, old_size, *args, **kwargs):
        LOG.warning("Extending volume %s failed; marking it error_extending", volume_id)
        if db_volume.volume_transition(volume_id, ["extending"],
                                       {"status": "error_extending"}):
            db_volume.pool_release(flows.load_volume(volume_id).host, new_size - old_size)


class ExtendOnBackend(task.Task):
    def execute(self, backend, volume_id, new_size, old_size):
        row = flows.load_volume(volume_id)
        backend.extend_volume(flows.volume_ref(row, size=old_size), new_size)

    def revert(self, *args, **kwargs):
        pass  # volumes never shrink; the data is intact at the old size


class MarkExtended(task.Task):
    """extending -> the status before (available or in-use), new size."""

    default_provides = "previous_status"

    def execute(self, volume_id, new_size):
        row = flows.load_volume(volume_id)
        previous = row.previous_status or "available"
        db_volume.volume_transition(volume_id, ["extending"], {
            "status": previous, "size": new_size, "previous_status": None})
        return previous


def get_flow() -> linear_flow.Flow:
    return linear_flow.Flow("volume_extend").add(
        MarkErrorExtendingOnFailure("mark_error_extending_on_failure"),
        ExtendOnBackend("extend_on_backend"),
        MarkExtended("mark_extended"))
