"""/flavors, /os-hypervisors, /limits and /servers/{id}/os-instance-actions."""

from __future__ import annotations

import urllib.parse
import uuid as uuidlib

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.compute import views
from virtstack.compute import api as compute_api
from virtstack.conf import CONF
from virtstack.db import flavor as db_flavor
from virtstack.db import host as db_host
from virtstack.db import instance as db_instance

_create_flavor = {
    "type": "object",
    "properties": {"flavor": {
        "type": "object",
        "properties": {
            "name": validation.name,
            "id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                   "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )\Z"},
            "ram": {"type": ["integer", "string"], "pattern": r"^[0-9]+\Z", "minimum": 1},
            "vcpus": {"type": ["integer", "string"], "pattern": r"^[0-9]+\Z", "minimum": 1},
            "disk": {"type": ["integer", "string"], "pattern": r"^[0-9]+\Z", "minimum": 0},
            "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"], "pattern": r"^[0-9]+\Z",
                                          "minimum": 0},
            "swap": {"type": ["integer", "string"], "pattern": r"^[0-9]*\Z", "minimum": 0},
            "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?\Z",
                            "minimum": 0, "exclusiveMinimum": True},
            "os-flavor-access:is_public": {"type": "boolean"},
        },
        "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False}},
    "required": ["flavor"], "additionalProperties": False}


#: The largest value an integer column holds on every backend.
MAX_INT = 2 ** 31 - 1


def _number(flavor: dict, field: str, minimum: int, default=None, kind=int):
    """A numeric flavor field (an int or a numeric string) checked against
    its bounds: the schema's "minimum" does not apply to strings."""
    value = flavor.get(field, default)
    if value in (None, ""):
        value = default
    number = kind(value)
    if number < minimum or number > MAX_INT or (kind is float and number <= 0):
        bound = "greater than 0" if kind is float else f"between {minimum} and {MAX_INT}"
        raise exception.ValidationError(field=f"flavor/{field}",
                                        reason=f"must be {bound}, not {value!r}")
    return number


def _bounded(value, field: str) -> int:
    """A non-negative integer query parameter a database column can hold."""
    number = validation.to_int(value, field)
    if number > MAX_INT:
        raise exception.ValidationError(field=field, reason=f"must be at most {MAX_INT}")
    return number


def _authorize(req, rule: str):
    """The request's context, once ``rule`` allows it (403 otherwise)."""
    ctxt = wsgi.context_of(req)
    policy.authorize(ctxt, rule)
    return ctxt


def _base(req) -> str:
    return req.host_url + req.script_name


class FlavorsController:
    def index(self, req):
        return self._page(req, detail=False)

    def detail(self, req):
        return self._page(req, detail=True)

    def _page(self, req, detail: bool) -> dict:
        _authorize(req, "os_compute_api:flavors:index")
        rows, limit = self._list(req)
        body = {"flavors": [views.flavor(r, _base(req), detail=detail) for r in rows]}
        if rows and len(rows) == limit:
            query = [(k, v) for k, v in req.GET.items() if k != "marker"]
            query.append(("marker", rows[-1].flavorid))
            body["flavors_links"] = [{"rel": "next",
                                      "href": f"{req.path_url}?{urllib.parse.urlencode(query)}"}]
        return body

    def _list(self, req):
        ctxt = wsgi.context_of(req)
        p = req.GET
        is_public: bool | None = True
        if "is_public" in p and ctxt.is_admin:
            is_public = None if p["is_public"].lower() == "none" else validation.to_bool(
                p["is_public"], "is_public")
        sort_key = p.get("sort_key", "flavorid")
        if sort_key not in db_flavor.SORT_KEYS:
            raise exception.Invalid(reason=f"Invalid sort_key '{sort_key}'")
        sort_dir = p.get("sort_dir", "asc")
        if sort_dir not in ("asc", "desc"):
            raise exception.Invalid(reason=f"Invalid sort_dir '{sort_dir}'")
        limit = validation.to_int(p["limit"], "limit") if "limit" in p else CONF.api.max_limit
        limit = min(limit, CONF.api.max_limit)
        return db_flavor.list_(
            is_public=is_public,
            min_ram=_bounded(p["minRam"], "minRam") if "minRam" in p else None,
            min_disk=_bounded(p["minDisk"], "minDisk") if "minDisk" in p else None,
            limit=limit, marker=p.get("marker"),
            sort_key=sort_key, sort_dir=sort_dir), limit

    def show(self, req, flavor_id):
        ctxt = _authorize(req, "os_compute_api:flavors:show")
        row = db_flavor.get(flavor_id)
        if not row.is_public and not ctxt.is_admin:
            # Private flavors are not shown to others (no flavor access yet).
            raise exception.FlavorNotFound(flavor_id=flavor_id)
        return {"flavor": views.flavor(row, _base(req))}

    def create(self, req):
        _authorize(req, "os_compute_api:os-flavor-manage:create")
        body = wsgi.json_body(req)
        validation.validate(_create_flavor, body)
        f = body["flavor"]
        row = db_flavor.create({
            "flavorid": str(f.get("id") or uuidlib.uuid4()), "name": f["name"],
            "memory_mb": _number(f, "ram", 1), "vcpus": _number(f, "vcpus", 1),
            "root_gb": _number(f, "disk", 0),
            "ephemeral_gb": _number(f, "OS-FLV-EXT-DATA:ephemeral", 0, default=0),
            "swap": _number(f, "swap", 0, default=0),
            "rxtx_factor": _number(f, "rxtx_factor", 0, default=1.0, kind=float),
            "is_public": f.get("os-flavor-access:is_public", True)})
        return {"flavor": views.flavor(row, _base(req))}

    def delete(self, req, flavor_id):
        _authorize(req, "os_compute_api:os-flavor-manage:delete")
        db_flavor.delete(flavor_id)
        return wsgi.Response(None, status=202)


class HypervisorsController:
    def __init__(self, api: compute_api.ComputeAPI):
        self.api = api

    def _nodes(self, req, rule: str):
        _authorize(req, rule)
        services = {s.host: s for s in db_host.services("virtstack-compute")}
        return [(n, services.get(n.host)) for n in db_host.nodes()]

    def index(self, req):
        return {"hypervisors": [views.hypervisor(n, s, False) for n, s in self._nodes(
            req, "os_compute_api:os-hypervisors:list")]}

    def detail(self, req):
        return {"hypervisors": [views.hypervisor(n, s, True) for n, s in self._nodes(
            req, "os_compute_api:os-hypervisors:list-detail")]}

    def show(self, req, hypervisor_id):
        _authorize(req, "os_compute_api:os-hypervisors:show")
        if hypervisor_id.isdigit() and (not hypervisor_id.isascii()
                                        or int(hypervisor_id) > MAX_INT):
            # No such id, and the databases refuse to compare with it.
            raise exception.HypervisorNotFound(hypervisor_id=hypervisor_id)
        node = db_host.node_get(hypervisor_id)
        return {"hypervisor": views.hypervisor(node, db_host.service_get(
            node.host, "virtstack-compute"), True)}

    def statistics(self, req):
        nodes = [n for n, _ in self._nodes(req, "os_compute_api:os-hypervisors:statistics")]
        total = {k: sum(getattr(n, k) for n in nodes) for k in (
            "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used",
            "running_vms")}
        total.update(count=len(nodes), current_workload=0,
                     free_ram_mb=total["memory_mb"] - total["memory_mb_used"],
                     free_disk_gb=total["local_gb"] - total["local_gb_used"],
                     disk_available_least=total["local_gb"] - total["local_gb_used"])
        return {"hypervisor_statistics": total}


class LimitsController:
    def index(self, req):
        ctxt = _authorize(req, "os_compute_api:limits")
        project = ctxt.project_id
        if "tenant_id" in req.GET:
            # As Nova: another project's limits need their own rule (403).
            project = req.GET["tenant_id"]
            policy.authorize(ctxt, "os_compute_api:limits:other_project",
                             {"project_id": project})
        used = db_instance.count_usage(project)
        q = CONF.quota
        return {"limits": {"rate": [], "absolute": {
            "maxServerMeta": q.metadata_items, "maxPersonality": 5,
            "maxPersonalitySize": 10240, "maxImageMeta": 128,
            "maxTotalInstances": q.instances, "maxTotalCores": q.cores,
            "maxTotalRAMSize": q.ram, "maxTotalKeypairs": q.key_pairs,
            "maxServerGroups": q.server_groups, "maxServerGroupMembers": q.server_group_members,
            "maxSecurityGroups": 10, "maxSecurityGroupRules": 20, "maxTotalFloatingIps": 10,
            "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
            "totalRAMUsed": used["ram"], "totalSecurityGroupsUsed": 0,
            "totalFloatingIpsUsed": 0, "totalServerGroupsUsed": 0}}}


class InstanceActionsController:
    def __init__(self, api: compute_api.ComputeAPI):
        self.api = api

    @staticmethod
    def _action(a) -> dict:
        return {"action": a.action, "instance_uuid": a.instance_uuid, "message": a.message,
                "project_id": a.project_id, "request_id": a.request_id,
                "start_time": views.usage_time(a.start_time), "user_id": a.user_id}

    def index(self, req, server_id):
        ctxt = _authorize(req, "os_compute_api:os-instance-actions:list")
        self.api.get(ctxt, server_id, read_deleted=True)
        return {"instanceActions": [self._action(a) for a in db_instance.actions_list(server_id)]}

    def show(self, req, server_id, request_id):
        ctxt = _authorize(req, "os_compute_api:os-instance-actions:show")
        self.api.get(ctxt, server_id, read_deleted=True)
        action, events = db_instance.action_get(server_id, request_id)
        body = self._action(action)
        body["events"] = []
        tracebacks = policy.check(ctxt, "os_compute_api:os-instance-actions:events:details")
        for e in events:
            ev = {"event": e.event, "start_time": views.usage_time(e.start_time),
                  "finish_time": views.usage_time(e.finish_time), "result": e.result}
            if tracebacks:
                ev["traceback"] = e.traceback
            body["events"].append(ev)
        return {"instanceAction": body}


_remote_console = {
    "type": "object",
    "properties": {"remote_console": {
        "type": "object",
        "properties": {"protocol": {"type": "string", "enum": ["vnc", "spice", "rdp", "serial", "mks"]},
                       "type": {"type": "string", "enum": [
                           "novnc", "xvpvnc", "spice-html5", "spice-direct", "rdp-html5",
                           "serial", "webmks"]}},
        "required": ["protocol", "type"], "additionalProperties": False}},
    "required": ["remote_console"], "additionalProperties": False}


class RemoteConsolesController:
    """POST /servers/{id}/remote-consoles (microversion 2.6 and later)."""

    def __init__(self, api: compute_api.ComputeAPI):
        self.api = api

    def create(self, req, server_id):
        ctxt = _authorize(req, "os_compute_api:os-remote-consoles")
        if not wsgi.api_version(req).matches("2.6"):
            raise exception.NotFound(
                "The resource could not be found: remote-consoles needs microversion 2.6 or later.")
        body = wsgi.json_body(req)
        validation.validate(_remote_console, body)
        console = body["remote_console"]
        if console["protocol"] != "vnc" or console["type"] not in ("novnc", "xvpvnc"):
            raise exception.Invalid(
                reason=f"Unsupported console: protocol '{console['protocol']}', type "
                       f"'{console['type']}'. This cloud offers protocol 'vnc' (a direct "
                       "vnc:// address; no browser proxy yet).")
        url = self.api.vnc_console_url(ctxt, server_id)
        return {"remote_console": {"protocol": "vnc", "type": console["type"], "url": url}}
