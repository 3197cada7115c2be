"""/v3/domains, /v3/projects, /v3/users, /v3/roles, role grants and
/v3/role_assignments.

Who may do what is policy (``identity:*`` rules, ``virtstack/policies/
identity.py``): by default management is for admins (a token holding the
``admin`` role); a user may read their own user record, their own projects,
and the project their token is scoped to. Everyone else gets 403.
"""

from __future__ import annotations

import uuid
from typing import Any

from virtstack import exception, identity
from virtstack.api import validation, wsgi
from virtstack.api.identity import views
from virtstack.api.identity.authentication import authorize, query_flag
from virtstack.db import identity as db_identity
from virtstack.identity import passwords

_description = {"type": ["string", "null"], "maxLength": 65535}
#: Keystone accepts resource options; none are supported, so only {}.
_no_options = {"type": "object", "maxProperties": 0}

_PROJECT_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64},
    "description": _description,
    "enabled": {"type": "boolean"},
    "options": _no_options,
}
_USER_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "password": {"type": ["string", "null"], "minLength": 1, "maxLength": passwords.MAX_LENGTH},
    "enabled": {"type": "boolean"},
    "default_project_id": {"type": ["string", "null"], "maxLength": 64},
    "description": _description,
    "email": {"type": ["string", "null"], "maxLength": 255},
    "options": _no_options,
}
_ROLE_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": {"type": ["string", "null"], "maxLength": 255},
    "options": _no_options,
}
_domain_id = {"type": "string", "minLength": 1, "maxLength": 64}


def _schema(key: str, fields: dict[str, Any], required: list[str],
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object",
            "properties": {key: {"type": "object", "properties": {**fields, **(extra or {})},
                                 "required": required, "additionalProperties": False}},
            "required": [key], "additionalProperties": False}


CREATE_PROJECT = _schema("project", _PROJECT_FIELDS, ["name"], {
    "domain_id": _domain_id,
    "is_domain": {"type": "boolean", "enum": [False]},
    "parent_id": {"type": ["string", "null"], "maxLength": 64},
    "tags": {"type": "array", "maxItems": 0}})
UPDATE_PROJECT = _schema("project", _PROJECT_FIELDS, [])
CREATE_USER = _schema("user", _USER_FIELDS, ["name"], {"domain_id": _domain_id})
UPDATE_USER = _schema("user", _USER_FIELDS, [])
CREATE_ROLE = _schema("role", _ROLE_FIELDS, ["name"], {"domain_id": {"type": "null"}})
UPDATE_ROLE = _schema("role", _ROLE_FIELDS, [])


def _base(req) -> str:
    return req.host_url + req.script_name


def _authorize(req, action: str, target: dict[str, str] | None = None):
    """The caller's token, once rule ``identity:<action>`` allows it."""
    return authorize(req, f"identity:{action}", target)


def _enabled_filter(req) -> bool | None:
    value = req.GET.get("enabled")
    return None if value is None else validation.to_bool(value, "enabled")


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Request fields that map onto columns (``options`` is always empty)."""
    values = dict(values)
    values.pop("options", None)
    return values


class DomainsController:
    """The one domain, read-only."""

    def index(self, req):
        _authorize(req, "list_domains")
        rows = db_identity.list_domains(name=req.GET.get("name"), enabled=_enabled_filter(req))
        base = _base(req)
        return views.collection("domains", [views.domain(d, base) for d in rows],
                                f"{base}/v3/domains")

    def show(self, req, domain_id):
        _authorize(req, "get_domain", {"target.domain.id": domain_id})
        return {"domain": views.domain(db_identity.get_domain(domain_id), _base(req))}


class ProjectsController:
    def index(self, req):
        _authorize(req, "list_projects")
        rows = db_identity.list_projects(name=req.GET.get("name"),
                                         domain_id=req.GET.get("domain_id"),
                                         enabled=_enabled_filter(req))
        base = _base(req)
        return views.collection("projects", [views.project(p, base) for p in rows],
                                f"{base}/v3/projects")

    def create(self, req):
        _authorize(req, "create_project")
        body = wsgi.json_body(req)
        validation.validate(CREATE_PROJECT, body)
        values = _clean(body["project"])
        domain_id = values.pop("domain_id", identity.DEFAULT_DOMAIN_ID)
        parent_id = values.pop("parent_id", None)
        values.pop("is_domain", None)
        values.pop("tags", None)
        if parent_id not in (None, domain_id):
            raise exception.ValidationError(
                field="project/parent_id",
                reason="project hierarchies are not supported: the parent must be the domain")
        row = db_identity.create_project({"id": uuid.uuid4().hex, "domain_id": domain_id,
                                          "enabled": True, **values})
        return wsgi.Response({"project": views.project(row, _base(req))}, 201)

    def show(self, req, project_id):
        _authorize(req, "get_project", {"target.project.id": project_id})
        return {"project": views.project(db_identity.get_project(project_id), _base(req))}

    def update(self, req, project_id):
        _authorize(req, "update_project")
        body = wsgi.json_body(req)
        validation.validate(UPDATE_PROJECT, body)
        row = db_identity.update_project(project_id, _clean(body["project"]))
        return {"project": views.project(row, _base(req))}

    def delete(self, req, project_id):
        _authorize(req, "delete_project")
        db_identity.delete_project(project_id)

    def user_roles(self, req, project_id, user_id):
        """Roles granted directly to the user on the project."""
        _authorize(req, "list_grants")
        db_identity.get_project(project_id)
        db_identity.get_user(user_id)
        grants = db_identity.list_assignments(user_id=user_id, project_id=project_id)
        base = _base(req)
        roles = [views.role(db_identity.get_role(g.role_id), base) for g in grants]
        return views.collection("roles", roles,
                                f"{base}/v3/projects/{project_id}/users/{user_id}/roles")

    def grant(self, req, project_id, user_id, role_id):
        _authorize(req, "create_grant")
        db_identity.grant(user_id, project_id, role_id)

    def check_grant(self, req, project_id, user_id, role_id):
        _authorize(req, "check_grant")
        db_identity.get_project(project_id)
        db_identity.get_user(user_id)
        db_identity.get_role(role_id)
        if not db_identity.has_grant(user_id, project_id, role_id):
            raise exception.RoleAssignmentNotFound(user_id=user_id, project_id=project_id,
                                                   role_id=role_id)

    def revoke_grant(self, req, project_id, user_id, role_id):
        _authorize(req, "revoke_grant")
        db_identity.revoke_grant(user_id, project_id, role_id)


class UsersController:
    def index(self, req):
        _authorize(req, "list_users")
        rows = db_identity.list_users(name=req.GET.get("name"),
                                      domain_id=req.GET.get("domain_id"),
                                      enabled=_enabled_filter(req))
        base = _base(req)
        return views.collection("users", [views.user(u, base) for u in rows],
                                f"{base}/v3/users")

    def create(self, req):
        _authorize(req, "create_user")
        body = wsgi.json_body(req)
        validation.validate(CREATE_USER, body)
        values = self._values(body["user"])
        values.setdefault("domain_id", identity.DEFAULT_DOMAIN_ID)
        row = db_identity.create_user({"id": uuid.uuid4().hex, "enabled": True,
                                       "password_hash": None, **values})
        return wsgi.Response({"user": views.user(row, _base(req))}, 201)

    def show(self, req, user_id):
        _authorize(req, "get_user", {"target.user.id": user_id})
        return {"user": views.user(db_identity.get_user(user_id), _base(req))}

    def update(self, req, user_id):
        _authorize(req, "update_user")
        body = wsgi.json_body(req)
        validation.validate(UPDATE_USER, body)
        row = db_identity.update_user(user_id, self._values(body["user"]))
        return {"user": views.user(row, _base(req))}

    def delete(self, req, user_id):
        _authorize(req, "delete_user")
        db_identity.delete_user(user_id)

    def projects(self, req, user_id):
        _authorize(req, "list_user_projects", {"target.user.id": user_id})
        db_identity.get_user(user_id)
        base = _base(req)
        rows = db_identity.projects_of_user(user_id, enabled=_enabled_filter(req))
        return views.collection("projects", [views.project(p, base) for p in rows],
                                f"{base}/v3/users/{user_id}/projects")

    @staticmethod
    def _values(fields: dict[str, Any]) -> dict[str, Any]:
        """Columns from request fields: the password becomes its hash here
        and goes no further."""
        values = _clean(fields)
        if "password" in values:
            password = values.pop("password")
            values["password_hash"] = None if password is None else \
                passwords.hash_password(passwords.check_policy(password, "user/password"))
        if values.get("default_project_id"):
            db_identity.get_project(values["default_project_id"])
        return values


class RolesController:
    def index(self, req):
        _authorize(req, "list_roles")
        base = _base(req)
        rows = db_identity.list_roles(name=req.GET.get("name"))
        return views.collection("roles", [views.role(r, base) for r in rows], f"{base}/v3/roles")

    def create(self, req):
        _authorize(req, "create_role")
        body = wsgi.json_body(req)
        validation.validate(CREATE_ROLE, body)
        values = _clean(body["role"])
        values.pop("domain_id", None)
        row = db_identity.create_role({"id": uuid.uuid4().hex, **values})
        return wsgi.Response({"role": views.role(row, _base(req))}, 201)

    def show(self, req, role_id):
        _authorize(req, "get_role")
        return {"role": views.role(db_identity.get_role(role_id), _base(req))}

    def update(self, req, role_id):
        _authorize(req, "update_role")
        body = wsgi.json_body(req)
        validation.validate(UPDATE_ROLE, body)
        return {"role": views.role(db_identity.update_role(role_id, _clean(body["role"])),
                                   _base(req))}

    def delete(self, req, role_id):
        _authorize(req, "delete_role")
        db_identity.delete_role(role_id)


#: Filters of /v3/role_assignments that select kinds of assignment virtstack
#: does not have (group and domain grants, system scope): they match nothing.
_NEVER_MATCHING = ("group.id", "scope.domain.id", "scope.system")


class RoleAssignmentsController:
    def index(self, req):
        _authorize(req, "list_role_assignments")
        base = _base(req)
        self_url = req.url
        if any(key in req.GET for key in _NEVER_MATCHING):
            return views.collection("role_assignments", [], self_url)
        effective = query_flag(req, "effective")
        names = query_flag(req, "include_names")
        role_filter = req.GET.get("role.id")
        grants = db_identity.list_assignments(user_id=req.GET.get("user.id"),
                                              project_id=req.GET.get("scope.project.id"),
                                              role_id=None if effective else role_filter)
        implied = db_identity.implied_role_map() if effective else {}
        entries = []
        for grant in grants:
            held = db_identity.expand_implied([grant.role_id], implied) if effective \
                else {grant.role_id: None}
            for role_id, prior in held.items():
                if role_filter and role_id != role_filter:
                    continue
                entries.append(self._entry(base, grant, role_id, prior))
        if names:
            self._add_names(entries)
        return views.collection("role_assignments", entries, self_url)

    @staticmethod
    def _entry(base: str, grant, role_id: str, prior: str | None) -> dict[str, Any]:
        links = {"assignment": f"{base}/v3/projects/{grant.project_id}/users/"
                               f"{grant.user_id}/roles/{prior or role_id}"}
        if prior is not None:
            links["prior_role"] = f"{base}/v3/roles/{prior}"
        return {"role": {"id": role_id}, "user": {"id": grant.user_id},
                "scope": {"project": {"id": grant.project_id}}, "links": links}

    @staticmethod
    def _add_names(entries: list[dict[str, Any]]) -> None:
        domains = {d.id: {"id": d.id, "name": d.name} for d in db_identity.list_domains()}
        users = {u.id: u for u in db_identity.list_users()}
        projects = {p.id: p for p in db_identity.list_projects()}
        roles = {r.id: r for r in db_identity.list_roles()}
        for entry in entries:
            role = roles.get(entry["role"]["id"])
            entry["role"]["name"] = role.name if role else None
            user = users.get(entry["user"]["id"])
            if user is not None:
                entry["user"].update(name=user.name, domain=domains.get(user.domain_id))
            project = projects.get(entry["scope"]["project"]["id"])
            if project is not None:
                entry["scope"]["project"].update(name=project.name,
                                                 domain=domains.get(project.domain_id))

