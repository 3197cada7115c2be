"""The shared flow runner: results, revert order, persisted state, recovery.

A crash is simulated with an exception derived from ``BaseException``: the
engine does not catch it, so nothing is reverted and the flow's persisted
state is left exactly as a dying process would leave it (done tasks SUCCESS,
the running one RUNNING). A new ``FlowRunner`` then recovers it, as a
restarted service would.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from taskflow import engines, task
from taskflow.persistence import models as tf_models
from taskflow.patterns import linear_flow
from taskflow.types import failure

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.flows import runner as flow_runner

pytestmark = pytest.mark.db

OWNER = "compute:host1"
SEED = "seed-5e3d"          # persisted (store)
SECRET = "s3cret-7a1c9"      # transient: must never reach the database
TABLES = ("logbooks", "flowdetails", "atomdetails")

#: What the tasks did, in order: (what, task name, value, secret).
CALLS: list[tuple] = []
#: How the tasks misbehave: {"crash": name, "fail": name, "fail_virtstack": name,
#: "crash_revert": name}.
CONTROL: dict[str, str | None] = {}


class Crash(BaseException):
    """The process dies here (nothing below it runs, nothing reverts)."""


class Boom(Exception):
    pass


class Step(task.Task):
    """Appends its name to ``value``; records what it did."""

    def execute(self, value, secret):
        CALLS.append(("execute", self.name, value, secret))
        if CONTROL.get("crash") == self.name:
            raise Crash(self.name)
        if CONTROL.get("fail") == self.name:
            raise Boom(f"{self.name} failed")
        if CONTROL.get("fail_virtstack") == self.name:
            raise exception.InstanceNotRunning(instance_id=f"i-{self.name}")
        return f"{value}>{self.name}"

    def revert(self, value, secret, result=None, **kwargs):
        CALLS.append(("revert", self.name, isinstance(result, failure.Failure), secret))
        if CONTROL.get("crash_revert") == self.name:
            raise Crash(f"revert {self.name}")


def make_flow(names=("a", "b", "c")):
    """The test flow: each step feeds the next (module level: recoverable)."""
    flow = linear_flow.Flow("test-flow")
    prev = "seed"
    for name in names:
        flow.add(Step(name, rebind={"value": prev}, provides=f"{name}_out"))
        prev = f"{name}_out"
    return flow


@pytest.fixture(autouse=True)
def clean_calls():
    CALLS.clear()
    CONTROL.clear()
    yield
    CALLS.clear()
    CONTROL.clear()


def _run(runner=None, resource="res-1", names=("a", "b", "c")):
    runner = runner or flow_runner.FlowRunner(OWNER, persist=True)
    return runner.run("testop", resource, make_flow, factory_kwargs={"names": list(names)},
                      store={"seed": SEED}, transient={"secret": SECRET})


def _rows(table: str) -> list[dict]:
    with db_api.get_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]


def _counts() -> dict[str, int]:
    return {t: len(_rows(t)) for t in TABLES}


def _executed() -> list[str]:
    return [c[1] for c in CALLS if c[0] == "execute"]


def _reverted() -> list[str]:
    return [c[1] for c in CALLS if c[0] == "revert"]


class Recorder:
    """transient_for / on_result callbacks of ``recover``."""

    def __init__(self):
        self.asked: list[tuple] = []
        self.results: list[tuple] = []

    def transient_for(self, operation, resource_id):
        self.asked.append((operation, resource_id))
        return {"secret": SECRET}

    def on_result(self, operation, resource_id, error):
        self.results.append((operation, resource_id, error))


def _crash_at(name: str, resource="res-1") -> None:
    CONTROL["crash"] = name
    with pytest.raises(Crash):
        _run(resource=resource)
    CONTROL.clear()


# -- running -------------------------------------------------------------------

def test_run_returns_results(any_database):
    results = _run()
    assert results["c_out"] == f"{SEED}>a>b>c"
    assert results["a_out"] == f"{SEED}>a" and results["seed"] == SEED
    assert _executed() == ["a", "b", "c"] and _reverted() == []
    assert all(c[3] == SECRET for c in CALLS)


def test_failure_reverts_earlier_tasks_in_reverse_order(any_database):
    CONTROL["fail"] = "c"
    with pytest.raises(Boom, match="c failed"):   # the task's own exception, unwrapped
        _run()
    assert _executed() == ["a", "b", "c"]
    assert _reverted() == ["c", "b", "a"]
    # The failed task's revert sees its failure; the others their results.
    assert [c[2] for c in CALLS if c[0] == "revert"] == [True, False, False]


def test_logbook_deleted_after_success(any_database):
    runner = flow_runner.FlowRunner(OWNER, persist=True)
    _run(runner)
    assert _counts() == {t: 0 for t in TABLES}
    assert runner.pending() == []


def test_logbook_deleted_after_revert(any_database):
    runner = flow_runner.FlowRunner(OWNER, persist=True)
    CONTROL["fail"] = "b"
    with pytest.raises(Boom):
        _run(runner)
    assert _reverted() == ["b", "a"]
    assert _counts() == {t: 0 for t in TABLES}
    assert runner.pending() == []


def test_without_persistence_nothing_is_stored(any_database):
    runner = flow_runner.FlowRunner(OWNER, persist=False)
    assert runner.backend is None
    CONTROL["crash"] = "b"
    with pytest.raises(Crash):
        _run(runner)
    assert _counts() == {t: 0 for t in TABLES}
    assert runner.pending() == [] and runner.recover(Recorder().transient_for,
                                                     Recorder().on_result) == 0


def test_persist_follows_the_option(any_database, conf):
    conf.config(persist_flows=False, group="database")
    assert flow_runner.FlowRunner(OWNER).persist is False
    conf.config(persist_flows=True, group="database")
    assert flow_runner.FlowRunner(OWNER).persist is True


def test_interrupted_flow_state_is_persisted_without_transients(any_database):
    _crash_at("b")
    assert _executed() == ["a", "b"]
    books = _rows("logbooks")
    assert [b["name"] for b in books] == [f"{OWNER}:testop:res-1"]
    atoms = {a["name"]: a for a in _rows("atomdetails")}
    assert atoms["a"]["state"] == "SUCCESS" and atoms["b"]["state"] == "RUNNING"
    assert atoms["c"]["state"] == "PENDING"
    everything = repr([_rows(t) for t in TABLES])
    assert SEED in everything          # the store is persisted...
    assert f"{SEED}>a" in everything   # ...and so are results
    assert SECRET not in everything    # transient values never are


# -- recovery ------------------------------------------------------------------

def test_recover_resumes_an_interrupted_flow(any_database):
    _crash_at("b")
    CALLS.clear()
    rec = Recorder()
    count = flow_runner.FlowRunner(OWNER, persist=True).recover(rec.transient_for, rec.on_result)
    assert count == 1
    # a is not repeated; b (running at the crash) runs again, then c.
    assert _executed() == ["b", "c"]
    assert CALLS[0] == ("execute", "b", f"{SEED}>a", SECRET)   # a's persisted result
    assert rec.asked == [("testop", "res-1")]
    assert rec.results == [("testop", "res-1", None)]
    assert _counts() == {t: 0 for t in TABLES}


def test_recovered_flow_that_fails_reverts_and_reports(any_database):
    _crash_at("b")
    CALLS.clear()
    CONTROL["fail"] = "c"
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 1
    assert _executed() == ["b", "c"]
    # a ran before the "crash": it is reverted all the same, last.
    assert _reverted() == ["c", "b", "a"]
    [(operation, resource_id, error)] = rec.results
    assert (operation, resource_id) == ("testop", "res-1")
    assert isinstance(error, Boom) and "c failed" in str(error)
    assert _counts() == {t: 0 for t in TABLES}


def test_recover_finishes_an_interrupted_revert(any_database):
    """A crash while reverting: recovery completes the revert and reports
    the original failure (restored from the database) clearly."""
    CONTROL.update(fail="c", crash_revert="b")
    with pytest.raises(Crash):
        _run()
    assert _reverted() == ["c", "b"]
    CALLS.clear()
    CONTROL.clear()
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 1
    assert _executed() == []
    assert _reverted() == ["b", "a"]
    [(_, _, error)] = rec.results
    assert isinstance(error, Exception)
    assert "Boom" in str(error) and "c failed" in str(error)
    assert _counts() == {t: 0 for t in TABLES}


def test_recovered_revert_reports_a_virtstack_error_as_its_class(any_database):
    CONTROL.update(fail_virtstack="b", crash_revert="a")
    with pytest.raises(Crash):
        _run()
    CONTROL.clear()
    rec = Recorder()
    flow_runner.FlowRunner(OWNER, persist=True).recover(rec.transient_for, rec.on_result)
    [(_, _, error)] = rec.results
    assert isinstance(error, exception.InstanceNotRunning) and error.code == 409
    assert error.format_message() == "Instance i-b is not running."
    assert _reverted() == ["b", "a", "a"]


def _ended_but_logbook_left(fail: str | None = None) -> None:
    """A flow that ended (finished or reverted) in a process that died before
    deleting its logbook: run by TaskFlow alone on the runner's backend."""
    runner = flow_runner.FlowRunner(OWNER, persist=True)
    book = tf_models.LogBook(f"{OWNER}:testop:res-1")
    engine = engines.load_from_factory(make_flow, factory_kwargs={"names": ["a", "b", "c"]},
                                       store={"seed": SEED}, book=book,
                                       backend=runner.backend, engine="serial")
    engine.compile()
    engine.prepare()
    engine.storage.inject({"secret": SECRET}, transient=True)
    CONTROL["fail"] = fail
    if fail:
        with pytest.raises(Boom):
            engine.run()
    else:
        engine.run()
    CONTROL.clear()
    CALLS.clear()
    assert _counts()["logbooks"] == 1


def test_recover_does_not_rerun_a_finished_flow(any_database):
    _ended_but_logbook_left()
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 1
    assert CALLS == []
    assert rec.results == [("testop", "res-1", None)]
    assert _counts() == {t: 0 for t in TABLES}


def test_recover_does_not_rerun_a_reverted_flow(any_database):
    """Reverted is final: report why, do not build it all again."""
    _ended_but_logbook_left(fail="b")
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 1
    assert CALLS == []
    [(_, _, error)] = rec.results
    assert isinstance(error, Exception) and "Boom" in str(error) and "b failed" in str(error)
    assert _counts() == {t: 0 for t in TABLES}


def test_recover_only_this_owners_flows(any_database):
    _crash_at("b", resource="mine")
    rec = Recorder()
    for other in ("compute:host10", "compute:host", "volume:host1"):
        assert flow_runner.FlowRunner(other, persist=True).recover(
            rec.transient_for, rec.on_result) == 0
    assert rec.results == [] and _counts()["logbooks"] == 1
    assert [b.name for b in flow_runner.FlowRunner(OWNER, persist=True).pending()] == \
        [f"{OWNER}:testop:mine"]


def test_recover_several_flows(any_database):
    _crash_at("a", resource="r1")
    _crash_at("c", resource="r2")
    CALLS.clear()
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 2
    assert sorted(r[1] for r in rec.results) == ["r1", "r2"]
    assert all(r[2] is None for r in rec.results)
    assert sorted(_executed()) == ["a", "b", "c", "c"]
    assert _counts() == {t: 0 for t in TABLES}
    # Nothing left: a second recovery does nothing.
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 0


def test_resource_ids_with_colons_recover(any_database):
    _crash_at("b", resource="vol:1:attach")
    rec = Recorder()
    assert flow_runner.FlowRunner(OWNER, persist=True).recover(
        rec.transient_for, rec.on_result) == 1
    assert rec.results == [("testop", "vol:1:attach", None)]


def test_operation_names_cannot_contain_colons(any_database):
    runner = flow_runner.FlowRunner(OWNER, persist=True)
    with pytest.raises(ValueError, match="operation"):
        runner.run("test:op", "res-1", make_flow, store={"seed": SEED},
                   transient={"secret": SECRET})
    assert CALLS == [] and _counts()["logbooks"] == 0
