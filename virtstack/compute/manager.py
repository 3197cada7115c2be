"""The compute manager: one per host, the only caller of the driver.

It receives RPC from the API, serialises work per instance (a lock per
instance uuid), runs long operations as flows through the shared runner,
records instance actions and events, keeps the compute-node record and the
service heartbeat fresh, and keeps the database's power state in line with
the hypervisor's (lifecycle events first, a periodic sync as the backstop).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from typing import Any, Callable, Iterator

import oslo_messaging as messaging
from oslo_concurrency import lockutils

from virtstack import context as vs_context
from virtstack import exception, periodic
from virtstack.compute import block_devices, states
from virtstack.compute.flows import spawn as spawn_flow
from virtstack.conf import CONF
from virtstack.db import block_device as db_bd
from virtstack.db import host as db_host
from virtstack.db import image as db_image
from virtstack.db import instance as db_instance
from virtstack.flows import runner as flow_runner
from virtstack.image import store as image_store
from virtstack.virt import driver as virt_driver
from virtstack.virt import event as virtevent
from virtstack.virt import power_state

LOG = logging.getLogger(__name__)

BINARY = "virtstack-compute"

# Driver call for each simple action (the ones that are one driver call),
# given the driver, context, instance and block_device_info.
_ACTION_CALLS: dict[str, Callable[..., None]] = {
    "start": lambda d, ctx, inst, bdi: d.power_on(ctx, inst, block_device_info=bdi),
    "stop": lambda d, ctx, inst, bdi: d.power_off(inst, CONF.compute.shutdown_timeout,
                                                  CONF.compute.shutdown_retry_interval),
    "reboot_soft": lambda d, ctx, inst, bdi: d.reboot(ctx, inst, None, "SOFT",
                                                      block_device_info=bdi),
    "reboot_hard": lambda d, ctx, inst, bdi: d.reboot(ctx, inst, None, "HARD",
                                                      block_device_info=bdi),
    "pause": lambda d, ctx, inst, bdi: d.pause(inst),
    "unpause": lambda d, ctx, inst, bdi: d.unpause(inst),
    "suspend": lambda d, ctx, inst, bdi: d.suspend(ctx, inst),
    "resume": lambda d, ctx, inst, bdi: d.resume(ctx, inst, block_device_info=bdi),
}

#: Flows that attach or detach a volume: their failure is the volume's, not
#: the server's (a fault, never ERROR).
_VOLUME_OPERATIONS = ("attach", "detach")

# Which vm_state each power state implies when the guest changed on its own.
_EVENT_TRANSITIONS = {
    virtevent.EVENT_LIFECYCLE_STOPPED: power_state.SHUTDOWN,
    virtevent.EVENT_LIFECYCLE_CRASHED: power_state.CRASHED,
    virtevent.EVENT_LIFECYCLE_STARTED: power_state.RUNNING,
    virtevent.EVENT_LIFECYCLE_RESUMED: power_state.RUNNING,
    virtevent.EVENT_LIFECYCLE_PAUSED: power_state.PAUSED,
    virtevent.EVENT_LIFECYCLE_SUSPENDED: power_state.SUSPENDED,
}


@contextlib.contextmanager
def action_event(ctxt, instance_uuid: str, event_name: str, host: str) -> Iterator[None]:
    """Record the enclosed step as an event of the request's instance action
    (os-instance-actions): Success, or Error with the traceback."""
    request_id = getattr(ctxt, "request_id", None) or ""
    ids = db_instance.action_event_start(instance_uuid, request_id, event_name, host)
    if ids is None:  # the request recorded no action (e.g. recovery at start-up)
        yield
        return
    try:
        yield
    except Exception:
        db_instance.action_event_finish(instance_uuid, request_id, event_name, "Error",
                                        traceback.format_exc(), ids=ids)
        raise
    db_instance.action_event_finish(instance_uuid, request_id, event_name, "Success", ids=ids)


class ComputeManager(block_devices.BlockDeviceManagerMixin):
    """RPC endpoint of the compute service on one host (volume operations:
    ``compute/block_devices.py``)."""

    target = messaging.Target(version="1.0")

    def __init__(self, host: str | None = None, driver: virt_driver.ComputeDriver | None = None):
        self.host = host or CONF.host
        self.driver = driver or virt_driver.load_driver()
        self.runner = flow_runner.FlowRunner(f"compute:{self.host}")
        self.periodic_tasks = periodic.PeriodicTasks("periodic-")

    # -- lifecycle of the service --------------------------------------------

    def init_host(self) -> None:
        """Connect the driver, publish resources, finish interrupted work."""
        self.driver.init_host(self.host)
        if self.driver.supports("lifecycle_events"):
            self.driver.register_event_listener(self.handle_event)
        else:
            LOG.info("Driver %s has no lifecycle events; relying on the periodic "
                     "power-state sync", self.driver.name)
        db_host.service_heartbeat(self.host, BINARY, "compute")
        self.update_available_resource()
        recovered = self.runner.recover(self._transient_for, self._recovered)
        if recovered:
            LOG.warning("Recovered %d interrupted flow(s)", recovered)
        self._fail_stuck_builds()

    def start_periodic_tasks(self) -> None:
        tasks = [("heartbeat", 10, lambda: db_host.service_heartbeat(self.host, BINARY, "compute")),
                 ("update_resources", CONF.compute.update_resources_interval,
                  self.update_available_resource)]
        if CONF.compute.image_cache_manager_interval > 0:
            tasks.append(("manage_image_cache", CONF.compute.image_cache_manager_interval,
                          lambda: self.driver.manage_image_cache(CONF.compute.image_cache_min_age)))
        if CONF.compute.sync_power_state_interval > 0:
            tasks.append(("sync_power_states", CONF.compute.sync_power_state_interval,
                          self.sync_power_states))
        self.periodic_tasks.start(tasks)

    def stop(self) -> None:
        self.periodic_tasks.stop()
        self.driver.register_event_listener(None)
        self.driver.cleanup_host(self.host)

    # -- helpers -------------------------------------------------------------

    def _instance(self, uuid: str):
        return db_instance.to_object(db_instance.get(uuid))

    def _transient_for(self, operation: str, uuid: str) -> dict[str, Any]:
        row = db_instance.get(uuid, read_deleted=True)
        ctxt = vs_context.get_admin_context()
        return {"driver": self.driver, "context": ctxt, "instance": db_instance.to_object(row),
                "image_meta": self._image_meta(row.image_ref or self.boot_image_id(uuid)),
                "volume_api": self.volume_api, "resumed": True}

    def _recovered(self, operation: str, uuid: str, error: BaseException | None) -> None:
        if error is None:
            return
        if operation in _VOLUME_OPERATIONS:
            message = error.format_message() if isinstance(
                error, exception.VirtstackException) else str(error)
            db_instance.add_fault(uuid, getattr(error, "code", 500), message)
        else:
            self._set_error(uuid, error)

    def _image_meta(self, image_id: str):
        from virtstack import objects
        try:
            return db_image.to_meta(db_image.get(image_id))
        except exception.ImageNotFound:
            return objects.ImageMeta(id=image_id)

    def _set_error(self, uuid: str, error: BaseException) -> None:
        code = getattr(error, "code", 500)
        message = error.format_message() if isinstance(error, exception.VirtstackException) else (
            f"{type(error).__name__}: {error}")
        db_instance.add_fault(uuid, code, message, traceback.format_exception(error)[-1])
        db_instance.transition(uuid, None, None, {"vm_state": states.ERROR, "task_state": None})

    def _fail_stuck_builds(self) -> None:
        """Instances left BUILDING by a crash whose flow was not recorded go to
        ERROR (with a fault); other stuck task_states are cleared."""
        for row in db_instance.by_host(self.host):
            if row.vm_state == states.BUILDING:
                self._set_error(row.uuid, exception.VirtstackException(
                    "The compute service restarted while this server was building."))
            elif row.task_state not in (None, states.DELETING):
                db_instance.transition(row.uuid, None, [row.task_state], {"task_state": None})
            elif row.task_state == states.DELETING:
                self._terminate(vs_context.get_admin_context(), row.uuid)

    # -- RPC endpoints -------------------------------------------------------

    def ping(self, ctxt, payload: str) -> str:
        return f"{self.host}:{payload}"

    def build_and_run_instance(self, ctxt, instance_uuid: str, image_id: str) -> None:
        with lockutils.lock(instance_uuid), action_event(
                ctxt, instance_uuid, "compute__do_build_and_run_instance", self.host):
            self._build(ctxt, instance_uuid, image_id)

    def _build(self, ctxt, instance_uuid: str, image_id: str) -> None:
        row = db_instance.get(instance_uuid)
        if row.task_state == states.DELETING:
            return  # deleted before we got to it; terminate does the rest
        instance = db_instance.to_object(row)
        try:
            self.runner.run("spawn", instance_uuid, spawn_flow.get_flow,
                            factory_kwargs={"with_vifs": False,  # no networking yet
                                            "volumes": self.volume_specs(instance_uuid)},
                            store={"instance_uuid": instance_uuid, "image_id": image_id},
                            transient={"driver": self.driver, "context": ctxt,
                                       "instance": instance,
                                       "image_meta": self._image_meta(image_id),
                                       "volume_api": self.volume_api})
        except Exception as exc:
            LOG.error("Build of instance %s failed: %s", instance_uuid, exc)
            self._set_error(instance_uuid, exc)
            raise

    def instance_action(self, ctxt, instance_uuid: str, action: str) -> None:
        with lockutils.lock(instance_uuid):
            self._do_action(ctxt, instance_uuid, action)

    def _do_action(self, ctxt, instance_uuid: str, action: str) -> None:
        transition = states.ACTIONS[action]
        try:
            row = db_instance.get(instance_uuid)
        except exception.InstanceNotFound:
            return
        if row.task_state != transition.task_state:
            return  # superseded (deleted meanwhile); nothing to do
        try:
            # Event names as Nova records them: one "reboot" for both kinds.
            event = f"compute_{action.split('_')[0]}_instance"
            with action_event(ctxt, instance_uuid, event, self.host):
                _ACTION_CALLS[action](self.driver, ctxt, db_instance.to_object(row),
                                      self.block_device_info_for(instance_uuid))
        except Exception as exc:
            LOG.error("%s of instance %s failed: %s", action, instance_uuid, exc)
            db_instance.add_fault(instance_uuid, getattr(exc, "code", 500), str(exc))
            # The guest is as it was: only the task is over.
            db_instance.transition(instance_uuid, None, [transition.task_state],
                                   {"task_state": None})
            return
        power = self._power_state(row)
        new_vm = states.FINISHED[action] or row.vm_state
        db_instance.transition(instance_uuid, None, [transition.task_state],
                               {"vm_state": new_vm, "task_state": None, "power_state": power})

    def _power_state(self, row) -> int:
        try:
            return self.driver.get_info(db_instance.to_object(row)).state
        except exception.InstanceNotFound:
            return power_state.NOSTATE

    def terminate_instance(self, ctxt, instance_uuid: str) -> None:
        with lockutils.lock(instance_uuid):
            try:
                with action_event(ctxt, instance_uuid, "compute_terminate_instance", self.host):
                    failure = self._terminate(ctxt, instance_uuid)
                    if failure is not None:
                        raise failure  # recorded as the event's Error
            except Exception:
                pass  # already handled: ERROR state, fault, Error event

    def _terminate(self, ctxt, instance_uuid: str) -> Exception | None:
        """Destroy the guest and mark the instance deleted. A failed destroy
        puts the instance in ERROR (with a fault) and is returned."""
        try:
            row = db_instance.get(instance_uuid)
        except exception.InstanceNotFound:
            return None
        instance = db_instance.to_object(row)
        bdms = db_bd.list_for_instance(instance_uuid)
        try:
            self.driver.destroy(ctxt, instance,
                                block_device_info=block_devices.block_device_info(bdms))
        except Exception as exc:
            LOG.error("Destroy of instance %s failed: %s", instance_uuid, exc)
            self._set_error(instance_uuid, exc)
            return exc
        self.release_volumes(ctxt, instance_uuid, bdms)
        if row.host and row.node:
            db_host.node_release(row.host, row.node, row.vcpus, row.memory_mb, row.root_gb)
        db_instance.mark_deleted(instance_uuid)
        return None

    def snapshot_instance(self, ctxt, instance_uuid: str, image_id: str) -> None:
        with lockutils.lock(instance_uuid), action_event(
                ctxt, instance_uuid, "compute_snapshot_instance", self.host):
            self._snapshot(ctxt, instance_uuid, image_id)

    def _snapshot(self, ctxt, instance_uuid: str, image_id: str) -> None:
        """Capture the guest's disk into image ``image_id``: the image goes
        active, or is deleted if the capture fails; the server's task ends
        either way and its vm_state is untouched."""
        snapshot_tasks = (states.IMAGE_SNAPSHOT, states.IMAGE_SNAPSHOT_PENDING,
                          states.IMAGE_PENDING_UPLOAD, states.IMAGE_UPLOADING)
        row = db_instance.get(instance_uuid)

        def update_task_state(task_state: str, expected_state: str = states.IMAGE_SNAPSHOT):
            db_instance.transition(instance_uuid, None, [expected_state],
                                   {"task_state": task_state})

        try:
            db_image.update(image_id, {"status": "saving"})
            info = self.driver.snapshot(ctxt, db_instance.to_object(row), image_id,
                                        update_task_state)
            if info.get("location"):
                image_store.finish_snapshot(image_id, info["location"], info["disk_format"])
            else:  # a driver that keeps no bits here (the fake)
                db_image.update(image_id, {"status": "active", "size": info.get("size", 0),
                                           "disk_format": info.get("disk_format", "qcow2")})
        except Exception as exc:
            LOG.error("Snapshot of instance %s failed: %s", instance_uuid, exc)
            db_image.update(image_id, {"status": "deleted", "deleted": True})
            raise
        finally:
            db_instance.transition(instance_uuid, None, snapshot_tasks, {"task_state": None})

    def get_vnc_console(self, ctxt, instance_uuid: str) -> dict:
        console = self.driver.get_vnc_console(ctxt, self._instance(instance_uuid))
        return {"host": console.host, "port": console.port}

    def get_console_output(self, ctxt, instance_uuid: str, length: int | None) -> str:
        instance = self._instance(instance_uuid)
        text = self.driver.get_console_output(ctxt, instance).decode("utf-8", "replace")
        if length is not None:
            lines = text.splitlines()
            text = "\n".join(lines[-length:] if length else [])
        return text

    # -- keeping the database true to the hypervisor -------------------------

    def update_available_resource(self) -> None:
        """Refresh each node's record: totals from the driver, usage from the
        instances placed on it (the source of truth for claims)."""
        rows = db_instance.by_host(self.host)
        for node in self.driver.get_available_nodes():
            res = dict(self.driver.get_available_resource(node))
            mine = [r for r in rows if r.node == node]
            res.update(vcpus_used=sum(r.vcpus for r in mine),
                       memory_mb_used=sum(r.memory_mb for r in mine),
                       local_gb_used=sum(r.root_gb for r in mine), running_vms=len(mine))
            db_host.node_update(self.host, node, res)

    def handle_event(self, event: virtevent.Event) -> None:
        """Driver callback (any thread): a guest changed state on its own."""
        if isinstance(event, virtevent.LifecycleEvent):
            LOG.info("Lifecycle event %s for instance %s", event.name, event.uuid)
            threading.Thread(target=self._sync_one, args=(event.uuid,), daemon=True).start()

    def sync_power_states(self) -> None:
        for row in db_instance.by_host(self.host):
            try:
                self._sync_one(row.uuid)
            except Exception:
                LOG.exception("Power-state sync of %s failed", row.uuid)

    def _sync_one(self, uuid: str) -> None:
        """Bring one instance's DB record in line with its guest. Skipped while
        a task runs: that task writes the outcome itself."""
        with lockutils.lock(uuid):
            try:
                row = db_instance.get(uuid)
            except exception.InstanceNotFound:
                return
            if row.task_state is not None or row.host != self.host:
                return
            actual = self._power_state(row)
            values: dict[str, Any] = {"power_state": actual}
            if row.vm_state == states.ACTIVE and actual in (power_state.SHUTDOWN, power_state.CRASHED,
                                                            power_state.NOSTATE):
                LOG.warning("Instance %s is %s on the hypervisor; marking it stopped",
                            uuid, power_state.name(actual))
                values["vm_state"] = states.STOPPED
            elif row.vm_state == states.STOPPED and actual == power_state.RUNNING:
                LOG.warning("Instance %s is running but should be stopped; powering it off", uuid)
                self.driver.power_off(db_instance.to_object(row))
                values["power_state"] = self._power_state(row)
            elif row.vm_state == states.PAUSED and actual == power_state.RUNNING:
                values["vm_state"] = states.ACTIVE
            elif row.vm_state == states.ACTIVE and actual == power_state.PAUSED:
                values["vm_state"] = states.PAUSED
            if values.get("vm_state") or actual != row.power_state:
                db_instance.transition(uuid, [row.vm_state], [None], values)
