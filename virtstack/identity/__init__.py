"""The embedded identity service: Identity v3 users, projects, roles and
signed, expiring, revocable tokens, in the same process and database as the
other services.

- ``passwords`` hashes and checks passwords (bcrypt);
- ``keys`` keeps the Fernet key repository that signs tokens;
- ``tokens`` issues, validates and revokes tokens;
- ``authenticate`` turns a ``POST /v3/auth/tokens`` body into a token;
- ``catalog`` builds the service catalog from ``[api]``;
- ``bootstrap`` creates the first domain, projects, users and roles.
"""

from __future__ import annotations

from virtstack import exception
from virtstack.conf import CONF

#: The one domain (Keystone's default domain id and name).
DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"


def check_config() -> None:
    """Refuse identity settings this version cannot serve (at start-up)."""
    if CONF.identity.mode == "keystone":
        raise exception.ConfigError(
            reason="[identity] mode 'keystone' (an external Keystone through "
                   "keystonemiddleware) is not implemented yet; use 'embedded'")
