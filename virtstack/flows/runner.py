"""One runner for every flow, with flow state persisted in the service database.

Each operation builds its flow in a module-level *factory* (so that a
restarted service can rebuild it from the stored details) and runs it with
``FlowRunner.run``. The runner stores one logbook per run, named
``<owner>:<operation>:<resource id>``; it deletes the logbook when the flow
ends (done or reverted). A logbook that is still there when a service starts
belongs to a flow the service was running when it died: ``recover`` loads
it and runs it again, so it either finishes (tasks already done are not
repeated; the one running at the crash runs again, so tasks are idempotent)
or reverts everything.

Objects that cannot be stored (the driver, the request context) are passed
as *transient* values: injected into the engine's storage but not persisted.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from taskflow import engines, exceptions as tf_exc, states as tf_states
from taskflow.persistence import models as tf_models

from virtstack.conf import CONF
from virtstack.db import api as db_api
from virtstack.flows import persistence

LOG = logging.getLogger(__name__)

_ENGINE = "serial"


class FlowRunner:
    """Runs flows for one service (``owner``, e.g. ``compute:host1``)."""

    def __init__(self, owner: str, persist: bool | None = None):
        self.owner = owner
        self.persist = CONF.database.persist_flows if persist is None else persist
        self._backend = None
        self._lock = threading.Lock()

    @property
    def backend(self):
        if self._backend is None and self.persist:
            with self._lock:
                if self._backend is None:
                    self._backend = persistence.SharedConnectionBackend(db_api.get_engine())
        return self._backend

    def _book_name(self, operation: str, resource_id: str) -> str:
        return f"{self.owner}:{operation}:{resource_id}"

    def run(self, operation: str, resource_id: str, factory: Callable[..., Any],
            factory_kwargs: dict[str, Any] | None = None, store: dict[str, Any] | None = None,
            transient: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build the flow with ``factory(**factory_kwargs)`` and run it.

        ``store`` values are persisted (JSON-serialisable); ``transient`` ones
        are not. Returns the flow's results. On failure the flow has reverted
        and the task's exception is raised (TaskFlow's wrapping removed).
        """
        factory_kwargs = factory_kwargs or {}
        book = None
        if self.backend is not None:
            book = tf_models.LogBook(self._book_name(operation, resource_id))
        engine = engines.load_from_factory(
            factory, factory_kwargs=factory_kwargs, store=store or {},
            book=book, backend=self.backend, engine=_ENGINE)
        return self._run(engine, book, transient)

    def _run(self, engine, book, transient) -> dict[str, Any]:
        engine.compile()
        engine.prepare()
        if transient:
            engine.storage.inject(transient, transient=True)
        try:
            engine.run()
            return dict(engine.storage.fetch_all())
        except tf_exc.WrappedFailure as wrapped:
            # Several tasks failed (parallel flows): surface the first.
            wrapped[0].reraise()
            raise  # not reached: reraise() raises
        finally:
            self._forget(book, engine)

    def _forget(self, book, engine) -> None:
        if book is None:
            return
        state = engine.storage.get_flow_state()
        if state in (tf_states.SUCCESS, tf_states.REVERTED, tf_states.FAILURE):
            try:
                self.backend.get_connection().destroy_logbook(book.uuid)
            except Exception:  # a stale logbook is recovered later; never fail the op
                LOG.exception("Could not delete flow logbook %s", book.name)

    def pending(self) -> list[tf_models.LogBook]:
        """Logbooks of this owner's flows that never finished."""
        if self.backend is None:
            return []
        prefix = self.owner + ":"
        return [b for b in self.backend.get_connection().get_logbooks(lazy=False)
                if b.name.startswith(prefix)]

    def recover(self, transient_for: Callable[[str, str], dict[str, Any]],
                on_result: Callable[[str, str, BaseException | None], None]) -> int:
        """Resume every unfinished flow of this owner.

        ``transient_for(operation, resource_id)`` supplies the transient
        values; ``on_result(operation, resource_id, error)`` is told how each
        ended (error None: finished; else it reverted). Returns the count.
        """
        count = 0
        for book in self.pending():
            _, operation, resource_id = book.name.rsplit(":", 2)
            for flow_detail in book:
                count += 1
                error: BaseException | None = None
                try:
                    engine = engines.load_from_detail(flow_detail, backend=self.backend,
                                                      engine=_ENGINE)
                    LOG.warning("Resuming interrupted %s flow for %s", operation, resource_id)
                    self._run(engine, None, transient_for(operation, resource_id))
                except Exception as exc:  # reverted: report it
                    error = exc
                on_result(operation, resource_id, error)
            self.backend.get_connection().destroy_logbook(book.uuid)
        return count
