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


#: The config group of keystonemiddleware (``[identity] mode = keystone``).
AUTHTOKEN_GROUP = "keystone_authtoken"


def embedded() -> bool:
    """Whether this cloud keeps its own identities (``[identity] mode =
    embedded``) and serves the Identity API; otherwise an external Keystone
    holds them."""
    return CONF.identity.mode == "embedded"


def external_keystone_url() -> str:
    """Where clients authenticate in ``mode = keystone``."""
    return CONF[AUTHTOKEN_GROUP].www_authenticate_uri


def check_config() -> None:
    """Refuse identity settings that cannot work (at start-up), naming the
    option. In ``mode = keystone`` the service user's auth plugin is loaded
    (which registers its options) but Keystone is not contacted."""
    if not embedded():
        _check_external_keystone()


def _check_external_keystone() -> None:
    from keystoneauth1 import exceptions as ks_exceptions
    from keystoneauth1 import loading as ks_loading

    group = CONF[AUTHTOKEN_GROUP]
    if not group.www_authenticate_uri:
        raise exception.ConfigError(
            reason=f"[identity] mode 'keystone' needs [{AUTHTOKEN_GROUP}] "
                   "www_authenticate_uri: Keystone's public Identity v3 URL")
    if not group.auth_type:
        raise exception.ConfigError(
            reason=f"[identity] mode 'keystone' needs [{AUTHTOKEN_GROUP}] auth_type "
                   "(e.g. 'password') and the service user's credentials, with which "
                   "the APIs validate tokens")
    try:
        ks_loading.load_auth_from_conf_options(CONF, AUTHTOKEN_GROUP)
    except ks_exceptions.NoMatchingPlugin:
        raise exception.ConfigError(
            reason=f"[{AUTHTOKEN_GROUP}] auth_type '{group.auth_type}' is not a "
                   "keystoneauth plugin (e.g. 'password', 'v3applicationcredential')"
        ) from None
    except ks_exceptions.MissingRequiredOptions as exc:
        missing = ", ".join(opt.dest for opt in exc.options)
        raise exception.ConfigError(
            reason=f"[{AUTHTOKEN_GROUP}] auth_type '{group.auth_type}' needs {missing}"
        ) from None
