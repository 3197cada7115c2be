"""Building a server on this host.

Inputs (store, persisted): ``instance_uuid``, ``image_id``.
Inputs (transient, supplied again on recovery): ``driver`` (ComputeDriver),
``context`` (RequestContext), ``instance`` (objects.Instance),
``image_meta`` (objects.ImageMeta).

    ReleaseClaimOnFailure → [PlugVifs, when there are networks] → DriverSpawn → MarkActive

A failure in any task reverts the earlier ones: the guest is destroyed, VIFs
unplugged, the resource claim given back; the manager then records ERROR and
the fault.
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack.compute import states
from virtstack.db import host as db_host
from virtstack.db import instance as db_instance
from virtstack.db import models

LOG = logging.getLogger(__name__)


class ReleaseClaimOnFailure(task.Task):
    """Nothing to do going forward (the scheduler claimed); on revert, give
    the claim back and take the instance off the host."""

    def execute(self, instance):
        pass

    def revert(self, instance, *args, **kwargs):
        if instance.host and instance.node:
            db_host.node_release(instance.host, instance.node, instance.flavor.vcpus,
                                 instance.flavor.memory_mb, instance.flavor.root_gb)
            db_instance.update(instance.uuid, {"host": None, "node": None})


class PlugVifs(task.Task):
    """Host side of the guest's NICs (no-op until networking exists)."""

    def execute(self, driver, instance, network_info=None):
        if network_info and driver.supports("vif_plugging"):
            driver.plug_vifs(instance, network_info)

    def revert(self, driver, instance, network_info=None, *args, **kwargs):
        if network_info and driver.supports("vif_plugging"):
            driver.unplug_vifs(instance, network_info)


class DriverSpawn(task.Task):
    """The hypervisor builds and starts the guest; revert destroys it."""

    def execute(self, driver, context, instance, image_meta):
        db_instance.update(instance.uuid, {"task_state": states.SPAWNING})
        if driver.instance_exists(instance):
            # A resumed flow: the spawn ran before the crash. Start over
            # cleanly rather than trust a half-built guest.
            driver.destroy(context, instance)
        driver.spawn(context, instance, image_meta)

    def revert(self, driver, context, instance, *args, **kwargs):
        driver.destroy(context, instance)


class MarkActive(task.Task):
    """Record the running guest: ACTIVE, its power state, launched_at."""

    def execute(self, driver, instance):
        power = driver.get_info(instance).state
        db_instance.transition(instance.uuid, [states.BUILDING], None, {
            "vm_state": states.ACTIVE, "task_state": None, "power_state": power,
            "launched_at": models.utcnow()})


def get_flow(with_vifs: bool = False) -> linear_flow.Flow:
    """The spawn flow (module level: the runner rebuilds it on recovery,
    with the same arguments). ``with_vifs``: the server has networks to plug;
    without, the step is left out rather than persisted as a no-op."""
    flow = linear_flow.Flow("spawn").add(ReleaseClaimOnFailure("release_claim_on_failure"))
    if with_vifs:
        flow.add(PlugVifs("plug_vifs"))
    return flow.add(DriverSpawn("driver_spawn"), MarkActive("mark_active"))
