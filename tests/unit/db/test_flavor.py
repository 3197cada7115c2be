"""Flavor rows on every backend."""

from __future__ import annotations


import pytest

from virtstack import exception
from virtstack.db import flavor as db_flavor

from .racing import race

pytestmark = pytest.mark.db


def _flavor(flavorid: str, name: str | None = None, **kw) -> dict:
    values = {"flavorid": flavorid, "name": name or f"f{flavorid}", "vcpus": 1,
              "memory_mb": 512, "root_gb": 1}
    values.update(kw)
    return values


def test_seed_defaults_is_idempotent(any_database):
    assert db_flavor.seed_defaults() == len(db_flavor.DEFAULT_FLAVORS)
    assert db_flavor.seed_defaults() == 0
    rows = db_flavor.list_(is_public=None)
    assert sorted(r.flavorid for r in rows) == sorted(f[0] for f in db_flavor.DEFAULT_FLAVORS)
    nano = db_flavor.get("42")
    assert (nano.name, nano.vcpus, nano.memory_mb, nano.root_gb) == ("m1.nano", 1, 128, 1)


def test_concurrent_seeding_seeds_once(any_database):
    """Services starting together on a new database seed it exactly once."""
    results = race(4, lambda i: db_flavor.seed_defaults())
    assert sorted(results, key=str) == [0, 0, 0, len(db_flavor.DEFAULT_FLAVORS)], results
    assert len(db_flavor.list_(is_public=None)) == len(db_flavor.DEFAULT_FLAVORS)


def test_seed_defaults_leaves_an_existing_catalogue_alone(any_database):
    db_flavor.create(_flavor("custom"))
    assert db_flavor.seed_defaults() == 0
    assert [r.flavorid for r in db_flavor.list_(is_public=None)] == ["custom"]


def test_create_and_get(any_database):
    db_flavor.create(_flavor("7", "big", vcpus=8, memory_mb=16384, root_gb=100, ephemeral_gb=10,
                             swap=512, rxtx_factor=2.5, description="d",
                             extra_specs={"hw:cpu_policy": "dedicated"}))
    row = db_flavor.get("7")
    assert (row.name, row.vcpus, row.memory_mb, row.ephemeral_gb, row.swap) == \
        ("big", 8, 16384, 10, 512)
    assert row.rxtx_factor == 2.5 and row.is_public is True and row.disabled is False
    assert db_flavor.to_dict(row) == {
        "flavorid": "7", "name": "big", "vcpus": 8, "memory_mb": 16384, "root_gb": 100,
        "ephemeral_gb": 10, "swap": 512, "extra_specs": {"hw:cpu_policy": "dedicated"}}


@pytest.mark.parametrize("dup,what", [(_flavor("1", "other"), "ID 1"),
                                      (_flavor("2", "one"), "name one")])
def test_create_duplicate_is_flavor_exists(any_database, dup, what):
    db_flavor.create(_flavor("1", "one"))
    with pytest.raises(exception.FlavorExists) as err:
        db_flavor.create(dup)
    assert err.value.code == 409 and what in err.value.format_message()
    assert len(db_flavor.list_(is_public=None)) == 1


def test_concurrent_duplicate_creates_have_one_winner(any_database):
    results = race(6, lambda i: db_flavor.create(_flavor(f"x{i}", "same-name")) and "created")
    assert results.count("created") == 1, results
    assert all(isinstance(r, exception.FlavorExists) for r in results if r != "created"), results


def test_get_and_delete_unknown_are_404(any_database):
    with pytest.raises(exception.FlavorNotFound) as err:
        db_flavor.get("nope")
    assert err.value.code == 404 and "nope" in err.value.format_message()
    with pytest.raises(exception.FlavorNotFound):
        db_flavor.delete("nope")


def test_delete(any_database):
    db_flavor.create(_flavor("1"))
    db_flavor.create(_flavor("2"))
    db_flavor.delete("1")
    with pytest.raises(exception.FlavorNotFound):
        db_flavor.get("1")
    assert [r.flavorid for r in db_flavor.list_()] == ["2"]
    with pytest.raises(exception.FlavorNotFound):
        db_flavor.delete("1")


def test_list_filters(any_database):
    for fid, ram, disk, public, disabled in [("a", 256, 1, True, False),
                                            ("b", 1024, 10, True, False),
                                            ("c", 2048, 20, False, False),
                                            ("d", 4096, 40, True, True)]:
        db_flavor.create(_flavor(fid, memory_mb=ram, root_gb=disk, is_public=public,
                                 disabled=disabled))
    ids = lambda **kw: [r.flavorid for r in db_flavor.list_(**kw)]  # noqa: E731
    assert ids() == ["a", "b"]                      # public, not disabled
    assert ids(is_public=False) == ["c"]
    assert ids(is_public=None) == ["a", "b", "c"]
    assert ids(is_public=None, min_ram=1024) == ["b", "c"]
    assert ids(is_public=None, min_disk=20) == ["c"]
    assert ids(is_public=None, min_ram=1024, min_disk=11) == ["c"]
    assert ids(min_ram=100000) == []


def test_list_sort_and_marker(any_database):
    for fid, ram in [("1", 2048), ("2", 512), ("3", 2048), ("4", 128), ("5", 4096)]:
        db_flavor.create(_flavor(fid, memory_mb=ram))
    ids = lambda **kw: [r.flavorid for r in db_flavor.list_(**kw)]  # noqa: E731
    assert ids() == ["1", "2", "3", "4", "5"]
    assert ids(sort_key="memory_mb") == ["4", "2", "1", "3", "5"]
    # Ties break on the row id, in the same direction (as Nova pages flavors).
    assert ids(sort_key="memory_mb", sort_dir="desc") == ["5", "3", "1", "2", "4"]
    # Pages across the 2048 tie, both directions.
    for d in ("asc", "desc"):
        full = ids(sort_key="memory_mb", sort_dir=d)
        pages, marker = [], None
        while True:
            page = ids(sort_key="memory_mb", sort_dir=d, limit=2, marker=marker)
            pages += page
            if len(page) < 2:
                break
            marker = page[-1]
        assert pages == full, d
    assert ids(marker="2", limit=2) == ["3", "4"]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_list_sort_by_nullable_key_pages(any_database, direction):
    for fid, desc in [("1", None), ("2", "b"), ("3", None), ("4", "a"), ("5", "b")]:
        db_flavor.create(_flavor(fid, description=desc))
    rows = db_flavor.list_(sort_key="description", sort_dir=direction)
    asc = [None, None, "a", "b", "b"]
    assert [r.description for r in rows] == (asc if direction == "asc" else asc[::-1])
    full = [r.flavorid for r in rows]
    for limit in (1, 2):
        pages, marker = [], None
        for _ in range(10):
            page = db_flavor.list_(sort_key="description", sort_dir=direction, limit=limit,
                                   marker=marker)
            pages += [r.flavorid for r in page]
            if len(page) < limit:
                break
            marker = page[-1].flavorid
        assert pages == full


def test_list_bad_marker_and_sort_are_invalid(any_database):
    db_flavor.create(_flavor("1"))
    with pytest.raises(exception.Invalid) as err:
        db_flavor.list_(marker="nope")
    assert "nope" in err.value.format_message()
    with pytest.raises(exception.Invalid):
        db_flavor.list_(sort_key="extra_specs")
    with pytest.raises(exception.Invalid):
        db_flavor.list_(sort_dir="up")
