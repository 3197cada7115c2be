"""Instance rows on every backend: reads, list filters and paging, and the
guarded state transitions (DESIGN rule 6)."""

from __future__ import annotations

import datetime
import threading
import uuid as uuidlib

import pytest
import sqlalchemy as sa

from virtstack import exception
from virtstack.compute import states
from virtstack.db import api as db_api
from virtstack.db import instance as db_instance
from virtstack.db import models

pytestmark = pytest.mark.db

T0 = datetime.datetime(2020, 1, 2, 3, 4, 5)
FLAVOR = {"flavorid": "42", "name": "m1.nano", "vcpus": 1, "memory_mb": 128, "root_gb": 1,
          "ephemeral_gb": 0, "swap": 0, "extra_specs": {}}


def _values(**kw) -> dict:
    values = {"uuid": str(uuidlib.uuid4()), "display_name": "srv", "project_id": "p1",
              "user_id": "u1", "flavorid": "42", "flavor": FLAVOR, "vm_state": states.ACTIVE,
              "vcpus": 1, "memory_mb": 128, "root_gb": 1}
    values.update(kw)
    return values


def make(**kw) -> models.Instance:
    return db_instance.create(_values(**kw))


def make_many(rows: list[dict]) -> list[str]:
    """Insert several rows in one transaction; their uuids in order."""
    objs = [models.Instance(**_values(**kw)) for kw in rows]
    with db_api.session() as sess:
        sess.add_all(objs)
    return [o.uuid for o in objs]


def uuids(rows) -> list[str]:
    return [r.uuid for r in rows]


# -- create / get --------------------------------------------------------------

def test_create_and_get(any_database):
    row = make(display_name="web", metadata_={"k": "v"}, host="h1", node="n1")
    got = db_instance.get(row.uuid)
    assert (got.display_name, got.host, got.node, got.metadata_) == ("web", "h1", "n1", {"k": "v"})
    assert got.flavor == FLAVOR
    assert got.deleted == 0 and got.task_state is None and got.locked is False
    assert isinstance(got.created_at, datetime.datetime)


def test_get_unknown_is_404(any_database):
    missing = str(uuidlib.uuid4())
    with pytest.raises(exception.InstanceNotFound) as err:
        db_instance.get(missing)
    assert err.value.code == 404 and missing in err.value.format_message()


def test_get_is_scoped_to_the_project(any_database):
    row = make(project_id="p1")
    assert db_instance.get(row.uuid, project_id="p1").uuid == row.uuid
    with pytest.raises(exception.InstanceNotFound):
        db_instance.get(row.uuid, project_id="p2")


def test_read_deleted(any_database):
    row = make()
    assert db_instance.mark_deleted(row.uuid) is True
    with pytest.raises(exception.InstanceNotFound):
        db_instance.get(row.uuid)
    gone = db_instance.get(row.uuid, read_deleted=True)
    assert gone.vm_state == states.DELETED and gone.task_state is None
    assert gone.deleted == gone.id and gone.deleted_at is not None


def test_mark_deleted_is_idempotent(any_database):
    row = make(task_state=states.DELETING)
    assert db_instance.mark_deleted(row.uuid) is True
    first = db_instance.get(row.uuid, read_deleted=True)
    assert db_instance.mark_deleted(row.uuid) is False
    again = db_instance.get(row.uuid, read_deleted=True)
    assert again.deleted_at == first.deleted_at and again.deleted == first.deleted
    assert db_instance.mark_deleted(str(uuidlib.uuid4())) is False


def test_timestamps_keep_microseconds(any_database):
    """changes-since compares sub-second times: every backend must keep them."""
    when = datetime.datetime(2030, 5, 6, 7, 8, 9, 123456)
    row = make(created_at=when)
    db_instance.update(row.uuid, {"launched_at": when, "updated_at": when})
    got = db_instance.get(row.uuid)
    assert (got.created_at, got.updated_at, got.launched_at) == (when, when, when)


# -- list filters --------------------------------------------------------------

def test_list_filters_by_columns(any_database):
    a, b, c, d = make_many([
        dict(project_id="p1", user_id="u1", host="h1", node="n1", image_ref="img-a", flavorid="1"),
        dict(project_id="p1", user_id="u2", host="h2", node="n2", image_ref="img-b", flavorid="2"),
        dict(project_id="p2", user_id="u3", host="h1", node="n1", image_ref="img-a", flavorid="2",
             locked=True),
        dict(project_id="p2", user_id="u3", reservation_id="r-1"),
    ])

    def ids(**filters):
        return set(uuids(db_instance.list_(filters)))

    assert ids(project_id="p1") == {a, b}
    assert ids(user_id="u3") == {c, d}
    assert ids(host="h1") == {a, c}
    assert ids(node="n2") == {b}
    assert ids(image="img-a") == {a, c}
    assert ids(flavor="2") == {b, c}
    assert ids(flavor=["1", "2"]) == {a, b, c}
    assert ids(locked=True) == {c}
    assert ids(reservation_id="r-1") == {d}
    assert ids(uuids=[a, d, str(uuidlib.uuid4())]) == {a, d}
    assert ids(uuids=[]) == set()
    assert ids(project_id="p1", host="h2") == {b}
    assert ids() == {a, b, c, d}


def test_list_filters_by_vm_and_task_state(any_database):
    a, b, c = make_many([dict(), dict(task_state=states.REBOOTING),
                         dict(vm_state=states.STOPPED)])
    assert set(uuids(db_instance.list_({"vm_state": states.ACTIVE}))) == {a, b}
    assert set(uuids(db_instance.list_({"task_state": None}))) == {a, c}
    assert set(uuids(db_instance.list_({"task_state": states.REBOOTING}))) == {b}


NAMES = ["web-1", "web-2", "Web-3", "db-1", "sweb", "a.b"]


@pytest.mark.parametrize("pattern,expected", [
    ("web", {"web-1", "web-2", "sweb"}),          # a search, not a full match
    ("^web", {"web-1", "web-2"}),                 # case-sensitive on every backend
    ("(?i)^web", {"web-1", "web-2", "Web-3"}),     # inline flag, every backend
    ("-[12]$", {"web-1", "web-2", "db-1"}),
    ("^(db|sweb)", {"db-1", "sweb"}),
    ("a.b", {"a.b"}),
    (r"a\.b", {"a.b"}),
    ("nomatch", set()),
])
def test_list_name_is_a_regex_on_every_backend(any_database, pattern, expected):
    make_many([dict(display_name=n) for n in NAMES])
    got = {r.display_name for r in db_instance.list_({"name": pattern})}
    assert got == expected


def test_list_bad_name_regex_is_invalid(any_database):
    make()
    with pytest.raises(exception.Invalid) as err:
        db_instance.list_({"name": "web-("})
    assert err.value.code == 400 and "name" in err.value.format_message()


def test_list_name_regex_the_database_refuses_is_invalid(any_database):
    """Python syntax PostgreSQL's regex engine lacks: a 400 there, not a 500."""
    make(display_name="web-1")
    if any_database == "postgresql":
        with pytest.raises(exception.Invalid):
            db_instance.list_({"name": "(?P<n>web)"})
    else:
        assert [r.display_name for r in db_instance.list_({"name": "(?P<n>web)"})] == ["web-1"]


# Pairs covering every status (and its defaults' subtleties).
STATUS_PAIRS = [(v, t) for v in (states.ACTIVE, states.BUILDING, states.STOPPED, states.PAUSED,
                                 states.SUSPENDED, states.RESCUED, states.RESIZED, states.ERROR,
                                 states.SHELVED, states.SHELVED_OFFLOADED, states.SOFT_DELETED)
                for t in (None, states.REBOOTING, states.REBOOT_STARTED, states.REBOOTING_HARD,
                          states.MIGRATING, states.RESIZE_PREP, states.REBUILDING,
                          states.POWERING_OFF, states.SCHEDULING)]


def test_list_status_matches_status_from_states(any_database):
    ids = make_many([dict(vm_state=v, task_state=t) for v, t in STATUS_PAIRS])
    shown = {u: states.status_from_states(v, t) for u, (v, t) in zip(ids, STATUS_PAIRS)}
    for status in sorted(states.API_STATUSES - {"DELETED", "UNKNOWN"}):
        got = set(uuids(db_instance.list_({"status": status})))
        want = {u for u, s in shown.items() if s == status}
        assert got == want, status


def test_list_status_default_vs_task_state(any_database):
    idle, soft, hard, off = make_many([
        dict(), dict(task_state=states.REBOOTING), dict(task_state=states.REBOOTING_HARD),
        dict(task_state=states.POWERING_OFF)])
    stopped_hard, = make_many([dict(vm_state=states.STOPPED, task_state=states.REBOOTING_HARD)])
    # ACTIVE is the default of 'active': not while (hard) rebooting, but
    # during a task without a status of its own (powering-off) it is.
    assert set(uuids(db_instance.list_({"status": "ACTIVE"}))) == {idle, off}
    assert uuids(db_instance.list_({"status": "REBOOT"})) == [soft]
    assert uuids(db_instance.list_({"status": "HARD_REBOOT"})) == [hard]
    assert uuids(db_instance.list_({"status": "SHUTOFF"})) == [stopped_hard]
    assert set(uuids(db_instance.list_({"status": ["REBOOT", "HARD_REBOOT"]}))) == {soft, hard}
    assert db_instance.list_({"status": "NO_SUCH_STATUS"}) == []


def test_list_changes_since_includes_deleted_rows(any_database):
    old, recent, gone = make_many([dict(created_at=T0), dict(created_at=T0),
                                   dict(created_at=T0)])
    after = T0 + datetime.timedelta(minutes=5)
    db_instance.update(recent, {"updated_at": after + datetime.timedelta(seconds=1)})
    db_instance.mark_deleted(gone)
    got = set(uuids(db_instance.list_({"changes_since": after})))
    assert got == {recent, gone}
    # Without changes_since, deleted rows stay hidden.
    assert set(uuids(db_instance.list_({}))) == {old, recent}
    # changes_since with deleted=False: only live changes.
    assert uuids(db_instance.list_({"changes_since": after, "deleted": False})) == [recent]
    # Never updated: created_at counts.
    assert old in uuids(db_instance.list_({"changes_since": T0}))
    assert set(uuids(db_instance.list_({"changes_before": after}))) == {old}


def test_list_deleted_flag(any_database):
    live, gone = make_many([dict(), dict()])
    db_instance.mark_deleted(gone)
    assert uuids(db_instance.list_({"deleted": True})) == [gone]
    assert uuids(db_instance.list_({"deleted": False})) == [live]
    assert uuids(db_instance.list_()) == [live]


# -- sorting and paging ---------------------------------------------------------

def test_sort_keys_asc_and_desc(any_database):
    ids = make_many([dict(display_name=n, created_at=T0 + datetime.timedelta(seconds=i))
                     for i, n in enumerate(["c", "a", "d", "b"])])
    by_name = lambda d: [r.display_name for r in db_instance.list_(  # noqa: E731
        sort_keys=["display_name"], sort_dirs=[d])]
    assert by_name("asc") == ["a", "b", "c", "d"]
    assert by_name("desc") == ["d", "c", "b", "a"]
    assert uuids(db_instance.list_()) == ids[::-1]  # default: newest first
    assert uuids(db_instance.list_(sort_keys=["created_at"], sort_dirs=["asc"])) == ids


def test_sort_multiple_keys_and_missing_dirs(any_database):
    make_many([dict(vm_state=v, display_name=n, created_at=T0) for v, n in
               [("active", "a"), ("stopped", "b"), ("active", "c"), ("stopped", "d")]])
    rows = db_instance.list_(sort_keys=["vm_state", "display_name"], sort_dirs=["asc", "desc"])
    assert [r.display_name for r in rows] == ["c", "a", "d", "b"]
    # Fewer directions than keys: the rest follow the first direction.
    rows = db_instance.list_(sort_keys=["vm_state", "display_name"], sort_dirs=["desc"])
    assert [r.display_name for r in rows] == ["d", "b", "c", "a"]
    rows = db_instance.list_(sort_keys=["vm_state", "display_name"], sort_dirs=["desc"],
                             limit=2, marker=rows[1].uuid)
    assert [r.display_name for r in rows] == ["c", "a"]


@pytest.mark.parametrize("keys,dirs", [(["metadata_"], ["asc"]), (["no_such"], ["asc"]),
                                       (["display_name"], ["sideways"]),
                                       (["display_name"], ["asc", "desc"])])
def test_bad_sort_is_invalid(any_database, keys, dirs):
    with pytest.raises(exception.Invalid):
        db_instance.list_(sort_keys=keys, sort_dirs=dirs)


def _pages(limit: int, **kw) -> list[str]:
    out, marker = [], None
    for _ in range(100):
        page = db_instance.list_(limit=limit, marker=marker, **kw)
        out += uuids(page)
        if len(page) < limit:
            return out
        marker = page[-1].uuid
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_paging_across_ties(any_database, direction):
    """Seven rows with the same created_at: pages of two see each exactly once."""
    ids = make_many([dict(created_at=T0) for _ in range(7)])
    full = uuids(db_instance.list_(sort_keys=["created_at"], sort_dirs=[direction]))
    assert sorted(full) == sorted(ids)
    assert _pages(2, sort_keys=["created_at"], sort_dirs=[direction]) == full


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_paging_with_null_sort_values(any_database, direction):
    """NULL sorts first ascending, last descending, on every backend; pages
    cross the NULL/non-NULL border without losing or repeating rows."""
    hosts = [None, "h2", None, "h1", "h2", None, "h3"]
    make_many([dict(host=h, created_at=T0) for h in hosts])
    rows = db_instance.list_(sort_keys=["host"], sort_dirs=[direction])
    shown = [r.host for r in rows]
    nulls_first = [None] * 3 + ["h1", "h2", "h2", "h3"]
    assert shown == (nulls_first if direction == "asc" else nulls_first[::-1])
    full = uuids(rows)
    for limit in (1, 2, 3):
        assert _pages(limit, sort_keys=["host"], sort_dirs=[direction]) == full


def test_paging_with_filters_and_two_nullable_keys(any_database):
    make_many([dict(host=h, key_name=k, project_id=p, created_at=T0)
               for h, k, p in [(None, None, "p1"), (None, "k", "p1"), ("h", None, "p1"),
                               ("h", "k", "p1"), (None, None, "p2"), ("h", None, "p1")]])
    kw = dict(filters={"project_id": "p1"}, sort_keys=["host", "key_name"],
              sort_dirs=["asc", "desc"])
    full = uuids(db_instance.list_(**kw))
    assert len(full) == 5
    assert _pages(2, **kw) == full


def test_unknown_marker_is_invalid(any_database):
    make()
    missing = str(uuidlib.uuid4())
    with pytest.raises(exception.Invalid) as err:
        db_instance.list_(marker=missing)
    assert err.value.code == 400 and missing in err.value.format_message()


# -- transitions ---------------------------------------------------------------

def test_transition_wins_once(any_database):
    row = make()
    assert db_instance.transition(row.uuid, [states.ACTIVE], [None],
                                  {"task_state": states.POWERING_OFF}) is True
    assert db_instance.transition(row.uuid, [states.ACTIVE], [None],
                                  {"task_state": states.POWERING_OFF}) is False
    assert db_instance.get(row.uuid).task_state == states.POWERING_OFF


def test_transition_loses_on_wrong_states(any_database):
    row = make(vm_state=states.STOPPED, task_state=states.POWERING_ON)
    before = db_instance.get(row.uuid)
    assert not db_instance.transition(row.uuid, [states.ACTIVE], None, {"display_name": "x"})
    assert not db_instance.transition(row.uuid, None, [None], {"display_name": "x"})
    assert not db_instance.transition(row.uuid, None, [states.REBOOTING], {"display_name": "x"})
    assert not db_instance.transition(row.uuid, [], None, {"display_name": "x"})
    after = db_instance.get(row.uuid)
    assert (after.display_name, after.updated_at) == (before.display_name, before.updated_at)


def test_transition_task_state_none_handling(any_database):
    idle, busy = make(), make(task_state=states.REBOOTING)
    # None in the list matches NULL; a named state matches only itself.
    assert db_instance.transition(idle.uuid, None, [None, states.REBOOTING], {"host": "a"})
    assert db_instance.transition(busy.uuid, None, [None, states.REBOOTING], {"host": "a"})
    assert not db_instance.transition(busy.uuid, None, [None], {"host": "b"})
    assert not db_instance.transition(idle.uuid, None, [states.REBOOTING], {"host": "b"})
    # task_states None: any task_state.
    assert db_instance.transition(busy.uuid, [states.ACTIVE], None, {"task_state": None})
    assert db_instance.get(busy.uuid).task_state is None
    assert db_instance.get(idle.uuid).host == "a"


def test_transition_sets_updated_at_and_skips_deleted(any_database):
    row = make()
    assert db_instance.get(row.uuid).updated_at is None
    assert db_instance.transition(row.uuid, None, None, {"display_name": "n"})
    assert db_instance.get(row.uuid).updated_at is not None
    db_instance.mark_deleted(row.uuid)
    assert not db_instance.transition(row.uuid, None, None, {"display_name": "m"})
    assert not db_instance.transition(str(uuidlib.uuid4()), None, None, {"display_name": "m"})


def test_start_action_sets_the_task_state(any_database):
    row = make()
    got = db_instance.start_action(row.uuid, "stop")
    assert got.task_state == states.POWERING_OFF and got.vm_state == states.ACTIVE
    assert db_instance.get(row.uuid).task_state == states.POWERING_OFF


def test_start_action_names_the_vm_state(any_database):
    row = make(vm_state=states.STOPPED)
    with pytest.raises(exception.InstanceInvalidState) as err:
        db_instance.start_action(row.uuid, "stop")
    msg = err.value.format_message()
    assert err.value.code == 409 and "vm_state stopped" in msg and "'stop'" in msg
    # The vm_state is what is wrong, even while some task runs.
    db_instance.update(row.uuid, {"task_state": states.POWERING_ON})
    with pytest.raises(exception.InstanceInvalidState) as err:
        db_instance.start_action(row.uuid, "pause")
    assert "vm_state stopped" in err.value.format_message()


def test_start_action_names_the_task_state(any_database):
    row = make(task_state=states.REBOOTING)
    with pytest.raises(exception.InstanceInvalidState) as err:
        db_instance.start_action(row.uuid, "reboot_soft")
    assert "task_state rebooting" in err.value.format_message()
    assert "'reboot'" in err.value.format_message()
    assert db_instance.get(row.uuid).task_state == states.REBOOTING


def test_start_action_is_scoped_to_the_project(any_database):
    row = make(project_id="p1")
    with pytest.raises(exception.InstanceNotFound):
        db_instance.start_action(row.uuid, "stop", project_id="p2")
    assert db_instance.get(row.uuid).task_state is None  # nothing changed
    with pytest.raises(exception.InstanceNotFound):
        db_instance.start_action(str(uuidlib.uuid4()), "stop")
    assert db_instance.start_action(row.uuid, "stop", project_id="p1").task_state == \
        states.POWERING_OFF


def test_start_action_race_has_one_winner(any_database):
    row = make()
    n = 10
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def race(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            db_instance.start_action(row.uuid, "stop")
            results[i] = "won"
        except exception.InstanceInvalidState as exc:
            results[i] = exc
        except Exception as exc:  # anything else is a bug: report it
            results[i] = repr(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert results.count("won") == 1, results
    losers = [r for r in results if r != "won"]
    assert all(isinstance(r, exception.InstanceInvalidState) for r in losers), losers
    assert all("task_state powering-off" in r.format_message() for r in losers)
    assert db_instance.get(row.uuid).task_state == states.POWERING_OFF


# -- usage, faults, actions ----------------------------------------------------

def test_count_usage(any_database):
    make_many([dict(project_id="p1", vcpus=2, memory_mb=512),
               dict(project_id="p1", vcpus=4, memory_mb=1024),
               dict(project_id="p2", vcpus=8, memory_mb=4096)])
    gone = make(project_id="p1", vcpus=16, memory_mb=8192)
    db_instance.mark_deleted(gone.uuid)
    assert db_instance.count_usage("p1") == {"instances": 2, "cores": 6, "ram": 1536}
    assert db_instance.count_usage("nobody") == {"instances": 0, "cores": 0, "ram": 0}


def test_by_host(any_database):
    a, _, c = make_many([dict(host="h1"), dict(host="h2"), dict(host="h1")])
    db_instance.mark_deleted(c)
    assert uuids(db_instance.by_host("h1")) == [a]


def test_latest_fault_per_instance(any_database):
    a, b, c = (make().uuid for _ in range(3))
    db_instance.add_fault(a, 500, "first")
    db_instance.add_fault(b, 404, "only b", details="tb")
    db_instance.add_fault(a, 409, "second " + "x" * 300)
    faults = db_instance.latest_faults([a, b, c])
    assert set(faults) == {a, b}
    assert faults[a].code == 409 and faults[a].message.startswith("second")
    assert len(faults[a].message) == 255
    assert (faults[b].message, faults[b].details) == ("only b", "tb")
    assert db_instance.latest_faults([]) == {}


def test_instance_actions_and_events_round_trip(any_database):
    row = make()
    db_instance.action_start(row.uuid, "create", "req-1", "u1", "p1")
    db_instance.action_start(row.uuid, "stop", "req-2", "u1", "p1")
    db_instance.action_event_start(row.uuid, "req-2", "compute_stop_instance", "h1")
    db_instance.action_event_finish(row.uuid, "req-2", "compute_stop_instance", "Success")
    db_instance.action_event_start(row.uuid, "req-1", "build", "h1")
    db_instance.action_event_finish(row.uuid, "req-1", "build", "Error", traceback="Traceback...")

    actions = db_instance.actions_list(row.uuid)
    assert [a.request_id for a in actions] == ["req-2", "req-1"]
    stop, events = db_instance.action_get(row.uuid, "req-2")
    assert (stop.action, stop.user_id, stop.project_id, stop.message) == ("stop", "u1", "p1", None)
    assert stop.finish_time is not None
    assert [(e.event, e.result, e.host) for e in events] == \
        [("compute_stop_instance", "Success", "h1")]
    assert events[0].finish_time is not None and events[0].traceback is None
    create, events = db_instance.action_get(row.uuid, "req-1")
    assert create.message == "Error" and events[0].traceback == "Traceback..."
    with pytest.raises(exception.InstanceActionNotFound):
        db_instance.action_get(row.uuid, "req-nope")
    # Events of a request with no action are dropped, not errors.
    db_instance.action_event_start(row.uuid, "req-nope", "x", None)
    db_instance.action_event_finish(row.uuid, "req-nope", "x", "Success")
    with db_api.session() as sess:
        assert sess.scalar(sa.select(sa.func.count(models.InstanceActionEvent.id))) == 2


def test_to_object(any_database):
    row = make(display_name="web", host="h1", node="n1", metadata_={"a": "b"})
    obj = db_instance.to_object(db_instance.get(row.uuid))
    assert obj.uuid == row.uuid and obj.name == "instance-%08x" % row.id
    assert obj.flavor.memory_mb == 128 and obj.metadata == {"a": "b"} and obj.host == "h1"
