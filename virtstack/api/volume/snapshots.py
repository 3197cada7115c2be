"""/v3/{project_id}/snapshots: create, list, show, update, delete, and the
admin os-reset_status action."""

from __future__ import annotations

from typing import Any

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.volume import common, views
from virtstack.conf import CONF
from virtstack.volume import api as volume_api

_nullable_name = {"type": ["string", "null"], "maxLength": 255}

CREATE = {
    "type": "object",
    "properties": {"snapshot": {
        "type": "object",
        "properties": {
            # null is allowed as in the Block Storage API: it names no volume (404).
            "volume_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
            "force": {"type": ["boolean", "string", "null"]},
            "name": _nullable_name, "display_name": _nullable_name,
            "description": _nullable_name, "display_description": _nullable_name,
            "metadata": dict(validation.metadata, type=["object", "null"]),
        },
        "required": ["volume_id"],
        "additionalProperties": False}},
    "required": ["snapshot"],
    "additionalProperties": False,
}

UPDATE = {
    "type": "object",
    "properties": {"snapshot": {
        "type": "object",
        "properties": {"name": _nullable_name, "display_name": _nullable_name,
                       "description": _nullable_name, "display_description": _nullable_name,
                       "metadata": dict(validation.metadata, type=["object", "null"])},
        "additionalProperties": False}},
    "required": ["snapshot"],
    "additionalProperties": False,
}

FILTERS = ("name", "status", "volume_id", "metadata")


def _authorize(req, rule: str):
    """The request's context, once ``rule`` allows it (403 otherwise)."""
    ctxt = wsgi.context_of(req)
    policy.authorize(ctxt, rule)
    return ctxt


class SnapshotsController:
    def __init__(self, api: volume_api.VolumeAPI):
        self.api = api

    def _list(self, req, detail: bool):
        ctxt = _authorize(req, "volume:get_all_snapshots")
        params = common.list_params(req, FILTERS)
        rows = self.api.snapshot_list(ctxt, params["filters"], params["limit"],
                                      params["marker"], params["sort_keys"],
                                      params["sort_dirs"])
        items = [views.snapshot_detail(req, r) if detail else views.snapshot_summary(req, r)
                 for r in rows]
        body: dict[str, Any] = {"snapshots": items}
        links = views.next_link(req, ctxt.project_id, "snapshots", items, params["limit"],
                                CONF.api.max_limit)
        if links:
            body["snapshots_links"] = links
        if params["with_count"]:
            body["count"] = len(self.api.snapshot_list(ctxt, params["filters"]))
        return body

    def index(self, req):
        return self._list(req, detail=False)

    def detail(self, req):
        return self._list(req, detail=True)

    def show(self, req, snapshot_id: str):
        ctxt = _authorize(req, "volume:get_snapshot")
        return {"snapshot": views.snapshot_detail(req, self.api.snapshot_get(ctxt, snapshot_id))}

    def create(self, req):
        _authorize(req, "volume:create_snapshot")
        body = wsgi.json_body(req)
        validation.validate(CREATE, body)
        snap = body["snapshot"]
        force = snap.get("force")
        force = False if force is None else validation.to_bool(force, "force")
        if wsgi.api_version(req).matches("3.66"):
            if snap.get("force") is not None and not force:
                raise exception.Invalid(reason="Since microversion 3.66 'force' may only be "
                                               "true (in-use volumes are snapshotted without "
                                               "it).")
            force = True  # in-use volumes may be snapshotted from 3.66 on
        if snap["volume_id"] is None:
            raise exception.VolumeNotFound(volume_id=None)
        row = self.api.snapshot_create(
            wsgi.context_of(req), snap["volume_id"],
            name=snap.get("name", snap.get("display_name")),
            description=snap.get("description", snap.get("display_description")),
            metadata=snap.get("metadata") or {}, force=force)
        return wsgi.Response({"snapshot": views.snapshot_summary(req, row)}, status=202)

    def update(self, req, snapshot_id: str):
        _authorize(req, "volume:update_snapshot")
        body = wsgi.json_body(req)
        validation.validate(UPDATE, body)
        values = common.update_values(body["snapshot"])
        row = self.api.snapshot_update(wsgi.context_of(req), snapshot_id, values)
        return {"snapshot": views.snapshot_summary(req, row)}

    def delete(self, req, snapshot_id: str):
        self.api.snapshot_delete(_authorize(req, "volume:delete_snapshot"), snapshot_id)
        return wsgi.Response(None, status=202)

    def action(self, req, snapshot_id: str):
        name, args = common.single_key_body(req)
        if name != "os-reset_status":
            raise exception.Invalid(reason=f"There is no such action: {name}")
        _authorize(req, "volume_extension:snapshot_admin_actions:reset_status")
        validation.validate({"type": "object", "properties": {"status": {"type": "string"}},
                             "required": ["status"], "additionalProperties": False}, args)
        self.api.snapshot_reset_status(wsgi.context_of(req), snapshot_id, args["status"])
        return wsgi.Response(None, status=202)
