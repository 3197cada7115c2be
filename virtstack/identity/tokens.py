"""Tokens: Fernet-signed and encrypted, expiring, revocable.

A token carries who (user id), where (project id or none: unscoped), how
(authentication methods), its audit ids and its lifetime. Nothing else is
stored per token: roles, names and whether user and project still exist and
are enabled are read from the database each time a token is validated, so a
removed role or a disabled user takes effect at once.

Revocation is by audit id. ``audit_ids`` lists the token's own id first,
then the ids of the tokens it was issued from by the ``token`` method,
nearest first: revoking a token therefore also revokes every token issued
from it, however far down the chain. Rescoped tokens keep the original's
expiry, so a chain cannot outlive its first token.

Token strings are secrets: never logged, never put in error messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import secrets
from typing import Callable

import orjson
from cryptography import fernet

from virtstack import exception
from virtstack.conf import CONF
from virtstack.db import identity as db_identity
from virtstack.db import models
from virtstack.identity import keys as identity_keys

LOG = logging.getLogger(__name__)

#: Payload format version, first field of every payload.
PAYLOAD_VERSION = 1
#: Longest chain of tokens issued from tokens; past it, authenticate anew.
MAX_CHAIN = 16


@dataclasses.dataclass(frozen=True)
class TokenPayload:
    """What a token says (signed, so it can be trusted once decoded).

    ``audit_ids``: own id first, then the tokens it descends from.
    Times are naive UTC.
    """

    user_id: str
    project_id: str | None
    methods: tuple[str, ...]
    audit_ids: tuple[str, ...]
    issued_at: datetime.datetime
    expires_at: datetime.datetime

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]

    @property
    def audit_chain_id(self) -> str:
        """The first token of the chain (Keystone's ``audit_chain_id``)."""
        return self.audit_ids[-1]


@dataclasses.dataclass
class ValidToken:
    """A token that passed validation, with the rows it names as they are now."""

    token_id: str
    payload: TokenPayload
    user: models.User
    user_domain: models.Domain
    project: models.Project | None
    project_domain: models.Domain | None
    roles: list[models.Role]

    @property
    def role_names(self) -> list[str]:
        return [role.name for role in self.roles]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _epoch(value: datetime.datetime) -> float:
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def _from_epoch(value: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)


class TokenProvider:
    """Issues, decodes, validates and revokes tokens.

    ``clock`` returns the current naive UTC time (tests move it).
    """

    def __init__(self, key_repository: identity_keys.KeyRepository, expiration: int,
                 clock: Callable[[], datetime.datetime] = _utcnow):
        self.keys = key_repository
        self.expiration = datetime.timedelta(seconds=expiration)
        self.clock = clock

    @classmethod
    def from_config(cls) -> "TokenProvider":
        return cls(key_repository(), CONF.identity.token_expiration)

    def issue(self, user_id: str, project_id: str | None, methods: list[str],
              parent: TokenPayload | None = None) -> tuple[str, TokenPayload]:
        """A new token; with ``parent`` (the token method) it joins the
        parent's audit chain and keeps its expiry."""
        now = self.clock()
        audit_ids = (_new_audit_id(),)
        expires_at = now + self.expiration
        if parent is not None:
            if len(parent.audit_ids) >= MAX_CHAIN:
                raise exception.AuthenticationFailed(
                    message=f"This token was issued from {MAX_CHAIN - 1} tokens in a row; "
                            "authenticate with a password for a new one.")
            audit_ids += parent.audit_ids
            expires_at = parent.expires_at
        payload = TokenPayload(user_id, project_id, tuple(methods), audit_ids,
                               now.replace(microsecond=0), expires_at.replace(microsecond=0))
        raw = orjson.dumps([PAYLOAD_VERSION, payload.user_id, payload.project_id,
                            list(payload.methods), list(payload.audit_ids),
                            _epoch(payload.issued_at), _epoch(payload.expires_at)])
        return self.keys.fernet().encrypt(raw).decode("ascii"), payload

    def decode(self, token_id: str) -> TokenPayload:
        """The payload of a genuine, unexpired token. ``TokenNotFound`` for a
        forged, tampered, malformed or expired one (not checked here:
        revocation and the database rows; see ``validate``)."""
        try:
            raw = self.keys.fernet().decrypt(token_id.encode("ascii"))
            version, user_id, project_id, methods, audit_ids, issued, expires = orjson.loads(raw)
        except (fernet.InvalidToken, UnicodeError, ValueError, TypeError):
            raise exception.TokenNotFound() from None
        if version != PAYLOAD_VERSION:
            raise exception.TokenNotFound()
        payload = TokenPayload(user_id, project_id, tuple(methods), tuple(audit_ids),
                               _from_epoch(issued), _from_epoch(expires))
        if payload.expires_at <= self.clock():
            raise exception.TokenNotFound()
        return payload

    def validate(self, token_id: str) -> ValidToken:
        """The token and what it names now. ``TokenNotFound`` when the token
        is not genuine, has expired or was revoked, when its user is gone or
        disabled, or when its project is gone or disabled or the user no
        longer holds a role on it."""
        payload = self.decode(token_id)
        subject = db_identity.load_token_subject(payload.user_id, payload.project_id,
                                                 list(payload.audit_ids))
        if subject.revoked:
            raise exception.TokenNotFound()
        if subject.user is None or not subject.user.enabled \
                or subject.user_domain is None or not subject.user_domain.enabled:
            raise exception.TokenNotFound()
        if payload.project_id is not None:
            if subject.project is None or not subject.project.enabled \
                    or subject.project_domain is None or not subject.project_domain.enabled \
                    or not subject.roles:
                raise exception.TokenNotFound()
        return ValidToken(token_id, payload, subject.user, subject.user_domain,
                          subject.project, subject.project_domain, subject.roles)

    def revoke(self, payload: TokenPayload) -> None:
        """Revoke the token and every token issued from it."""
        db_identity.revoke_token(payload.audit_id, payload.expires_at)
        LOG.info("Revoked token with audit id %s of user %s", payload.audit_id, payload.user_id)


def _new_audit_id() -> str:
    # 16 random bytes, URL-safe base64 without padding: Keystone's shape.
    return secrets.token_urlsafe(16)


def key_repository() -> identity_keys.KeyRepository:
    """The key repository ``[identity]`` names (default: state_path/fernet-keys)."""
    path = CONF.identity.key_repository or os.path.join(
        os.path.expanduser(CONF.state_path), "fernet-keys")
    return identity_keys.KeyRepository(path, CONF.identity.max_active_keys)
