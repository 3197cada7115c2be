"""TaskFlow's connection on our engine: what it writes and what it leaves out.

Writes are counted as transactions begun on the service engine (every write
of TaskFlow's backend is one ``engine.begin()``)."""

from __future__ import annotations

import json
import threading
import uuid as uuidlib

import pytest
import sqlalchemy as sa
from taskflow import states as tf_states
from taskflow import task
from taskflow.patterns import linear_flow
from taskflow.persistence import models as tf_models

from virtstack.db import api as db_api
from virtstack.flows import persistence
from virtstack.flows import runner as flow_runner

pytestmark = pytest.mark.db


class Transactions:
    """Counts transactions begun on the service engine while active."""

    def __init__(self):
        self.count = 0
        self._engine = db_api.get_engine()

    def _begun(self, conn):
        self.count += 1

    def __enter__(self):
        sa.event.listen(self._engine, "begin", self._begun)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self._engine, "begin", self._begun)


@pytest.fixture
def stored(any_database):
    """(connection, atom detail) of a fresh logbook with one flow of one task."""
    conn = persistence.SharedConnectionBackend(db_api.get_engine()).get_connection()
    book = tf_models.LogBook(f"test:{uuidlib.uuid4()}")
    flow = tf_models.FlowDetail("flow", str(uuidlib.uuid4()))
    atom = tf_models.TaskDetail("step", str(uuidlib.uuid4()))
    flow.add(atom)
    book.add(flow)
    conn.save_logbook(book)
    yield conn, atom
    conn.destroy_logbook(book.uuid)


def _row(atom_uuid: str) -> dict:
    """The stored atom: state, meta and results (JSON decoded where the
    database returns text)."""
    with db_api.get_engine().connect() as conn:
        row = conn.execute(sa.text("SELECT state, meta, results FROM atomdetails "
                                   "WHERE uuid = :u"), {"u": atom_uuid}).one()
    row = dict(row._mapping)
    for key in ("meta", "results"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def _changed(atom, **attrs):
    clone = atom.copy()
    for name, value in attrs.items():
        setattr(clone, name, value)
    return clone


def test_a_progress_only_change_is_not_written(stored):
    """TaskFlow follows each task state change with a write of the progress
    number alone; that write is left out, and the number is stored with the
    atom's next real change."""
    conn, atom = stored
    running = conn.update_atom_details(_changed(atom, state=tf_states.RUNNING))
    assert _row(atom.uuid)["state"] == tf_states.RUNNING
    with Transactions() as writes:
        progressed = conn.update_atom_details(_changed(running, meta={"progress": 0.0}))
    assert writes.count == 0
    assert progressed.meta == {"progress": 0.0}  # what the caller's storage keeps
    assert "progress" not in (_row(atom.uuid)["meta"] or {})
    with Transactions() as writes:
        conn.update_atom_details(_changed(progressed, state=tf_states.SUCCESS,
                                          results={"device": "/dev/vdb"}))
    assert writes.count == 1
    row = _row(atom.uuid)
    assert row["state"] == tf_states.SUCCESS and row["results"] == {"device": "/dev/vdb"}
    assert row["meta"]["progress"] == 0.0


def test_any_other_change_with_progress_is_written(stored):
    conn, atom = stored
    running = conn.update_atom_details(_changed(atom, state=tf_states.RUNNING))
    with Transactions() as writes:
        conn.update_atom_details(_changed(running, meta={
            "progress": 0.5, "progress_details": {"at_progress": 0.5, "details": "half"}}))
    assert writes.count == 1
    assert _row(atom.uuid)["meta"]["progress_details"]["details"] == "half"


def test_progress_is_written_when_this_thread_did_not_write_the_row(stored):
    """Only a row this thread has just written counts as known: another
    thread's (or a flow detail save's) write makes it unknown again."""
    conn, atom = stored
    running = conn.update_atom_details(_changed(atom, state=tf_states.RUNNING))
    writes = Transactions()

    def other_thread():
        with writes:
            conn.update_atom_details(_changed(running, meta={"progress": 0.0}))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(20)
    assert not thread.is_alive() and writes.count == 1
    assert _row(atom.uuid)["meta"]["progress"] == 0.0


class Step(task.Task):
    def execute(self, value):
        return f"{value}>{self.name}"


def make_flow(count: int = 3):
    flow = linear_flow.Flow("persistence-test")
    prev = "seed"
    for i in range(count):
        flow.add(Step(f"s{i}", rebind={"value": prev}, provides=f"s{i}_out"))
        prev = f"s{i}_out"
    return flow


def test_a_persisted_flow_makes_two_writes_per_task_fewer(any_database):
    """Per task TaskFlow writes RUNNING, its progress, SUCCESS with the
    result, its progress; the two progress writes are left out."""
    runner = flow_runner.FlowRunner("test:host", persist=True)

    def writes_for(count: int) -> int:
        with Transactions() as writes:
            runner.run("op", f"r{count}", make_flow, factory_kwargs={"count": count},
                       store={"seed": "x"})
        return writes.count

    one, three = writes_for(1), writes_for(3)
    assert (three - one) / 2 == 2  # per task: RUNNING and SUCCESS only
