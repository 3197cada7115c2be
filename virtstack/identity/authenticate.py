"""From a ``POST /v3/auth/tokens`` request to a token.

Methods: ``password`` (user by id, or by name and domain) and ``token`` (a
valid token of the same user; the new token joins its audit chain). Scope: a
project by id or by name and domain, explicitly ``"unscoped"``, or none
(then the user's default project if they hold a role there, else unscoped,
as Keystone does). Domain, system and trust scopes are not supported (400).

Every failure to prove who the caller is, or that they may use the project,
is the same 401 (the message does not say whether the user exists); the log
names the user, never the password or token.
"""

from __future__ import annotations

import logging
from typing import Any

from virtstack import exception
from virtstack.db import identity as db_identity
from virtstack.db import models
from virtstack.identity import passwords, tokens

LOG = logging.getLogger(__name__)

METHODS = ("password", "token")


def authenticate(provider: tokens.TokenProvider, auth: dict[str, Any]) -> tokens.ValidToken:
    """Issue a token for ``auth`` (the request's ``auth`` object, already
    checked against the request schema). Raises ``AuthenticationFailed``
    (401) or ``ValidationError`` (400)."""
    identity = auth["identity"]
    methods = list(dict.fromkeys(identity["methods"]))
    for method in methods:
        if method not in METHODS:
            raise exception.AuthenticationFailed(
                message=f"Unsupported authentication method '{method}'; supported: "
                        f"{', '.join(METHODS)}.")
        if method not in identity:
            raise exception.ValidationError(field=f"auth/identity/{method}",
                                            reason=f"is required by the method '{method}'")
    scope = auth.get("scope")
    if isinstance(scope, dict) and "project" not in scope:
        raise exception.ValidationError(
            field="auth/scope", reason=f"scope '{next(iter(scope))}' is not supported; scope "
                                       "the token to a project, or leave it unscoped")
    user: models.User | None = None
    parent: tokens.TokenPayload | None = None
    if "password" in methods:
        user = _password_user(identity["password"]["user"])
    if "token" in methods:
        try:
            valid = provider.validate(identity["token"]["id"])
        except exception.TokenNotFound:
            raise exception.AuthenticationFailed() from None
        if user is not None and valid.user.id != user.id:
            LOG.info("Authentication failed: password and token name different users")
            raise exception.AuthenticationFailed()
        user, parent = valid.user, valid.payload
    assert user is not None
    project_id = _scope(user, scope)
    token_id, _ = provider.issue(user.id, project_id, methods, parent)
    return provider.validate(token_id)


def _domain_id(ref: dict[str, Any]) -> str:
    """The id of the domain ``{"id": ...}`` or ``{"name": ...}``; 401 if unknown
    or disabled."""
    if "id" in ref:
        try:
            domains = [db_identity.get_domain(ref["id"])]
        except exception.DomainNotFound:
            domains = []
    else:
        domains = db_identity.list_domains(name=ref["name"])
    if not domains or not domains[0].enabled:
        raise exception.AuthenticationFailed()
    return domains[0].id


def _password_user(ref: dict[str, Any]) -> models.User:
    """The user the password method names, once the password matched."""
    password = ref["password"]
    try:
        if "id" in ref:
            user = db_identity.get_user(ref["id"])
        else:
            user = db_identity.find_user(ref["name"], _domain_id(ref["domain"]))
    except (exception.UserNotFound, exception.AuthenticationFailed):
        passwords.verify_password(password, None)  # same cost as a real check
        LOG.info("Authentication failed: no user %s", ref.get("id") or ref.get("name"))
        raise exception.AuthenticationFailed() from None
    if not passwords.verify_password(password, user.password_hash):
        LOG.info("Authentication failed: wrong password for user %s", user.id)
        raise exception.AuthenticationFailed()
    if not user.enabled or not db_identity.get_domain(user.domain_id).enabled:
        LOG.info("Authentication failed: user %s or its domain is disabled", user.id)
        raise exception.AuthenticationFailed()
    return user


def _scope(user: models.User, scope: Any) -> str | None:
    """The project id the token will be scoped to (None: unscoped)."""
    if scope == "unscoped":
        return None
    if scope is None:
        default = user.default_project_id
        if default and _usable_project(user, default):
            return default
        return None
    ref = scope["project"]
    try:
        if "id" in ref:
            project = db_identity.get_project(ref["id"])
        else:
            project = db_identity.find_project(ref["name"], _domain_id(ref["domain"]))
    except exception.ProjectNotFound:
        LOG.info("Authentication failed: user %s asked for unknown project %s",
                 user.id, ref.get("id") or ref.get("name"))
        raise exception.AuthenticationFailed(
            message=f"User {user.id} has no access to project "
                    f"{ref.get('id') or ref.get('name')}.") from None
    if not _usable_project(user, project.id):
        LOG.info("Authentication failed: user %s has no role on project %s", user.id, project.id)
        raise exception.AuthenticationFailed(
            message=f"User {user.id} has no access to project {project.id}.")
    return project.id


def _usable_project(user: models.User, project_id: str) -> bool:
    """Whether the project exists, is enabled (with its domain), and the
    user holds a role on it."""
    try:
        project = db_identity.get_project(project_id)
    except exception.ProjectNotFound:
        return False
    return (project.enabled and db_identity.get_domain(project.domain_id).enabled
            and bool(db_identity.effective_roles(user.id, project.id)))
