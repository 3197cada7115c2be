"""The Identity API v3 application (embedded identity): version documents,
token authentication, routes, and Keystone-shaped error bodies.

The identity API always authenticates with its own token provider, whatever
``[api] auth_strategy`` says: it is the service that issues the tokens.
Version documents and ``POST /v3/auth/tokens`` need no token.
"""

from __future__ import annotations

import orjson
import webob

from virtstack import exception
from virtstack.api import app, wsgi
from virtstack.api.identity import authentication, resources, views
from virtstack.identity import tokens

VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"


def _version_doc(base_url: str) -> dict:
    return {"id": VERSION, "status": "stable", "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{base_url}/v3/"}],
            "media-types": [{"base": "application/json", "type": MEDIA_TYPE}]}


def _needs_no_token(req: webob.Request) -> bool:
    return req.path_info in IdentityApp.public_paths or (
        req.path_info.rstrip("/") == "/v3/auth/tokens" and req.method == "POST")


class IdentityApp(app.APIApp):
    """Version discovery, token check, then the v3 router."""

    public_paths = ("", "/", "/v3", "/v3/")

    def __init__(self, provider: tokens.TokenProvider | None = None):
        self.provider = provider or tokens.TokenProvider.from_config()
        self.router = self._build_router()

    def _build_router(self) -> wsgi.Router:
        r = wsgi.Router()
        a = authentication.AuthController(self.provider)
        r.add("/v3/auth/tokens", "POST", a.issue, 201)
        r.add("/v3/auth/tokens", "GET", a.validate)
        r.add("/v3/auth/tokens", "HEAD", a.check)
        r.add("/v3/auth/tokens", "DELETE", a.revoke, 204)
        r.add("/v3/auth/projects", "GET", a.projects)
        r.add("/v3/auth/domains", "GET", a.domains)
        r.add("/v3/auth/catalog", "GET", a.catalog)
        d = resources.DomainsController()
        r.add("/v3/domains", "GET", d.index)
        r.add("/v3/domains/{domain_id}", "GET", d.show)
        p = resources.ProjectsController()
        r.add("/v3/projects", "GET", p.index)
        r.add("/v3/projects", "POST", p.create, 201)
        r.add("/v3/projects/{project_id}", "GET", p.show)
        r.add("/v3/projects/{project_id}", "PATCH", p.update)
        r.add("/v3/projects/{project_id}", "DELETE", p.delete, 204)
        r.add("/v3/projects/{project_id}/users/{user_id}/roles", "GET", p.user_roles)
        grant = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
        r.add(grant, "PUT", p.grant, 204)
        r.add(grant, "HEAD", p.check_grant, 204)
        r.add(grant, "DELETE", p.revoke_grant, 204)
        u = resources.UsersController()
        r.add("/v3/users", "GET", u.index)
        r.add("/v3/users", "POST", u.create, 201)
        r.add("/v3/users/{user_id}", "GET", u.show)
        r.add("/v3/users/{user_id}", "PATCH", u.update)
        r.add("/v3/users/{user_id}", "DELETE", u.delete, 204)
        r.add("/v3/users/{user_id}/projects", "GET", u.projects)
        ro = resources.RolesController()
        r.add("/v3/roles", "GET", ro.index)
        r.add("/v3/roles", "POST", ro.create, 201)
        r.add("/v3/roles/{role_id}", "GET", ro.show)
        r.add("/v3/roles/{role_id}", "PATCH", ro.update)
        r.add("/v3/roles/{role_id}", "DELETE", ro.delete, 204)
        r.add("/v3/role_assignments", "GET", resources.RoleAssignmentsController().index)
        return r

    def version_response(self, base_url: str, root: bool) -> webob.Response:
        if root:
            # Keystone answers 300 Multiple Choices here; clients expect it.
            return app.json_response({"versions": {"values": [_version_doc(base_url)]}}, 300)
        return app.json_response({"version": _version_doc(base_url)})

    def method_not_allowed(self, req: webob.Request) -> webob.Response:
        resp = views.error_response(405, f"Method {req.method} is not allowed on {req.path}")
        resp.headers["Allow"] = "GET, HEAD"
        return resp

    def protected(self, req: webob.Request) -> webob.Response:
        # Not the [api] auth_strategy: this service checks its own tokens.
        if not _needs_no_token(req):
            token_id = req.headers.get("X-Auth-Token", "").strip()
            if not token_id:
                return views.error_response(
                    401, "The request you have made requires authentication: "
                         "send an X-Auth-Token header.")
            try:
                req.environ["virtstack.identity.token"] = self.provider.validate(token_id)
            except exception.TokenNotFound:
                return views.error_response(
                    401, "The request you have made requires authentication: the token "
                         "is invalid, expired or revoked.")
        return _identity_errors(req.get_response(self.router))


def _identity_errors(resp: webob.Response) -> webob.Response:
    """The shared router writes the Compute API's error body
    (``{"itemNotFound": {...}}``); Identity clients read Keystone's
    (``{"error": {"code", "title", "message"}}``). Rewrite it, keeping the
    status and headers."""
    if resp.status_int < 400 or resp.content_type != "application/json" or not resp.body:
        return resp  # (a HEAD answer has no body to rewrite)
    body = resp.json
    if not (isinstance(body, dict) and len(body) == 1):
        return resp
    (inner,) = body.values()
    if not (isinstance(inner, dict) and "message" in inner):
        return resp
    resp.body = orjson.dumps(views.error_body(resp.status_int, inner["message"]))
    if resp.status_int == 401:
        resp.headers["WWW-Authenticate"] = views.www_authenticate()
    return resp
