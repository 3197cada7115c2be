"""/v3/{project_id}/volumes: create, list, show, update, delete, metadata."""

from __future__ import annotations

from typing import Any

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.volume import common, views
from virtstack.conf import CONF
from virtstack.volume import api as volume_api

_nullable_name = {"type": ["string", "null"], "maxLength": 255}
_nullable_id = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_metadata = dict(validation.metadata, type=["object", "null"])

CREATE = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "name": _nullable_name, "display_name": _nullable_name,
                "description": _nullable_name, "display_description": _nullable_name,
                # Checked by the volume API for a message that names the value.
                "size": {"type": ["integer", "string", "null"]},
                "availability_zone": _nullable_id, "snapshot_id": _nullable_id,
                "source_volid": _nullable_id, "imageRef": _nullable_id,
                "image_id": _nullable_id, "volume_type": _nullable_id, "metadata": _metadata,
                "multiattach": {"type": "boolean", "enum": [False]},
                "consistencygroup_id": {"type": "null"}, "group_id": {"type": "null"},
                "backup_id": {"type": "null"},
            },
            "required": [],
            "additionalProperties": False,
        },
        # Scheduler hints travel beside the volume; this backend-less
        # scheduler has no use for them.
        "OS-SCH-HNT:scheduler_hints": {"type": ["object", "null"]},
    },
    "required": ["volume"],
    "additionalProperties": False,
}

UPDATE = {
    "type": "object",
    "properties": {"volume": {
        "type": "object",
        "properties": {"name": _nullable_name, "display_name": _nullable_name,
                       "description": _nullable_name, "display_description": _nullable_name,
                       "metadata": _metadata},
        "additionalProperties": False}},
    "required": ["volume"],
    "additionalProperties": False,
}

METADATA = {"type": "object", "properties": {"metadata": validation.metadata},
            "required": ["metadata"], "additionalProperties": False}
META_ITEM = {"type": "object", "properties": {"meta": dict(validation.metadata, minProperties=1,
                                                             maxProperties=1)},
             "required": ["meta"], "additionalProperties": False}

FILTERS = ("name", "status", "metadata", "bootable", "availability_zone")
#: What makes a volume view show host, migration and cluster attributes.
HOST_ATTRIBUTE = "volume_extension:volume_host_attribute"


class VolumesController:
    def __init__(self, api: volume_api.VolumeAPI):
        self.api = api

    def _ctxt(self, req):
        return wsgi.context_of(req)

    def _authorize(self, req, rule: str):
        """The request's context, once ``rule`` allows it (403 otherwise)."""
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, rule)
        return ctxt

    def _show(self, req, row, extended: bool = True) -> dict[str, Any]:
        return views.volumes_detail(req, [row], policy.check(self._ctxt(req), HOST_ATTRIBUTE),
                                    extended)[0]

    def _list(self, req, detail: bool) -> dict[str, Any]:
        ctxt = self._authorize(req, "volume:get_all")
        params = common.list_params(req, FILTERS)
        rows = self.api.list(ctxt, params["filters"], params["limit"], params["marker"],
                             params["sort_keys"], params["sort_dirs"])
        items = (views.volumes_detail(req, rows, policy.check(ctxt, HOST_ATTRIBUTE)) if detail
                 else [views.volume_summary(req, r) for r in rows])
        body: dict[str, Any] = {"volumes": items}
        links = views.next_link(req, ctxt.project_id, "volumes", items, params["limit"],
                                CONF.api.max_limit)
        if links:
            body["volumes_links"] = links
        if params["with_count"]:
            body["count"] = len(self.api.list(ctxt, params["filters"], None, None,
                                              params["sort_keys"], params["sort_dirs"]))
        return body

    def index(self, req):
        return self._list(req, detail=False)

    def detail(self, req):
        return self._list(req, detail=True)

    def summary(self, req):
        """GET /v3/volumes/summary (3.12): the count and GiB of the volumes
        a list would show; from 3.36 also each metadata key with its values."""
        self._authorize(req, "volume:get_all")
        version = wsgi.api_version(req)
        if not version.matches("3.12"):
            raise exception.VolumeNotFound(volume_id="summary")
        params = common.list_params(req, FILTERS)
        rows = self.api.list(self._ctxt(req), params["filters"], None, None,
                             params["sort_keys"], params["sort_dirs"])
        body: dict[str, Any] = {"total_count": len(rows),
                                "total_size": sum(r.size or 0 for r in rows)}
        if version.matches("3.36"):
            values: dict[str, set[str]] = {}
            for row in rows:
                for key, value in (row.metadata_ or {}).items():
                    values.setdefault(key, set()).add(value)
            body["metadata"] = {key: sorted(v) for key, v in sorted(values.items())}
        return {"volume-summary": body}

    def show(self, req, volume_id: str):
        ctxt = self._authorize(req, "volume:get")
        return {"volume": self._show(req, self.api.get(ctxt, volume_id))}

    def create(self, req):
        self._authorize(req, "volume:create")
        body = wsgi.json_body(req)
        validation.validate(CREATE, body)
        vol = body["volume"]
        image = vol.get("imageRef") or vol.get("image_id")
        row = self.api.create(
            self._ctxt(req), vol.get("size"), name=vol.get("name", vol.get("display_name")),
            description=vol.get("description", vol.get("display_description")),
            snapshot_id=vol.get("snapshot_id"), source_volid=vol.get("source_volid"),
            image_id=image, volume_type=vol.get("volume_type"),
            metadata=vol.get("metadata") or {},
            availability_zone=vol.get("availability_zone"))
        return {"volume": self._show(req, row, extended=False)}

    def update(self, req, volume_id: str):
        self._authorize(req, "volume:update")
        body = wsgi.json_body(req)
        validation.validate(UPDATE, body)
        values = common.update_values(body["volume"])
        row = self.api.update(self._ctxt(req), volume_id, values)
        return {"volume": self._show(req, row, extended=False)}

    def delete(self, req, volume_id: str):
        ctxt = self._authorize(req, "volume:delete")
        cascade = validation.to_bool(req.GET.get("cascade", "false"), "cascade")
        force = validation.to_bool(req.GET.get("force", "false"), "force")
        if force:
            policy.authorize(ctxt, "volume:force_delete")
        self.api.delete(ctxt, volume_id, force=force, cascade=cascade)
        return wsgi.Response(None, status=202)

    # -- metadata ------------------------------------------------------------

    def metadata_index(self, req, volume_id: str):
        ctxt = self._authorize(req, "volume:get_volume_metadata")
        return {"metadata": dict(self.api.get(ctxt, volume_id).metadata_ or {})}

    def _set_metadata(self, req, volume_id: str, replace: bool):
        self._authorize(req, "volume:update_volume_metadata" if replace
                        else "volume:create_volume_metadata")
        body = wsgi.json_body(req)
        validation.validate(METADATA, body)
        row = self.api.get(self._ctxt(req), volume_id)
        new = dict(body["metadata"]) if replace else dict(row.metadata_ or {}, **body["metadata"])
        self.api.update(self._ctxt(req), volume_id, {"metadata_": new})
        return {"metadata": new}

    def metadata_create(self, req, volume_id: str):
        return self._set_metadata(req, volume_id, replace=False)

    def metadata_replace(self, req, volume_id: str):
        return self._set_metadata(req, volume_id, replace=True)

    def metadata_show(self, req, volume_id: str, key: str):
        ctxt = self._authorize(req, "volume:get_volume_metadata")
        meta = self.api.get(ctxt, volume_id).metadata_ or {}
        if key not in meta:
            raise exception.NotFound(message=f"Metadata item was not found: {key}")
        return {"meta": {key: meta[key]}}

    def metadata_update(self, req, volume_id: str, key: str):
        self._authorize(req, "volume:update_volume_metadata")
        body = wsgi.json_body(req)
        validation.validate(META_ITEM, body)
        if list(body["meta"]) != [key]:
            raise exception.Invalid(reason="Request body and URI mismatch")
        row = self.api.get(self._ctxt(req), volume_id)
        self.api.update(self._ctxt(req), volume_id,
                        {"metadata_": dict(row.metadata_ or {}, **body["meta"])})
        return {"meta": body["meta"]}

    def metadata_delete(self, req, volume_id: str, key: str):
        self._authorize(req, "volume:delete_volume_metadata")
        row = self.api.get(self._ctxt(req), volume_id)
        meta = dict(row.metadata_ or {})
        if key not in meta:
            raise exception.NotFound(message=f"Metadata item was not found: {key}")
        del meta[key]
        self.api.update(self._ctxt(req), volume_id, {"metadata_": meta})
        return wsgi.Response(None, status=200)
