"""Flavor rows and the defaults seeded into a new database."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models
from virtstack.db import paging

#: Seeded by ``virtstack db upgrade`` when the table is empty:
#: (flavorid, name, vcpus, memory_mb, root_gb). m1.nano fits the test guest.
DEFAULT_FLAVORS = (
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
    ("42", "m1.nano", 1, 128, 1),
    ("84", "m1.micro", 1, 192, 1),
)

SORT_KEYS = ("created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id",
             "is_public", "memory_mb", "name", "root_gb", "rxtx_factor", "swap",
             "updated_at", "vcpus")


def seed_defaults() -> int:
    """Create the default flavors if there are none; returns how many (0 also
    when a concurrent caller seeded them first)."""
    try:
        with db_api.session() as sess:
            if sess.scalar(sa.select(sa.func.count(models.Flavor.id))):
                return 0
            for flavorid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
                sess.add(models.Flavor(flavorid=flavorid, name=name, vcpus=vcpus,
                                       memory_mb=ram, root_gb=disk))
    except sa.exc.IntegrityError:
        return 0
    return len(DEFAULT_FLAVORS)


def create(values: dict[str, Any]) -> models.Flavor:
    """Insert a flavor; ``FlavorExists`` (409) if its id or name is taken
    (also when a concurrent create takes it first: the unique constraints
    decide)."""
    F = models.Flavor

    def taken(sess) -> exception.FlavorExists | None:
        for field, what in (("flavorid", "ID"), ("name", "name")):
            if sess.scalar(sa.select(F.id).where(getattr(F, field) == values[field])) is not None:
                return exception.FlavorExists(what=what, value=values[field])
        return None

    try:
        with db_api.session() as sess:
            error = taken(sess)
            if error is not None:
                raise error
            row = F(**values)
            sess.add(row)
    except sa.exc.IntegrityError:
        with db_api.session() as sess:
            error = taken(sess)
        if error is None:
            raise
        raise error from None
    return row


def get(flavorid: str) -> models.Flavor:
    with db_api.reader() as sess:
        row = sess.scalars(sa.select(models.Flavor).where(models.Flavor.flavorid == flavorid)).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return row


def list_(is_public: bool | None = True, min_ram: int | None = None, min_disk: int | None = None,
          limit: int | None = None, marker: str | None = None, sort_key: str = "flavorid",
          sort_dir: str = "asc") -> list[models.Flavor]:
    """Flavors, sorted (``SORT_KEYS``; NULL first ascending), from after
    ``marker`` (a flavorid); ``is_public`` None lists public and private.
    ``Invalid`` (400) for an unknown marker, sort key or direction."""
    F = models.Flavor
    conds = [F.disabled.is_(False)]
    if is_public is not None:
        conds.append(F.is_public.is_(is_public))
    if min_ram is not None:
        conds.append(F.memory_mb >= min_ram)
    if min_disk is not None:
        conds.append(F.root_gb >= min_disk)
    keys, dirs = paging.normalise([sort_key], [sort_dir], SORT_KEYS, tiebreak="id",
                                  default_dir="asc")
    with db_api.reader() as sess:
        if marker is not None:
            m = sess.scalars(sa.select(F).where(F.flavorid == marker)).first()
            if m is None:
                raise exception.Invalid(reason=f"marker [{marker}] not found")
            conds.append(paging.after(F, m, keys, dirs))
        q = sa.select(F).where(*conds).order_by(*paging.order_by(F, keys, dirs))
        if limit is not None:
            q = q.limit(limit)
        return list(sess.scalars(q))


def delete(flavorid: str) -> None:
    with db_api.session() as sess:
        result = sess.execute(sa.delete(models.Flavor).where(models.Flavor.flavorid == flavorid))
    if result.rowcount == 0:
        raise exception.FlavorNotFound(flavor_id=flavorid)


def to_dict(row: models.Flavor) -> dict[str, Any]:
    """The flavor as stored on an instance (``objects.Flavor`` fields)."""
    return {"flavorid": row.flavorid, "name": row.name, "vcpus": row.vcpus,
            "memory_mb": row.memory_mb, "root_gb": row.root_gb,
            "ephemeral_gb": row.ephemeral_gb, "swap": row.swap,
            "extra_specs": dict(row.extra_specs or {})}
