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
from typing import Any, Callable, NoReturn

from taskflow import engines, exceptions as tf_exc, states as tf_states
from taskflow.persistence import models as tf_models

from virtstack import exception
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
        if ":" in operation:
            raise ValueError(f"operation names cannot contain ':' ({operation!r})")
        return f"{self.owner}:{operation}:{resource_id}"

    def _parse_book_name(self, name: str) -> tuple[str, str]:
        """(operation, resource_id) of one of this owner's logbooks: the
        owner is a known prefix and operations have no ':', so resource ids
        may contain ':'."""
        operation, _, resource_id = name[len(self.owner) + 1:].partition(":")
        return operation, resource_id

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
            # Several tasks failed (parallel flows), or the failure was
            # restored from the database (a recovered flow): no live
            # exception to re-raise there.
            _raise_failures(list(wrapped))
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

        A flow that had already ended when the service died (before its
        logbook was deleted) is not run again: a finished one is reported as
        finished, a reverted one (or one whose revert failed) with the error
        stored for it.
        """
        count = 0
        for book in self.pending():
            operation, resource_id = self._parse_book_name(book.name)
            for flow_detail in book:
                count += 1
                error: BaseException | None = None
                state = flow_detail.state
                if state == tf_states.SUCCESS:
                    LOG.info("Interrupted %s flow for %s had finished", operation, resource_id)
                elif state in (tf_states.REVERTED, tf_states.FAILURE):
                    LOG.warning("Interrupted %s flow for %s had ended %s", operation,
                                resource_id, state)
                    error = _stored_error(flow_detail, operation, resource_id)
                else:
                    try:
                        engine = engines.load_from_detail(flow_detail, backend=self.backend,
                                                          engine=_ENGINE)
                        LOG.warning("Resuming interrupted %s flow for %s", operation,
                                    resource_id)
                        self._run(engine, None, transient_for(operation, resource_id))
                    except Exception as exc:  # reverted: report it
                        error = exc
                on_result(operation, resource_id, error)
            self.backend.get_connection().destroy_logbook(book.uuid)
        return count


def _error_of(fail) -> BaseException:
    """An exception for one TaskFlow failure: the task's own if this process
    caught it, else one rebuilt from what was stored (the
    ``virtstack.exception`` class it was, when it was one)."""
    if fail.exc_info:
        return fail.exc_info[1]
    type_names = list(fail)  # most specific first
    for name in type_names:
        module, _, cls_name = name.rpartition(".")
        cls = getattr(exception, cls_name, None) if module == exception.__name__ else None
        if isinstance(cls, type) and issubclass(cls, exception.VirtstackException):
            return cls(fail.exception_str)
    kind = type_names[0] if type_names else "Error"
    return exception.VirtstackException(f"{kind}: {fail.exception_str}")


def _raise_failures(failures: list) -> NoReturn:
    """Raise the first of TaskFlow ``failures`` (a live one first)."""
    for fail in failures:
        if fail.exc_info:
            fail.reraise()
    raise _error_of(failures[0])


def _stored_error(flow_detail, operation: str, resource_id: str) -> BaseException:
    """Why a stored flow reverted (or failed to), from its atoms' failures."""
    failures = [atom.failure for atom in flow_detail if atom.failure is not None]
    if failures:
        return _error_of(failures[0])
    return exception.VirtstackException(
        f"The {operation} flow for {resource_id} was rolled back before the service "
        f"restarted.")
