"""The instance state machine: vm_state, task_state, and the API's status.

``vm_state`` is where an instance rests; ``task_state`` is the operation in
progress (None when idle). ``ACTIONS`` says, per user action, from which
states it may start and which task_state it sets; ``FINISHED`` what the
compute service writes when it succeeds. Every change goes through a
compare-and-set in the database (``db.instance.transition``), so two racing
requests cannot both win.
"""

from __future__ import annotations

import dataclasses

# vm_states
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# task_states
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
DELETING = "deleting"
REBUILDING = "rebuilding"
MIGRATING = "migrating"
RESIZE_PREP = "resize_prep"

# The Compute API status of (vm_state, task_state): the task_state entry
# wins, else the vm_state's "default".
_STATUS_MAP: dict[str, dict[str | None, str]] = {
    ACTIVE: {
        "default": "ACTIVE",
        REBOOTING: "REBOOT", REBOOT_PENDING: "REBOOT", REBOOT_STARTED: "REBOOT",
        REBOOTING_HARD: "HARD_REBOOT", REBOOT_PENDING_HARD: "HARD_REBOOT",
        REBOOT_STARTED_HARD: "HARD_REBOOT",
        REBUILDING: "REBUILD", MIGRATING: "MIGRATING", RESIZE_PREP: "RESIZE",
    },
    BUILDING: {"default": "BUILD"},
    # As the Compute API shows them: a hard reboot of a SHUTOFF, PAUSED,
    # SUSPENDED or ERROR server keeps showing that status (its task_state
    # says it is rebooting) until it comes up ACTIVE.
    STOPPED: {"default": "SHUTOFF", REBUILDING: "REBUILD", RESIZE_PREP: "RESIZE"},
    RESIZED: {"default": "VERIFY_RESIZE"},
    PAUSED: {"default": "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", REBUILDING: "REBUILD"},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}

#: Every status the API can show (valid values of the ``status`` filter).
API_STATUSES = frozenset(s for m in _STATUS_MAP.values() for s in m.values()) | {"UNKNOWN"}


def status_from_states(vm_state: str, task_state: str | None) -> str:
    """The Compute API ``status`` of an instance."""
    mapping = _STATUS_MAP.get(vm_state)
    if mapping is None:
        return "UNKNOWN"
    return mapping.get(task_state, mapping["default"])


def vm_states_for_status(status: str) -> list[tuple[str, str | None, bool]]:
    """Which (vm_state, task_state, is_default) pairs show as ``status``
    (for the list filter). ``is_default`` means "any task_state not listed"."""
    pairs = []
    for vm_state, mapping in _STATUS_MAP.items():
        for task_state, shown in mapping.items():
            if shown == status:
                pairs.append((vm_state, None if task_state == "default" else task_state,
                              task_state == "default"))
    return pairs


@dataclasses.dataclass(frozen=True)
class Transition:
    """Where an action may start and what it sets while it runs."""

    vm_states: tuple[str, ...] | None  # None: any vm_state but DELETED
    task_states: tuple[str | None, ...] | None  # None: any task_state but DELETING
    task_state: str  # set when the action is accepted


# Where a hard reboot may start (the Compute API's ALLOW_REBOOT): idle, during
# a soft reboot (it takes over), a hard reboot that has not started yet, or a
# pause/unpause/suspend/resume that may be stuck; never once a hard reboot is
# under way on the hypervisor.
_HARD_REBOOT_TASKS = (None, REBOOTING, REBOOT_PENDING, REBOOT_STARTED, RESUMING,
                      REBOOTING_HARD, UNPAUSING, PAUSING, SUSPENDING)

ACTIONS: dict[str, Transition] = {
    "start": Transition((STOPPED,), (None,), POWERING_ON),
    # Not from RESCUED: a stopped rescued server would lose its rescue state.
    "stop": Transition((ACTIVE, ERROR), (None,), POWERING_OFF),
    "reboot_soft": Transition((ACTIVE,), (None,), REBOOTING),
    "reboot_hard": Transition((ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR),
                              _HARD_REBOOT_TASKS, REBOOTING_HARD),
    "pause": Transition((ACTIVE,), (None,), PAUSING),
    "unpause": Transition((PAUSED,), (None,), UNPAUSING),
    "suspend": Transition((ACTIVE,), (None,), SUSPENDING),
    "resume": Transition((SUSPENDED,), (None,), RESUMING),
    "rescue": Transition((ACTIVE, STOPPED, ERROR), (None,), RESCUING),
    "unrescue": Transition((RESCUED,), (None,), UNRESCUING),
    "snapshot": Transition((ACTIVE, STOPPED, PAUSED, SUSPENDED), (None,), IMAGE_SNAPSHOT),
    "delete": Transition(None, None, DELETING),
}

#: vm_state written when an action finishes well (None: unchanged).
FINISHED: dict[str, str | None] = {
    "start": ACTIVE,
    "stop": STOPPED,
    "reboot_soft": ACTIVE,
    "reboot_hard": ACTIVE,
    "pause": PAUSED,
    "unpause": ACTIVE,
    "suspend": SUSPENDED,
    "resume": ACTIVE,
    "rescue": RESCUED,
    "unrescue": ACTIVE,
    "snapshot": None,
    "delete": DELETED,
}

#: vm_states that are gone for good.
DEAD = (DELETED, SOFT_DELETED)

#: Every vm_state an instance can be in while it exists.
LIVE_VM_STATES = tuple(s for s in _STATUS_MAP if s not in DEAD)

#: Every vm_state of a row that is still a server (a soft-deleted one can be
#: deleted for good; a deleted one is gone).
EXISTING_VM_STATES = tuple(s for s in _STATUS_MAP if s != DELETED)

#: Every task_state, None (idle) included.
ALL_TASK_STATES: tuple[str | None, ...] = (
    None, SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING, IMAGE_SNAPSHOT,
    IMAGE_SNAPSHOT_PENDING, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING, REBOOTING,
    REBOOT_PENDING, REBOOT_STARTED, REBOOTING_HARD, REBOOT_PENDING_HARD,
    REBOOT_STARTED_HARD, PAUSING, UNPAUSING, SUSPENDING, RESUMING, POWERING_OFF,
    POWERING_ON, RESCUING, UNRESCUING, DELETING, REBUILDING, MIGRATING, RESIZE_PREP)


def starting_states(action: str) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The (vm_states, task_states) from which ``action`` may start, spelled
    out (for the compare-and-set)."""
    t = ACTIONS[action]
    vm = t.vm_states if t.vm_states is not None else EXISTING_VM_STATES
    tasks = t.task_states if t.task_states is not None else tuple(
        s for s in ALL_TASK_STATES if s != DELETING)
    return vm, tasks


def allowed(action: str, vm_state: str, task_state: str | None) -> bool:
    """Whether ``action`` may start from (vm_state, task_state)."""
    t = ACTIONS[action]
    if vm_state not in EXISTING_VM_STATES:
        return False
    if t.vm_states is not None and vm_state not in t.vm_states:
        return False
    if t.task_states is None:
        return task_state != DELETING
    return task_state in t.task_states
