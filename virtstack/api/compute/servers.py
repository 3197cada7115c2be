"""/servers: create, list, show, update, delete, and server actions."""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import secrets
import urllib.parse
from typing import Any

import webob

from virtstack import exception, policy
from virtstack.api import validation
from virtstack.api import wsgi
from virtstack.api.compute import views
from virtstack.compute import api as compute_api
from virtstack.compute import states
from virtstack.conf import CONF
from virtstack.db import instance as db_instance

# One entry of block_device_mapping_v2; combinations are checked by
# compute/volumes.plan_block_devices (virtio disks only: libvirt's one bus).
_block_device_mapping_v2 = {
    "type": "object",
    "properties": {
        "source_type": {"type": "string", "enum": ["image", "volume", "snapshot", "blank"]},
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": r"^[a-zA-Z0-9._-]*\Z"},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+\Z"},
        "volume_size": {"type": ["integer", "string", "null"], "pattern": r"^[0-9]+\Z",
                        "minimum": 0},
        "delete_on_termination": {"type": ["boolean", "string"]},
        "device_name": {"type": ["string", "null"], "maxLength": 255},
        "disk_bus": {"type": "string", "enum": ["virtio"]},
        "device_type": {"type": "string", "enum": ["disk"]},
        "guest_format": {"type": ["string", "null"], "maxLength": 255},
    },
    "required": ["source_type"],
    "additionalProperties": False,
}

_create_server = {
    "type": "object",
    "properties": {
        "name": validation.name,
        # Empty (or absent) when the server boots from a volume.
        "imageRef": {"type": "string", "maxLength": 255},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": validation.metadata,
        "networks": {"type": "array", "maxItems": 0},
        "security_groups": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}}}},
        "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
        "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
        "user_data": {"type": "string", "maxLength": 65535},
        "accessIPv4": validation.ipv4,
        "accessIPv6": validation.ipv6,
        "config_drive": {"type": ["boolean", "string"]},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "min_count": validation.positive_integer,
        "max_count": validation.positive_integer,
        "return_reservation_id": {"type": ["boolean", "string"]},
        "personality": {"type": "array", "maxItems": 0},
        "block_device_mapping_v2": {"type": "array", "items": _block_device_mapping_v2,
                                    "maxItems": 26},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}

_update_server = {
    "type": "object",
    "properties": {"name": validation.name, "accessIPv4": validation.ipv4,
                   "accessIPv6": validation.ipv6,
                   "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
    "additionalProperties": False,
}

# Actions on POST /servers/{id}/action: body key -> state-machine action.
_SIMPLE_ACTIONS = {"os-start": "start", "os-stop": "stop", "pause": "pause",
                   "unpause": "unpause", "suspend": "suspend", "resume": "resume"}

_reboot = {"type": "object", "properties": {"type": {"type": "string", "enum": [
    "HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}}, "required": ["type"],
    "additionalProperties": False}
_console_output = {"type": ["object", "null"], "properties": {"length": {
    "type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+\Z"}},
    "additionalProperties": False}

#: The availability zones servers may ask for (one zone: every host is in it).
AVAILABILITY_ZONES = ("nova",)

_create_image = {"type": "object", "properties": {
    "name": validation.name, "metadata": validation.metadata},
    "required": ["name"], "additionalProperties": False}
# Only a direct VNC address is offered until a noVNC proxy exists; both
# console types Nova knows for VNC are accepted and answered with it.
_vnc_console = {"type": "object", "properties": {"type": {"type": "string", "enum": [
    "novnc", "xvpvnc"]}}, "required": ["type"], "additionalProperties": False}

_SIMPLE_FILTERS = ("image", "flavor", "reservation_id", "name", "ip", "ip6")
_ADMIN_FILTERS = ("host", "node", "project_id", "user_id", "vm_state", "task_state")

#: Every action POST /servers/{id}/action offers, and its policy rule: an
#: action without a rule is not offered (400).
ACTION_RULES = {
    "os-start": "os_compute_api:servers:start", "os-stop": "os_compute_api:servers:stop",
    "pause": "os_compute_api:os-pause-server:pause",
    "unpause": "os_compute_api:os-pause-server:unpause",
    "suspend": "os_compute_api:os-suspend-server:suspend",
    "resume": "os_compute_api:os-suspend-server:resume",
    "reboot": "os_compute_api:servers:reboot",
    "os-getConsoleOutput": "os_compute_api:os-console-output",
    "createImage": "os_compute_api:servers:create_image",
    "os-getVNCConsole": "os_compute_api:os-remote-consoles",
}
#: What makes a server view show host, instance name, host_status, fault details.
EXTENDED_ATTRIBUTES = "os_compute_api:os-extended-server-attributes"


def _base_url(req: webob.Request) -> str:
    return req.host_url + req.script_name


def _action_schema(name: str, args_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole action body's schema, so errors name the action's fields."""
    return {"type": "object", "properties": {name: args_schema}, "required": [name]}


def _with_description(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema, properties=dict(schema["properties"], description=validation.description))
    return schema


class ServersController:
    def __init__(self, api: compute_api.ComputeAPI):
        self.api = api

    # GET /servers and /servers/detail
    def index(self, req):
        return self._list(req, detail=False)

    def detail(self, req):
        return self._list(req, detail=True)

    def _list(self, req, detail: bool):
        ctxt = wsgi.context_of(req)
        kind = "detail" if detail else "index"
        policy.authorize(ctxt, f"os_compute_api:servers:{kind}")
        version = wsgi.api_version(req)
        params = req.GET
        filters: dict[str, Any] = {}
        if "all_tenants" in params and (params["all_tenants"] == "" or validation.to_bool(
                params["all_tenants"], "all_tenants")):
            # As Nova: 403 for a caller the rule refuses, not a silently
            # narrower list (nova/api/openstack/compute/servers.py _get_servers).
            policy.authorize(ctxt, f"os_compute_api:servers:{kind}:get_all_tenants")
            filters["all_tenants"] = True
        for key in _SIMPLE_FILTERS:
            if key in params:
                filters[key] = params[key]
        if "ip" in filters or "ip6" in filters:
            # No networking yet: no server has an address to match.
            return {"servers": []}
        if "status" in params:
            status = params["status"].upper()
            if status not in states.API_STATUSES:
                if version.matches("2.38"):
                    raise exception.Invalid(reason=f"Invalid status value: {params['status']}")
                return {"servers": []}
            if status == "DELETED":
                # Deleted servers are listed only to admins (as Nova does).
                if not ctxt.is_admin:
                    raise exception.Forbidden(
                        message="Only administrators may list deleted servers.")
                filters["deleted"] = True
            filters["status"] = status
        if "changes-since" in params:
            filters["changes_since"] = _parse_time(params["changes-since"], "changes-since")
        if policy.check(ctxt, "os_compute_api:servers:allow_all_filters"):
            for key in _ADMIN_FILTERS:
                if key in params:
                    filters[key] = params[key]
            if "project_id" in params or "tenant_id" in params:
                filters["project_id"] = params.get("project_id", params.get("tenant_id"))
                filters["all_tenants"] = True
            if "deleted" in params and "deleted" not in filters:
                filters["deleted"] = validation.to_bool(params["deleted"], "deleted")
        limit = min(validation.to_int(params["limit"], "limit"), CONF.api.max_limit) \
            if "limit" in params else CONF.api.max_limit
        sort_keys = params.getall("sort_key") or ["created_at"]
        sort_dirs = params.getall("sort_dir") or ["desc"]
        for key in sort_keys:
            if key not in db_instance.SORT_KEYS:
                raise exception.Invalid(reason=f"Invalid sort_key '{key}'")
        for d in sort_dirs:
            if d not in ("asc", "desc"):
                raise exception.Invalid(reason=f"Invalid sort_dir '{d}': use 'asc' or 'desc'")
        sort_dirs = (sort_dirs + [sort_dirs[-1]] * len(sort_keys))[:len(sort_keys)]
        rows = self.api.list(ctxt, filters, limit=limit, marker=params.get("marker"),
                             sort_keys=sort_keys, sort_dirs=sort_dirs)
        base = _base_url(req)
        if detail:
            body = {"servers": views.servers_detail(rows, base, version,
                                                    policy.check(ctxt, EXTENDED_ATTRIBUTES))}
        else:
            body = {"servers": [views.server_brief(r, base) for r in rows]}
        if rows and len(rows) == limit:
            query = [(k, v) for k, v in params.items() if k != "marker"]
            query.append(("marker", rows[-1].uuid))
            qs = urllib.parse.urlencode(query)
            body["servers_links"] = [{"rel": "next", "href": f"{req.path_url}?{qs}"}]
        return body

    # GET /servers/{id}
    def show(self, req, server_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:servers:show")
        row = self.api.get(ctxt, server_id)
        return {"server": views.servers_detail([row], _base_url(req), wsgi.api_version(req),
                                               policy.check(ctxt, EXTENDED_ATTRIBUTES))[0]}

    # POST /servers
    def create(self, req):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:servers:create")
        version = wsgi.api_version(req)
        body = wsgi.json_body(req)
        validation.validate({"type": "object", "properties": {"server": _with_description(
            _create_server) if version.matches("2.19") else _create_server},
            "required": ["server"], "additionalProperties": False}, body)
        server = body["server"]
        if server.get("block_device_mapping_v2"):
            policy.authorize(ctxt, "os_compute_api:servers:create:attach_volume")
        # The schema's "minimum" does not apply to counts given as strings.
        min_count = validation.to_int(server.get("min_count", 1), "min_count", minimum=1)
        max_count = validation.to_int(server.get("max_count", min_count), "max_count", minimum=1)
        if min_count > max_count:
            raise exception.ValidationError(field="min_count", reason="must not exceed max_count")
        config_drive = server.get("config_drive", False)
        if isinstance(config_drive, str):
            config_drive = validation.to_bool(config_drive or "false", "config_drive")
        # Every input is checked before anything is created.
        return_rid = server.get("return_reservation_id", False)
        if isinstance(return_rid, str):
            return_rid = validation.to_bool(return_rid, "return_reservation_id")
        if "user_data" in server:
            _check_base64(server["user_data"], "user_data")
        zone = server.get("availability_zone")
        if zone is not None and zone not in AVAILABILITY_ZONES:
            raise exception.ValidationError(
                field="availability_zone",
                reason=f"the availability zone '{zone}' is not available; "
                       f"available: {', '.join(AVAILABILITY_ZONES)}")
        rows, reservation_id = self.api.create(
            ctxt, name=server["name"], flavor_ref=str(server["flavorRef"]).rsplit("/", 1)[-1],
            image_ref=server.get("imageRef", "").rsplit("/", 1)[-1],
            block_device_mapping=server.get("block_device_mapping_v2"),
            metadata=server.get("metadata"),
            description=server.get("description"), key_name=server.get("key_name"),
            user_data=server.get("user_data"),
            availability_zone=server.get("availability_zone"),
            access_ip_v4=server.get("accessIPv4"),
            access_ip_v6=_canonical_ipv6(server.get("accessIPv6")),
            config_drive=config_drive, min_count=min_count, max_count=max_count)
        if return_rid:
            return wsgi.Response({"reservation_id": reservation_id}, status=202)
        row = rows[0]
        base = _base_url(req)
        body = {"server": {"id": row.uuid, "links": views.links(base, "servers", row.uuid),
                           "OS-DCF:diskConfig": "MANUAL",
                           "security_groups": [{"name": "default"}]}}
        # As Nova (enable_instance_password): the password given, else a
        # generated one; either way it is only reported, never injected.
        password = server.get("adminPass")
        body["server"]["adminPass"] = secrets.token_urlsafe(9) if password is None else password
        return wsgi.Response(body, status=202,
                             headers={"Location": f"{base}/v2.1/servers/{row.uuid}"})

    # PUT /servers/{id}
    def update(self, req, server_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:servers:update")
        version = wsgi.api_version(req)
        body = wsgi.json_body(req)
        schema = _with_description(_update_server) if version.matches("2.19") else _update_server
        validation.validate({"type": "object", "properties": {"server": schema},
                             "required": ["server"], "additionalProperties": False}, body)
        fields = {"name": "display_name", "accessIPv4": "access_ip_v4",
                  "accessIPv6": "access_ip_v6", "description": "display_description"}
        values = {col: body["server"][key] for key, col in fields.items() if key in body["server"]}
        if values.get("access_ip_v6"):
            values["access_ip_v6"] = _canonical_ipv6(values["access_ip_v6"])
        row = self.api.update(ctxt, server_id, values)
        return {"server": views.servers_detail([row], _base_url(req), version,
                                               policy.check(ctxt, EXTENDED_ATTRIBUTES))[0]}

    # DELETE /servers/{id}
    def delete(self, req, server_id):
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "os_compute_api:servers:delete")
        self.api.delete(ctxt, server_id)
        return None

    # POST /servers/{id}/action
    def action(self, req, server_id):
        ctxt = wsgi.context_of(req)
        body = wsgi.json_body(req)
        if not isinstance(body, dict) or len(body) != 1:
            raise exception.Invalid(reason="The action body must be an object with exactly one key.")
        (name, args), = body.items()
        if name not in ACTION_RULES:
            raise exception.Invalid(reason=f"Action '{name}' is not supported by this cloud.")
        policy.authorize(ctxt, ACTION_RULES[name])
        if name in _SIMPLE_ACTIONS:
            if args not in (None, {}):
                raise exception.ValidationError(field=name, reason="takes no arguments (use null)")
            self.api.action(ctxt, server_id, _SIMPLE_ACTIONS[name], api_action=_SIMPLE_ACTIONS[name])
            return wsgi.Response(None, status=202)
        if name == "reboot":
            validation.validate(_action_schema(name, _reboot), body)
            kind = args["type"].upper()
            self.api.action(ctxt, server_id, "reboot_" + kind.lower(), api_action="reboot")
            return wsgi.Response(None, status=202)
        if name == "os-getConsoleOutput":
            validation.validate(_action_schema(name, _console_output), body)
            length = (args or {}).get("length")
            if length is not None:
                length = int(length)
                if length < -1:
                    raise exception.ValidationError(field="length", reason="must be -1 or more")
                if length == -1:
                    length = None
            # An answer, not an accepted task: 200 (the action route's default is 202).
            return wsgi.Response({"output": self.api.console_output(ctxt, server_id, length)},
                                 status=200)
        if name == "createImage":
            validation.validate(_action_schema(name, _create_image), body)
            image_id = self.api.snapshot(ctxt, server_id, args["name"], args.get("metadata") or {})
            return wsgi.Response(None, status=202, headers={
                "Location": f"{_base_url(req)}/images/{image_id}"})
        if name == "os-getVNCConsole":
            validation.validate(_action_schema(name, _vnc_console), body)
            url = self.api.vnc_console_url(ctxt, server_id)
            return wsgi.Response({"console": {"type": args["type"], "url": url}}, status=200)
        raise exception.Invalid(reason=f"Action '{name}' is not supported by this cloud.")


def _canonical_ipv6(value: str | None) -> str | None:
    """An IPv6 address as Nova stores it: compressed ('0:0:0:0:0:babe:220.12.22.2'
    is '::babe:dc0c:1602'); the schema has checked that it is one."""
    return ipaddress.IPv6Address(value).compressed if value else value


def _check_base64(value: str, field: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise exception.ValidationError(field=field, reason="is not valid base64") from None


def _parse_time(value: str, field: str) -> datetime.datetime:
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is not None:
            dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise exception.ValidationError(field=field, reason=f"'{value}' is not an ISO 8601 time")
    return dt
