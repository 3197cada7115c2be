"""POST /servers/{id}/action: each action, the state table, failures, races,
and guests changing state on their own."""

from __future__ import annotations

import threading

import pytest

from virtstack.compute import states
from virtstack.virt import power_state

from .conftest import (ADMIN, DEMO, STATUS_OF, active_server, error_message, events_of,
                       finished_events, server_action, server_in_state, show, wait_until)

#: How the API spells each action of the state table: (method, action body).
API_ACTIONS = {
    "start": ("POST", {"os-start": None}),
    "stop": ("POST", {"os-stop": None}),
    "reboot_soft": ("POST", {"reboot": {"type": "SOFT"}}),
    "reboot_hard": ("POST", {"reboot": {"type": "HARD"}}),
    "pause": ("POST", {"pause": None}),
    "unpause": ("POST", {"unpause": None}),
    "suspend": ("POST", {"suspend": None}),
    "resume": ("POST", {"resume": None}),
    "snapshot": ("POST", {"createImage": {"name": "snap"}}),
    "delete": ("DELETE", None),
}
#: Actions of the state table the API does not offer (yet), by their API name.
NOT_OFFERED = {"rescue": "rescue", "unrescue": "unrescue"}

#: vm_states a server reaches through this API (RESCUED needs rescue).
REACHABLE = ("building", "active", "stopped", "paused", "suspended", "error")


def _send(cloud, server_id, action, token=DEMO):
    method, body = API_ACTIONS[action]
    if method == "DELETE":
        return cloud.request("DELETE", f"/v2.1/servers/{server_id}", token=token)
    return server_action(cloud, server_id, body, token=token)


def _accepted(resp) -> bool:
    return resp.status_int in (202, 204)


class SpawnGate:
    """Holds every spawn in the fake driver until opened (a BUILD server)."""

    def __init__(self, cloud, monkeypatch):
        self.opened = threading.Event()
        spawn = cloud.driver.spawn

        def held_spawn(*args, **kwargs):
            assert self.opened.wait(30), "spawn gate never opened"
            return spawn(*args, **kwargs)
        monkeypatch.setattr(cloud.driver, "spawn", held_spawn)

    def open(self):
        self.opened.set()


@pytest.fixture
def building_server(cloud, monkeypatch):
    """Makes a server that stays BUILD (spawning) until its gate opens; every
    gate opens at teardown, before the cloud stops, even if the test failed."""
    gates = []

    def make():
        gate = SpawnGate(cloud, monkeypatch)
        gates.append(gate)
        sid = cloud.create_server()
        wait_until(lambda: show(cloud, sid)["OS-EXT-STS:task_state"] == states.SPAWNING,
                   what="spawning")
        return sid, gate

    yield make
    for gate in gates:
        gate.open()


def test_state_table_actions_are_all_covered():
    assert set(states.ACTIONS) == set(API_ACTIONS) | set(NOT_OFFERED)


def test_actions_not_offered_are_400(cloud):
    sid = cloud.create_server()
    for name in sorted(NOT_OFFERED.values()):
        assert name in error_message(server_action(cloud, sid, {name: {}}), 400)


def test_each_action_and_its_resulting_status(cloud):
    sid = active_server(cloud)
    steps = [("stop", "SHUTOFF", power_state.SHUTDOWN), ("start", "ACTIVE", power_state.RUNNING),
             ("reboot_soft", "ACTIVE", power_state.RUNNING),
             ("reboot_hard", "ACTIVE", power_state.RUNNING),
             ("pause", "PAUSED", power_state.PAUSED), ("unpause", "ACTIVE", power_state.RUNNING),
             ("suspend", "SUSPENDED", power_state.SUSPENDED),
             ("resume", "ACTIVE", power_state.RUNNING)]
    for action, status, power in steps:
        resp = _send(cloud, sid, action)
        assert resp.status_int == 202 and resp.body == b"", (action, resp.text)
        server = cloud.wait_for_status(sid, status)
        assert server["OS-EXT-STS:power_state"] == power, action
        assert cloud.driver.get_guest(sid).power_state == power, action
    listed = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions").json
    names = [a["action"] for a in listed["instanceActions"]]
    assert names == ["resume", "suspend", "unpause", "pause", "reboot", "reboot", "start",
                     "stop", "create"]
    for api_name, event in (("stop", "compute_stop_instance"),
                            ("reboot", "compute_reboot_instance"),
                            ("resume", "compute_resume_instance")):
        events = finished_events(cloud, sid, api_name)
        assert [(e["event"], e["result"]) for e in events] == [(event, "Success")]


def test_console_output_with_length(cloud):
    sid = active_server(cloud)
    assert _send(cloud, sid, "reboot_soft").status_int == 202
    cloud.wait_for_status(sid, "ACTIVE")
    resp = server_action(cloud, sid, {"os-getConsoleOutput": {}})
    assert resp.status_int == 200
    lines = resp.json["output"].splitlines()
    assert len(lines) == 2 and all(sid in line for line in lines)
    for length, expected in ((1, 1), ("1", 1), (-1, 2), (None, 2), (0, 0), (5, 2)):
        resp = server_action(cloud, sid, {"os-getConsoleOutput": {"length": length}})
        assert resp.status_int == 200, (length, resp.text)
        assert len(resp.json["output"].splitlines()) == expected, length
    assert server_action(cloud, sid, {"os-getConsoleOutput": None}).status_int == 200


def test_console_output_of_a_server_without_a_guest_is_409(cloud):
    cloud.driver.inject_failure("spawn")
    sid = cloud.create_server()
    cloud.wait_for_status(sid, "ERROR")
    error_message(server_action(cloud, sid, {"os-getConsoleOutput": {"length": 1}}), 409)


# -- the state table ---------------------------------------------------------

_ALLOWED = [(a, s) for s in REACHABLE for a in API_ACTIONS
            if states.allowed(a, s, states.SPAWNING if s == "building" else None)]


@pytest.mark.parametrize("action,vm_state", _ALLOWED)
def test_allowed_transition(cloud, building_server, action, vm_state):
    if vm_state == "building":
        sid, gate = building_server()
    else:
        sid = server_in_state(cloud, vm_state)
    resp = _send(cloud, sid, action)
    assert _accepted(resp), resp.text
    if vm_state == "building":
        gate.open()
    expected = STATUS_OF.get(states.FINISHED[action] or vm_state, "DELETED")
    cloud.wait_for_status(sid, expected)
    if expected == "DELETED":
        error_message(cloud.request("GET", f"/v2.1/servers/{sid}"), 404)
        assert sid not in cloud.driver.list_instance_uuids()


@pytest.mark.parametrize("vm_state", REACHABLE)
def test_forbidden_transitions(cloud, building_server, vm_state):
    """Every action the table forbids from ``vm_state`` is 409, names the
    state, and changes nothing (one server serves them all)."""
    task_state = None
    if vm_state == "building":
        sid, gate = building_server()
        task_state = states.SPAWNING
    else:
        sid = server_in_state(cloud, vm_state)
    before = show(cloud, sid)
    forbidden = [a for a in API_ACTIONS if not states.allowed(a, vm_state, task_state)]
    assert forbidden, "every action is allowed?"
    wrong = []
    for action in forbidden:
        resp = _send(cloud, sid, action)
        if resp.status_int != 409:
            wrong.append((action, resp.status, resp.text))
            continue
        message = error_message(resp, 409)
        vm_states, _ = states.starting_states(action)
        named = vm_state if vm_state not in vm_states else task_state
        if named not in message or sid not in message:
            wrong.append((action, message))
    assert wrong == []
    after = show(cloud, sid)
    for key in ("status", "OS-EXT-STS:vm_state", "OS-EXT-STS:task_state"):
        assert after[key] == before[key]
    if vm_state == "building":
        gate.open()
        cloud.wait_for_status(sid, "ACTIVE")


def test_actions_on_a_server_that_never_reached_a_host_are_409(cloud):
    cloud.driver.inject_failure("spawn")
    sid = cloud.create_server()
    cloud.wait_for_status(sid, "ERROR")
    for action in ("stop", "reboot_hard"):
        assert states.allowed(action, "error", None)
        message = error_message(_send(cloud, sid, action), 409)
        assert "host" in message
    server = show(cloud, sid)
    assert server["status"] == "ERROR" and server["OS-EXT-STS:task_state"] is None
    assert _send(cloud, sid, "delete").status_int == 204
    cloud.wait_for_status(sid, "DELETED")


# -- failures and races ------------------------------------------------------

@pytest.mark.parametrize("action,start,method", [
    ("stop", "active", "power_off"), ("reboot_hard", "active", "reboot"),
    ("pause", "active", "pause"), ("start", "stopped", "power_on"),
    ("resume", "suspended", "resume")])
def test_failed_driver_action_restores_the_state(cloud, action, start, method):
    sid = server_in_state(cloud, start)
    cloud.driver.inject_failure(method)
    assert _send(cloud, sid, action).status_int == 202
    api_name = "reboot" if action.startswith("reboot") else action
    events = finished_events(cloud, sid, api_name)
    assert [e["result"] for e in events] == ["Error"]
    assert "Injected failure" in events[0]["traceback"]
    server = cloud.wait_for_status(sid, STATUS_OF[start])
    assert server["OS-EXT-STS:vm_state"] == start
    assert server["OS-EXT-STS:task_state"] is None
    assert "fault" not in server
    actions = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions").json
    assert actions["instanceActions"][0]["message"] == "Error"
    # Members see the event but not the traceback.
    member_events = events_of(cloud, sid, api_name, token=DEMO)
    assert member_events[0]["result"] == "Error" and "traceback" not in member_events[0]
    # And the server still works.
    assert _send(cloud, sid, action).status_int == 202
    cloud.wait_for_status(sid, STATUS_OF[states.FINISHED[action] or start])


@pytest.mark.parametrize("first,second", [
    ("stop", "stop"), ("stop", "pause"), ("suspend", "reboot_soft")])
def test_racing_actions_one_wins(cloud, first, second):
    sid = active_server(cloud)
    for method in ("power_off", "pause", "suspend", "reboot"):
        cloud.driver.set_latency(method, 0.3)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def fire(label, action):
        barrier.wait(5)
        results[label] = _send(cloud, sid, action)

    threads = [threading.Thread(target=fire, args=(label, action))
               for label, action in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    codes = sorted(r.status_int for r in results.values())
    assert codes == [202, 409], {k: r.text for k, r in results.items()}
    a_won = results["a"].status_int == 202
    winner, loser = (first, results["b"]) if a_won else (second, results["a"])
    message = error_message(loser, 409)
    assert states.ACTIONS[winner].task_state in message
    server = cloud.wait_for_status(sid, STATUS_OF[states.FINISHED[winner]])
    assert server["OS-EXT-STS:task_state"] is None
    listed = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions").json
    assert [a["action"] for a in listed["instanceActions"]] == [
        "reboot" if winner.startswith("reboot") else winner, "create"]


def test_many_simultaneous_stops_exactly_one_accepted(cloud):
    sid = active_server(cloud)
    cloud.driver.set_latency("power_off", 0.3)
    barrier = threading.Barrier(6)
    codes: list[int] = []
    lock = threading.Lock()

    def fire():
        barrier.wait(5)
        code = _send(cloud, sid, "stop").status_int
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(codes) == [202] + [409] * 5
    cloud.wait_for_status(sid, "SHUTOFF")


def test_delete_takes_over_an_action_in_progress(cloud):
    sid = active_server(cloud)
    cloud.driver.set_latency("power_off", 0.3)
    assert _send(cloud, sid, "stop").status_int == 202
    assert show(cloud, sid)["OS-EXT-STS:task_state"] == states.POWERING_OFF
    error_message(_send(cloud, sid, "pause"), 409)
    assert _send(cloud, sid, "delete").status_int == 204
    cloud.wait_for_status(sid, "DELETED")
    assert cloud.driver.list_instance_uuids() == []
    stats = cloud.request("GET", "/v2.1/os-hypervisors/statistics", token=ADMIN).json
    assert stats["hypervisor_statistics"]["running_vms"] == 0


# -- the guest changing on its own -------------------------------------------

def test_guest_powering_itself_off_shows_shutoff(cloud):
    sid = active_server(cloud)
    cloud.driver.simulate_guest_shutdown(sid)
    server = cloud.wait_for_status(sid, "SHUTOFF", timeout=10)
    assert server["OS-EXT-STS:power_state"] == power_state.SHUTDOWN
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    assert _send(cloud, sid, "start").status_int == 202
    cloud.wait_for_status(sid, "ACTIVE")
    assert cloud.driver.get_guest(sid).power_state == power_state.RUNNING


def test_crashed_guest_shows_shutoff(cloud):
    sid = active_server(cloud)
    cloud.driver.simulate_crash(sid)
    server = cloud.wait_for_status(sid, "SHUTOFF", timeout=10)
    assert server["OS-EXT-STS:power_state"] == power_state.CRASHED
    error_message(_send(cloud, sid, "pause"), 409)
    assert _send(cloud, sid, "reboot_hard").status_int == 202
    cloud.wait_for_status(sid, "ACTIVE")
