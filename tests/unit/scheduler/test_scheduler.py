"""The scheduler: filters, the RAM weigher, NoValidHost reasons, and the
claim that falls back to the next node when it loses a race."""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import host as db_host
from virtstack.db import models
from virtstack.scheduler import filters
from virtstack.scheduler import manager as scheduler

BINARY = "virtstack-compute"
SMALL = {"vcpus": 1, "memory_mb": 256, "root_gb": 1}


@pytest.fixture
def ratios(conf):
    for name in ("cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio"):
        conf.config(**{name: 1.0}, group="compute")
    conf.config(service_down_time=60, group="compute")


def add_host(host: str, vcpus=8, memory_mb=4096, local_gb=100, up=True, disabled=False,
             **used) -> models.ComputeNode:
    db_host.service_heartbeat(host, BINARY, "compute")
    with db_api.session() as sess:
        values: dict = {"disabled": disabled}
        if not up:
            values["last_seen_up"] = models.utcnow() - datetime.timedelta(hours=1)
        sess.execute(sa.update(models.Service).where(models.Service.host == host).values(**values))
    res = {"hypervisor_type": "fake", "vcpus": vcpus, "memory_mb": memory_mb,
           "local_gb": local_gb, **used}
    return db_host.node_update(host, f"{host}-node", res)


def pick(request=SMALL) -> tuple[str, str]:
    return scheduler.Scheduler().select_and_claim(dict(request))


def used_ram(host: str) -> int:
    [node] = [n for n in db_host.nodes() if n.host == host]
    return node.memory_mb_used


def test_picks_the_node_with_most_free_ram(database, ratios):
    add_host("a", memory_mb=4096, memory_mb_used=3000)
    add_host("b", memory_mb=8192, memory_mb_used=1000)
    add_host("c", memory_mb=4096)
    assert pick() == ("b", "b-node")
    assert used_ram("b") == 1256
    assert used_ram("a") == 3000 and used_ram("c") == 0


def test_weigher_orders_by_free_ram_with_the_ratio(database, conf):
    conf.config(ram_allocation_ratio=2.0, group="compute")
    add_host("x")
    node = db_host.nodes()[0]
    assert filters.free_ram_weigher(node) == 8192
    db_host.node_update("x", "x-node", {"memory_mb_used": 1000})
    assert filters.free_ram_weigher(db_host.nodes()[0]) == 7192


def test_down_and_disabled_services_are_filtered(database, ratios):
    add_host("down", memory_mb=65536, up=False)
    add_host("off", memory_mb=65536, disabled=True)
    add_host("ok", memory_mb=1024)
    assert pick() == ("ok", "ok-node")
    assert used_ram("down") == 0 and used_ram("off") == 0


def test_node_without_a_service_is_filtered(database, ratios):
    db_host.node_update("ghost", "ghost-node", {"hypervisor_type": "fake", "vcpus": 64,
                                                "memory_mb": 65536, "local_gb": 1000})
    add_host("ok")
    assert pick() == ("ok", "ok-node")


@pytest.mark.parametrize("request_,room,filter_name", [
    ({"vcpus": 1, "memory_mb": 2048, "root_gb": 1}, {"memory_mb_used": 3000}, "RamFilter"),
    ({"vcpus": 4, "memory_mb": 256, "root_gb": 1}, {"vcpus_used": 6}, "CoreFilter"),
    ({"vcpus": 1, "memory_mb": 256, "root_gb": 50}, {"local_gb_used": 60}, "DiskFilter"),
])
def test_nodes_without_room_are_filtered(database, ratios, request_, room, filter_name):
    add_host("full", **room)
    add_host("roomy")
    assert pick(request_) == ("roomy", "roomy-node")
    db_host.service_heartbeat("roomy", BINARY, "compute")
    with db_api.session() as sess:
        sess.execute(sa.update(models.Service).where(models.Service.host == "roomy")
                     .values(disabled=True))
    with pytest.raises(exception.NoValidHost) as err:
        pick(request_)
    msg = err.value.format_message()
    assert "ComputeFilter" not in msg  # 'full' is up: the capacity filter eliminated it
    assert filter_name in msg and "2 compute node(s)" in msg


def test_no_valid_host_names_the_eliminating_filter(database, ratios):
    add_host("down", up=False)
    with pytest.raises(exception.NoValidHost) as err:
        pick()
    msg = err.value.format_message()
    assert msg.startswith("No valid host was found.")
    assert "ComputeFilter" in msg and "1 compute node(s)" in msg
    assert "ram=256MB" in msg


def test_no_nodes_at_all(database, ratios):
    with pytest.raises(exception.NoValidHost) as err:
        pick()
    assert "0 compute node(s)" in err.value.format_message()


def test_claim_race_falls_back_to_the_next_node(database, ratios, monkeypatch):
    """Between the scheduler's read and its claim, a racing request fills the
    best node; the claim there fails and the next node is claimed."""
    best = add_host("best", memory_mb=8192)
    add_host("second", memory_mb=4096)
    raced = []

    def racing_request(node, req, services):
        if node.id == best.id and not raced:
            raced.append(node.host)
            assert db_host.node_claim(best.id, 1, 8192, 1)  # someone else wins it
        return True

    monkeypatch.setitem(filters.FILTERS, "RacingRequest", racing_request)
    assert pick() == ("second", "second-node")
    assert raced == ["best"]
    assert used_ram("best") == 8192 and used_ram("second") == 256


def test_every_candidate_lost_is_no_valid_host(database, ratios, monkeypatch):
    add_host("a", memory_mb=1024)
    add_host("b", memory_mb=1024)

    def racing_request(node, req, services):
        db_host.node_claim(node.id, 0, 1024, 0)  # the racer takes it all
        return True

    monkeypatch.setitem(filters.FILTERS, "RacingRequest", racing_request)
    with pytest.raises(exception.NoValidHost) as err:
        pick()
    assert "filled up while claiming" in err.value.format_message()
