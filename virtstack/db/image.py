"""The image registry: what ``imageRef`` may name and what the Image API serves.

One row per image in ``images``. Image API attributes that have no column
of their own live in ``properties`` under their Image API names
(``ATTRIBUTE_KEYS``): they are base attributes of that API, so no extra
(user) property can ever take those names, and the two kinds never mix.
``extra_properties()`` is what users set; ``to_meta`` gives drivers only
those.

Writes that depend on what the row holds (status changes, property edits)
are guarded: ``transition`` is one compare-and-set ``UPDATE``; ``modify``
reads and writes the row in one transaction holding its lock, so two racing
requests cannot both win or lose each other's changes.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Callable, Sequence

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models
from virtstack.db import paging

#: Image API attributes kept in ``properties`` rather than in a column.
ATTRIBUTE_KEYS = frozenset({"tags", "os_hidden", "os_hash_algo", "os_hash_value",
                            "virtual_size"})

#: What an image list may be sorted by (the Image API's sort keys).
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id",
             "created_at", "updated_at")

#: Comparison operators of range filters (``size_min``, ``created_at=gt:...``).
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
    "lt": operator.lt, "lte": operator.le}

# Rows read per round trip while a list filters on attributes in ``properties``.
_LIST_BATCH = 200


def create(values: dict[str, Any]) -> models.Image:
    """Insert one image row; ``ImageExists`` (409) if the id was ever used
    (deleted rows keep their id, as in the Image API)."""
    row = models.Image(**values)
    try:
        with db_api.session() as sess:
            sess.add(row)
    except sa.exc.IntegrityError:
        raise exception.ImageExists(image_id=values.get("id")) from None
    return row


def get(image_id: str, project_id: str | None = None) -> models.Image:
    """The image, if visible to ``project_id`` (None: any); 404 otherwise."""
    with db_api.reader() as sess:
        row = sess.get(models.Image, image_id)
    if row is None or row.deleted or not visible(row, project_id):
        raise exception.ImageNotFound(image_id=image_id)
    return row


def update(image_id: str, values: dict[str, Any]) -> None:
    """Set columns unconditionally (services' own bookkeeping)."""
    with db_api.session() as sess:
        result = sess.execute(sa.update(models.Image).where(models.Image.id == image_id)
                              .values(**values).execution_options(synchronize_session=False))
    if result.rowcount == 0:
        raise exception.ImageNotFound(image_id=image_id)


def transition(image_id: str, from_statuses: Sequence[str], values: dict[str, Any]) -> bool:
    """Compare-and-set: apply ``values`` (a new ``status`` among them) only
    if the live image's status is one of ``from_statuses``. Whether it did."""
    M = models.Image
    with db_api.session() as sess:
        result = sess.execute(
            sa.update(M).where(M.id == image_id, M.deleted.is_(False),
                               M.status.in_(list(from_statuses)))
            .values(updated_at=models.utcnow(), **values)
            .execution_options(synchronize_session=False))
    return result.rowcount == 1


def modify(image_id: str,
           change: Callable[[models.Image], dict[str, Any] | None]) -> models.Image:
    """Read-modify-write of one live image under its row lock.

    ``change(row)`` sees the row as it is now and returns the column values
    to set (None or {}: nothing); it may raise to abort without writing.
    It must not mutate ``row.properties`` in place: return a new dict.
    Returns the row as written. ``ImageNotFound`` if there is no live row.
    """
    M = models.Image
    with db_api.session() as sess:
        # SQLite ignores FOR UPDATE; its write transactions begin IMMEDIATE
        # (db.api), which serialises them just as well.
        row = sess.scalars(sa.select(M).where(M.id == image_id, M.deleted.is_(False))
                           .with_for_update()).one_or_none()
        if row is None:
            raise exception.ImageNotFound(image_id=image_id)
        values = change(row)
        if values:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = models.utcnow()
    return row


def visible(row: models.Image, project_id: str | None) -> bool:
    """Whether ``project_id`` (None: any) may see the image. Without image
    members, ``shared`` images are their owner's alone, like ``private``."""
    return (project_id is None or row.visibility in ("public", "community")
            or row.owner == project_id)


def list_(project_id: str | None = None) -> list[models.Image]:
    """Every live image visible to ``project_id`` (None: all), newest first."""
    M = models.Image
    q = sa.select(M).where(M.deleted.is_(False)).order_by(M.created_at.desc(), M.id)
    if project_id is not None:
        q = q.where(sa.or_(M.visibility.in_(["public", "community"]), M.owner == project_id))
    with db_api.reader() as sess:
        return list(sess.scalars(q))


@dataclasses.dataclass
class ImageQuery:
    """One page of an image list, as the Image API asks for it (the API
    layer has checked every value).

    ``equals``: column -> the values it may have (``name``, ``id``,
    ``status``, ``disk_format``, ``container_format``, ``owner``,
    ``checksum``, ``protected``). ``ranges``: (column, operator from
    ``OPERATORS``, value). ``tags``: all must be on the image.
    ``properties``: property (extra, or an attribute kept in ``properties``
    such as ``os_hash_value``) -> its exact value as a string.
    ``os_hidden``: only images with this flag (None: either).
    ``visibility``: None lists what the project owns, public images and
    images shared with it (community images only when owned), ``"all"``
    adds community images, anything else lists only that visibility.
    """

    project_id: str | None
    is_admin: bool = False
    visibility: str | None = None
    equals: dict[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    ranges: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)
    tags: Sequence[str] = ()
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    os_hidden: bool | None = False
    sort_keys: Sequence[str] = ()
    sort_dirs: Sequence[str] = ()
    marker: str | None = None
    limit: int = 25


def query(q: ImageQuery) -> tuple[list[models.Image], bool]:
    """One page of images and whether more follow.

    Ordered by ``sort_keys`` (then ``created_at`` and ``id``, so pages never
    skip or repeat a row); ``marker``: the page starts after that image,
    which must be visible to the caller (``ImageNotFound`` otherwise).
    Attributes kept in ``properties`` are filtered while rows stream in,
    stopping as soon as the page is full.
    """
    M = models.Image
    keys = list(q.sort_keys) or ["created_at"]
    dirs = list(q.sort_dirs)
    if "created_at" not in keys:
        keys.append("created_at")
    keys, dirs = paging.normalise(keys, dirs, SORT_KEYS, tiebreak="id")
    scope = None if q.is_admin else q.project_id
    conditions = [M.deleted.is_(False), M.status != "killed", *_visibility(q, scope)]
    for column, values in q.equals.items():
        conditions.append(getattr(M, column).in_(list(values)))
    for column, op, value in q.ranges:
        conditions.append(OPERATORS[op](getattr(M, column), value))
    stmt = sa.select(M).where(*conditions).order_by(*paging.order_by(M, keys, dirs))
    if q.marker is not None:
        stmt = stmt.where(paging.after(M, get(q.marker, scope), keys, dirs))
    wanted = q.limit + 1
    in_properties = bool(q.tags or q.properties or q.os_hidden is not None)
    with db_api.reader() as sess:
        if not in_properties:
            rows = list(sess.scalars(stmt.limit(wanted)))
        else:
            rows = []
            for row in sess.scalars(stmt.execution_options(yield_per=_LIST_BATCH)):
                if _matches(row, q):
                    rows.append(row)
                    if len(rows) == wanted:
                        break
    return rows[:q.limit], len(rows) > q.limit


def _visibility(q: ImageQuery, scope: str | None) -> list[Any]:
    M = models.Image
    conditions = []
    if scope is not None:
        conditions.append(sa.or_(M.visibility.in_(["public", "community"]), M.owner == scope))
    if q.visibility is None:
        # Community images are listed only to their owner unless asked for.
        if q.project_id is None:
            conditions.append(M.visibility != "community")
        else:
            conditions.append(sa.or_(M.visibility != "community", M.owner == q.project_id))
    elif q.visibility != "all":
        conditions.append(M.visibility == q.visibility)
    return conditions


def _matches(row: models.Image, q: ImageQuery) -> bool:
    props = row.properties or {}
    if q.os_hidden is not None and bool(props.get("os_hidden", False)) != q.os_hidden:
        return False
    if q.tags and not set(q.tags) <= set(props.get("tags") or ()):
        return False
    return all(key in props and str(props[key]) == value for key, value in q.properties.items())


def extra_properties(row: models.Image) -> dict[str, Any]:
    """The properties users set (Image API attributes left out)."""
    return {k: v for k, v in (row.properties or {}).items() if k not in ATTRIBUTE_KEYS}


def tags(row: models.Image) -> list[str]:
    return list((row.properties or {}).get("tags") or [])


def to_meta(row: models.Image):
    from virtstack import objects

    return objects.ImageMeta(id=row.id, name=row.name or "", disk_format=row.disk_format or "raw",
                             container_format=row.container_format or "bare",
                             min_disk=row.min_disk, min_ram=row.min_ram, size=row.size or 0,
                             properties=extra_properties(row), location=row.location)
