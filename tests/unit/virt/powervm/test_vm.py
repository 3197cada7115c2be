"""Flavor and extra specs to LPAR; LPAR states to power states."""

from __future__ import annotations

import pytest
from pypowervm import adapter as pvm_adapter
from pypowervm.wrappers import managed_system as pvm_ms

from tests.unit.virt.powervm.conftest import new_instance
from virtstack import exception
from virtstack.objects import Flavor
from virtstack.virt import power_state
from virtstack.virt.powervm import vm
from virtstack.virt.powervm.fake.session import FakeSession


@pytest.fixture
def adapter():
    return pvm_adapter.Adapter(FakeSession())


def _flavor(**extra_specs):
    return Flavor(flavorid="9", name="pvm.custom", vcpus=2, memory_mb=4096, root_gb=10,
                  extra_specs=extra_specs)


def test_a_plain_flavor_is_a_shared_processor_lpar(adapter):
    instance = new_instance(_flavor())
    lpar = vm.create_lpar(adapter, pvm_ms.System.get(adapter)[0], instance, 0.1)
    assert lpar.uuid == vm.pvm_uuid(instance)
    assert lpar.name == instance.name
    assert lpar.mem_config.desired == 4096
    proc = lpar.proc_config
    assert not proc.has_dedicated
    assert proc.shared_proc_cfg.desired_virtual == 2
    assert proc.shared_proc_cfg.desired_units == pytest.approx(0.2)  # 0.1 per vCPU


def test_extra_specs_shape_the_lpar(adapter):
    instance = new_instance(_flavor(**{
        "powervm:min_mem": "1024", "powervm:max_mem": "8192", "powervm:min_vcpu": "1",
        "powervm:max_vcpu": "4", "powervm:proc_units": "0.5", "powervm:uncapped": "true",
        "powervm:shared_weight": "200", "powervm:availability_priority": "150",
        "powervm:processor_compatibility": "POWER6+", "powervm:srr_capability": "false",
        "hw:cpu_policy": "ignored-not-powervm"}))
    lpar = vm.create_lpar(adapter, pvm_ms.System.get(adapter)[0], instance, 0.1)
    mem, shared = lpar.mem_config, lpar.proc_config.shared_proc_cfg
    assert (mem.min, mem.desired, mem.max) == (1024, 4096, 8192)
    assert (shared.min_virtual, shared.desired_virtual, shared.max_virtual) == (1, 2, 4)
    assert shared.desired_units == pytest.approx(0.5)
    assert lpar.proc_config.sharing_mode == "uncapped"
    assert shared.uncapped_weight == 200
    assert lpar.avail_priority == 150
    assert lpar.pending_proc_compat_mode == "POWER6_Plus"  # this host is a POWER7


def test_dedicated_processors(adapter):
    instance = new_instance(_flavor(**{"powervm:dedicated_proc": "true",
                                       "powervm:dedicated_sharing_mode": "keep_idle_procs"}))
    lpar = vm.create_lpar(adapter, pvm_ms.System.get(adapter)[0], instance, 0.1)
    assert lpar.proc_config.has_dedicated
    assert lpar.proc_config.dedicated_proc_cfg.desired == 2
    assert lpar.proc_config.sharing_mode == "keep idle procs"


@pytest.mark.parametrize("specs,message", [
    ({"powervm:bogus": "1"}, "unknown PowerVM flavor extra spec powervm:bogus"),
    ({"powervm:uncapped": "maybe"}, "must be true or false"),
    ({"powervm:dedicated_sharing_mode": "hoard"}, "must be one of"),
    ({"powervm:min_mem": "8192"}, "cannot be an LPAR here"),  # min above desired
])
def test_bad_extra_specs_are_invalid_with_a_reason(adapter, specs, message):
    with pytest.raises(exception.Invalid, match=message):
        vm.build_lpar(adapter, pvm_ms.System.get(adapter)[0], new_instance(_flavor(**specs)),
                      0.1)


def test_create_of_an_existing_lpar_raises_instance_exists(adapter):
    host = pvm_ms.System.get(adapter)[0]
    instance = new_instance()
    vm.create_lpar(adapter, host, instance, 0.1)
    with pytest.raises(exception.InstanceExists):
        vm.create_lpar(adapter, host, instance, 0.1)


@pytest.mark.parametrize("state,expected", [
    ("running", power_state.RUNNING), ("starting", power_state.RUNNING),
    ("open firmware", power_state.RUNNING), ("not activated", power_state.SHUTDOWN),
    ("suspended", power_state.SUSPENDED), ("error", power_state.CRASHED),
    ("unknown", power_state.NOSTATE), ("something new", power_state.NOSTATE),
])
def test_lpar_states_map_to_power_states(state, expected):
    class Lpar:
        pass

    lpar = Lpar()
    lpar.state = state
    assert vm.state_of(lpar) == expected
