"""Engine and sessions of the service database, and schema upgrades.

One engine per process, made lazily from ``[database] connection`` (SQLite in
``state_path`` by default). Query modules (``db.instance``, ``db.flavor``,
...) take sessions from ``session()``; objects they return are detached and
fully loaded, safe to use after the session closes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event, orm

from virtstack.conf import CONF

LOG = logging.getLogger(__name__)

#: Our alembic version table (TaskFlow keeps its own ``alembic_version``).
VERSION_TABLE = "virtstack_alembic_version"

#: Tables in the service database that our migrations do not manage:
#: TaskFlow's flow state and its version table (``flows.persistence``).
FOREIGN_TABLES = frozenset({"logbooks", "flowdetails", "atomdetails", "alembic_version"})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """alembic ``include_object`` hook: compare and autogenerate only our
    own tables, never drop TaskFlow's."""
    if type_ == "table":
        return name not in FOREIGN_TABLES and name != VERSION_TABLE
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in FOREIGN_TABLES

_lock = threading.Lock()
_engine: sa.Engine | None = None
_sessionmaker: orm.sessionmaker | None = None
_read_sessionmaker: orm.sessionmaker | None = None


def default_url() -> str:
    return "sqlite:///" + os.path.join(os.path.expanduser(CONF.state_path), "virtstack.sqlite")


def connection_url() -> str:
    return CONF.database.connection or default_url()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is durable
    # across process crashes (not power loss), which is what a service needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class _SQLiteWriters:
    """Serialises this process's SQLite write transactions on a Python lock.

    SQLite allows one writer. Left to itself, a second writer spins in
    SQLite's busy handler, which sleeps in growing steps (up to 100 ms): under
    the API's and compute's concurrent writes that waiting dominated request
    time (50 creates: 4.9 s, 3.2 s of it inside sqlite3's execute). Writers of
    one process now queue on a lock and run as soon as the previous commits;
    other processes sharing the file still meet SQLite's own busy_timeout.
    Write transactions begin IMMEDIATE, so a read-then-write transaction
    cannot deadlock on lock upgrade.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def begin(self, conn) -> None:
        self.lock.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def end(self, conn) -> None:
        self.lock.release()


def create_engine(url: str, readonly: bool = False) -> sa.Engine:
    """An engine for ``url`` with the settings virtstack relies on.

    ``readonly`` (SQLite only): plain deferred transactions for readers; in
    WAL mode they never wait for the writer.
    """
    kwargs: dict = {"future": True}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "isolation_level": None}
    else:
        kwargs.update(pool_size=CONF.database.pool_size, max_overflow=CONF.database.pool_size * 2,
                      pool_pre_ping=True, pool_recycle=3600)
        if url.startswith("mysql"):
            kwargs["isolation_level"] = "READ COMMITTED"
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if not readonly:
            writers = _SQLiteWriters()
            event.listen(engine, "begin", writers.begin)
            event.listen(engine, "commit", writers.end)
            event.listen(engine, "rollback", writers.end)
    return engine


def get_engine() -> sa.Engine:
    global _engine, _sessionmaker, _read_sessionmaker
    if _engine is None:
        with _lock:
            if _engine is None:
                url = connection_url()
                engine = create_engine(url)
                _sessionmaker = orm.sessionmaker(bind=engine, expire_on_commit=False)
                read_engine = create_engine(url, readonly=True) \
                    if engine.dialect.name == "sqlite" else engine
                _read_sessionmaker = orm.sessionmaker(bind=read_engine, expire_on_commit=False)
                _engine = engine
    return _engine


def dispose() -> None:
    """Forget the engines (tests switch databases; services shut down)."""
    global _engine, _sessionmaker, _read_sessionmaker
    with _lock:
        for maker in (_sessionmaker, _read_sessionmaker):
            if maker is not None:
                maker.kw["bind"].dispose()
        _engine = None
        _sessionmaker = None
        _read_sessionmaker = None


@contextlib.contextmanager
def session() -> Iterator[orm.Session]:
    """A session in one write transaction: committed on success, rolled back
    on error."""
    get_engine()
    assert _sessionmaker is not None
    with _sessionmaker() as sess, sess.begin():
        yield sess


@contextlib.contextmanager
def reader() -> Iterator[orm.Session]:
    """A session for reads only (one consistent snapshot). On SQLite it does
    not queue behind writers; writing through it is a bug."""
    get_engine()
    assert _read_sessionmaker is not None
    with _read_sessionmaker() as sess, sess.begin():
        yield sess


def upgrade() -> None:
    """Bring the schema to the newest version (ours via alembic, then
    TaskFlow's flow-state tables through its own migrations)."""
    from alembic import command

    command.upgrade(alembic_config(), "head")
    from virtstack.flows import persistence
    persistence.upgrade(get_engine())


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    cfg.attributes["engine"] = get_engine()
    return cfg


def current_revision() -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine().connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
