"""Rows of the embedded identity service: domains, projects, users, roles,
role assignments (with implied roles) and revoked tokens.

Passwords arrive here already hashed (``identity.passwords``); nothing in this
module sees a clear-text password or a token.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Iterable

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models

#: Errors by kind of row, for get-by-id.
_NOT_FOUND = {models.Domain: (exception.DomainNotFound, "domain_id"),
              models.Project: (exception.ProjectNotFound, "project_id"),
              models.User: (exception.UserNotFound, "user_id"),
              models.Role: (exception.RoleNotFound, "role_id")}


def _get(model, row_id: str, sess=None):
    def load(s):
        return s.get(model, row_id)
    if sess is not None:
        row = load(sess)
    else:
        with db_api.reader() as s:
            row = load(s)
    if row is None:
        error, field = _NOT_FOUND[model]
        raise error(**{field: row_id})
    return row


def _insert(row, kind: str, details: str):
    """Add ``row``; ``IdentityConflict`` (409) when a unique key is taken
    (the database decides, so two racing creates cannot both win)."""
    try:
        with db_api.session() as sess:
            sess.add(row)
    except sa.exc.IntegrityError:
        raise exception.IdentityConflict(type=kind, details=details) from None
    return row


def _update(model, row_id: str, values: dict[str, Any], kind: str):
    try:
        with db_api.session() as sess:
            row = _get(model, row_id, sess)
            for key, value in values.items():
                setattr(row, key, value)
    except sa.exc.IntegrityError:
        raise exception.IdentityConflict(
            type=kind, details=f"another {kind} in its domain has the name "
                               f"'{values.get('name')}'") from None
    return row


def _filtered(model, **filters) -> list:
    conds = [getattr(model, key) == value for key, value in filters.items() if value is not None]
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(model).where(*conds).order_by(model.name, model.id)))


# -- domains -------------------------------------------------------------------

def ensure_domain(domain_id: str, name: str, description: str | None = None) -> bool:
    """Create the domain unless it exists; True if this call created it."""
    try:
        with db_api.session() as sess:
            if sess.get(models.Domain, domain_id) is not None:
                return False
            sess.add(models.Domain(id=domain_id, name=name, description=description))
    except sa.exc.IntegrityError:
        return False  # a concurrent bootstrap made it
    return True


def get_domain(domain_id: str) -> models.Domain:
    return _get(models.Domain, domain_id)


def list_domains(name: str | None = None, enabled: bool | None = None) -> list[models.Domain]:
    return _filtered(models.Domain, name=name, enabled=enabled)


# -- projects ------------------------------------------------------------------

def create_project(values: dict[str, Any]) -> models.Project:
    """``values``: id, name, domain_id (existing), description, enabled."""
    get_domain(values["domain_id"])
    return _insert(models.Project(**values), "project",
                   f"a project named '{values['name']}' already exists in domain "
                   f"'{values['domain_id']}'")


def get_project(project_id: str) -> models.Project:
    return _get(models.Project, project_id)


def find_project(name: str, domain_id: str) -> models.Project:
    """The project called ``name`` in the domain; ``ProjectNotFound`` naming it."""
    rows = _filtered(models.Project, name=name, domain_id=domain_id)
    if not rows:
        raise exception.ProjectNotFound(project_id=f"{name} (domain {domain_id})")
    return rows[0]


def list_projects(name: str | None = None, domain_id: str | None = None,
                  enabled: bool | None = None) -> list[models.Project]:
    return _filtered(models.Project, name=name, domain_id=domain_id, enabled=enabled)


def update_project(project_id: str, values: dict[str, Any]) -> models.Project:
    return _update(models.Project, project_id, values, "project")


def delete_project(project_id: str) -> None:
    """Delete the project and every role assignment on it."""
    with db_api.session() as sess:
        sess.execute(sa.delete(models.RoleAssignment)
                     .where(models.RoleAssignment.project_id == project_id))
        result = sess.execute(sa.delete(models.Project).where(models.Project.id == project_id))
    if result.rowcount == 0:
        raise exception.ProjectNotFound(project_id=project_id)


# -- users ---------------------------------------------------------------------

def create_user(values: dict[str, Any]) -> models.User:
    """``values``: id, name, domain_id (existing), password_hash (already
    hashed, or None), enabled, default_project_id, description, email."""
    get_domain(values["domain_id"])
    return _insert(models.User(**values), "user",
                   f"a user named '{values['name']}' already exists in domain "
                   f"'{values['domain_id']}'")


def get_user(user_id: str) -> models.User:
    return _get(models.User, user_id)


def find_user(name: str, domain_id: str) -> models.User:
    rows = _filtered(models.User, name=name, domain_id=domain_id)
    if not rows:
        raise exception.UserNotFound(user_id=f"{name} (domain {domain_id})")
    return rows[0]


def list_users(name: str | None = None, domain_id: str | None = None,
               enabled: bool | None = None) -> list[models.User]:
    return _filtered(models.User, name=name, domain_id=domain_id, enabled=enabled)


def update_user(user_id: str, values: dict[str, Any]) -> models.User:
    return _update(models.User, user_id, values, "user")


def delete_user(user_id: str) -> None:
    """Delete the user and every role assignment they hold."""
    with db_api.session() as sess:
        sess.execute(sa.delete(models.RoleAssignment)
                     .where(models.RoleAssignment.user_id == user_id))
        result = sess.execute(sa.delete(models.User).where(models.User.id == user_id))
    if result.rowcount == 0:
        raise exception.UserNotFound(user_id=user_id)


# -- roles ---------------------------------------------------------------------

def create_role(values: dict[str, Any]) -> models.Role:
    """``values``: id, name (unique), description."""
    return _insert(models.Role(**values), "role",
                   f"a role named '{values['name']}' already exists")


def get_role(role_id: str) -> models.Role:
    return _get(models.Role, role_id)


def find_role(name: str) -> models.Role:
    rows = _filtered(models.Role, name=name)
    if not rows:
        raise exception.RoleNotFound(role_id=name)
    return rows[0]


def list_roles(name: str | None = None) -> list[models.Role]:
    return _filtered(models.Role, name=name)


def update_role(role_id: str, values: dict[str, Any]) -> models.Role:
    return _update(models.Role, role_id, values, "role")


def delete_role(role_id: str) -> None:
    """Delete the role, its assignments and the implications it is part of."""
    IR, RA = models.ImpliedRole, models.RoleAssignment
    with db_api.session() as sess:
        sess.execute(sa.delete(RA).where(RA.role_id == role_id))
        sess.execute(sa.delete(IR).where(sa.or_(IR.prior_role_id == role_id,
                                                IR.implied_role_id == role_id)))
        result = sess.execute(sa.delete(models.Role).where(models.Role.id == role_id))
    if result.rowcount == 0:
        raise exception.RoleNotFound(role_id=role_id)


def add_implied_role(prior_role_id: str, implied_role_id: str) -> bool:
    """Holding the prior role grants the implied one; True if new."""
    get_role(prior_role_id)
    get_role(implied_role_id)
    try:
        with db_api.session() as sess:
            if sess.get(models.ImpliedRole, (prior_role_id, implied_role_id)) is not None:
                return False
            sess.add(models.ImpliedRole(prior_role_id=prior_role_id,
                                        implied_role_id=implied_role_id))
    except sa.exc.IntegrityError:
        return False
    return True


def implied_role_map(sess=None) -> dict[str, set[str]]:
    """prior role id -> the role ids it directly implies."""
    def load(s):
        result: dict[str, set[str]] = {}
        for prior, implied in s.execute(sa.select(models.ImpliedRole.prior_role_id,
                                                  models.ImpliedRole.implied_role_id)):
            result.setdefault(prior, set()).add(implied)
        return result
    if sess is not None:
        return load(sess)
    with db_api.reader() as s:
        return load(s)


def expand_implied(role_ids: Iterable[str], implied: dict[str, set[str]]) -> dict[str, str | None]:
    """Every role held through ``role_ids`` and the implications:
    role id -> the directly assigned role it was implied by (None when it is
    assigned itself). Cycles end where a role is already held."""
    held: dict[str, str | None] = {role_id: None for role_id in role_ids}
    pending = list(held)
    while pending:
        current = pending.pop()
        for implied_id in implied.get(current, ()):
            if implied_id not in held:
                held[implied_id] = held[current] or current
                pending.append(implied_id)
    return held


# -- role assignments ----------------------------------------------------------

def grant(user_id: str, project_id: str, role_id: str) -> bool:
    """Give the user the role on the project; True if new (granting twice is
    not an error). 404 for an unknown user, project or role."""
    try:
        with db_api.session() as sess:
            _get(models.User, user_id, sess)
            _get(models.Project, project_id, sess)
            _get(models.Role, role_id, sess)
            if sess.get(models.RoleAssignment, (user_id, project_id, role_id)) is not None:
                return False
            sess.add(models.RoleAssignment(user_id=user_id, project_id=project_id,
                                           role_id=role_id))
    except sa.exc.IntegrityError:
        return False  # a concurrent grant won; the assignment exists
    return True


def revoke_grant(user_id: str, project_id: str, role_id: str) -> None:
    RA = models.RoleAssignment
    with db_api.session() as sess:
        result = sess.execute(sa.delete(RA).where(RA.user_id == user_id,
                                                  RA.project_id == project_id,
                                                  RA.role_id == role_id))
    if result.rowcount == 0:
        raise exception.RoleAssignmentNotFound(user_id=user_id, project_id=project_id,
                                               role_id=role_id)


def has_grant(user_id: str, project_id: str, role_id: str) -> bool:
    with db_api.reader() as sess:
        return sess.get(models.RoleAssignment, (user_id, project_id, role_id)) is not None


def list_assignments(user_id: str | None = None, project_id: str | None = None,
                     role_id: str | None = None) -> list[models.RoleAssignment]:
    RA = models.RoleAssignment
    conds = [col == value for col, value in ((RA.user_id, user_id), (RA.project_id, project_id),
                                             (RA.role_id, role_id)) if value is not None]
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(RA).where(*conds)
                                 .order_by(RA.user_id, RA.project_id, RA.role_id)))


def projects_of_user(user_id: str, enabled: bool | None = None) -> list[models.Project]:
    """Projects where the user holds at least one role."""
    P, RA = models.Project, models.RoleAssignment
    conds = [P.id.in_(sa.select(RA.project_id).where(RA.user_id == user_id))]
    if enabled is not None:
        conds.append(P.enabled.is_(enabled))
    with db_api.reader() as sess:
        return list(sess.scalars(sa.select(P).where(*conds).order_by(P.name, P.id)))


def effective_roles(user_id: str, project_id: str, sess=None) -> list[models.Role]:
    """The roles the user holds on the project, implied ones included,
    sorted by name."""
    def load(s):
        RA = models.RoleAssignment
        direct = s.scalars(sa.select(RA.role_id).where(RA.user_id == user_id,
                                                       RA.project_id == project_id)).all()
        if not direct:
            return []
        held = expand_implied(direct, implied_role_map(s))
        return list(s.scalars(sa.select(models.Role).where(models.Role.id.in_(held))
                              .order_by(models.Role.name)))
    if sess is not None:
        return load(sess)
    with db_api.reader() as s:
        return load(s)


# -- what a token stands for ---------------------------------------------------

@dataclasses.dataclass
class TokenSubject:
    """The rows a token names, read in one snapshot when it is validated."""

    user: models.User | None
    user_domain: models.Domain | None
    project: models.Project | None
    project_domain: models.Domain | None
    roles: list[models.Role]
    revoked: bool


def load_token_subject(user_id: str, project_id: str | None,
                       audit_ids: list[str]) -> TokenSubject:
    """User, project (with their domains), effective roles, and whether any
    of ``audit_ids`` is revoked. Missing rows are None."""
    RT = models.RevokedToken
    with db_api.reader() as sess:
        revoked = sess.scalar(sa.select(sa.func.count()).select_from(RT)
                              .where(RT.audit_id.in_(audit_ids))) > 0
        user = sess.get(models.User, user_id)
        user_domain = sess.get(models.Domain, user.domain_id) if user is not None else None
        project = project_domain = None
        roles: list[models.Role] = []
        if project_id is not None:
            project = sess.get(models.Project, project_id)
            if project is not None:
                project_domain = sess.get(models.Domain, project.domain_id)
                roles = effective_roles(user_id, project_id, sess)
    return TokenSubject(user, user_domain, project, project_domain, roles, revoked)


# -- revoked tokens ------------------------------------------------------------

def revoke_token(audit_id: str, expires_at: datetime.datetime) -> None:
    """Record the revocation (idempotent)."""
    try:
        with db_api.session() as sess:
            if sess.get(models.RevokedToken, audit_id) is None:
                sess.add(models.RevokedToken(audit_id=audit_id, expires_at=expires_at))
    except sa.exc.IntegrityError:
        pass  # revoked concurrently: the row is there


def prune_revocations(now: datetime.datetime) -> int:
    """Forget revocations of tokens that have expired anyway; how many."""
    RT = models.RevokedToken
    with db_api.session() as sess:
        return sess.execute(sa.delete(RT).where(RT.expires_at < now)).rowcount
