"""Identity v3 bodies: tokens, projects, users, roles, domains, errors.

Field names and shapes follow the Identity API reference, which
python-openstackclient, openstacksdk, keystoneauth1 and Tempest read.
"""

from __future__ import annotations

import datetime
import http
from typing import Any

import orjson
import webob

from virtstack.db import models
from virtstack.identity import catalog as identity_catalog
from virtstack.identity import tokens


def timestamp(value: datetime.datetime) -> str:
    """Identity's time format: ``2015-11-05T22:00:11.000000Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "title": http.HTTPStatus(status).phrase,
                      "message": message}}


def error_response(status: int, message: str) -> webob.Response:
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    resp.body = orjson.dumps(error_body(status, message))
    if status == 401:
        resp.headers["WWW-Authenticate"] = www_authenticate()
    return resp


def www_authenticate() -> str:
    """Where a client without a valid token gets one."""
    return f'Keystone uri="{identity_catalog.identity_url()}"'


def _domain_ref(domain: models.Domain | None, domain_id: str) -> dict[str, Any]:
    return {"id": domain_id, "name": domain.name if domain is not None else None}


def token(valid: tokens.ValidToken, with_catalog: bool = True) -> dict[str, Any]:
    """The ``token`` object of ``POST``/``GET /v3/auth/tokens``."""
    payload = valid.payload
    body: dict[str, Any] = {
        "methods": list(payload.methods),
        "user": {"id": valid.user.id, "name": valid.user.name,
                 "domain": _domain_ref(valid.user_domain, valid.user.domain_id),
                 "password_expires_at": None},
        # Keystone's shape: own audit id, then the chain's first token's.
        "audit_ids": [payload.audit_id] + (
            [payload.audit_chain_id] if len(payload.audit_ids) > 1 else []),
        "expires_at": timestamp(payload.expires_at),
        "issued_at": timestamp(payload.issued_at),
    }
    if valid.project is not None:
        body["project"] = {"id": valid.project.id, "name": valid.project.name,
                           "domain": _domain_ref(valid.project_domain, valid.project.domain_id)}
        body["is_domain"] = False
        body["roles"] = [{"id": role.id, "name": role.name} for role in valid.roles]
        if with_catalog:
            body["catalog"] = identity_catalog.build(valid.project.id)
    return {"token": body}


def collection(name: str, items: list[dict[str, Any]], self_url: str) -> dict[str, Any]:
    return {name: items, "links": {"self": self_url, "previous": None, "next": None}}


def domain(row: models.Domain, base: str) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description or "",
            "enabled": row.enabled, "tags": [], "options": {},
            "links": {"self": f"{base}/v3/domains/{row.id}"}}


def project(row: models.Project, base: str) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "domain_id": row.domain_id,
            "description": row.description or "", "enabled": row.enabled,
            "is_domain": False, "parent_id": row.domain_id, "tags": [], "options": {},
            "links": {"self": f"{base}/v3/projects/{row.id}"}}


def user(row: models.User, base: str) -> dict[str, Any]:
    body = {"id": row.id, "name": row.name, "domain_id": row.domain_id,
            "enabled": row.enabled, "password_expires_at": None, "options": {},
            "links": {"self": f"{base}/v3/users/{row.id}"}}
    # Keystone shows these only when set.
    for field in ("default_project_id", "description", "email"):
        value = getattr(row, field)
        if value is not None:
            body[field] = value
    return body


def role(row: models.Role, base: str) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "domain_id": None,
            "description": row.description, "options": {},
            "links": {"self": f"{base}/v3/roles/{row.id}"}}
