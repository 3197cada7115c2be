"""Block-storage rows: volumes, snapshots, attachments, pools and types.

Every status change is compare-and-set (DESIGN rule 6): one ``UPDATE ...
WHERE status IN (...)`` (plus whatever else must still hold, such as "no
live attachment"), so of two racing requests the database lets one win.
Functions return detached rows, safe to use after the session closed.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models
from virtstack.db import paging

V, S, A = models.Volume, models.VolumeSnapshot, models.VolumeAttachment
P, T = models.VolumePool, models.VolumeType

#: The volume type every new database has (as Cinder names it).
DEFAULT_TYPE_NAME = "__DEFAULT__"

#: API sort key -> column attribute, per resource.
VOLUME_SORT_KEYS = {"id": "id", "name": "display_name", "display_name": "display_name",
                    "status": "status", "size": "size", "created_at": "created_at",
                    "updated_at": "updated_at", "availability_zone": "availability_zone",
                    "bootable": "bootable", "description": "display_description",
                    "project_id": "project_id", "user_id": "user_id", "host": "host"}
SNAPSHOT_SORT_KEYS = {"id": "id", "name": "display_name", "display_name": "display_name",
                      "status": "status", "size": "volume_size", "created_at": "created_at",
                      "updated_at": "updated_at", "volume_id": "volume_id",
                      "project_id": "project_id"}
ATTACHMENT_SORT_KEYS = {"id": "id", "created_at": "created_at", "updated_at": "updated_at",
                        "status": "attach_status", "volume_id": "volume_id",
                        "instance_uuid": "instance_uuid"}

#: Attachment statuses that still hold the volume.
LIVE_ATTACHMENT = ("reserved", "attaching", "attached", "detaching", "error_attaching",
                   "error_detaching")


def _now():
    return models.utcnow()


def _cas(model, id_: str, statuses: Iterable[str] | None, values: dict[str, Any],
         status_attr: str = "status", extra: Sequence[Any] = ()) -> bool:
    """Apply ``values`` to the live row ``id_`` only if its status is one of
    ``statuses`` (None: any) and every ``extra`` condition holds, in one
    UPDATE. Returns whether this caller won."""
    conds = [model.id == id_, model.deleted.is_(False), *extra]
    if statuses is not None:
        conds.append(getattr(model, status_attr).in_(list(statuses)))
    values = dict(values)
    values.setdefault("updated_at", _now())
    with db_api.session() as sess:
        result = sess.execute(sa.update(model).where(*conds).values(**values)
                              .execution_options(synchronize_session=False))
        return result.rowcount == 1


def _no_live_attachment(volume_id_col=V.id):
    return ~sa.exists().where(A.volume_id == volume_id_col, A.deleted.is_(False))


def _no_live_snapshot(volume_id_col=V.id):
    return ~sa.exists().where(S.volume_id == volume_id_col, S.deleted.is_(False))


def _list(model, conds: list, sort_map: dict[str, str], sort_keys: Sequence[str],
          sort_dirs: Sequence[str], limit: int | None, marker: str | None,
          not_found=None) -> list:
    keys = [sort_map.get(k, f"\x00{k}") for k in sort_keys]
    bad = [k for k, col in zip(sort_keys, keys) if col.startswith("\x00")]
    if bad:
        raise exception.Invalid(reason=f"Invalid sort key '{bad[0]}'; valid keys: "
                                       f"{', '.join(sorted(sort_map))}")
    keys, dirs = paging.normalise(keys, sort_dirs, list(sort_map.values()), tiebreak="id")
    with db_api.reader() as sess:
        if marker is not None:
            mrow = sess.get(model, marker)
            if mrow is None:
                raise exception.Invalid(reason=f"marker [{marker}] not found")
            conds = conds + [paging.after(model, mrow, keys, dirs)]
        q = sa.select(model).where(*conds).order_by(*paging.order_by(model, keys, dirs))
        if limit is not None:
            q = q.limit(limit)
        return list(sess.scalars(q))


def _metadata_conds(col, metadata: dict[str, str]) -> list:
    return [col[str(k)].as_string() == str(v) for k, v in metadata.items()]


# -- volumes -------------------------------------------------------------------

def volume_create(values: dict[str, Any]) -> models.Volume:
    row = V(**values)
    with db_api.session() as sess:
        sess.add(row)
    return row


def volume_create_within_quota(values: dict[str, Any], limits: dict[str, int]) -> models.Volume:
    """Insert the volume if the project's usage plus it stays within
    ``limits`` ({"volumes": n, "gigabytes": n}; -1 unlimited), counted in the
    same transaction as the insert. ``VolumeLimitExceeded`` /
    ``VolumeSizeExceedsAvailableQuota`` otherwise."""
    row = V(**values)
    with db_api.session() as sess:
        usage = _usage(sess, values["project_id"])
        check_quota(usage, limits, volumes=1, gigabytes=values.get("size", 0))
        sess.add(row)
    return row


def check_quota(usage: dict[str, int], limits: dict[str, int], **wanted: int) -> None:
    """Raise the Block Storage API's 413 for the first of ``wanted``
    (resource -> amount) that does not fit."""
    for resource, amount in wanted.items():
        limit = limits.get(resource, -1)
        if limit < 0 or amount <= 0:
            continue
        if usage[resource] + amount > limit:
            if resource == "gigabytes":
                raise exception.VolumeSizeExceedsAvailableQuota(
                    name="gigabytes", requested=amount, quota=limit, consumed=usage[resource])
            raise exception.VolumeLimitExceeded(name=resource, allowed=limit)


def volume_get(volume_id: str, project_id: str | None = None,
               read_deleted: bool = False) -> models.Volume:
    """The volume (of ``project_id`` when given); ``VolumeNotFound`` otherwise."""
    with db_api.reader() as sess:
        row = sess.get(V, volume_id)
    if (row is None or (row.deleted and not read_deleted)
            or (project_id is not None and row.project_id != project_id)):
        raise exception.VolumeNotFound(volume_id=volume_id)
    return row


def volume_list(filters: dict[str, Any] | None = None, limit: int | None = None,
                marker: str | None = None, sort_keys: Sequence[str] = ("created_at",),
                sort_dirs: Sequence[str] = ("desc",)) -> list[models.Volume]:
    """Live volumes matching ``filters``: project_id, host, status, name
    (exact), bootable (bool), metadata (dict, every pair must match),
    availability_zone, ids (list). Sort keys are ``VOLUME_SORT_KEYS``."""
    filters = dict(filters or {})
    conds = [V.deleted.is_(False)]
    for key, col in (("project_id", V.project_id), ("host", V.host), ("status", V.status),
                     ("name", V.display_name), ("bootable", V.bootable),
                     ("availability_zone", V.availability_zone)):
        if key in filters:
            conds.append(col == filters[key])
    if "ids" in filters:
        conds.append(V.id.in_(list(filters["ids"])))
    if filters.get("metadata"):
        conds += _metadata_conds(V.metadata_, filters["metadata"])
    return _list(V, conds, VOLUME_SORT_KEYS, sort_keys, sort_dirs, limit, marker)


def volume_count(filters: dict[str, Any] | None = None) -> int:
    return len(volume_list(filters, limit=None))


def volumes_by_host_prefix(host: str) -> list[models.Volume]:
    """Live volumes on any pool of volume service ``host`` ("host@...")."""
    q = sa.select(V).where(V.deleted.is_(False), V.host.like(f"{host}@%"))
    with db_api.reader() as sess:
        return list(sess.scalars(q))


def volume_transition(volume_id: str, statuses: Iterable[str] | None, values: dict[str, Any],
                      no_attachments: bool = False, no_snapshots: bool = False) -> bool:
    """Compare-and-set on a volume's status; ``no_attachments`` /
    ``no_snapshots`` add "and nothing holds it" to the same UPDATE."""
    extra = []
    if no_attachments:
        extra.append(_no_live_attachment())
    if no_snapshots:
        extra.append(_no_live_snapshot())
    return _cas(V, volume_id, statuses, values, extra=extra)


def volume_update(volume_id: str, values: dict[str, Any]) -> None:
    """Unconditional update (fields no state machine guards)."""
    _cas(V, volume_id, None, values)


def volume_mark_deleted(volume_id: str) -> bool:
    now = _now()
    return _cas(V, volume_id, None, {"status": "deleted", "deleted": True, "deleted_at": now,
                                     "terminated_at": now, "attach_status": "detached"})


# -- snapshots -----------------------------------------------------------------

def snapshot_create_within_quota(values: dict[str, Any], limits: dict[str, int],
                                 volume_statuses: Iterable[str]) -> models.VolumeSnapshot:
    """Insert the snapshot if its volume is (still) in ``volume_statuses``
    and the quota allows: the volume is locked for the transaction
    (``SELECT ... FOR UPDATE``; SQLite's writer lock does the same), so a
    racing delete of the volume either sees this snapshot or wins before it."""
    row = S(**values)
    statuses = list(volume_statuses)
    with db_api.session() as sess:
        vol = sess.scalars(sa.select(V).where(V.id == values["volume_id"], V.deleted.is_(False))
                           .with_for_update()).first()
        if vol is None:
            raise exception.VolumeNotFound(volume_id=values["volume_id"])
        if vol.status not in statuses:
            raise exception.InvalidVolume(
                reason=f"Volume {vol.id} status must be {' or '.join(statuses)} to create a "
                       f"snapshot, but the current status is: {vol.status}.")
        usage = _usage(sess, values["project_id"])
        check_quota(usage, limits, snapshots=1, gigabytes=values.get("volume_size", 0))
        sess.add(row)
    return row


def snapshot_get(snapshot_id: str, project_id: str | None = None) -> models.VolumeSnapshot:
    with db_api.reader() as sess:
        row = sess.get(S, snapshot_id)
    if (row is None or row.deleted
            or (project_id is not None and row.project_id != project_id)):
        raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
    return row


def snapshot_list(filters: dict[str, Any] | None = None, limit: int | None = None,
                  marker: str | None = None, sort_keys: Sequence[str] = ("created_at",),
                  sort_dirs: Sequence[str] = ("desc",)) -> list[models.VolumeSnapshot]:
    """Live snapshots: filters project_id, volume_id, status, name, metadata."""
    filters = dict(filters or {})
    conds = [S.deleted.is_(False)]
    for key, col in (("project_id", S.project_id), ("volume_id", S.volume_id),
                     ("status", S.status), ("name", S.display_name)):
        if key in filters:
            conds.append(col == filters[key])
    if filters.get("metadata"):
        conds += _metadata_conds(S.metadata_, filters["metadata"])
    return _list(S, conds, SNAPSHOT_SORT_KEYS, sort_keys, sort_dirs, limit, marker)


def snapshot_transition(snapshot_id: str, statuses: Iterable[str] | None,
                        values: dict[str, Any]) -> bool:
    return _cas(S, snapshot_id, statuses, values)


def snapshot_mark_deleted(snapshot_id: str) -> bool:
    return _cas(S, snapshot_id, None, {"status": "deleted", "deleted": True,
                                       "deleted_at": _now()})


def snapshots_of_volume(volume_id: str) -> list[models.VolumeSnapshot]:
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(S).where(S.volume_id == volume_id,
                                                    S.deleted.is_(False))))


def snapshots_in_status(statuses: Iterable[str]) -> list[models.VolumeSnapshot]:
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(S).where(S.status.in_(list(statuses)),
                                                    S.deleted.is_(False))))


# -- attachments ---------------------------------------------------------------

def attachment_reserve(volume_id: str, statuses: Iterable[str], volume_values: dict[str, Any],
                       attachment: dict[str, Any] | None) -> models.VolumeAttachment | None:
    """Compare-and-set the volume out of ``statuses`` (into
    ``volume_values``) and, in the same transaction, record ``attachment``.
    Returns the attachment row (None when no attachment was asked for);
    raises ``InvalidVolume`` naming the current status when the volume was
    not in one of ``statuses``."""
    statuses = list(statuses)
    values = dict(volume_values, updated_at=_now())
    with db_api.session() as sess:
        won = sess.execute(sa.update(V).where(V.id == volume_id, V.deleted.is_(False),
                                              V.status.in_(statuses)).values(**values)
                           .execution_options(synchronize_session=False)).rowcount == 1
        if won and attachment is not None:
            row = A(id=attachment.get("id") or str(uuidlib.uuid4()), volume_id=volume_id,
                    **{k: v for k, v in attachment.items() if k != "id"})
            sess.add(row)
            sess.flush()
    if not won:
        current = volume_get(volume_id).status
        raise exception.InvalidVolume(
            reason=f"Volume {volume_id} status must be {' or '.join(statuses)} to reserve, "
                   f"but the current status is: {current}.")
    return row if attachment is not None else None


def attachment_get(attachment_id: str, read_deleted: bool = False) -> models.VolumeAttachment:
    with db_api.reader() as sess:
        row = sess.get(A, attachment_id)
    if row is None or (row.deleted and not read_deleted):
        raise exception.VolumeAttachmentNotFound(attachment_id=attachment_id)
    return row


def attachment_list(filters: dict[str, Any] | None = None, limit: int | None = None,
                    marker: str | None = None, sort_keys: Sequence[str] = ("created_at",),
                    sort_dirs: Sequence[str] = ("desc",)) -> list[models.VolumeAttachment]:
    """Live attachments: filters volume_id, instance_uuid, status,
    project_id (the volume's project)."""
    filters = dict(filters or {})
    conds = [A.deleted.is_(False)]
    for key, col in (("volume_id", A.volume_id), ("instance_uuid", A.instance_uuid),
                     ("status", A.attach_status)):
        if key in filters:
            conds.append(col == filters[key])
    if "project_id" in filters:
        conds.append(A.volume_id.in_(sa.select(V.id).where(V.project_id == filters["project_id"])))
    return _list(A, conds, ATTACHMENT_SORT_KEYS, sort_keys, sort_dirs, limit, marker)


def attachments_of_volumes(volume_ids: Iterable[str]) -> dict[str, list[models.VolumeAttachment]]:
    """Live attachments of each volume (one query, for list views)."""
    ids = list(volume_ids)
    out: dict[str, list[models.VolumeAttachment]] = {i: [] for i in ids}
    if not ids:
        return out
    q = sa.select(A).where(A.volume_id.in_(ids), A.deleted.is_(False)).order_by(A.created_at)
    with db_api.reader() as sess:
        for row in sess.scalars(q):
            out[row.volume_id].append(row)
    return out


def attachments_in_status(statuses: Iterable[str]) -> list[models.VolumeAttachment]:
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(A).where(A.attach_status.in_(list(statuses)),
                                                    A.deleted.is_(False))))


def attachment_transition(attachment_id: str, statuses: Iterable[str] | None,
                          values: dict[str, Any]) -> bool:
    return _cas(A, attachment_id, statuses, values, status_attr="attach_status")


def attachment_finish_delete(attachment_id: str, volume_id: str,
                             volume_statuses: Iterable[str]) -> bool:
    """Mark the attachment detached and deleted; then, in the same
    transaction, free the volume (``available``, detached) if no other live
    attachment holds it and its status is one of ``volume_statuses``.
    Returns whether this caller deleted the attachment (False: it already
    was)."""
    now = _now()
    with db_api.session() as sess:
        done = sess.execute(
            sa.update(A).where(A.id == attachment_id, A.deleted.is_(False))
            .values(attach_status="detached", detach_time=now, deleted=True, deleted_at=now,
                    updated_at=now).execution_options(synchronize_session=False)).rowcount == 1
        sess.execute(
            sa.update(V).where(V.id == volume_id, V.deleted.is_(False),
                               V.status.in_(list(volume_statuses)), _no_live_attachment())
            .values(status="available", attach_status="detached", previous_status=None,
                    updated_at=now).execution_options(synchronize_session=False))
    return done


# -- pools ---------------------------------------------------------------------

def pool_report(name: str, host: str, backend: str, total_gb: int, free_gb: int) -> None:
    """Create or refresh a pool's reported capacity; ``allocated_gb`` is set
    to the sizes of the live volumes placed on it (claims in flight that
    have no row yet are added by the scheduler's next claim)."""
    def upsert() -> None:
        with db_api.session() as sess:
            allocated = sa.select(sa.func.coalesce(sa.func.sum(V.size), 0)).where(
                V.host == name, V.deleted.is_(False)).scalar_subquery()
            done = sess.execute(
                sa.update(P).where(P.name == name)
                .values(host=host, backend=backend, total_gb=total_gb, free_gb=free_gb,
                        allocated_gb=allocated, updated_at=_now())
                .execution_options(synchronize_session=False)).rowcount
            if not done:
                used = sess.execute(sa.select(sa.func.coalesce(sa.func.sum(V.size), 0)).where(
                    V.host == name, V.deleted.is_(False))).scalar_one()
                sess.add(P(name=name, host=host, backend=backend, total_gb=total_gb,
                           free_gb=free_gb, allocated_gb=int(used)))
    try:
        upsert()
    except sa.exc.IntegrityError:  # a concurrent first report created the row
        upsert()


def pools(host: str | None = None) -> list[models.VolumePool]:
    q = sa.select(P).order_by(P.id)
    if host is not None:
        q = q.where(P.host == host)
    with db_api.reader() as sess:
        return list(sess.scalars(q))


def pool_claim(name: str, size_gb: int) -> bool:
    """Atomically take ``size_gb`` on pool ``name`` if it has room (one
    UPDATE: concurrent claims cannot overcommit)."""
    q = (sa.update(P).where(P.name == name, P.disabled.is_(False),
                            P.total_gb - P.allocated_gb >= size_gb)
         .values(allocated_gb=P.allocated_gb + size_gb, updated_at=_now())
         .execution_options(synchronize_session=False))
    with db_api.session() as sess:
        return sess.execute(q).rowcount == 1


def pool_release(name: str | None, size_gb: int) -> None:
    """Give back a claim; never below zero (the next capacity report
    recomputes the allocation from the volumes, correcting any drift)."""
    if not name or size_gb <= 0:
        return
    q = (sa.update(P).where(P.name == name)
         .values(allocated_gb=sa.case((P.allocated_gb > size_gb, P.allocated_gb - size_gb),
                                      else_=0), updated_at=_now())
         .execution_options(synchronize_session=False))
    with db_api.session() as sess:
        sess.execute(q)


# -- types ---------------------------------------------------------------------

def type_seed_default() -> models.VolumeType:
    """The ``__DEFAULT__`` type, created if missing (safe to race)."""
    def find():
        with db_api.reader() as sess:
            return sess.scalars(sa.select(T).where(T.name == DEFAULT_TYPE_NAME)).first()

    row = find()
    if row is None:
        try:
            with db_api.session() as sess:
                sess.add(T(id=str(uuidlib.uuid4()), name=DEFAULT_TYPE_NAME,
                           description="Default Volume Type", is_public=True, extra_specs={}))
        except sa.exc.IntegrityError:
            pass
        row = find()
    return row


def type_get(id_or_name: str) -> models.VolumeType:
    with db_api.reader() as sess:
        row = sess.get(T, id_or_name) or sess.scalars(
            sa.select(T).where(T.name == id_or_name)).first()
    if row is None:
        raise exception.VolumeTypeNotFound(volume_type_id=id_or_name)
    return row


def type_list() -> list[models.VolumeType]:
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(T).order_by(T.name)))


def types_by_id(ids: Iterable[str | None]) -> dict[str, models.VolumeType]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    with db_api.reader() as sess:
        return {t.id: t for t in sess.scalars(sa.select(T).where(T.id.in_(wanted)))}


# -- usage ---------------------------------------------------------------------

def _usage(sess, project_id: str) -> dict[str, int]:
    n_vol, vol_gb = sess.execute(
        sa.select(sa.func.count(V.id), sa.func.coalesce(sa.func.sum(V.size), 0))
        .where(V.project_id == project_id, V.deleted.is_(False))).one()
    n_snap, snap_gb = sess.execute(
        sa.select(sa.func.count(S.id), sa.func.coalesce(sa.func.sum(S.volume_size), 0))
        .where(S.project_id == project_id, S.deleted.is_(False))).one()
    # Snapshots count against 'gigabytes' too, as in the Block Storage API.
    return {"volumes": int(n_vol), "snapshots": int(n_snap),
            "gigabytes": int(vol_gb) + int(snap_gb)}


def project_usage(project_id: str) -> dict[str, int]:
    """{"volumes", "snapshots", "gigabytes"} in use by a project."""
    with db_api.reader() as sess:
        return _usage(sess, project_id)
