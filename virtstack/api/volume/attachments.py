"""/v3/{project_id}/attachments (microversion 3.27; os-complete 3.44): the
"new attach" flow the compute service drives."""

from __future__ import annotations

from typing import Any

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.volume import common, views
from virtstack.conf import CONF
from virtstack.volume import api as volume_api

CREATE = {
    "type": "object",
    "properties": {"attachment": {
        "type": "object",
        "properties": {
            "volume_uuid": {"type": "string", "minLength": 1, "maxLength": 255},
            "instance_uuid": {"type": "string", "minLength": 1, "maxLength": 255},
            "connector": {"type": ["object", "null"]},
            "mode": {"type": "string", "enum": ["rw", "ro"]},
        },
        "required": ["volume_uuid", "instance_uuid"],
        "additionalProperties": False}},
    "required": ["attachment"],
    "additionalProperties": False,
}

UPDATE = {
    "type": "object",
    "properties": {"attachment": {
        "type": "object",
        "properties": {"connector": {"type": "object", "minProperties": 1}},
        "required": ["connector"],
        "additionalProperties": False}},
    "required": ["attachment"],
    "additionalProperties": False,
}

FILTERS = ("volume_id", "instance_id", "status")


def _authorize(req, rule: str):
    """The request's context, once ``rule`` allows it (403 otherwise)."""
    ctxt = wsgi.context_of(req)
    policy.authorize(ctxt, rule)
    return ctxt


class AttachmentsController:
    def __init__(self, api: volume_api.VolumeAPI):
        self.api = api

    def _list(self, req, detail: bool):
        ctxt = _authorize(req, "volume:attachment_get_all")
        common.require_version(req, "3.27")
        params = common.list_params(req, FILTERS)
        filters = dict(params["filters"])
        if "instance_id" in filters:
            filters["instance_uuid"] = filters.pop("instance_id")
        atts = self.api.attachment_list(ctxt, filters, params["limit"], params["marker"],
                                        params["sort_keys"], params["sort_dirs"])
        items = [views.attachment_detail(a) if detail else views.attachment_summary(a)
                 for a in atts]
        body: dict[str, Any] = {"attachments": items}
        links = views.next_link(req, ctxt.project_id, "attachments", items, params["limit"],
                                CONF.api.max_limit)
        if links:
            body["attachments_links"] = links
        return body

    def index(self, req):
        return self._list(req, detail=False)

    def detail(self, req):
        return self._list(req, detail=True)

    def show(self, req, attachment_id: str):
        ctxt = _authorize(req, "volume:attachment_get")
        common.require_version(req, "3.27")
        att = self.api.attachment_get(ctxt, attachment_id)
        return {"attachment": views.attachment_detail(att)}

    def create(self, req):
        _authorize(req, "volume:attachment_create")
        common.require_version(req, "3.27")
        body = wsgi.json_body(req)
        validation.validate(CREATE, body)
        att = body["attachment"]
        if "mode" in att and not wsgi.api_version(req).matches("3.54"):
            raise exception.ValidationError(field="attachment/mode",
                                            reason="needs microversion 3.54 or later")
        result = self.api.attachment_create(wsgi.context_of(req), att["volume_uuid"],
                                            att["instance_uuid"], connector=att.get("connector"),
                                            mode=att.get("mode", "rw"))
        return {"attachment": views.attachment_detail(result)}

    def update(self, req, attachment_id: str):
        _authorize(req, "volume:attachment_update")
        common.require_version(req, "3.27")
        body = wsgi.json_body(req)
        validation.validate(UPDATE, body)
        result = self.api.attachment_update(wsgi.context_of(req), attachment_id,
                                            body["attachment"]["connector"])
        return {"attachment": views.attachment_detail(result)}

    def delete(self, req, attachment_id: str):
        ctxt = _authorize(req, "volume:attachment_delete")
        common.require_version(req, "3.27")
        att = self.api.attachment_get(ctxt, attachment_id)
        self.api.attachment_delete(ctxt, attachment_id)
        left = self.api.attachment_list(ctxt, {"volume_id": att["volume_id"]})
        return {"attachments": [views.attachment_summary(a) for a in left]}

    def action(self, req, attachment_id: str):
        _authorize(req, "volume:attachment_complete")
        common.require_version(req, "3.44")
        name, args = common.single_key_body(req)
        if name != "os-complete":
            raise exception.Invalid(reason=f"There is no such action: {name}")
        if args not in (None, {}):
            raise exception.ValidationError(field=name, reason="takes no arguments")
        self.api.attachment_complete(wsgi.context_of(req), attachment_id)
        return wsgi.Response(None, status=204)
