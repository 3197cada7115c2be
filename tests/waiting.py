"""Waiting in tests: poll with a deadline, never a bare sleep."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """The first truthy value of ``predicate()``; AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        tick.wait(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
