"""Service heartbeats and compute-node resource records."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa

from virtstack import exception
from virtstack.conf import CONF
from virtstack.db import api as db_api
from virtstack.db import models

_NODE_FIELDS = ("hypervisor_type", "hypervisor_version", "vcpus", "memory_mb", "local_gb",
                "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "cpu_info",
                "host_ip")


def service_heartbeat(host: str, binary: str, topic: str) -> models.Service:
    """Record that ``binary`` on ``host`` is alive (creating its row).

    Safe to race: the count is incremented in the database, and of two
    first heartbeats one creates the row and the other updates it."""
    S = models.Service

    def beat() -> models.Service:
        now = models.utcnow()
        with db_api.session() as sess:
            done = sess.execute(
                sa.update(S).where(S.host == host, S.binary == binary)
                .values(last_seen_up=now, report_count=S.report_count + 1, updated_at=now)
                .execution_options(synchronize_session=False)).rowcount
            if not done:
                sess.add(S(host=host, binary=binary, topic=topic, last_seen_up=now,
                           report_count=1))
                sess.flush()
            return sess.scalars(sa.select(S).where(S.host == host, S.binary == binary)).one()

    return _retry_on_duplicate(beat)


def _retry_on_duplicate(fn):
    """Run ``fn``; once more if it lost an insert race (a unique constraint
    fired because a concurrent caller created the row first)."""
    try:
        return fn()
    except sa.exc.IntegrityError:
        return fn()


def service_get(host: str, binary: str) -> models.Service | None:
    S = models.Service
    with db_api.reader() as sess:
        return sess.scalars(sa.select(S).where(S.host == host, S.binary == binary)).first()


def services(binary: str | None = None) -> list[models.Service]:
    S = models.Service
    q = sa.select(S).order_by(S.id)
    if binary:
        q = q.where(S.binary == binary)
    with db_api.reader() as sess:
        return list(sess.scalars(q))


def service_is_up(row: models.Service | None) -> bool:
    if row is None or row.last_seen_up is None:
        return False
    age = models.utcnow() - row.last_seen_up
    return age <= datetime.timedelta(seconds=CONF.compute.service_down_time)


def node_update(host: str, node: str, resources: dict[str, Any]) -> models.ComputeNode:
    """Create or refresh the record of ``node`` from driver-reported resources
    (safe to race: one caller creates the row, the others update it)."""
    C = models.ComputeNode
    values = {k: resources[k] for k in _NODE_FIELDS if k in resources}

    def upsert() -> models.ComputeNode:
        with db_api.session() as sess:
            row = sess.scalars(sa.select(C).where(C.host == host,
                                                  C.hypervisor_hostname == node)).first()
            if row is None:
                row = C(uuid=str(uuidlib.uuid4()), host=host, hypervisor_hostname=node,
                        hypervisor_type=resources.get("hypervisor_type", "unknown"))
                sess.add(row)
            for key, value in values.items():
                setattr(row, key, value)
        return row

    return _retry_on_duplicate(upsert)


def nodes() -> list[models.ComputeNode]:
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(models.ComputeNode).order_by(models.ComputeNode.id)))


def node_get(node_id: str) -> models.ComputeNode:
    """A node by its uuid or integer id (the API accepts both)."""
    C = models.ComputeNode
    with db_api.reader() as sess:
        q = sa.select(C).where(C.uuid == node_id)
        row = sess.scalars(q).first()
        if row is None and str(node_id).isdigit():
            row = sess.get(C, int(node_id))
    if row is None:
        raise exception.HypervisorNotFound(hypervisor_id=node_id)
    return row


def node_claim(node_id: int, vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    """Atomically take resources on a node if they fit under the allocation
    ratios (one UPDATE, so concurrent claims cannot overcommit)."""
    C = models.ComputeNode
    cpu_r, ram_r, disk_r = (CONF.compute.cpu_allocation_ratio, CONF.compute.ram_allocation_ratio,
                            CONF.compute.disk_allocation_ratio)
    q = (sa.update(C).where(
        C.id == node_id,
        C.vcpus * cpu_r - C.vcpus_used >= vcpus,
        C.memory_mb * ram_r - C.memory_mb_used >= memory_mb,
        C.local_gb * disk_r - C.local_gb_used >= disk_gb)
        .values(vcpus_used=C.vcpus_used + vcpus, memory_mb_used=C.memory_mb_used + memory_mb,
                local_gb_used=C.local_gb_used + disk_gb, running_vms=C.running_vms + 1)
        .execution_options(synchronize_session=False))
    with db_api.session() as sess:
        return sess.execute(q).rowcount == 1


def node_release(host: str, node: str, vcpus: int, memory_mb: int, disk_gb: int) -> None:
    """Give back what ``node_claim`` took. Usage never drops below zero (a
    release repeated after a crash would otherwise make room that is not
    there); the periodic resource update recomputes usage from the
    instances, correcting any drift."""
    C = models.ComputeNode

    def minus(col, amount: int):
        return sa.case((col > amount, col - amount), else_=0)

    q = (sa.update(C).where(C.host == host, C.hypervisor_hostname == node)
         .values(vcpus_used=minus(C.vcpus_used, vcpus),
                 memory_mb_used=minus(C.memory_mb_used, memory_mb),
                 local_gb_used=minus(C.local_gb_used, disk_gb),
                 running_vms=minus(C.running_vms, 1))
         .execution_options(synchronize_session=False))
    with db_api.session() as sess:
        sess.execute(q)
