"""Events a driver reports about its guests (lifecycle changes, device removal)."""

from __future__ import annotations

import dataclasses
import time

EVENT_LIFECYCLE_STARTED = 0
EVENT_LIFECYCLE_STOPPED = 1
EVENT_LIFECYCLE_PAUSED = 2
EVENT_LIFECYCLE_RESUMED = 3
EVENT_LIFECYCLE_SUSPENDED = 4
EVENT_LIFECYCLE_CRASHED = 5

NAMES = {
    EVENT_LIFECYCLE_STARTED: "Started",
    EVENT_LIFECYCLE_STOPPED: "Stopped",
    EVENT_LIFECYCLE_PAUSED: "Paused",
    EVENT_LIFECYCLE_RESUMED: "Resumed",
    EVENT_LIFECYCLE_SUSPENDED: "Suspended",
    EVENT_LIFECYCLE_CRASHED: "Crashed",
}


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every driver event: which instance, and when (epoch seconds)."""

    uuid: str
    timestamp: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True)
class LifecycleEvent(Event):
    """The guest changed power state; ``transition`` is an EVENT_LIFECYCLE_*."""

    transition: int = EVENT_LIFECYCLE_STARTED

    @property
    def name(self) -> str:
        return NAMES.get(self.transition, "Unknown")


@dataclasses.dataclass(frozen=True)
class DeviceRemovedEvent(Event):
    """The hypervisor finished removing a device (``dev`` is its target name)."""

    dev: str = ""
