"""The image registry's queries on every database backend (``db.image``)."""

from __future__ import annotations

import datetime
import threading

import pytest

from virtstack import exception
from virtstack.db import image as db_image
from virtstack.db import models

pytestmark = pytest.mark.db

T0 = datetime.datetime(2024, 1, 1)


def _add(n: int, **values) -> models.Image:
    defaults = {"id": f"00000000-0000-0000-0000-{n:012d}", "name": f"img-{n:02d}",
                "status": "active", "visibility": "public", "owner": "p1", "size": n,
                "created_at": T0 + datetime.timedelta(seconds=n // 2),  # pairs tie
                "properties": {"tags": [], "os_hidden": False}}
    return db_image.create({**defaults, **values})


def _ids(rows) -> list[int]:
    return [int(r.id.rsplit("-", 1)[1]) for r in rows]


def _all_pages(query: db_image.ImageQuery) -> list[int]:
    seen, marker = [], None
    while True:
        rows, more = db_image.query(db_image.ImageQuery(**{**query.__dict__, "marker": marker}))
        seen += _ids(rows)
        if not more:
            return seen
        marker = rows[-1].id


def test_pages_in_created_at_then_id_order_without_repeats(any_database):
    for n in range(1, 12):
        _add(n, name=None if n % 3 == 0 else f"img-{n:02d}")
    q = db_image.ImageQuery(project_id="p1", limit=4)
    assert _all_pages(q) == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    by_name = db_image.ImageQuery(project_id="p1", limit=3, sort_keys=["name"], sort_dirs=["asc"])
    # NULL names first ascending; ties broken by created_at then id, in the
    # one direction given.
    assert _all_pages(by_name) == [3, 6, 9, 1, 2, 4, 5, 7, 8, 10, 11]


def test_filters_on_properties_fill_whole_pages(any_database):
    for n in range(1, 13):
        tags = ["even"] if n % 2 == 0 else ["odd"]
        _add(n, properties={"tags": tags + ["all"], "os_hidden": n == 12,
                            "flavour": "x" if n % 4 == 0 else "y"})
    q = db_image.ImageQuery(project_id="p1", limit=2, tags=["even", "all"])
    assert _all_pages(q) == [10, 8, 6, 4, 2]  # 12 is hidden
    q = db_image.ImageQuery(project_id="p1", limit=2, properties={"flavour": "x"},
                            os_hidden=None)
    assert _all_pages(q) == [12, 8, 4]


def test_visibility_rules(any_database):
    _add(1, visibility="public", owner="p2")
    _add(2, visibility="private", owner="p1")
    _add(3, visibility="private", owner="p2")
    _add(4, visibility="community", owner="p2")
    _add(5, visibility="community", owner="p1")
    _add(6, visibility="shared", owner="p2")

    def listed(project, admin=False, visibility=None):
        rows, _ = db_image.query(db_image.ImageQuery(project_id=project, is_admin=admin,
                                                     visibility=visibility, limit=100))
        return sorted(_ids(rows))

    assert listed("p1") == [1, 2, 5]
    assert listed("p1", visibility="all") == [1, 2, 4, 5]
    assert listed("p1", visibility="community") == [4, 5]
    assert listed("p1", visibility="private") == [2]
    assert listed("p1", admin=True) == [1, 2, 3, 5, 6]
    assert listed("p1", admin=True, visibility="all") == [1, 2, 3, 4, 5, 6]


def test_marker_must_be_visible(any_database):
    _add(1, visibility="private", owner="p2")
    _add(2)
    with pytest.raises(exception.ImageNotFound):
        db_image.query(db_image.ImageQuery(project_id="p1",
                                           marker="00000000-0000-0000-0000-000000000001"))
    rows, more = db_image.query(db_image.ImageQuery(
        project_id="p2", marker="00000000-0000-0000-0000-000000000001"))
    assert (_ids(rows), more) == ([], False)


def test_transition_is_compare_and_set(any_database):
    row = _add(1, status="queued")
    assert db_image.transition(row.id, ["queued"], {"status": "saving"})
    assert not db_image.transition(row.id, ["queued"], {"status": "saving"})
    assert db_image.get(row.id).status == "saving"


def test_concurrent_modifies_lose_no_update(any_database):
    row = _add(1, properties={"tags": []})
    start = threading.Barrier(4)
    errors = []

    def tag(i: int) -> None:
        try:
            start.wait()
            for k in range(5):
                db_image.modify(row.id, lambda r: {"properties": dict(
                    r.properties, tags=db_image.tags(r) + [f"t{i}-{k}"])})
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(db_image.tags(db_image.get(row.id))) == 20


def test_an_id_is_never_reused(any_database):
    row = _add(1)
    db_image.modify(row.id, lambda r: {"status": "deleted", "deleted": True})
    with pytest.raises(exception.ImageExists):
        _add(1)
