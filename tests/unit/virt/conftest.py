"""Fixtures shared by the driver-layer tests, and the ``operation`` marker.

Configuration comes from the ``conf`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import threading

import pytest

from virtstack.virt import event as virtevent
from virtstack.virt.driver import OPERATIONS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "operation(name, declaration=False): the driver operation (a key of "
        "virtstack.virt.driver.OPERATIONS) a contract test proves; "
        "declaration=True marks the test that checks the declaration itself and "
        "runs whether or not the driver declares the operation.")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in item.iter_markers("operation"):
            if not marker.args or marker.args[0] not in OPERATIONS:
                raise pytest.UsageError(
                    f"{item.nodeid}: operation marker {marker.args!r} names no "
                    f"operation; known: {', '.join(OPERATIONS)}")


class EventRecorder:
    """A driver event listener that records events and signals expected ones.

    ``expect(uuid, transition)`` returns a ``threading.Event`` that is set
    when a matching LifecycleEvent arrives (from any thread); call it before
    the action that should cause the event, and wait on it with ``deadline``.
    """

    #: Seconds a test waits for an event that should come: a deadline, not a pause.
    deadline = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[virtevent.Event] = []
        self._waiters: list[tuple[str, int, threading.Event]] = []

    def __call__(self, event: virtevent.Event) -> None:
        with self._lock:
            self.events.append(event)
            for uuid, transition, arrived in self._waiters:
                if (isinstance(event, virtevent.LifecycleEvent) and event.uuid == uuid
                        and event.transition == transition):
                    arrived.set()

    def expect(self, uuid: str, transition: int) -> threading.Event:
        arrived = threading.Event()
        with self._lock:
            self._waiters.append((uuid, transition, arrived))
        return arrived

    def transitions(self, uuid: str) -> list[int]:
        """The lifecycle transitions seen so far for ``uuid``, in order."""
        with self._lock:
            return [e.transition for e in self.events
                    if isinstance(e, virtevent.LifecycleEvent) and e.uuid == uuid]


@pytest.fixture
def event_recorder() -> EventRecorder:
    return EventRecorder()
