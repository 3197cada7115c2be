"""Password hashing with bcrypt.

bcrypt reads at most 72 bytes (and bcrypt >= 5 refuses more), so the
password is first reduced to its SHA-256 digest (base64, 44 bytes): every
character of a long password counts. Stored hashes carry a scheme prefix so
the scheme can change later without guessing. Clear-text passwords are never
stored or logged; they live only in the arguments of these functions.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import bcrypt

from virtstack import exception
from virtstack.conf import CONF

SCHEME = "bcrypt-sha256$"
#: Longest password accepted (Keystone's default limit).
MAX_LENGTH = 4096


def _digest(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def check_policy(password: object, field: str = "password") -> str:
    """``password`` if acceptable: a non-empty string of at most MAX_LENGTH
    characters; ``ValidationError`` (400) naming ``field`` otherwise (the
    message never repeats the password)."""
    if not isinstance(password, str) or not password:
        raise exception.ValidationError(field=field, reason="must be a non-empty string")
    if len(password) > MAX_LENGTH:
        raise exception.ValidationError(field=field,
                                        reason=f"must be at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str, rounds: int | None = None) -> str:
    """The stored form of ``password`` (salted; ``[identity]
    password_hash_rounds`` unless ``rounds`` is given)."""
    rounds = CONF.identity.password_hash_rounds if rounds is None else rounds
    hashed = bcrypt.hashpw(_digest(password), bcrypt.gensalt(rounds))
    return SCHEME + hashed.decode("ascii")


@functools.lru_cache(maxsize=4)
def _decoy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"virtstack-decoy", bcrypt.gensalt(rounds))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the stored hash. A user without a
    password (``stored`` None) or with a hash of an unknown scheme never
    matches; the check still costs one bcrypt round trip, so response
    times do not tell which users exist."""
    if not stored or not stored.startswith(SCHEME):
        bcrypt.checkpw(_digest(password), _decoy_hash(CONF.identity.password_hash_rounds))
        return False
    try:
        return bcrypt.checkpw(_digest(password), stored[len(SCHEME):].encode("ascii"))
    except ValueError:  # a corrupt stored hash
        return False

