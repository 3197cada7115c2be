"""Host filters and weighers. Each filter says whether a node can take the
request; weighers order the survivors (highest first)."""

from __future__ import annotations

from typing import Any, Callable

from virtstack.conf import CONF
from virtstack.db import host as db_host
from virtstack.db import models

Request = dict[str, Any]  # {"vcpus": int, "memory_mb": int, "root_gb": int}


def compute_enabled_and_up(node: models.ComputeNode, req: Request,
                           services: dict[str, models.Service]) -> bool:
    service = services.get(node.host)
    return service is not None and not service.disabled and db_host.service_is_up(service)


def enough_ram(node: models.ComputeNode, req: Request, services) -> bool:
    return node.memory_mb * CONF.compute.ram_allocation_ratio - node.memory_mb_used >= req["memory_mb"]


def enough_cores(node: models.ComputeNode, req: Request, services) -> bool:
    return node.vcpus * CONF.compute.cpu_allocation_ratio - node.vcpus_used >= req["vcpus"]


def enough_disk(node: models.ComputeNode, req: Request, services) -> bool:
    return node.local_gb * CONF.compute.disk_allocation_ratio - node.local_gb_used >= req["root_gb"]


FILTERS: dict[str, Callable[..., bool]] = {
    "ComputeFilter": compute_enabled_and_up,
    "RamFilter": enough_ram,
    "CoreFilter": enough_cores,
    "DiskFilter": enough_disk,
}


def free_ram_weigher(node: models.ComputeNode) -> float:
    return node.memory_mb * CONF.compute.ram_allocation_ratio - node.memory_mb_used


WEIGHERS: dict[str, Callable[[models.ComputeNode], float]] = {"RAMWeigher": free_ram_weigher}
