"""How volumes, snapshots, attachments and volume types look in Block
Storage API v3 responses, per microversion. Backend secrets
(``provider_auth``, connection_info) never appear in volume or snapshot
views."""

from __future__ import annotations

import datetime
from typing import Any, Iterable

from virtstack.api import wsgi
from virtstack.db import models
from virtstack.db import volume as db_volume


def isotime(dt: datetime.datetime | None) -> str | None:
    # The Block Storage API's timestamps: microseconds, no zone.
    return dt.isoformat(timespec="microseconds") if dt else None


def links(req, project_id: str, collection: str, ident: str) -> list[dict[str, str]]:
    base = req.host_url + req.script_name
    return [{"rel": "self", "href": f"{base}/v3/{project_id}/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{base}/{project_id}/{collection}/{ident}"}]


def next_link(req, project_id: str, collection: str, items: list, limit: int | None,
              max_limit: int) -> list[dict[str, str]]:
    """``<collection>_links`` with the next page, when this page is full."""
    page = limit if limit is not None else max_limit
    if not items or len(items) < page:
        return []
    params = [(k, v) for k, v in req.GET.items() if k not in ("marker", "limit")]
    params += [("limit", str(page)), ("marker", items[-1]["id"])]
    from urllib.parse import urlencode

    base = req.host_url + req.script_name
    suffix = "/detail" if req.path_info.endswith("/detail") else ""
    return [{"rel": "next",
             "href": f"{base}/v3/{project_id}/{collection}{suffix}?{urlencode(params)}"}]


def _v(req, minimum: str) -> bool:
    return wsgi.api_version(req).matches(minimum)


def attachment_entry(att: models.VolumeAttachment) -> dict[str, Any]:
    """One element of a volume's ``attachments`` list."""
    return {"server_id": att.instance_uuid, "attachment_id": att.id,
            "attached_at": isotime(att.attach_time), "host_name": att.attached_host,
            "volume_id": att.volume_id, "device": att.mountpoint, "id": att.volume_id}


def volume_summary(req, row: models.Volume) -> dict[str, Any]:
    return {"id": row.id, "name": row.display_name,
            "links": links(req, row.project_id, "volumes", row.id)}


def volume_detail(req, row: models.Volume,
                  attachments: Iterable[models.VolumeAttachment],
                  vtype: models.VolumeType | None, is_admin: bool,
                  extended: bool = True) -> dict[str, Any]:
    """``extended``: with the attributes the Block Storage API adds to show
    and list only (tenant, host, migration status, image metadata); its
    create and update responses have none of them."""
    atts = [attachment_entry(a) for a in attachments if a.attach_status == "attached"]
    view: dict[str, Any] = {
        "id": row.id, "name": row.display_name, "description": row.display_description,
        "status": row.status, "size": row.size, "availability_zone": row.availability_zone,
        "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at),
        "attachments": atts, "volume_type": vtype.name if vtype else None,
        "snapshot_id": row.snapshot_id, "source_volid": row.source_volid,
        "metadata": dict(row.metadata_ or {}), "links": links(req, row.project_id, "volumes",
                                                              row.id),
        "user_id": row.user_id, "bootable": "true" if row.bootable else "false",
        "encrypted": bool(row.encrypted), "replication_status": None,
        "consistencygroup_id": None, "multiattach": bool(row.multiattach),
        "migration_status": None,
    }
    if extended:
        view["os-vol-tenant-attr:tenant_id"] = row.project_id
    if extended and row.image_metadata:
        view["volume_image_metadata"] = {k: str(v) for k, v in row.image_metadata.items()}
    if extended and is_admin:
        view["os-vol-host-attr:host"] = row.host
        view["os-vol-mig-status-attr:migstat"] = None
        view["os-vol-mig-status-attr:name_id"] = None
    if _v(req, "3.13"):
        view["group_id"] = None
    if _v(req, "3.21") and is_admin:
        view["provider_id"] = None
    if _v(req, "3.48"):
        view["shared_targets"] = False
        view["service_uuid"] = None
    if _v(req, "3.61") and is_admin:
        view["cluster_name"] = None
    if _v(req, "3.63"):
        view["volume_type_id"] = row.volume_type_id
    if _v(req, "3.64"):
        view["encryption_key_id"] = None
    if _v(req, "3.65"):
        view["consumes_quota"] = True
    return view


def volumes_detail(req, rows: list[models.Volume], is_admin: bool,
                   extended: bool = True) -> list[dict[str, Any]]:
    """Detail views of many volumes with two extra queries in all."""
    attachments = db_volume.attachments_of_volumes(r.id for r in rows)
    types = db_volume.types_by_id(r.volume_type_id for r in rows)
    return [volume_detail(req, r, attachments[r.id], types.get(r.volume_type_id), is_admin,
                          extended)
            for r in rows]


def snapshot_summary(req, row: models.VolumeSnapshot) -> dict[str, Any]:
    """The plain list's view, also the create and update responses: the
    detail view without the extended attributes (progress, project)."""
    view = snapshot_detail(req, row)
    del view["os-extended-snapshot-attributes:progress"]
    del view["os-extended-snapshot-attributes:project_id"]
    return view


def snapshot_detail(req, row: models.VolumeSnapshot) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id, "name": row.display_name, "description": row.display_description,
        "volume_id": row.volume_id, "status": row.status, "size": row.volume_size,
        "metadata": dict(row.metadata_ or {}), "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "os-extended-snapshot-attributes:progress": row.progress or "0%",
        "os-extended-snapshot-attributes:project_id": row.project_id,
    }
    if _v(req, "3.14"):
        view["group_snapshot_id"] = None
    if _v(req, "3.41"):
        view["user_id"] = row.user_id
    if _v(req, "3.65"):
        view["consumes_quota"] = True
    return view


def attachment_summary(att: dict[str, Any]) -> dict[str, Any]:
    return {"id": att["id"], "status": att["status"], "instance": att["instance"],
            "volume_id": att["volume_id"]}


def attachment_detail(att: dict[str, Any]) -> dict[str, Any]:
    """The attachments API's view (``att`` is ``volume.api.attachment_view``).
    connection_info is the caller's to attach with, as in the Block Storage
    API; it is never logged."""
    return {"id": att["id"], "status": att["status"], "instance": att["instance"],
            "volume_id": att["volume_id"], "attached_at": isotime(att["attached_at"]),
            "detached_at": isotime(att["detached_at"]), "attach_mode": att["attach_mode"],
            "connection_info": att["connection_info"] or {}}


def volume_type(row: models.VolumeType, is_admin: bool) -> dict[str, Any]:
    view = {"id": row.id, "name": row.name, "description": row.description,
            "is_public": row.is_public, "os-volume-type-access:is_public": row.is_public,
            "qos_specs_id": None}
    if is_admin:
        view["extra_specs"] = dict(row.extra_specs or {})
    return view
