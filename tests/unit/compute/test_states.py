"""The instance state machine against the Compute API's documented semantics.

The expectation tables below are written out independently of
``virtstack.compute.states`` (plain strings, no product constants), from the
Compute API reference ("Server status", and the *Preconditions* of each
server action) and Nova's ``_STATE_MAP`` / ``check_instance_state`` guards.
"""

from __future__ import annotations

import itertools

import pytest

from virtstack.compute import states

VM_STATES = ("active", "building", "paused", "suspended", "stopped", "rescued", "resized",
             "soft-delete", "deleted", "error", "shelved", "shelved_offloaded")

TASK_STATES = (None, "scheduling", "block_device_mapping", "networking", "spawning",
               "image_snapshot", "image_snapshot_pending", "image_pending_upload",
               "image_uploading", "rebooting", "reboot_pending", "reboot_started",
               "rebooting_hard", "reboot_pending_hard", "reboot_started_hard", "pausing",
               "unpausing", "suspending", "resuming", "powering-off", "powering-on",
               "rescuing", "unrescuing", "deleting", "rebuilding", "migrating", "resize_prep")

# -- API status of (vm_state, task_state): Nova's _STATE_MAP, restricted to the
#    task_states virtstack has. A task_state not listed shows the default.
_REBOOT = {"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT"}
_HARD = {"rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
         "reboot_started_hard": "HARD_REBOOT"}
EXPECTED_STATUS: dict[str, dict] = {
    "active": {"default": "ACTIVE", **_REBOOT, **_HARD, "rebuilding": "REBUILD",
               "migrating": "MIGRATING", "resize_prep": "RESIZE"},
    "building": {"default": "BUILD"},
    "stopped": {"default": "SHUTOFF", "resize_prep": "RESIZE", "rebuilding": "REBUILD"},
    "resized": {"default": "VERIFY_RESIZE"},
    "paused": {"default": "PAUSED", "migrating": "MIGRATING"},
    "suspended": {"default": "SUSPENDED"},
    "rescued": {"default": "RESCUE"},
    "error": {"default": "ERROR", "rebuilding": "REBUILD"},
    "deleted": {"default": "DELETED"},
    "soft-delete": {"default": "SOFT_DELETED"},
    "shelved": {"default": "SHELVED"},
    "shelved_offloaded": {"default": "SHELVED_OFFLOADED"},
}

# -- Where each action may start: (vm_states, task_states). From the API
#    reference preconditions and Nova's check_instance_state (default
#    task_state guard: idle).
ALL_EXISTING = frozenset(VM_STATES) - {"deleted"}
EXPECTED_ALLOWED: dict[str, tuple[frozenset, frozenset]] = {
    # "The server status must be SHUTOFF."
    "start": (frozenset({"stopped"}), frozenset({None})),
    # "The server status must be ACTIVE or ERROR." (not RESCUE)
    "stop": (frozenset({"active", "error"}), frozenset({None})),
    # "You can only SOFT reboot a server when its status is ACTIVE."
    "reboot_soft": (frozenset({"active"}), frozenset({None})),
    # HARD: ACTIVE, ERROR, HARD_REBOOT, PAUSED, REBOOT, SHUTOFF, SUSPENDED;
    # Nova's task_states.ALLOW_REBOOT (a hard reboot also rescues a stuck
    # pause/unpause/suspend/resume, but not another hard reboot past its start).
    "reboot_hard": (frozenset({"active", "stopped", "paused", "suspended", "error"}),
                    frozenset({None, "rebooting", "reboot_pending", "reboot_started",
                               "resuming", "rebooting_hard", "unpausing", "pausing",
                               "suspending"})),
    "pause": (frozenset({"active"}), frozenset({None})),
    "unpause": (frozenset({"paused"}), frozenset({None})),
    "suspend": (frozenset({"active"}), frozenset({None})),
    "resume": (frozenset({"suspended"}), frozenset({None})),
    "rescue": (frozenset({"active", "stopped", "error"}), frozenset({None})),
    # "You can only unrescue a server when its status is RESCUE."
    "unrescue": (frozenset({"rescued"}), frozenset({None})),
    # createImage: ACTIVE, SHUTOFF, PAUSED or SUSPENDED.
    "snapshot": (frozenset({"active", "stopped", "paused", "suspended"}), frozenset({None})),
    # Delete works "no matter what vm_state says" (a soft-deleted server can
    # be deleted for good). A deleted row is no server at all, and a server
    # already 'deleting' is not deleted twice: the API answers a repeated
    # delete itself without a second transition.
    "delete": (ALL_EXISTING, frozenset(TASK_STATES) - {"deleting"}),
}

# -- vm_state after an action succeeds (None: unchanged).
EXPECTED_FINISHED = {
    "start": "active", "stop": "stopped", "reboot_soft": "active", "reboot_hard": "active",
    "pause": "paused", "unpause": "active", "suspend": "suspended", "resume": "active",
    "rescue": "rescued", "unrescue": "active", "snapshot": None, "delete": "deleted",
}

# -- task_state an accepted action sets.
EXPECTED_TASK = {
    "start": "powering-on", "stop": "powering-off", "reboot_soft": "rebooting",
    "reboot_hard": "rebooting_hard", "pause": "pausing", "unpause": "unpausing",
    "suspend": "suspending", "resume": "resuming", "rescue": "rescuing",
    "unrescue": "unrescuing", "snapshot": "image_snapshot", "delete": "deleting",
}


def _expected_status(vm_state: str, task_state: str | None) -> str:
    mapping = EXPECTED_STATUS[vm_state]
    return mapping.get(task_state, mapping["default"])


def test_tables_cover_the_products_states():
    """The tables here name every state the product has (a new state must be
    added here, with its documented meaning, before it can ship)."""
    assert set(states._STATUS_MAP) == set(VM_STATES)
    assert list(states.ALL_TASK_STATES) == list(TASK_STATES)
    assert set(states.ACTIONS) == set(EXPECTED_ALLOWED)


@pytest.mark.parametrize("vm_state", VM_STATES)
def test_status_from_states_every_pair(vm_state):
    wrong = {t: states.status_from_states(vm_state, t) for t in TASK_STATES
             if states.status_from_states(vm_state, t) != _expected_status(vm_state, t)}
    assert wrong == {}, f"vm_state {vm_state}: wrong status for {wrong}"


@pytest.mark.parametrize("vm_state,task_state", [("bogus", None), ("", "rebooting"),
                                                 (None, None), ("ACTIVE", None)])
def test_unknown_vm_state_is_unknown(vm_state, task_state):
    assert states.status_from_states(vm_state, task_state) == "UNKNOWN"


def test_unknown_task_state_shows_the_default():
    assert states.status_from_states("active", "no-such-task") == "ACTIVE"


def test_api_statuses_are_exactly_the_reachable_ones():
    reachable = {_expected_status(v, t) for v in VM_STATES for t in TASK_STATES}
    assert states.API_STATUSES == reachable | {"UNKNOWN"}


@pytest.mark.parametrize("status", sorted(states.API_STATUSES - {"UNKNOWN"}))
def test_vm_states_for_status_describes_exactly_the_pairs(status):
    """The list filter's description of a status matches status_from_states."""
    pairs = states.vm_states_for_status(status)
    described = set()
    for vm_state, task_state, is_default in pairs:
        if is_default:
            listed = {t for t in states._STATUS_MAP[vm_state] if t != "default"}
            described |= {(vm_state, t) for t in TASK_STATES if t not in listed}
        else:
            described.add((vm_state, task_state))
    actual = {(v, t) for v in VM_STATES for t in TASK_STATES
              if _expected_status(v, t) == status}
    assert described == actual


@pytest.mark.parametrize("action", sorted(EXPECTED_ALLOWED))
@pytest.mark.parametrize("vm_state", VM_STATES)
def test_allowed_matches_the_api(action, vm_state):
    vm_ok, task_ok = EXPECTED_ALLOWED[action]
    wrong = [t for t in TASK_STATES
             if states.allowed(action, vm_state, t) != (vm_state in vm_ok and t in task_ok)]
    assert wrong == [], (f"{action} from vm_state {vm_state}: allowed() is wrong for "
                         f"task_states {wrong}")


@pytest.mark.parametrize("action", sorted(EXPECTED_ALLOWED))
def test_starting_states_agree_with_allowed(action):
    """starting_states() is what the compare-and-set uses: it must admit
    exactly the pairs allowed() admits."""
    vm_states, task_states = states.starting_states(action)
    from_cas = set(itertools.product(vm_states, task_states))
    from_allowed = {(v, t) for v in VM_STATES for t in TASK_STATES
                    if states.allowed(action, v, t)}
    assert from_cas == from_allowed
    assert len(set(vm_states)) == len(vm_states) and len(set(task_states)) == len(task_states)


@pytest.mark.parametrize("action", sorted(EXPECTED_ALLOWED))
def test_starting_states_spell_out_none(action):
    t = states.ACTIONS[action]
    vm_states, task_states = states.starting_states(action)
    if t.vm_states is not None:
        assert tuple(vm_states) == t.vm_states
    if t.task_states is not None:
        assert tuple(task_states) == t.task_states
    assert "deleted" not in vm_states


@pytest.mark.parametrize("action", sorted(EXPECTED_TASK))
def test_action_sets_its_task_state(action):
    assert states.ACTIONS[action].task_state == EXPECTED_TASK[action]
    assert EXPECTED_TASK[action] in TASK_STATES


def test_an_accepted_action_cannot_be_accepted_again():
    """Once an action set its task_state, the same action is refused (two
    racing requests cannot both win), except hard reboot which may take over
    a running *soft* reboot, or re-issue while it has not started."""
    for action, (vm_ok, _) in EXPECTED_ALLOWED.items():
        again = [v for v in vm_ok if states.allowed(action, v, states.ACTIONS[action].task_state)]
        if action == "reboot_hard":
            assert set(again) == set(vm_ok)
            assert not any(states.allowed(action, v, "reboot_started_hard") for v in VM_STATES)
        else:
            assert again == [], action


def test_finished_covers_every_action():
    assert set(states.FINISHED) == set(states.ACTIONS)
    assert states.FINISHED == EXPECTED_FINISHED
    for action, vm_state in states.FINISHED.items():
        assert vm_state is None or vm_state in VM_STATES, action


@pytest.mark.parametrize("action", sorted(EXPECTED_FINISHED))
def test_finished_state_shows_the_documented_status(action):
    """"After you successfully <action> a server, its status changes to ..."."""
    documented = {"start": "ACTIVE", "stop": "SHUTOFF", "reboot_soft": "ACTIVE",
                  "reboot_hard": "ACTIVE", "pause": "PAUSED", "unpause": "ACTIVE",
                  "suspend": "SUSPENDED", "resume": "ACTIVE", "rescue": "RESCUE",
                  "unrescue": "ACTIVE", "snapshot": None, "delete": "DELETED"}
    vm_state = states.FINISHED[action]
    if documented[action] is None:
        assert vm_state is None
    else:
        assert states.status_from_states(vm_state, None) == documented[action]


def test_dead_states_allow_nothing_but_deleting_a_soft_deleted_server():
    for action in states.ACTIONS:
        assert not states.allowed(action, "deleted", None), action
        assert states.allowed(action, "soft-delete", None) == (action == "delete"), action


def test_unknown_action_is_a_key_error():
    with pytest.raises(KeyError):
        states.allowed("levitate", "active", None)
    with pytest.raises(KeyError):
        states.starting_states("levitate")
