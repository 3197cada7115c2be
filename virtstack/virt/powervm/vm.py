"""One LPAR per instance: build it from the flavor, create, resize, delete,
power it, and read its state.

The LPAR's UUID is the instance uuid in PowerVM form
(``pypowervm.utils.uuid.convert_uuid_to_pvm``: PowerVM wants the top bit
clear), so an instance's LPAR is found with one GET; its name is the
instance's hypervisor-side name.

Flavor to LPAR (``lpar_attributes``): memory_mb and vcpus, shared
processors at ``[powervm] proc_units_factor`` processing units per vCPU,
simplified remote restart on, and these ``powervm:*`` extra specs (any other
``powervm:`` key is refused, like an invalid value):

==============================  =============================================
extra spec                      LPAR attribute (pypowervm LPARBuilder)
==============================  =============================================
powervm:min_mem / max_mem       minimum / maximum memory (MB)
powervm:min_vcpu / max_vcpu     minimum / maximum virtual processors
powervm:proc_units              processing units (overrides the factor)
powervm:min_proc_units /        minimum / maximum processing units
  max_proc_units
powervm:dedicated_proc          dedicated processors (true/false)
powervm:uncapped                uncapped (true) or capped shared processors
powervm:dedicated_sharing_mode  share_idle_procs, keep_idle_procs,
                                share_idle_procs_active, ..._always
powervm:shared_weight           uncapped weight (0-255)
powervm:availability_priority   availability priority (0-255)
powervm:processor_compatibility e.g. POWER8 (``+`` written ``_Plus``)
powervm:srr_capability          simplified remote restart (true/false)
==============================  =============================================
"""

from __future__ import annotations

import logging
from typing import Any

from pypowervm import exceptions as pvm_exc
from pypowervm import util as pvm_util
from pypowervm.tasks import power as pvm_power
from pypowervm.tasks import power_opts as pvm_popts
from pypowervm.utils import lpar_builder as pvm_bldr
from pypowervm.utils import uuid as pvm_uuid_util
from pypowervm.wrappers import base_partition as pvm_bp
from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import managed_system as pvm_ms

from virtstack import exception
from virtstack.objects import Flavor, Instance
from virtstack.virt import power_state

LOG = logging.getLogger(__name__)

#: PowerVM partition state -> power state. A partition that is starting,
#: in open firmware or shutting down is still running; migrating ones are
#: what they were; anything unknown is NOSTATE.
LPAR_POWER_STATE: dict[str, int] = {
    pvm_bp.LPARState.RUNNING: power_state.RUNNING,
    pvm_bp.LPARState.STARTING: power_state.RUNNING,
    pvm_bp.LPARState.OPEN_FIRMWARE: power_state.RUNNING,
    pvm_bp.LPARState.SHUTTING_DOWN: power_state.RUNNING,
    pvm_bp.LPARState.MIGRATING_RUNNING: power_state.RUNNING,
    pvm_bp.LPARState.SUSPENDING: power_state.RUNNING,
    pvm_bp.LPARState.NOT_ACTIVATED: power_state.SHUTDOWN,
    pvm_bp.LPARState.MIGRATING_NOT_ACTIVE: power_state.SHUTDOWN,
    pvm_bp.LPARState.SUSPENDED: power_state.SUSPENDED,
    pvm_bp.LPARState.RESUMING: power_state.SUSPENDED,
    pvm_bp.LPARState.ERROR: power_state.CRASHED,
}

_DIRECT_SPECS = {
    "powervm:min_mem": pvm_bldr.MIN_MEM,
    "powervm:max_mem": pvm_bldr.MAX_MEM,
    "powervm:min_vcpu": pvm_bldr.MIN_VCPU,
    "powervm:max_vcpu": pvm_bldr.MAX_VCPU,
    "powervm:proc_units": pvm_bldr.PROC_UNITS,
    "powervm:min_proc_units": pvm_bldr.MIN_PROC_U,
    "powervm:max_proc_units": pvm_bldr.MAX_PROC_U,
    "powervm:shared_weight": pvm_bldr.UNCAPPED_WEIGHT,
    "powervm:availability_priority": pvm_bldr.AVAIL_PRIORITY,
}
_BOOL_SPECS = {
    "powervm:dedicated_proc": pvm_bldr.DED_PROCS,
    "powervm:srr_capability": pvm_bldr.SRR_CAPABLE,
}
_DEDICATED_SHARING = {
    "share_idle_procs": pvm_bp.DedicatedSharingMode.SHARE_IDLE_PROCS,
    "keep_idle_procs": pvm_bp.DedicatedSharingMode.KEEP_IDLE_PROCS,
    "share_idle_procs_active": pvm_bp.DedicatedSharingMode.SHARE_IDLE_PROCS_ACTIVE,
    "share_idle_procs_always": pvm_bp.DedicatedSharingMode.SHARE_IDLE_PROCS_ALWAYS,
}


def pvm_uuid(instance: Instance) -> str:
    """The LPAR UUID of ``instance``."""
    return pvm_uuid_util.convert_uuid_to_pvm(instance.uuid).upper()


def _bool_spec(key: str, value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise exception.Invalid(reason=f"flavor extra spec {key} must be true or false, "
                                   f"not {value!r}")


def lpar_attributes(instance: Instance, flavor: Flavor | None = None) -> dict[str, Any]:
    """LPARBuilder attributes for ``instance`` (its own flavor unless
    ``flavor`` is given, as for a resize). ``Invalid`` for an unknown
    ``powervm:*`` extra spec or a bad value."""
    flavor = flavor or instance.flavor
    attrs: dict[str, Any] = {
        pvm_bldr.NAME: pvm_util.sanitize_partition_name_for_api(instance.name),
        pvm_bldr.UUID: pvm_uuid(instance),
        pvm_bldr.MEM: flavor.memory_mb,
        pvm_bldr.VCPU: flavor.vcpus,
        pvm_bldr.SRR_CAPABLE: True,
    }
    for key, value in sorted(flavor.extra_specs.items()):
        if not key.startswith("powervm:"):
            continue
        if key in _DIRECT_SPECS:
            attrs[_DIRECT_SPECS[key]] = value
        elif key in _BOOL_SPECS:
            attrs[_BOOL_SPECS[key]] = _bool_spec(key, value)
        elif key == "powervm:uncapped":
            attrs[pvm_bldr.SHARING_MODE] = (pvm_bp.SharingMode.UNCAPPED if _bool_spec(key, value)
                                            else pvm_bp.SharingMode.CAPPED)
        elif key == "powervm:dedicated_sharing_mode":
            if value not in _DEDICATED_SHARING:
                raise exception.Invalid(reason=(
                    f"flavor extra spec {key} must be one of {', '.join(_DEDICATED_SHARING)}, "
                    f"not {value!r}"))
            attrs[pvm_bldr.SHARING_MODE] = _DEDICATED_SHARING[value]
        elif key == "powervm:processor_compatibility":
            attrs[pvm_bldr.PROC_COMPAT] = value.replace("+", "_Plus")
        else:
            raise exception.Invalid(reason=f"unknown PowerVM flavor extra spec {key}")
    return attrs


def build_lpar(adapter, host_w: pvm_ms.System, instance: Instance, proc_units_factor: float,
               flavor: Flavor | None = None) -> pvm_lpar.LPAR:
    """The LPAR wrapper (not yet created) for ``instance``; ``Invalid`` when
    the flavor asks for something this host cannot give."""
    stdz = pvm_bldr.DefaultStandardize(host_w, proc_units_factor=proc_units_factor)
    try:
        return pvm_bldr.LPARBuilder(adapter, lpar_attributes(instance, flavor), stdz).build()
    except (pvm_bldr.LPARBuilderException, ValueError) as exc:
        raise exception.Invalid(reason=f"flavor {(flavor or instance.flavor).name} cannot "
                                       f"be an LPAR here: {exc}")


def find_lpar(adapter, instance: Instance) -> pvm_lpar.LPAR | None:
    """The instance's LPAR, or None."""
    try:
        return pvm_lpar.LPAR.get(adapter, uuid=pvm_uuid(instance))
    except pvm_exc.HttpNotFound:
        return None


def get_lpar(adapter, instance: Instance) -> pvm_lpar.LPAR:
    """The instance's LPAR; ``InstanceNotFound`` if it has none."""
    lpar = find_lpar(adapter, instance)
    if lpar is None:
        raise exception.InstanceNotFound(instance_id=instance.uuid)
    return lpar


def list_lpars(adapter) -> list[pvm_lpar.LPAR]:
    """Every client LPAR (not VIOSes, not the management partition)."""
    return [lpar for lpar in pvm_lpar.LPAR.get(adapter) if not lpar.is_mgmt_partition]


def create_lpar(adapter, host_w: pvm_ms.System, instance: Instance,
                proc_units_factor: float) -> pvm_lpar.LPAR:
    """Create the LPAR (powered off); ``InstanceExists`` if one with this
    uuid is there already."""
    if find_lpar(adapter, instance) is not None:
        raise exception.InstanceExists(name=instance.name)
    lpar = build_lpar(adapter, host_w, instance, proc_units_factor)
    created = lpar.create(parent=host_w)
    LOG.info("Created LPAR %s (id %s) for %s", created.name, created.id, instance.uuid)
    return created


def update_lpar(adapter, host_w: pvm_ms.System, instance: Instance, flavor: Flavor,
                proc_units_factor: float) -> pvm_lpar.LPAR:
    """Resize the (powered off) LPAR to ``flavor``."""
    lpar = get_lpar(adapter, instance)
    wanted = build_lpar(adapter, host_w, instance, proc_units_factor, flavor)
    lpar.mem_config = wanted.mem_config
    lpar.proc_config = wanted.proc_config
    return lpar.update()


def delete_lpar(adapter, instance: Instance) -> bool:
    """Power off and delete the LPAR; whether there was one. Idempotent."""
    lpar = find_lpar(adapter, instance)
    if lpar is None:
        return False
    if lpar.state != pvm_bp.LPARState.NOT_ACTIVATED:
        power_off(adapter, instance, lpar=lpar)
    try:
        lpar.delete()
    except pvm_exc.HttpNotFound:
        return False
    LOG.info("Deleted LPAR %s of %s", lpar.name, instance.uuid)
    return True


def state_of(lpar: pvm_lpar.LPAR) -> int:
    return LPAR_POWER_STATE.get((lpar.state or "").lower(), power_state.NOSTATE)


def power_on(adapter, instance: Instance) -> None:
    """Start the LPAR; starting a running one succeeds."""
    lpar = get_lpar(adapter, instance)
    if lpar.state == pvm_bp.LPARState.NOT_ACTIVATED:
        pvm_power.PowerOp.start(lpar)


def power_off(adapter, instance: Instance, timeout: int = 0,
              lpar: pvm_lpar.LPAR | None = None) -> None:
    """Stop the LPAR: with ``timeout`` an OS shutdown first (RMC) for at most
    that long, then a hard VSP shutdown; at once without. Stopping a stopped
    LPAR succeeds."""
    lpar = lpar or get_lpar(adapter, instance)
    if lpar.state == pvm_bp.LPARState.NOT_ACTIVATED:
        return
    if timeout:
        pvm_power.power_off_progressive(lpar, timeout=timeout)
    else:
        pvm_power.PowerOp.stop(lpar, opts=pvm_popts.PowerOffOpts().vsp_hard())


def reboot(adapter, instance: Instance, hard: bool, timeout: int) -> None:
    """HARD: VSP hard shutdown with restart (or a plain start when off).
    SOFT: OS shutdown with restart, escalating to VSP after ``timeout``."""
    lpar = get_lpar(adapter, instance)
    if lpar.state == pvm_bp.LPARState.NOT_ACTIVATED:
        pvm_power.PowerOp.start(lpar)
        return
    if hard:
        pvm_power.PowerOp.stop(lpar, opts=pvm_popts.PowerOffOpts().vsp_hard().restart())
    else:
        pvm_power.power_off_progressive(lpar, restart=True, timeout=timeout)
