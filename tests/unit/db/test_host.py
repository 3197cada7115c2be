"""Service heartbeats and compute-node records on every backend."""

from __future__ import annotations

import datetime
import threading

import pytest
import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import host as db_host
from virtstack.db import models

from .racing import race

pytestmark = pytest.mark.db

RES = {"hypervisor_type": "fake", "hypervisor_version": 1000, "vcpus": 4, "memory_mb": 1024,
       "local_gb": 10, "vcpus_used": 0, "memory_mb_used": 0, "local_gb_used": 0,
       "running_vms": 0, "cpu_info": "{}", "host_ip": "192.0.2.1"}


@pytest.fixture
def exact_ratios(conf):
    """Allocation ratios of 1, so capacity is what the node reports."""
    for name in ("cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio"):
        conf.config(**{name: 1.0}, group="compute")


def _age_service(host: str, binary: str, seconds: float) -> None:
    with db_api.session() as sess:
        sess.execute(sa.update(models.Service)
                     .where(models.Service.host == host, models.Service.binary == binary)
                     .values(last_seen_up=models.utcnow() - datetime.timedelta(seconds=seconds)))


def _node(**overrides) -> models.ComputeNode:
    res = dict(RES, **overrides)
    return db_host.node_update("h1", "n1", res)


# -- services ------------------------------------------------------------------

def test_service_heartbeat_creates_then_counts(any_database):
    first = db_host.service_heartbeat("h1", "virtstack-compute", "compute")
    assert (first.host, first.binary, first.topic, first.report_count) == \
        ("h1", "virtstack-compute", "compute", 1)
    second = db_host.service_heartbeat("h1", "virtstack-compute", "compute")
    assert second.id == first.id and second.report_count == 2
    assert second.last_seen_up >= first.last_seen_up
    db_host.service_heartbeat("h2", "virtstack-compute", "compute")
    db_host.service_heartbeat("h1", "virtstack-volume", "volume")
    assert [s.host for s in db_host.services("virtstack-compute")] == ["h1", "h2"]
    assert len(db_host.services()) == 3
    assert db_host.service_get("h1", "virtstack-volume").topic == "volume"
    assert db_host.service_get("h9", "virtstack-compute") is None


def test_concurrent_first_heartbeats_make_one_row(any_database):
    results = race(5, lambda i: db_host.service_heartbeat("h1", "virtstack-compute", "compute"))
    assert all(isinstance(r, models.Service) for r in results), results
    [row] = db_host.services()
    assert row.report_count == 5


def test_concurrent_first_node_updates_make_one_row(any_database):
    results = race(5, lambda i: db_host.node_update("h1", "n1", dict(RES, running_vms=i)))
    assert all(isinstance(r, models.ComputeNode) for r in results), results
    [row] = db_host.nodes()
    assert len({r.uuid for r in results}) == 1 and row.uuid == results[0].uuid


def test_service_is_up_follows_service_down_time(any_database, conf):
    conf.config(service_down_time=30, group="compute")
    db_host.service_heartbeat("h1", "virtstack-compute", "compute")
    assert db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))
    _age_service("h1", "virtstack-compute", 25)
    assert db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))
    _age_service("h1", "virtstack-compute", 35)
    assert not db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))
    conf.config(service_down_time=60, group="compute")
    assert db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))
    # A heartbeat brings it back.
    conf.config(service_down_time=30, group="compute")
    db_host.service_heartbeat("h1", "virtstack-compute", "compute")
    assert db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))


def test_service_without_heartbeat_is_down(any_database):
    assert not db_host.service_is_up(None)
    with db_api.session() as sess:
        sess.add(models.Service(host="h1", binary="virtstack-compute", topic="compute"))
    assert not db_host.service_is_up(db_host.service_get("h1", "virtstack-compute"))


# -- nodes ---------------------------------------------------------------------

def test_node_update_is_an_upsert(any_database):
    created = _node()
    assert created.uuid and created.memory_mb == 1024 and created.hypervisor_type == "fake"
    updated = db_host.node_update("h1", "n1", {"memory_mb": 2048, "running_vms": 3,
                                               "not_a_field": 1})
    assert updated.id == created.id and updated.uuid == created.uuid
    assert (updated.memory_mb, updated.running_vms, updated.vcpus) == (2048, 3, 4)
    db_host.node_update("h1", "n2", RES)
    db_host.node_update("h2", "n1", RES)
    assert [(n.host, n.hypervisor_hostname) for n in db_host.nodes()] == \
        [("h1", "n1"), ("h1", "n2"), ("h2", "n1")]


def test_node_get_by_uuid_or_id(any_database):
    node = _node()
    assert db_host.node_get(node.uuid).id == node.id
    assert db_host.node_get(str(node.id)).uuid == node.uuid
    for missing in ("no-such-node", "999999"):
        with pytest.raises(exception.HypervisorNotFound) as err:
            db_host.node_get(missing)
        assert err.value.code == 404 and missing in err.value.format_message()


def test_node_claim_within_capacity(any_database, exact_ratios):
    node = _node()
    assert db_host.node_claim(node.id, 2, 512, 5)
    assert db_host.node_claim(node.id, 2, 512, 5)
    after = db_host.node_get(node.uuid)
    assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used, after.running_vms) == \
        (4, 1024, 10, 2)
    # Full on every axis: any further claim fails and changes nothing.
    for vcpus, ram, disk in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        assert not db_host.node_claim(node.id, vcpus, ram, disk)
    assert db_host.node_get(node.uuid).running_vms == 2
    assert not db_host.node_claim(999999, 0, 0, 0)


@pytest.mark.parametrize("vcpus,ram,disk", [(5, 1, 1), (1, 1025, 1), (1, 1, 11)])
def test_node_claim_beyond_capacity_fails(any_database, exact_ratios, vcpus, ram, disk):
    node = _node()
    assert not db_host.node_claim(node.id, vcpus, ram, disk)
    after = db_host.node_get(node.uuid)
    assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used, after.running_vms) == \
        (0, 0, 0, 0)


def test_node_claim_honours_allocation_ratios(any_database, conf):
    conf.config(cpu_allocation_ratio=2.0, ram_allocation_ratio=1.5, disk_allocation_ratio=1.0,
                group="compute")
    node = _node()
    assert db_host.node_claim(node.id, 8, 1536, 10)      # 4x2 cpus, 1024x1.5 MiB
    assert not db_host.node_claim(node.id, 1, 0, 0)


def test_concurrent_claims_never_overcommit(any_database, exact_ratios):
    """20 racing claims of 100 MiB against room for K=7: exactly 7 win."""
    k, n = 7, 20
    node = _node(memory_mb=100 * k, vcpus=64, local_gb=1000)
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def claim(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = db_host.node_claim(node.id, 1, 100, 1)
        except Exception as exc:  # a database error is a failure of the claim logic
            results[i] = exc

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)  # explicit here: the claim race is the point
    assert all(isinstance(r, bool) for r in results), results
    assert results.count(True) == k
    after = db_host.node_get(node.uuid)
    assert (after.memory_mb_used, after.vcpus_used, after.running_vms) == (100 * k, k, k)


def test_node_release_gives_back_the_claim(any_database, exact_ratios):
    node = _node()
    assert db_host.node_claim(node.id, 4, 1024, 10)
    assert not db_host.node_claim(node.id, 1, 1, 1)
    db_host.node_release("h1", "n1", 4, 1024, 10)
    after = db_host.node_get(node.uuid)
    assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used, after.running_vms) == \
        (0, 0, 0, 0)
    assert db_host.node_claim(node.id, 1, 1, 1)
    # Releasing on another node touches nothing here.
    db_host.node_release("h1", "other", 1, 1, 1)
    assert db_host.node_get(node.uuid).running_vms == 1


def test_node_release_never_goes_negative(any_database, exact_ratios):
    """A release that was already given back (drift) leaves zero, not less."""
    node = _node()
    assert db_host.node_claim(node.id, 1, 100, 1)
    db_host.node_release("h1", "n1", 1, 100, 1)
    db_host.node_release("h1", "n1", 1, 100, 1)
    after = db_host.node_get(node.uuid)
    assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used, after.running_vms) == \
        (0, 0, 0, 0)
