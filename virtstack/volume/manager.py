"""The volume manager: one per volume-service host, the only caller of the
volume backend.

It receives RPC from the API (topic ``volume``), serialises work per volume
(a lock per volume id), runs long operations (create, delete, extend) as
flows through the shared runner, reports its pool's capacity, keeps its
service heartbeat fresh, and at start finishes or fails what a crash
interrupted.
"""

from __future__ import annotations

import logging
from typing import Any

import oslo_messaging as messaging
from oslo_concurrency import lockutils

from virtstack import context as vs_context
from virtstack import exception, periodic
from virtstack.conf import CONF
from virtstack.db import host as db_host
from virtstack.db import volume as db_volume
from virtstack.flows import runner as flow_runner
from virtstack.volume import backends, flows
from virtstack.volume.backends.base import VolumeBackend, VolumeExport
from virtstack.volume.flows import create as create_flow
from virtstack.volume.flows import delete as delete_flow
from virtstack.volume.flows import extend as extend_flow
from virtstack.volume.scheduler import BINARY

LOG = logging.getLogger(__name__)

TOPIC = "volume"
HEARTBEAT_INTERVAL = 10

_FACTORIES = {"create": create_flow.get_flow, "delete": delete_flow.get_flow,
              "extend": extend_flow.get_flow}


def _lock(volume_id: str):
    return lockutils.lock(f"volume-{volume_id}")


def _source_of(row) -> str:
    if row.snapshot_id:
        return "snapshot"
    if row.source_volid:
        return "volume"
    if row.image_id:
        return "image"
    return "empty"


class VolumeManager:
    """RPC endpoint of the volume service on one host."""

    target = messaging.Target(version="1.0")

    def __init__(self, host: str | None = None, backend: VolumeBackend | None = None):
        self.host = host or CONF.host
        self.backend = backend or backends.load_backend(self.host)
        #: Our single pool, as volumes' ``host`` names it.
        self.pool = f"{self.host}@{self.backend.name}#{self.backend.name}"
        self.runner = flow_runner.FlowRunner(f"volume:{self.host}")
        self.periodic_tasks = periodic.PeriodicTasks("volume-periodic-")

    # -- lifecycle of the service --------------------------------------------

    def init_host(self) -> None:
        """Check the backend, publish capacity, restore exports, finish
        interrupted work."""
        self.backend.check_setup()
        self.report_capacity()
        self._ensure_exports()
        recovered = self.runner.recover(self._transient_for, self._recovered)
        if recovered:
            LOG.warning("Recovered %d interrupted volume flow(s)", recovered)
        self._fail_stuck()
        db_host.service_heartbeat(self.host, BINARY, TOPIC)

    def start_periodic_tasks(self) -> None:
        tasks = [("heartbeat", HEARTBEAT_INTERVAL,
                  lambda: db_host.service_heartbeat(self.host, BINARY, TOPIC)),
                 ("report_capacity", CONF.volume.report_interval, self.report_capacity)]
        self.periodic_tasks.start(tasks)

    def stop(self) -> None:
        self.periodic_tasks.stop()

    def report_capacity(self) -> None:
        cap = self.backend.get_capacity()
        db_volume.pool_report(self.pool, self.host, self.backend.name,
                              int(cap["total_capacity_gb"]), int(cap["free_capacity_gb"]))

    def _ensure_exports(self) -> None:
        mine = [v for v in db_volume.volumes_by_host_prefix(self.host)
                if v.host == self.pool and v.status not in ("creating", "deleting")]
        if not mine:
            return
        attached = db_volume.attachments_of_volumes(v.id for v in mine)
        exports = [VolumeExport(flows.volume_ref(v), tuple(
            a.connector for a in attached[v.id] if a.connector)) for v in mine]
        failed = self.backend.ensure_exports(exports) or {}
        for volume_id, reason in failed.items():
            LOG.error("Volume %s could not be exported again: %s", volume_id, reason)

    def _transient_for(self, operation: str, volume_id: str) -> dict[str, Any]:
        return {"backend": self.backend}

    def _recovered(self, operation: str, volume_id: str, error: BaseException | None) -> None:
        if error is not None:
            LOG.warning("Interrupted %s of volume %s was rolled back: %s", operation,
                        volume_id, error)

    def _fail_stuck(self) -> None:
        """Statuses a crash left behind without a recorded flow: creating and
        extending fail, deletes run again, half-made attachments and
        snapshots fail."""
        ctxt = vs_context.get_admin_context()
        mine = [v for v in db_volume.volumes_by_host_prefix(self.host) if v.host == self.pool]
        for row in mine:
            if row.status == "creating":
                LOG.warning("Volume %s was being created when the service stopped", row.id)
                if db_volume.volume_transition(row.id, ["creating"], {"status": "error"}):
                    db_volume.pool_release(row.host, row.size)
            elif row.status == "extending":
                db_volume.volume_transition(row.id, ["extending"], {"status": "error_extending"})
            elif row.status == "deleting":
                self.delete_volume(ctxt, row.id)
        ids = {v.id for v in mine}
        for att in db_volume.attachments_in_status(["attaching"]):
            if att.volume_id in ids:
                db_volume.attachment_transition(att.id, ["attaching"],
                                                {"attach_status": "error_attaching"})
        for snap in db_volume.snapshots_in_status(["creating", "deleting"]):
            if snap.volume_id not in ids:
                continue
            if snap.status == "creating":
                db_volume.snapshot_transition(snap.id, ["creating"], {"status": "error"})
            else:
                self.delete_snapshot(ctxt, snap.id)

    # -- RPC endpoints: volumes ------------------------------------------------

    def ping(self, ctxt, payload: str) -> str:
        return f"{self.host}:{payload}"

    def create_volume(self, ctxt, volume_id: str) -> None:
        with _lock(volume_id):
            try:
                row = db_volume.volume_get(volume_id)
            except exception.VolumeNotFound:
                return
            if row.status != "creating":
                return  # deleted or reset meanwhile
            try:
                self.runner.run("create", volume_id, create_flow.get_flow,
                                factory_kwargs={"source": _source_of(row)},
                                store={"volume_id": volume_id},
                                transient={"backend": self.backend})
            except Exception as exc:
                LOG.error("Creating volume %s failed: %s", volume_id, _reason(exc))

    def delete_volume(self, ctxt, volume_id: str) -> None:
        with _lock(volume_id):
            try:
                row = db_volume.volume_get(volume_id)
            except exception.VolumeNotFound:
                return
            if row.status != "deleting":
                return
            try:
                self.runner.run("delete", volume_id, delete_flow.get_flow,
                                store={"volume_id": volume_id},
                                transient={"backend": self.backend})
            except Exception as exc:
                LOG.error("Deleting volume %s failed: %s", volume_id, _reason(exc))

    def extend_volume(self, ctxt, volume_id: str, new_size: int) -> None:
        with _lock(volume_id):
            try:
                row = db_volume.volume_get(volume_id)
            except exception.VolumeNotFound:
                return
            if row.status != "extending":
                return
            try:
                result = self.runner.run(
                    "extend", volume_id, extend_flow.get_flow,
                    store={"volume_id": volume_id, "new_size": new_size, "old_size": row.size},
                    transient={"backend": self.backend})
            except Exception as exc:
                LOG.error("Extending volume %s failed: %s", volume_id, _reason(exc))
                return
        if result.get("previous_status") == "in-use":
            self._tell_servers_of_new_size(ctxt, volume_id, new_size)

    def _tell_servers_of_new_size(self, ctxt, volume_id: str, new_size: int) -> None:
        """Each server the volume is attached to learns its new size from
        its compute service (which resizes the guest's disk)."""
        from virtstack.compute import rpcapi as compute_rpcapi

        compute = compute_rpcapi.ComputeRPCAPI()
        if not hasattr(compute, "extend_volume"):
            LOG.warning("The compute service cannot extend attached volumes yet; volume %s "
                        "grew on the backend only", volume_id)
            return
        for att in db_volume.attachment_list({"volume_id": volume_id}):
            if att.attached_host and att.instance_uuid:
                compute.extend_volume(ctxt, att.attached_host, instance_uuid=att.instance_uuid,
                                      volume_id=volume_id, new_size=new_size)

    # -- RPC endpoints: snapshots ---------------------------------------------

    def create_snapshot(self, ctxt, snapshot_id: str) -> None:
        try:
            snap = db_volume.snapshot_get(snapshot_id)
        except exception.SnapshotNotFound:
            return
        with _lock(snap.volume_id):
            if snap.status != "creating":
                return
            try:
                vol = db_volume.volume_get(snap.volume_id)
                update = self.backend.create_snapshot(flows.snapshot_ref(snap),
                                                      flows.volume_ref(vol)) or {}
            except Exception as exc:
                LOG.error("Creating snapshot %s failed: %s", snapshot_id, _reason(exc))
                db_volume.snapshot_transition(snapshot_id, ["creating"], {"status": "error"})
                return
            values = {"status": "available", "progress": "100%"}
            if "provider_location" in update:
                values["provider_location"] = update["provider_location"]
            db_volume.snapshot_transition(snapshot_id, ["creating"], values)

    def delete_snapshot(self, ctxt, snapshot_id: str) -> None:
        try:
            snap = db_volume.snapshot_get(snapshot_id)
        except exception.SnapshotNotFound:
            return
        with _lock(snap.volume_id):
            if db_volume.snapshot_get(snapshot_id).status != "deleting":
                return
            try:
                self.backend.delete_snapshot(flows.snapshot_ref(snap))
            except Exception as exc:
                LOG.error("Deleting snapshot %s failed: %s", snapshot_id, _reason(exc))
                db_volume.snapshot_transition(snapshot_id, ["deleting"],
                                              {"status": "error_deleting"})
                return
            db_volume.snapshot_mark_deleted(snapshot_id)

    # -- RPC endpoints: exports -----------------------------------------------

    def initialize_connection(self, ctxt, volume_id: str,
                              connector: dict[str, Any]) -> dict[str, Any]:
        """The backend's connection_info for ``connector`` (never logged:
        it may hold CHAP secrets)."""
        with _lock(volume_id):
            row = db_volume.volume_get(volume_id)
            return self.backend.initialize_connection(flows.volume_ref(row), connector)

    def terminate_connection(self, ctxt, volume_id: str,
                             connector: dict[str, Any] | None) -> None:
        with _lock(volume_id):
            row = db_volume.volume_get(volume_id, read_deleted=True)
            self.backend.terminate_connection(flows.volume_ref(row), connector)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, exception.VirtstackException):
        return exc.format_message()
    return f"{type(exc).__name__}: {exc}"
