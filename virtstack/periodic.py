"""Periodic tasks of a service (compute, volume): each task in its own
daemon thread, run every interval until the service stops."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

LOG = logging.getLogger(__name__)

#: (name, interval in seconds, callable of no arguments)
Task = tuple[str, float, Callable[[], Any]]


class PeriodicTasks:
    """Runs each task every ``interval`` seconds (first after one interval)
    in a daemon thread named ``thread_prefix + name``, until ``stop()``.
    A task that raises is logged and runs again at its next interval."""

    def __init__(self, thread_prefix: str):
        self.thread_prefix = thread_prefix
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, tasks: Iterable[Task]) -> None:
        for name, interval, fn in tasks:
            t = threading.Thread(target=self._run, args=(name, interval, fn),
                                 name=f"{self.thread_prefix}{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, name: str, interval: float, fn: Callable[[], Any]) -> None:
        while not self._stop.wait(interval):
            try:
                fn()
            except Exception:  # a periodic task must survive its own errors
                LOG.exception("Periodic task %s failed", name)

    def stop(self) -> None:
        """Ask every task to end; a running one finishes its call first."""
        self._stop.set()
