"""Sorting and keyset (marker) paging that give the same answer on SQLite,
PostgreSQL and MariaDB.

The backends disagree on where NULL sorts (PostgreSQL: last ascending;
SQLite and MariaDB: first), so the order is spelled out: NULL is the
smallest value, first ascending and last descending, on every backend. The
marker predicate ("rows strictly after the marker row") uses the same rule,
so pages never skip or repeat a row, ties included (a unique tie-breaker key
ends every order).
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from virtstack import exception

DIRECTIONS = ("asc", "desc")


def normalise(sort_keys: Sequence[str], sort_dirs: Sequence[str], allowed: Sequence[str],
              tiebreak: str, default_dir: str = "desc") -> tuple[list[str], list[str]]:
    """Checked (keys, dirs) with ``tiebreak`` appended.

    Directions missing at the end follow the first one given (``default_dir``
    when none is); more directions than keys, an unknown key or direction is
    ``Invalid`` (400).
    """
    keys, dirs = list(sort_keys), list(sort_dirs)
    if not keys:
        keys = [tiebreak]
    for key in keys:
        if key not in allowed and key != tiebreak:
            raise exception.Invalid(reason=f"Invalid sort key '{key}'; "
                                           f"valid keys: {', '.join(allowed)}")
    for d in dirs:
        if d not in DIRECTIONS:
            raise exception.Invalid(reason=f"Invalid sort direction '{d}': use 'asc' or 'desc'")
    if len(dirs) > len(keys):
        raise exception.Invalid(reason="More sort directions than sort keys")
    fill = dirs[0] if dirs else default_dir
    dirs += [fill] * (len(keys) - len(dirs))
    if tiebreak not in keys:
        keys.append(tiebreak)
        dirs.append(dirs[-1])
    return keys, dirs


def _nullable(col) -> bool:
    return bool(getattr(col, "nullable", True)) and not getattr(col, "primary_key", False)


def order_by(model, keys: Sequence[str], dirs: Sequence[str]) -> list[Any]:
    """ORDER BY clauses for (keys, dirs), NULL smallest on every backend."""
    clauses: list[Any] = []
    for key, d in zip(keys, dirs, strict=True):
        col = getattr(model, key)
        if _nullable(col.property.columns[0]):
            # 0 for NULL, 1 otherwise: NULLs first ascending, last descending.
            is_set = sa.case((col.is_(None), 0), else_=1)
            clauses.append(is_set.asc() if d == "asc" else is_set.desc())
        clauses.append(col.asc() if d == "asc" else col.desc())
    return clauses


def after(model, marker_row, keys: Sequence[str], dirs: Sequence[str]):
    """WHERE clause: rows strictly after ``marker_row`` in the (keys, dirs)
    order of ``order_by`` (NULL smallest)."""
    ors = []
    for i, (key, d) in enumerate(zip(keys, dirs, strict=True)):
        ands = []
        for prev in keys[:i]:
            col, val = getattr(model, prev), getattr(marker_row, prev)
            ands.append(col.is_(None) if val is None else col == val)
        col, val = getattr(model, key), getattr(marker_row, key)
        if val is None:
            if d == "desc":
                continue  # NULL is last descending: nothing differs after it here
            ands.append(col.is_not(None))  # ascending, every value is after NULL
        elif d == "asc":
            ands.append(col > val)
        else:
            ands.append(sa.or_(col < val, col.is_(None)))
        ors.append(sa.and_(*ands))
    return sa.or_(*ors) if ors else sa.false()
