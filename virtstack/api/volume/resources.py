"""Smaller Block Storage resources: volume types, limits, quota sets,
availability zones and services."""

from __future__ import annotations

import webob.exc

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.volume import common, views
from virtstack.conf import CONF
from virtstack.db import host as db_host
from virtstack.db import volume as db_volume
from virtstack.volume import quota
from virtstack.volume.scheduler import BINARY


def _authorize(req, rule: str, target: dict | None = None):
    """The request's context, once ``rule`` allows it (403 otherwise)."""
    ctxt = wsgi.context_of(req)
    policy.authorize(ctxt, rule, target)
    return ctxt


class TypesController:
    def index(self, req):
        is_admin = _authorize(req, "volume_extension:type_get_all").is_admin
        return {"volume_types": [views.volume_type(t, is_admin)
                                 for t in db_volume.type_list() if t.is_public or is_admin]}

    def show(self, req, type_id: str):
        is_admin = _authorize(req, "volume_extension:type_get").is_admin
        row = db_volume.type_get(type_id)
        if not (row.is_public or is_admin):
            raise exception.VolumeTypeNotFound(volume_type_id=type_id)
        return {"volume_type": views.volume_type(row, is_admin)}

    def default(self, req):
        _authorize(req, "volume_extension:type_get")
        common.require_version(req, "3.62")
        return {"volume_type": views.volume_type(db_volume.type_seed_default(),
                                                 wsgi.context_of(req).is_admin)}


class LimitsController:
    def index(self, req):
        project = wsgi.context_of(req).project_id
        if "project_id" in req.GET and wsgi.api_version(req).matches("3.39"):
            project = req.GET["project_id"]
        # Another project's limits: the rule's project check refuses non-admins.
        _authorize(req, "limits_extension:used_limits", {"project_id": project})
        limits, used = quota.limits(project), quota.usage(project)
        return {"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": limits["volumes"], "maxTotalSnapshots": limits["snapshots"],
            "maxTotalVolumeGigabytes": limits["gigabytes"], "maxTotalBackups": 0,
            "maxTotalBackupGigabytes": 0, "totalVolumesUsed": used["volumes"],
            "totalSnapshotsUsed": used["snapshots"], "totalGigabytesUsed": used["gigabytes"],
            "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0}}}


class QuotaSetsController:
    """Read-only: limits are ``[quota]`` options, the same for every project."""

    def _check(self, req, project_id: str) -> None:
        _authorize(req, "volume_extension:quotas:show", {"project_id": project_id})

    def show(self, req, target_project: str):
        self._check(req, target_project)
        usage = validation.to_bool(req.GET.get("usage", "false"), "usage")
        limits = quota.limits(target_project)
        body = {"id": target_project}
        if usage:
            used = quota.usage(target_project)
            for name in quota.RESOURCES:
                body[name] = {"limit": limits[name], "in_use": used[name], "reserved": 0,
                              "allocated": 0}
            for name in ("backups", "backup_gigabytes", "groups"):
                body[name] = {"limit": 0, "in_use": 0, "reserved": 0, "allocated": 0}
            body["per_volume_gigabytes"] = {"limit": -1, "in_use": 0, "reserved": 0,
                                            "allocated": 0}
        else:
            body.update(limits, backups=0, backup_gigabytes=0, groups=0,
                        per_volume_gigabytes=-1)
        return {"quota_set": body}

    def defaults(self, req, target_project: str):
        self._check(req, target_project)
        return {"quota_set": dict(quota.limits(target_project), id=target_project, backups=0,
                                  backup_gigabytes=0, groups=0, per_volume_gigabytes=-1)}

    def update(self, req, target_project: str):
        _authorize(req, "volume_extension:quotas:update", {"project_id": target_project})
        raise webob.exc.HTTPNotImplemented(
            explanation="Per-project quotas are not supported: set [quota] volumes, "
                        "snapshots and gigabytes in the configuration.")


class AvailabilityZonesController:
    def index(self, req):
        _authorize(req, "volume_extension:availability_zone_list")
        live = any(db_host.service_is_up(s) for s in db_host.services(BINARY))
        return {"availabilityZoneInfo": [{"zoneName": CONF.volume.availability_zone,
                                          "zoneState": {"available": live}}]}


class ServicesController:
    def index(self, req):
        _authorize(req, "volume_extension:services:index")
        out = []
        pools = {p.host: p for p in db_volume.pools()}
        for svc in db_host.services(BINARY):
            pool = pools.get(svc.host)
            out.append({
                "binary": "cinder-volume", "host": f"{svc.host}@{pool.backend}" if pool
                else svc.host, "zone": CONF.volume.availability_zone,
                "status": "disabled" if svc.disabled else "enabled",
                "state": "up" if db_host.service_is_up(svc) else "down",
                "updated_at": views.isotime(svc.last_seen_up),
                "disabled_reason": svc.disabled_reason})
        return {"services": out}
