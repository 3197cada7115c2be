"""Instance rows: create, read, list with filters and pagination, and the
guarded state transitions (compare-and-set, DESIGN rule 6)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import sqlalchemy as sa

from virtstack import exception
from virtstack.compute import states
from virtstack.db import api as db_api
from virtstack.db import models
from virtstack.db import paging

#: Sort keys the API accepts (the Compute API's list, less joined columns).
SORT_KEYS = ("created_at", "updated_at", "display_name", "uuid", "vm_state",
             "task_state", "power_state", "host", "node", "launched_at",
             "terminated_at", "key_name", "project_id", "user_id", "image_ref",
             "flavorid", "hostname", "display_description", "locked")


def create(values: dict[str, Any], action: dict[str, str] | None = None,
           fault: tuple[int, str] | None = None) -> models.Instance:
    """Insert an instance, with its first instance action (``action``:
    action, request_id, user_id, project_id) and a fault (code, message)
    in the same transaction; returns the row (detached)."""
    row = models.Instance(**values)
    with db_api.session() as sess:
        sess.add(row)
        if action is not None:
            sess.add(models.InstanceAction(instance_uuid=row.uuid, **action))
        if fault is not None:
            sess.add(models.InstanceFault(instance_uuid=row.uuid, code=fault[0],
                                          message=fault[1][:255]))
    return row


def get(uuid: str, project_id: str | None = None, read_deleted: bool = False) -> models.Instance:
    """The instance ``uuid`` (of ``project_id`` when given); 404 otherwise."""
    q = sa.select(models.Instance).where(models.Instance.uuid == uuid)
    if project_id is not None:
        q = q.where(models.Instance.project_id == project_id)
    if not read_deleted:
        q = q.where(models.Instance.deleted == 0)
    with db_api.reader() as sess:
        row = sess.scalars(q).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return row


def _status_clause(status: str):
    clauses = []
    for vm_state, task_state, is_default in states.vm_states_for_status(status):
        if is_default:
            # The vm_state's default: any task_state that has its own status
            # under this vm_state is excluded.
            others = [t for t in states._STATUS_MAP[vm_state] if t != "default"]
            cond = models.Instance.vm_state == vm_state
            if others:
                cond = sa.and_(cond, sa.or_(models.Instance.task_state.is_(None),
                                            models.Instance.task_state.not_in(others)))
            clauses.append(cond)
        else:
            clauses.append(sa.and_(models.Instance.vm_state == vm_state,
                                   models.Instance.task_state == task_state))
    return sa.or_(*clauses) if clauses else sa.false()


def _name_regex(pattern: str):
    """``display_name`` matches ``pattern`` (a search, like ``re.search``),
    case-sensitively on every backend; ``(?i)`` at the start makes it
    case-insensitive everywhere. A pattern that does not compile is 400."""
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise exception.Invalid(reason=f"name filter {pattern!r} is not a valid regular "
                                       f"expression: {exc}") from None
    if db_api.get_engine().dialect.name == "mysql":
        # MariaDB's REGEXP follows the column's (case-insensitive)
        # collation; PCRE's (?-i) makes it case-sensitive like the others.
        pattern = "(?-i)" + pattern
    return models.Instance.display_name.regexp_match(pattern)


def _is_regex_error(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database refused a regular expression (PostgreSQL's
    syntax differs from Python's in places; MariaDB's PCRE too)."""
    orig = exc.orig
    if getattr(orig, "pgcode", None) == "2201B":  # invalid_regular_expression
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] == 1139  # ER_REGEXP_ERROR


# Lists return plain rows (no ORM instrumentation: a third of a 1,000-server
# detail list went to attribute access), labelled with the model's attribute
# names so they read like Instance objects. The flavor snapshot is left out:
# lists never show it, and decoding its JSON per row was measurable.
_LIST_COLUMNS = [attr.class_attribute.label(attr.key)
                 for attr in sa.inspect(models.Instance).column_attrs if attr.key != "flavor"]


def list_(filters: dict[str, Any] | None = None, limit: int | None = None,
          marker: str | None = None, sort_keys: Sequence[str] = ("created_at",),
          sort_dirs: Sequence[str] = ("desc",)) -> list[models.Instance]:
    """Instances matching ``filters``, sorted, from after ``marker`` (a uuid).

    Filters: project_id, user_id, host, node, name (regex), status (API
    status), vm_state, task_state, image (ref), flavor (flavorid),
    changes_since / changes_before (datetimes; include deleted), deleted
    (bool), reservation_id, locked, uuids (list), ip (unused: no networks).
    Sort keys are ``SORT_KEYS``; directions missing at the end follow the
    first one; NULL sorts first ascending and last descending on every
    backend. Raises ``Invalid`` (400) when the marker is unknown, a sort key
    or direction is not valid, or the name regex does not compile.
    """
    filters = dict(filters or {})
    I = models.Instance
    conds = []
    changes = "changes_since" in filters or "changes_before" in filters
    deleted = filters.pop("deleted", None)
    if deleted is True:
        conds.append(I.deleted != 0)
    elif deleted is False or (deleted is None and not changes):
        conds.append(I.deleted == 0)
    for key, col in (("project_id", I.project_id), ("user_id", I.user_id), ("host", I.host),
                     ("node", I.node), ("vm_state", I.vm_state), ("image", I.image_ref),
                     ("flavor", I.flavorid), ("reservation_id", I.reservation_id),
                     ("locked", I.locked)):
        if key in filters:
            value = filters[key]
            conds.append(col.in_(value) if isinstance(value, (list, tuple, set)) else col == value)
    if "task_state" in filters:
        ts = filters["task_state"]
        conds.append(I.task_state.is_(None) if ts is None else I.task_state == ts)
    if "uuids" in filters:
        conds.append(I.uuid.in_(list(filters["uuids"])))
    if "name" in filters:
        conds.append(_name_regex(filters["name"]))
    if "status" in filters:
        statuses = filters["status"]
        statuses = statuses if isinstance(statuses, (list, tuple)) else [statuses]
        conds.append(sa.or_(*[_status_clause(s) for s in statuses]))
    if "changes_since" in filters:
        conds.append(sa.func.coalesce(I.updated_at, I.created_at) >= filters["changes_since"])
    if "changes_before" in filters:
        conds.append(sa.func.coalesce(I.updated_at, I.created_at) <= filters["changes_before"])

    keys, dirs = paging.normalise(sort_keys, sort_dirs, SORT_KEYS, tiebreak="id")
    with db_api.reader() as sess:
        if marker is not None:
            mrow = sess.scalars(sa.select(I).where(I.uuid == marker)).first()
            if mrow is None:
                raise exception.Invalid(reason=f"marker [{marker}] not found")
            conds.append(paging.after(I, mrow, keys, dirs))
        q = sa.select(*_LIST_COLUMNS).where(*conds).order_by(*paging.order_by(I, keys, dirs))
        if limit is not None:
            q = q.limit(limit)
        try:
            return sess.execute(q).all()
        except sa.exc.DBAPIError as exc:
            if "name" in filters and _is_regex_error(exc):
                raise exception.Invalid(reason=f"name filter {filters['name']!r} is not a "
                                               f"regular expression the database can run: "
                                               f"{exc.orig}") from None
            raise


def transition(uuid: str, vm_states: Iterable[str] | None,
               task_states: Iterable[str | None] | None,
               values: dict[str, Any]) -> bool:
    """Compare-and-set: apply ``values`` to ``uuid`` only if it is still in
    one of ``vm_states`` and ``task_states`` (None = don't care). One UPDATE
    statement, so the database decides which of two racers wins. Returns
    whether this caller won."""
    I = models.Instance
    conds = [I.uuid == uuid, I.deleted == 0]
    if vm_states is not None:
        conds.append(I.vm_state.in_(list(vm_states)))
    if task_states is not None:
        task_states = list(task_states)
        named = [t for t in task_states if t is not None]
        parts = []
        if None in task_states:
            parts.append(I.task_state.is_(None))
        if named:
            parts.append(I.task_state.in_(named))
        conds.append(sa.or_(*parts))
    values = dict(values)
    values.setdefault("updated_at", models.utcnow())
    with db_api.session() as sess:
        result = sess.execute(sa.update(I).where(*conds).values(**values)
                              .execution_options(synchronize_session=False))
        return result.rowcount == 1


def start_action(uuid: str, action: str, project_id: str | None = None) -> models.Instance:
    """Move ``uuid`` into ``action``'s task_state if the state machine allows
    it; ``InstanceInvalidState`` (409) otherwise, naming the state that
    forbids it (the vm_state if that is wrong, else the task_state).
    ``InstanceNotFound`` when it is not there (or not ``project_id``'s):
    then nothing changes."""
    t = states.ACTIONS[action]
    vm_states, task_states = states.starting_states(action)
    get(uuid, project_id=project_id)  # 404 before touching anything
    won = transition(uuid, vm_states, task_states, {"task_state": t.task_state})
    row = get(uuid, project_id=project_id)
    if not won:
        if row.vm_state not in vm_states:
            attr, state = "vm_state", row.vm_state
        else:
            attr, state = "task_state", row.task_state
        raise exception.InstanceInvalidState(action=action.split("_")[0], instance_uuid=uuid,
                                             attr=attr, state=state)
    return row


def update(uuid: str, values: dict[str, Any]) -> None:
    """Unconditional update (for fields no state machine guards)."""
    values = dict(values)
    values.setdefault("updated_at", models.utcnow())
    with db_api.session() as sess:
        sess.execute(sa.update(models.Instance).where(models.Instance.uuid == uuid).values(**values)
                     .execution_options(synchronize_session=False))


def mark_deleted(uuid: str) -> bool:
    """Soft-delete the row: vm_state DELETED, ``deleted`` = id. Idempotent."""
    now = models.utcnow()
    with db_api.session() as sess:
        result = sess.execute(
            sa.update(models.Instance)
            .where(models.Instance.uuid == uuid, models.Instance.deleted == 0)
            .values(vm_state=states.DELETED, task_state=None, deleted=models.Instance.id,
                    deleted_at=now, terminated_at=now, updated_at=now, power_state=0)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1


def count_usage(project_id: str) -> dict[str, int]:
    """Live instances, cores and RAM of a project (for quotas and limits)."""
    I = models.Instance
    q = sa.select(sa.func.count(I.id), sa.func.coalesce(sa.func.sum(I.vcpus), 0),
                  sa.func.coalesce(sa.func.sum(I.memory_mb), 0)).where(
        I.project_id == project_id, I.deleted == 0)
    with db_api.reader() as sess:
        n, cores, ram = sess.execute(q).one()
    return {"instances": int(n), "cores": int(cores), "ram": int(ram)}


def by_host(host: str) -> list[models.Instance]:
    """Live instances placed on ``host``."""
    q = sa.select(models.Instance).where(models.Instance.host == host, models.Instance.deleted == 0)
    with db_api.reader() as sess:
        return list(sess.scalars(q))


# -- faults ------------------------------------------------------------------

def add_fault(uuid: str, code: int, message: str, details: str | None = None) -> None:
    with db_api.session() as sess:
        sess.add(models.InstanceFault(instance_uuid=uuid, code=code, message=message[:255],
                                      details=details))


def latest_faults(uuids: Iterable[str]) -> dict[str, models.InstanceFault]:
    """The newest fault of each of ``uuids`` that has one (one query)."""
    uuids = list(uuids)
    if not uuids:
        return {}
    F = models.InstanceFault
    q = sa.select(F).where(F.instance_uuid.in_(uuids)).order_by(F.instance_uuid, F.id.desc())
    out: dict[str, models.InstanceFault] = {}
    with db_api.reader() as sess:
        for fault in sess.scalars(q):
            out.setdefault(fault.instance_uuid, fault)
    return out


# -- instance actions ----------------------------------------------------------

def action_start(uuid: str, action: str, request_id: str, user_id: str, project_id: str) -> None:
    with db_api.session() as sess:
        sess.add(models.InstanceAction(instance_uuid=uuid, action=action, request_id=request_id,
                                       user_id=user_id, project_id=project_id))


def _action_row(sess, uuid: str, request_id: str) -> models.InstanceAction | None:
    A = models.InstanceAction
    return sess.scalars(sa.select(A).where(A.instance_uuid == uuid, A.request_id == request_id)
                        .order_by(A.id.desc())).first()


def action_event_start(uuid: str, request_id: str, event: str,
                       host: str | None) -> tuple[int, int] | None:
    """Record that ``event`` of the request's action started. Returns the
    (action id, event id) for ``action_event_finish``; None when the
    request recorded no action."""
    with db_api.session() as sess:
        action = _action_row(sess, uuid, request_id)
        if action is None:
            return None
        ev = models.InstanceActionEvent(action_id=action.id, event=event, host=host)
        sess.add(ev)
        sess.flush()
        return action.id, ev.id


def action_event_finish(uuid: str, request_id: str, event: str, result: str,
                        traceback: str | None = None,
                        ids: tuple[int, int] | None = None) -> None:
    """Record how ``event`` ended. With ``ids`` from ``action_event_start``
    the rows are updated by id, without looking them up again."""
    E, A = models.InstanceActionEvent, models.InstanceAction
    now = models.utcnow()
    with db_api.session() as sess:
        if ids is None:
            action = _action_row(sess, uuid, request_id)
            if action is None:
                return
            ev = sess.scalars(sa.select(E).where(E.action_id == action.id, E.event == event)
                              .order_by(E.id.desc())).first()
            ids = (action.id, ev.id if ev is not None else None)
        action_id, event_id = ids
        if event_id is not None:
            sess.execute(sa.update(E).where(E.id == event_id)
                         .values(finish_time=now, result=result, traceback=traceback))
        values: dict[str, Any] = {"finish_time": now, "updated_at": now}
        if result == "Error":
            values["message"] = "Error"
        sess.execute(sa.update(A).where(A.id == action_id).values(**values))


def actions_list(uuid: str) -> list[models.InstanceAction]:
    A = models.InstanceAction
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(A).where(A.instance_uuid == uuid)
                                 .order_by(A.start_time.desc(), A.id.desc())))


def action_get(uuid: str, request_id: str) -> tuple[models.InstanceAction, list[models.InstanceActionEvent]]:
    E = models.InstanceActionEvent
    with db_api.reader() as sess:
        action = _action_row(sess, uuid, request_id)
        if action is None:
            raise exception.InstanceActionNotFound(request_id=request_id, instance_id=uuid)
        events = list(sess.scalars(sa.select(E).where(E.action_id == action.id).order_by(E.id)))
    return action, events


def instance_name(row) -> str:
    """The hypervisor-side name of an instance ([compute] instance_name_template)."""
    from virtstack.conf import CONF

    return CONF.compute.instance_name_template % row.id


def to_object(row: models.Instance):
    """The driver-facing ``objects.Instance`` of a row."""
    from virtstack import objects

    return objects.Instance(
        uuid=row.uuid, name=instance_name(row), display_name=row.display_name,
        project_id=row.project_id, user_id=row.user_id,
        flavor=objects.Flavor.from_dict(row.flavor), image_ref=row.image_ref,
        kernel_id=row.kernel_id, ramdisk_id=row.ramdisk_id, host=row.host, node=row.node,
        vm_state=row.vm_state, task_state=row.task_state, power_state=row.power_state,
        root_device_name=row.root_device_name, metadata=dict(row.metadata_ or {}),
        config_drive=bool(row.config_drive), hostname=row.hostname or "",
        user_data=row.user_data)

