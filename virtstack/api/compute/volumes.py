"""/servers/{id}/os-volume_attachments: attach, list, show, detach (swap is
not offered)."""

from __future__ import annotations

from typing import Any

from virtstack import exception, policy
from virtstack.api import validation
from virtstack.api import wsgi
from virtstack.compute import api as compute_api
from virtstack.conf import CONF
from virtstack.db import models

#: A volume id as the Compute API takes it (a UUID, with or without dashes).
_volume_id = {"type": "string", "minLength": 1, "maxLength": 36,
              "pattern": r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}"
                         r"-?[0-9a-fA-F]{12}\Z"}


def _attach_schema(version) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "volumeId": _volume_id,
        # Checked in full below, with a message naming what is allowed.
        "device": {"type": ["string", "null"], "maxLength": 255},
    }
    if version.matches("2.49"):
        properties["tag"] = {"type": "string", "minLength": 1, "maxLength": 60,
                             "pattern": r"^[^,/]*\Z"}
    if version.matches("2.79"):
        properties["delete_on_termination"] = {"type": "boolean"}
    return {"type": "object", "properties": {"volumeAttachment": {
        "type": "object", "properties": properties, "required": ["volumeId"],
        "additionalProperties": False}},
        "required": ["volumeAttachment"], "additionalProperties": False}


def attachment_view(server_id: str, volume_id: str, device: str | None, tag: str | None,
                    delete_on_termination: bool, attachment_id: str | None,
                    bdm_uuid: str | None, version) -> dict[str, Any]:
    """One volumeAttachment as the microversion shows it."""
    out: dict[str, Any] = {"serverId": server_id, "volumeId": volume_id, "device": device}
    if version.matches("2.89"):
        out.update(attachment_id=attachment_id, bdm_uuid=bdm_uuid)
    else:
        out["id"] = volume_id
    if version.matches("2.70"):
        out["tag"] = tag
    if version.matches("2.79"):
        out["delete_on_termination"] = bool(delete_on_termination)
    return out


def _row_view(row: models.BlockDeviceMapping, version) -> dict[str, Any]:
    return attachment_view(row.instance_uuid, row.volume_id, row.device_name, row.tag,
                           row.delete_on_termination, row.attachment_id, row.uuid, version)


class VolumeAttachmentsController:
    def __init__(self, api: compute_api.ComputeAPI):
        self.api = api.volumes

    # GET /servers/{id}/os-volume_attachments
    def index(self, req, server_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:os-volumes-attachments:index")
        params = req.GET
        limit = min(validation.to_int(params["limit"], "limit"), CONF.api.max_limit) \
            if "limit" in params else CONF.api.max_limit
        offset = validation.to_int(params["offset"], "offset") if "offset" in params else 0
        rows = self.api.list(ctxt, server_id, limit=limit, offset=offset)
        version = wsgi.api_version(req)
        return {"volumeAttachments": [_row_view(r, version) for r in rows]}

    # GET /servers/{id}/os-volume_attachments/{volume_id}
    def show(self, req, server_id, volume_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:os-volumes-attachments:show")
        row = self.api.show(ctxt, server_id, volume_id)
        return {"volumeAttachment": _row_view(row, wsgi.api_version(req))}

    # POST /servers/{id}/os-volume_attachments
    def create(self, req, server_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:os-volumes-attachments:create")
        version = wsgi.api_version(req)
        body = wsgi.json_body(req)
        validation.validate(_attach_schema(version), body)
        args = body["volumeAttachment"]
        attached = self.api.attach(ctxt, server_id, args["volumeId"], device=args.get("device"),
                                   tag=args.get("tag"),
                                   delete_on_termination=args.get("delete_on_termination", False))
        return {"volumeAttachment": attachment_view(
            server_id, attached["volume_id"], attached["device"], attached["tag"],
            attached["delete_on_termination"], attached["attachment_id"], attached["bdm_uuid"],
            version)}

    # PUT /servers/{id}/os-volume_attachments/{volume_id}
    def update(self, req, server_id, volume_id):
        policy.authorize(wsgi.context_of(req), "os_compute_api:os-volumes-attachments:update")
        raise SwapNotImplemented()

    # DELETE /servers/{id}/os-volume_attachments/{volume_id}
    def delete(self, req, server_id, volume_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:os-volumes-attachments:delete")
        self.api.detach(ctxt, server_id, volume_id)
        return wsgi.Response(None, status=202)


class SwapNotImplemented(exception.VirtstackException):
    msg_fmt = ("Swapping the volume of an attachment (PUT os-volume_attachments) is not "
               "implemented by this cloud; detach the volume and attach the other one.")
    code = 501
