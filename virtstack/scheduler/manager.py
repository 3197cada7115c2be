"""The scheduler: filters + weighers over compute-node records, then a claim."""

from __future__ import annotations

import logging
from typing import Any

from virtstack import exception
from virtstack.db import host as db_host
from virtstack.scheduler import filters

LOG = logging.getLogger(__name__)


class Scheduler:
    """Chooses and claims a node. Runs in the API process: it reads the
    database only, and the claim is one atomic UPDATE."""

    def select_and_claim(self, request: dict[str, Any]) -> tuple[str, str]:
        """(host, node) now holding ``request``'s resources; ``NoValidHost``
        with the reason when none fits."""
        services = {s.host: s for s in db_host.services("virtstack-compute")}
        nodes = db_host.nodes()
        candidates = nodes
        for name, check in filters.FILTERS.items():
            candidates = [n for n in candidates if check(n, request, services)]
            if not candidates:
                reason = (f"{len(nodes)} compute node(s); none passed {name} "
                          f"for vcpus={request['vcpus']}, ram={request['memory_mb']}MB, "
                          f"disk={request['root_gb']}GB")
                raise exception.NoValidHost(reason=reason)
        for weigher in filters.WEIGHERS.values():
            candidates.sort(key=weigher, reverse=True)
        for node in candidates:
            if db_host.node_claim(node.id, request["vcpus"], request["memory_mb"], request["root_gb"]):
                return node.host, node.hypervisor_hostname
            LOG.debug("Claim on %s lost a race; trying the next node", node.hypervisor_hostname)
        raise exception.NoValidHost(reason="every candidate node filled up while claiming")
