"""Building a server on this host.

Inputs (store, persisted): ``instance_uuid``, ``image_id``.
Inputs (transient, supplied again on recovery): ``driver`` (ComputeDriver),
``context`` (RequestContext), ``instance`` (objects.Instance),
``image_meta`` (objects.ImageMeta), ``volume_api`` (volume.api.VolumeAPI,
used by the volume tasks only).

    ReleaseClaimOnFailure → [PlugVifs, when there are networks]
      → [volume tasks, when it has volumes: flows/boot_volume.py]
      → DriverSpawn → [CompleteAttachment per volume] → MarkActive

A failure in any task reverts the earlier ones: the guest is destroyed, VIFs
unplugged, volume attachments deleted and volumes made for the server
deleted, the resource claim given back; the manager then records ERROR and
the fault.
"""

from __future__ import annotations

import logging

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack.compute import states
from virtstack.compute.flows import boot_volume
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
    """The hypervisor builds and starts the guest; revert destroys it.
    ``block_device_info`` (optional, from BuildBlockDeviceInfo): its volumes."""

    def execute(self, driver, context, instance, image_meta, block_device_info=None):
        db_instance.update(instance.uuid, {"task_state": states.SPAWNING})
        if driver.instance_exists(instance):
            # A resumed flow: the spawn ran before the crash. Start over
            # cleanly rather than trust a half-built guest.
            driver.destroy(context, instance, block_device_info=block_device_info)
        driver.spawn(context, instance, image_meta, block_device_info=block_device_info)

    def revert(self, driver, context, instance, block_device_info=None, *args, **kwargs):
        driver.destroy(context, instance, block_device_info=block_device_info)


class MarkActive(task.Task):
    """Record the running guest: ACTIVE, its power state, launched_at."""

    def execute(self, driver, instance):
        power = driver.get_info(instance).state
        db_instance.transition(instance.uuid, [states.BUILDING], None, {
            "vm_state": states.ACTIVE, "task_state": None, "power_state": power,
            "launched_at": models.utcnow()})


def get_flow(with_vifs: bool = False, volumes: list[dict] | None = None) -> linear_flow.Flow:
    """The spawn flow (module level: the runner rebuilds it on recovery,
    with the same arguments). ``with_vifs``: the server has networks to plug;
    without, the step is left out rather than persisted as a no-op.
    ``volumes``: specs of the server's volumes (see ``boot_volume``)."""
    flow = linear_flow.Flow("spawn").add(ReleaseClaimOnFailure("release_claim_on_failure"))
    if with_vifs:
        flow.add(PlugVifs("plug_vifs"))
    if volumes:
        boot_volume.add_prepare_tasks(flow, volumes)
    flow.add(DriverSpawn("driver_spawn"))
    if volumes:
        boot_volume.add_complete_tasks(flow, volumes)
    return flow.add(MarkActive("mark_active"))
