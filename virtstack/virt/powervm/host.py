"""The managed system's resources as compute-node resources.

Totals come from the ManagedSystem: ``vcpus`` is its configurable
processing units (whole processors; shared-processor LPARs share them),
``memory_mb`` its configurable memory. What is used is counted from the
partitions defined on it (every LPAR and VIOS, running or not, as the
scheduler counts every instance): the sum of their desired virtual
processors (or dedicated processors) and of their desired memory, plus the
memory the hypervisor keeps for itself. Disk comes from the disk driver
(the volume group or the SSP).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import managed_system as pvm_ms
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack.virt.powervm.disk.driver import DiskAdapter

HYPERVISOR_TYPE = "phyp"
#: PowerVM (firmware) version as an int, as the hypervisors API shows it.
HYPERVISOR_VERSION = 8


def host_wrapper(adapter) -> pvm_ms.System:
    """The one managed system this session manages."""
    return pvm_ms.System.get(adapter)[0]


def _partition_usage(partition) -> tuple[int, int]:
    """(virtual processors, memory MB) a partition asks for."""
    proc = partition.proc_config
    if proc.has_dedicated:
        vcpus = proc.dedicated_proc_cfg.desired
    else:
        vcpus = proc.shared_proc_cfg.desired_virtual
    return int(vcpus or 0), int(partition.mem_config.desired or 0)


def resources(adapter, nodename: str, disk: DiskAdapter) -> dict[str, Any]:
    host_w = host_wrapper(adapter)
    partitions = list(pvm_lpar.LPAR.get(adapter)) + list(pvm_vios.VIOS.get(adapter))
    vcpus_used = memory_used = 0
    for partition in partitions:
        vcpus, memory = _partition_usage(partition)
        vcpus_used += vcpus
        memory_used += memory
    memory_used += int(host_w.firmware_memory or 0)
    total_gb, used_gb = disk.capacity_gb()
    return {
        "vcpus": int(math.floor(float(host_w.proc_units_configurable))),
        "memory_mb": int(host_w.memory_configurable),
        "local_gb": int(total_gb),
        "vcpus_used": vcpus_used,
        "memory_mb_used": memory_used,
        "local_gb_used": int(math.ceil(used_gb)),
        "hypervisor_type": HYPERVISOR_TYPE,
        "hypervisor_version": HYPERVISOR_VERSION,
        "hypervisor_hostname": nodename,
        "cpu_info": json.dumps({"arch": "ppc64le", "vendor": "IBM",
                                "model": host_w.mtms.mtms_str,
                                "proc_units": float(host_w.proc_units_configurable)}),
    }


def uptime() -> str:
    """The ``uptime`` line of the management partition the driver runs on."""
    with open("/proc/uptime", encoding="ascii") as f:
        seconds = float(f.read().split()[0])
    days, rest = divmod(int(seconds), 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    if days:
        up = f"{days} day{'s' if days != 1 else ''}, {up}"
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f" {time.strftime('%H:%M:%S')} up {up},  0 users,  load average: {load}"
