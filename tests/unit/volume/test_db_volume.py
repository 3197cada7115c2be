"""Block-storage rows on every backend: compare-and-set transitions, the
atomic reserve and pool claim under races, lists, usage (DESIGN rule 6)."""

from __future__ import annotations

import uuid as uuidlib

import pytest

from tests.unit.db.racing import race
from virtstack import exception
from virtstack.db import volume as db_volume

pytestmark = pytest.mark.db


def make(**kw):
    values = {"id": str(uuidlib.uuid4()), "project_id": "p1", "user_id": "u1",
              "host": "h@file#file", "size": 1, "status": "available",
              "attach_status": "detached"}
    values.update(kw)
    return db_volume.volume_create(values)


def test_transition_is_compare_and_set(any_database):
    vol = make()
    assert db_volume.volume_transition(vol.id, ["available"], {"status": "deleting"})
    assert not db_volume.volume_transition(vol.id, ["available"], {"status": "extending"})
    assert db_volume.volume_get(vol.id).status == "deleting"


def test_delete_transition_refused_while_an_attachment_holds_the_volume(any_database):
    vol = make()
    db_volume.attachment_reserve(vol.id, ["available"], {"status": "reserved"},
                                 {"instance_uuid": "i-1", "attach_status": "reserved"})
    # Even a caller that ignores the status (force) cannot delete it.
    assert not db_volume.volume_transition(vol.id, None, {"status": "deleting"},
                                           no_attachments=True)


def test_reserve_race_has_exactly_one_winner(any_database):
    vol = make()

    def reserve(i):
        return db_volume.attachment_reserve(vol.id, ["available"], {"status": "reserved"},
                                            {"instance_uuid": f"i-{i}",
                                             "attach_status": "reserved"})

    results = race(20, reserve)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, exception.InvalidVolume) for e in losers), losers
    assert "status must be available to reserve, but the current status is: reserved" in str(
        losers[0])
    assert len(db_volume.attachment_list({"volume_id": vol.id})) == 1
    assert db_volume.volume_get(vol.id).status == "reserved"


def test_delete_and_reserve_race_one_wins_and_state_is_consistent(any_database):
    for _ in range(5):
        vol = make()

        def go(i):
            if i % 2:
                return db_volume.volume_transition(vol.id, ["available"],
                                                   {"status": "deleting"}, no_attachments=True)
            try:
                db_volume.attachment_reserve(vol.id, ["available"], {"status": "reserved"},
                                             {"instance_uuid": "i", "attach_status": "reserved"})
                return True
            except exception.InvalidVolume:
                return False

        results = race(6, go)
        assert results.count(True) == 1, results
        row = db_volume.volume_get(vol.id)
        attachments = db_volume.attachment_list({"volume_id": vol.id})
        if row.status == "deleting":
            assert attachments == []
        else:
            assert row.status == "reserved" and len(attachments) == 1


def test_finish_delete_frees_the_volume_only_when_the_last_attachment_goes(any_database):
    vol = make()
    att = db_volume.attachment_reserve(vol.id, ["available"], {"status": "in-use"},
                                       {"instance_uuid": "i", "attach_status": "attached"})
    assert db_volume.attachment_finish_delete(att.id, vol.id, ["in-use"])
    assert db_volume.volume_get(vol.id).status == "available"
    # Idempotent: a second delete changes nothing and says so.
    assert not db_volume.attachment_finish_delete(att.id, vol.id, ["in-use"])
    assert db_volume.attachment_get(att.id, read_deleted=True).attach_status == "detached"


def test_pool_claims_never_overcommit(any_database):
    db_volume.pool_report("h@file#file", "h", "file", total_gb=10, free_gb=10)
    results = race(16, lambda i: db_volume.pool_claim("h@file#file", 3))
    assert results.count(True) == 3
    assert db_volume.pools()[0].allocated_gb == 9
    db_volume.pool_release("h@file#file", 30)
    assert db_volume.pools()[0].allocated_gb == 0  # never below zero


def test_pool_report_recomputes_allocation_from_live_volumes(any_database):
    make(size=2)
    make(size=3)
    make(size=5, deleted=True)
    db_volume.pool_report("h@file#file", "h", "file", total_gb=100, free_gb=100)
    assert db_volume.pools()[0].allocated_gb == 5
    db_volume.pool_report("h@file#file", "h", "file", total_gb=50, free_gb=40)
    pool = db_volume.pools()[0]
    assert (pool.total_gb, pool.free_gb, pool.allocated_gb) == (50, 40, 5)


def test_list_filters_sorting_and_paging(any_database):
    ids = [make(display_name=f"v{i}", size=i + 1, metadata_={"k": str(i % 2)},
                bootable=i == 3).id for i in range(6)]
    make(project_id="p2", display_name="other")
    assert {r.id for r in db_volume.volume_list({"project_id": "p1"})} == set(ids)
    assert [r.display_name for r in db_volume.volume_list({"name": "v2"})] == ["v2"]
    assert {r.display_name for r in db_volume.volume_list({"metadata": {"k": "1"}})} == {
        "v1", "v3", "v5"}
    assert [r.display_name for r in db_volume.volume_list({"bootable": True})] == ["v3"]
    by_size = db_volume.volume_list({"project_id": "p1"}, sort_keys=["size"], sort_dirs=["asc"])
    assert [r.size for r in by_size] == [1, 2, 3, 4, 5, 6]
    page1 = db_volume.volume_list({"project_id": "p1"}, limit=4, sort_keys=["name"],
                                  sort_dirs=["asc"])
    page2 = db_volume.volume_list({"project_id": "p1"}, limit=4, marker=page1[-1].id,
                                  sort_keys=["name"], sort_dirs=["asc"])
    assert [r.display_name for r in page1 + page2] == [f"v{i}" for i in range(6)]
    with pytest.raises(exception.Invalid, match="Invalid sort key 'nope'"):
        db_volume.volume_list(sort_keys=["nope"])
    with pytest.raises(exception.Invalid, match="marker"):
        db_volume.volume_list(marker=str(uuidlib.uuid4()))


def test_usage_counts_volumes_and_snapshot_gigabytes(any_database):
    vol = make(size=4)
    make(size=2)
    make(size=7, project_id="p2")
    db_volume.snapshot_create_within_quota(
        {"id": str(uuidlib.uuid4()), "volume_id": vol.id, "project_id": "p1",
         "user_id": "u1", "status": "creating", "volume_size": 4}, {}, ["available"])
    assert db_volume.project_usage("p1") == {"volumes": 2, "snapshots": 1, "gigabytes": 10}


def test_quota_is_checked_in_the_insert(any_database):
    make(size=4)
    with pytest.raises(exception.VolumeSizeExceedsAvailableQuota,
                       match="Requested 7G, quota is 10G and 4G has been consumed"):
        db_volume.volume_create_within_quota(
            {"id": str(uuidlib.uuid4()), "project_id": "p1", "user_id": "u", "size": 7,
             "status": "creating"}, {"volumes": 10, "gigabytes": 10})
    with pytest.raises(exception.VolumeLimitExceeded, match=r"\(1\) exceeded"):
        db_volume.volume_create_within_quota(
            {"id": str(uuidlib.uuid4()), "project_id": "p1", "user_id": "u", "size": 1,
             "status": "creating"}, {"volumes": 1, "gigabytes": -1})
    assert db_volume.project_usage("p1")["volumes"] == 1


def test_default_type_is_seeded_once(any_database):
    first = db_volume.type_seed_default()
    assert db_volume.type_seed_default().id == first.id
    assert db_volume.type_get("__DEFAULT__").id == first.id
    with pytest.raises(exception.VolumeTypeNotFound):
        db_volume.type_get("nope")
