"""Power states and the libvirt mapping of DESIGN.md (virt/power_state.py)."""

import pytest

from virtstack.virt import power_state as ps


@pytest.mark.parametrize("libvirt_state, expected", [
    (ps.VIR_DOMAIN_NOSTATE, ps.NOSTATE),
    (ps.VIR_DOMAIN_RUNNING, ps.RUNNING),
    (ps.VIR_DOMAIN_BLOCKED, ps.RUNNING),
    (ps.VIR_DOMAIN_PAUSED, ps.PAUSED),
    (ps.VIR_DOMAIN_SHUTDOWN, ps.SHUTDOWN),
    (ps.VIR_DOMAIN_SHUTOFF, ps.SHUTDOWN),
    (ps.VIR_DOMAIN_CRASHED, ps.CRASHED),
    (ps.VIR_DOMAIN_PMSUSPENDED, ps.SUSPENDED),
])
def test_libvirt_state_maps_as_designed(libvirt_state, expected):
    assert ps.from_libvirt(libvirt_state) == expected


@pytest.mark.parametrize("libvirt_state", [8, 99, -1])
def test_unknown_libvirt_state_maps_to_nostate(libvirt_state):
    assert ps.from_libvirt(libvirt_state) == ps.NOSTATE


def test_libvirt_constants_are_libvirts_values():
    # virDomainState in libvirt's include/libvirt/libvirt-domain.h
    assert (ps.VIR_DOMAIN_NOSTATE, ps.VIR_DOMAIN_RUNNING, ps.VIR_DOMAIN_BLOCKED,
            ps.VIR_DOMAIN_PAUSED, ps.VIR_DOMAIN_SHUTDOWN, ps.VIR_DOMAIN_SHUTOFF,
            ps.VIR_DOMAIN_CRASHED, ps.VIR_DOMAIN_PMSUSPENDED) == (0, 1, 2, 3, 4, 5, 6, 7)


def test_power_states_use_the_compute_api_values():
    assert (ps.NOSTATE, ps.RUNNING, ps.PAUSED, ps.SHUTDOWN, ps.CRASHED, ps.SUSPENDED) == (
        0, 1, 3, 4, 6, 7)


@pytest.mark.parametrize("state, name", [
    (ps.NOSTATE, "pending"), (ps.RUNNING, "running"), (ps.PAUSED, "paused"),
    (ps.SHUTDOWN, "shutdown"), (ps.CRASHED, "crashed"), (ps.SUSPENDED, "suspended"),
    (42, "unknown")])
def test_name(state, name):
    assert ps.name(state) == name
