"""POST /v3/{project_id}/volumes/{volume_id}/action: os-extend, the legacy
attach actions (os-reserve ... os-terminate_connection) and the admin ones
(os-reset_status, os-force_delete). One handler per action name."""

from __future__ import annotations

from typing import Any, Callable

from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.volume import common
from virtstack.policies import volume_actions as action_rules
from virtstack.volume import api as volume_api

_connector = {"type": "object", "minProperties": 1}

SCHEMAS: dict[str, dict[str, Any]] = {
    "os-extend": {"type": "object", "properties": {
        "new_size": {"type": ["integer", "string"]}},
        "required": ["new_size"], "additionalProperties": False},
    "os-attach": {"type": "object", "properties": {
        "instance_uuid": {"type": "string", "format": "uuid"},
        "mountpoint": {"type": "string", "minLength": 1, "maxLength": 255},
        "host_name": {"type": "string", "maxLength": 255},
        "mode": {"type": "string", "enum": ["rw", "ro"]}},
        "required": ["mountpoint"], "additionalProperties": False},
    "os-detach": {"type": ["object", "null"], "properties": {
        "attachment_id": {"type": ["string", "null"]}}, "additionalProperties": False},
    "os-initialize_connection": {"type": "object", "properties": {"connector": _connector},
                                 "required": ["connector"], "additionalProperties": False},
    "os-terminate_connection": {"type": "object", "properties": {
        "connector": {"type": ["object", "null"]}},
        "required": ["connector"], "additionalProperties": False},
    "os-reset_status": {"type": "object", "properties": {
        "status": {"type": "string"}, "attach_status": {"type": "string"},
        "migration_status": {"type": "string"}}, "additionalProperties": False},
    "os-set_bootable": {"type": "object", "properties": {
        "bootable": {"type": ["boolean", "string"]}},
        "required": ["bootable"], "additionalProperties": False},
    "os-update_readonly_flag": {"type": "object", "properties": {
        "readonly": {"type": ["boolean", "string"]}},
        "required": ["readonly"], "additionalProperties": False},
}

#: Actions that take no arguments (their value is null or {}).
NO_ARGS = ("os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching",
           "os-force_delete")


class VolumeActionsController:
    def __init__(self, api: volume_api.VolumeAPI):
        self.api = api
        self.handlers: dict[str, Callable[..., Any]] = {
            "os-extend": self._extend, "os-reserve": self._reserve,
            "os-unreserve": self._unreserve, "os-begin_detaching": self._begin_detaching,
            "os-roll_detaching": self._roll_detaching, "os-attach": self._attach,
            "os-detach": self._detach, "os-initialize_connection": self._initialize,
            "os-terminate_connection": self._terminate, "os-reset_status": self._reset_status,
            "os-force_delete": self._force_delete, "os-set_bootable": self._set_bootable,
            "os-update_readonly_flag": self._readonly,
        }

    def action(self, req, volume_id: str):
        name, args = common.single_key_body(req)
        handler = self.handlers.get(name)
        # An action without a policy rule is not offered.
        if handler is None or name not in action_rules.ACTIONS:
            raise exception.Invalid(reason=f"There is no such action: {name}")
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, action_rules.ACTIONS[name])
        if name in NO_ARGS:
            if args not in (None, {}):
                raise exception.ValidationError(field=name, reason="takes no arguments")
        else:
            validation.validate({"type": "object", "properties": {name: SCHEMAS[name]},
                                 "required": [name]}, {name: args})
        result = handler(req, ctxt, volume_id, args or {})
        return wsgi.Response(result, status=200) if result is not None else wsgi.Response(
            None, status=202)

    def _extend(self, req, ctxt, volume_id, args):
        self.api.extend(ctxt, volume_id, args["new_size"],
                        allow_in_use=wsgi.api_version(req).matches("3.42"))

    def _reserve(self, req, ctxt, volume_id, args):
        self.api.reserve(ctxt, volume_id)

    def _unreserve(self, req, ctxt, volume_id, args):
        self.api.unreserve(ctxt, volume_id)

    def _begin_detaching(self, req, ctxt, volume_id, args):
        self.api.begin_detaching(ctxt, volume_id)

    def _roll_detaching(self, req, ctxt, volume_id, args):
        self.api.roll_detaching(ctxt, volume_id)

    def _attach(self, req, ctxt, volume_id, args):
        if not args.get("instance_uuid") and not args.get("host_name"):
            raise exception.Invalid(reason="Invalid request to attach volume to an invalid "
                                           "target: give instance_uuid or host_name.")
        self.api.attach(ctxt, volume_id, args.get("instance_uuid"), args["mountpoint"],
                        mode=args.get("mode", "rw"), host_name=args.get("host_name"))

    def _detach(self, req, ctxt, volume_id, args):
        self.api.detach(ctxt, volume_id, (args or {}).get("attachment_id"))

    def _initialize(self, req, ctxt, volume_id, args):
        return {"connection_info": self.api.initialize_connection(ctxt, volume_id,
                                                                  args["connector"])}

    def _terminate(self, req, ctxt, volume_id, args):
        self.api.terminate_connection(ctxt, volume_id, args.get("connector"))

    def _reset_status(self, req, ctxt, volume_id, args):
        if "migration_status" in args and len(args) == 1:
            return None  # no migrations here: nothing to reset
        self.api.reset_status(ctxt, volume_id, args.get("status"), args.get("attach_status"))

    def _force_delete(self, req, ctxt, volume_id, args):
        self.api.delete(ctxt, volume_id, force=True)

    def _set_bootable(self, req, ctxt, volume_id, args):
        self.api.set_bootable(ctxt, volume_id,
                              validation.to_bool(args["bootable"], "bootable"))

    def _readonly(self, req, ctxt, volume_id, args):
        self.api.update_readonly_flag(ctxt, volume_id,
                                      validation.to_bool(args["readonly"], "readonly"))
