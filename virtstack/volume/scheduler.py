"""Choosing a pool for a new volume: among the pools of live volume
services, the one with the most room that can take the size, claimed with
one atomic UPDATE (``db.volume.pool_claim``), so that concurrent creates
cannot overcommit a pool. Runs in the API process and reads the database
only."""

from __future__ import annotations

import logging

from virtstack import exception
from virtstack.db import host as db_host
from virtstack.db import volume as db_volume

LOG = logging.getLogger(__name__)

BINARY = "virtstack-volume"


class VolumeScheduler:
    def live_pools(self):
        """Pools whose volume service is up and enabled."""
        services = {s.host: s for s in db_host.services(BINARY)}
        return [p for p in db_volume.pools() if not p.disabled
                and p.host in services and not services[p.host].disabled
                and db_host.service_is_up(services[p.host])]

    def select_and_claim(self, size_gb: int, pool: str | None = None) -> str:
        """The name of the pool now holding ``size_gb`` for the caller.
        ``pool``: only that pool will do (a copy of a snapshot or volume
        stays on its source's backend). ``NoValidBackend`` with the reason
        when none can take it."""
        live = self.live_pools()
        candidates = [p for p in live if pool is None or p.name == pool]
        if not candidates:
            if pool is not None:
                raise exception.NoValidBackend(
                    reason=f"The volume service of pool {pool} is not running.")
            raise exception.NoValidBackend(reason="No volume service is running.")
        fits = [p for p in candidates if p.total_gb - p.allocated_gb >= size_gb]
        if not fits:
            room = max(p.total_gb - p.allocated_gb for p in candidates)
            raise exception.NoValidBackend(
                reason=f"Insufficient free space for volume creation: {size_gb}G requested, "
                       f"the pool with the most room has {max(room, 0)}G free.")
        fits.sort(key=lambda p: p.total_gb - p.allocated_gb, reverse=True)
        for candidate in fits:
            if db_volume.pool_claim(candidate.name, size_gb):
                return candidate.name
            LOG.debug("Claim on pool %s lost a race; trying the next", candidate.name)
        raise exception.NoValidBackend(
            reason=f"Insufficient free space for volume creation: every pool filled up while "
                   f"claiming {size_gb}G.")

    def claim_on(self, pool: str, size_gb: int) -> None:
        """Claim ``size_gb`` more on ``pool`` (an extend); ``NoValidBackend``
        if it has no room."""
        if not db_volume.pool_claim(pool, size_gb):
            raise exception.NoValidBackend(
                reason=f"Insufficient free space on pool {pool} to grow by {size_gb}G.")
