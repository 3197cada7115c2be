"""Disk adapters: where boot disks live. One registry, ``DISK_DRIVERS``,
keyed by ``[powervm] disk_driver``."""

from __future__ import annotations

from typing import Any

from virtstack import exception, registry
from virtstack.virt.powervm.disk.driver import DiskAdapter

#: disk_driver name -> "module:Class"
DISK_DRIVERS: dict[str, str] = {
    "localdisk": "virtstack.virt.powervm.disk.localdisk:LocalDisk",
    "ssp": "virtstack.virt.powervm.disk.ssp:SSPDisk",
}


def disk_adapter_class(name: str) -> type[DiskAdapter]:
    """The class registered as ``name``; ``ConfigError`` naming the known ones."""
    try:
        target = DISK_DRIVERS[name]
    except KeyError:
        raise exception.ConfigError(reason=(
            f"[powervm] disk_driver {name!r} is unknown; available: "
            f"{', '.join(sorted(DISK_DRIVERS))}"))
    return registry.load_target(target)


def get_disk_adapter(name: str, adapter: Any, host_uuid: str, **options: Any) -> DiskAdapter:
    """Make the disk adapter ``name`` with its options (``volume_group_name``
    for localdisk, ``cluster_name`` for ssp)."""
    return disk_adapter_class(name)(adapter, host_uuid, **options)
