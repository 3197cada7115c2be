"""/v3/auth: issue, validate, check and revoke tokens; the caller's
projects and service catalog."""

from __future__ import annotations

import webob

from virtstack import context as vs_context
from virtstack import exception, policy
from virtstack.api import validation, wsgi
from virtstack.api.identity import views
from virtstack.db import identity as db_identity
from virtstack.identity import authenticate, passwords, tokens
from virtstack.identity import catalog as identity_catalog

_ref_id = {"type": "string", "minLength": 1, "maxLength": 64}
_ref_name = {"type": "string", "minLength": 1, "maxLength": 255}
_domain_ref = {"type": "object",
               "properties": {"id": _ref_id, "name": _ref_name},
               "anyOf": [{"required": ["id"]}, {"required": ["name"]}]}
#: A user or project: by id, or by name within a domain.
_named_in_domain = {"anyOf": [{"required": ["id"]}, {"required": ["name", "domain"]}]}

AUTH_SCHEMA = {
    "type": "object",
    "properties": {"auth": {
        "type": "object",
        "properties": {
            "identity": {
                "type": "object",
                "properties": {
                    "methods": {"type": "array", "minItems": 1,
                                "items": {"type": "string", "minLength": 1, "maxLength": 64}},
                    "password": {
                        "type": "object",
                        "properties": {"user": {
                            "type": "object",
                            "properties": {"id": _ref_id, "name": _ref_name,
                                           "domain": _domain_ref,
                                           "password": {"type": "string", "minLength": 1,
                                                        "maxLength": passwords.MAX_LENGTH}},
                            "required": ["password"], **_named_in_domain}},
                        "required": ["user"]},
                    "token": {"type": "object",
                              "properties": {"id": {"type": "string", "minLength": 1,
                                                    "maxLength": 8192}},
                              "required": ["id"]},
                },
                "required": ["methods"]},
            "scope": {"anyOf": [
                {"type": "string", "enum": ["unscoped"]},
                {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "properties": {"project": {
                     "type": "object",
                     "properties": {"id": _ref_id, "name": _ref_name, "domain": _domain_ref},
                     **_named_in_domain}}},
            ]},
        },
        "required": ["identity"]}},
    "required": ["auth"],
}


def query_flag(req: webob.Request, name: str) -> bool:
    """A query flag: present without a value, or with a true value."""
    if name not in req.GET:
        return False
    value = req.GET[name]
    return value == "" or validation.to_bool(value, name)


def caller(req: webob.Request) -> tokens.ValidToken:
    """The validated token of the request (set by ``IdentityApp``)."""
    valid = req.environ.get("virtstack.identity.token")
    if valid is None:
        raise exception.NotAuthenticated()
    return valid


def context_of(valid: tokens.ValidToken) -> vs_context.RequestContext:
    """The policy credentials of a token: user, project (None when
    unscoped), their domains and the roles (implied ones included)."""
    project = valid.project
    return vs_context.RequestContext(
        user_id=valid.user.id, user_domain_id=valid.user.domain_id,
        project_id=project.id if project is not None else None,
        project_domain_id=project.domain_id if project is not None else None,
        roles=valid.role_names, overwrite=False)


def authorize(req: webob.Request, rule: str,
              target: dict[str, str] | None = None) -> tokens.ValidToken:
    """The request's validated token, once policy ``rule`` allows it to act
    on ``target`` (Keystone's flat keys: ``target.user.id``, ...); 403
    naming the rule otherwise."""
    valid = caller(req)
    policy.authorize(context_of(valid), rule, target)
    return valid


class AuthController:
    """``POST/GET/HEAD/DELETE /v3/auth/tokens``, ``/v3/auth/projects``,
    ``/v3/auth/catalog``, ``/v3/auth/domains``."""

    def __init__(self, provider: tokens.TokenProvider):
        self.provider = provider

    def issue(self, req):
        body = wsgi.json_body(req)
        validation.validate(AUTH_SCHEMA, body)
        valid = authenticate.authenticate(self.provider, body["auth"])
        return wsgi.Response(views.token(valid, not query_flag(req, "nocatalog")), 201,
                             {"X-Subject-Token": valid.token_id})

    def _subject(self, req, rule: str) -> tokens.ValidToken:
        """The token named by ``X-Subject-Token``, once ``rule`` allows the
        caller to act on it (by default: their own, or any for admins). 404
        for an invalid one."""
        caller(req)
        subject_id = req.headers.get("X-Subject-Token", "").strip()
        if not subject_id:
            raise exception.ValidationError(field="X-Subject-Token",
                                            reason="the header is required")
        subject = self.provider.validate(subject_id)
        authorize(req, rule, {"target.token.user_id": subject.user.id})
        return subject

    def validate(self, req):
        subject = self._subject(req, "identity:validate_token")
        return wsgi.Response(views.token(subject, not query_flag(req, "nocatalog")), 200,
                             {"X-Subject-Token": subject.token_id})

    def check(self, req):
        self._subject(req, "identity:check_token")
        return wsgi.Response(None, 200)

    def revoke(self, req):
        self.provider.revoke(self._subject(req, "identity:revoke_token").payload)
        return None

    def projects(self, req):
        valid = authorize(req, "identity:get_auth_projects")
        base = req.host_url + req.script_name
        rows = db_identity.projects_of_user(valid.user.id, enabled=True)
        return views.collection("projects", [views.project(p, base) for p in rows],
                                f"{base}/v3/auth/projects")

    def domains(self, req):
        # Domain-scoped tokens are not offered: no domain to scope to.
        authorize(req, "identity:get_auth_domains")
        base = req.host_url + req.script_name
        return views.collection("domains", [], f"{base}/v3/auth/domains")

    def catalog(self, req):
        valid = authorize(req, "identity:get_auth_catalog")
        if valid.project is None:
            raise exception.Forbidden(
                message="A project-scoped token is required to produce a service catalog.")
        base = req.host_url + req.script_name
        return {"catalog": identity_catalog.build(valid.project.id),
                "links": {"self": f"{base}/v3/auth/catalog", "previous": None, "next": None}}
