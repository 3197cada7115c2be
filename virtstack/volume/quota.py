"""Block-storage quotas: ``[quota] volumes``, ``snapshots`` and ``gigabytes``
per project (-1: unlimited). Usage is counted from the live rows, so it can
never drift; snapshots count against ``gigabytes`` as in the Block Storage
API. Exceeding a quota is 413 with the Block Storage API's messages."""

from __future__ import annotations

from virtstack.conf import CONF
from virtstack.db import volume as db_volume

RESOURCES = ("volumes", "snapshots", "gigabytes")


def limits(project_id: str | None = None) -> dict[str, int]:
    """The limits of a project (one set for every project, from config)."""
    return {name: getattr(CONF.quota, name) for name in RESOURCES}


def usage(project_id: str) -> dict[str, int]:
    return db_volume.project_usage(project_id)


def check(project_id: str, **wanted: int) -> None:
    """Raise 413 if adding ``wanted`` (resource -> amount) exceeds a limit.
    (Creates check inside their insert transaction instead, see
    ``db.volume.volume_create_within_quota``.)"""
    db_volume.check_quota(usage(project_id), limits(project_id), **wanted)
