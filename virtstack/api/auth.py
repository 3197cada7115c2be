"""Authentication: one pluggable point in front of every API.

``[api] auth_strategy`` names a middleware from ``STRATEGIES``. Each one
either attaches a ``RequestContext`` to the request (``virtstack.context``)
or answers 401. Paths the API marks public (version discovery) pass without
a token. Tokens are never logged.

The ``keystone`` strategy validates Identity v3 tokens where ``[identity]
mode`` says, through ``KEYSTONE_MODES``: in process against the embedded
identity service, or with keystonemiddleware against an external Keystone.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import webob
import webob.dec

from virtstack import context as vs_context
from virtstack import exception
from virtstack.api import wsgi
from virtstack.conf import CONF
from virtstack.identity import catalog as identity_catalog
from virtstack.identity import tokens

LOG = logging.getLogger(__name__)


class NoAuth:
    """Development only: ``X-Auth-Token: user:project`` (project defaults to
    the user); the user ``admin`` gets the admin role. No secret is checked."""

    def __init__(self, app, is_public: Callable[[str], bool]):
        self.app, self.is_public = app, is_public

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        if self.is_public(req.path_info):
            return self.app
        token = req.headers.get("X-Auth-Token", "").strip()
        if not token:
            return wsgi.error_response(401, "Authentication required: send an X-Auth-Token header.",
                                       {"WWW-Authenticate": 'Keystone uri="noauth"'})
        user, _, project = token.partition(":")
        project = project or user
        roles = ["admin", "member", "reader"] if user == "admin" else ["member", "reader"]
        req.environ["virtstack.context"] = vs_context.RequestContext(
            user_id=user, project_id=project, roles=roles,
            request_id=req.environ.setdefault("virtstack.request_id",
                                              vs_context.RequestContext().request_id))
        return self.app


class KeystoneAuth:
    """Identity v3 tokens of the embedded identity service: ``X-Auth-Token``
    is validated by its token provider (same process, same database; roles
    are read as they are now). 401 for a missing, invalid, expired or
    revoked token; 403 for a token not scoped to a project. The context has
    the token's user, project and roles; role ``admin`` makes it admin."""

    def __init__(self, app, is_public: Callable[[str], bool]):
        self.app, self.is_public = app, is_public
        self.provider = tokens.TokenProvider.from_config()

    @staticmethod
    def _unauthorized(message: str) -> webob.Response:
        return wsgi.error_response(
            401, message,
            {"WWW-Authenticate": f'Keystone uri="{identity_catalog.identity_url()}"'})

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        if self.is_public(req.path_info):
            return self.app
        token = req.headers.get("X-Auth-Token", "").strip()
        if not token:
            return self._unauthorized("Authentication required: send an X-Auth-Token header.")
        try:
            valid = self.provider.validate(token)
        except exception.TokenNotFound:
            return self._unauthorized("The X-Auth-Token is invalid, expired or revoked; "
                                      "authenticate again.")
        if valid.project is None:
            return wsgi.error_response(403, "The X-Auth-Token is not scoped to a project; "
                                            "ask the identity service for a project-scoped one.")
        req.environ["virtstack.context"] = vs_context.RequestContext(
            user_id=valid.user.id, project_id=valid.project.id, roles=valid.role_names,
            user_name=valid.user.name, project_name=valid.project.name,
            user_domain_id=valid.user.domain_id, project_domain_id=valid.project.domain_id,
            auth_token=token,
            request_id=req.environ.setdefault("virtstack.request_id",
                                              vs_context.RequestContext().request_id))
        return self.app


class ExternalKeystoneAuth:
    """Identity v3 tokens of an external Keystone (``[identity] mode =
    keystone``), validated by keystonemiddleware's ``auth_token`` configured
    from ``[keystone_authtoken]``: it asks Keystone about each token (as the
    service user; answers are cached for ``token_cache_time``) and answers a
    missing, invalid, expired or revoked token with its own 401 and
    ``WWW-Authenticate: Keystone uri="<www_authenticate_uri>"``. It drops the
    identity headers a client sends (``X-User-Id``, ``X-Roles``, ...) and
    sets them from the token; the context is built from those. 403 for a
    token not scoped to a project."""

    def __init__(self, app, is_public: Callable[[str], bool]):
        from keystonemiddleware import auth_token

        self.app, self.is_public = app, is_public
        self.validated = auth_token.AuthProtocol(self._with_context,
                                                 {"oslo_config_config": CONF})

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        if self.is_public(req.path_info):
            return self.app
        return self.validated

    @webob.dec.wsgify
    def _with_context(self, req: webob.Request):
        # Only with [keystone_authtoken] delay_auth_decision = True does the
        # middleware pass an unauthenticated request on; it adds the
        # WWW-Authenticate header to this 401 on the way out.
        if req.headers.get("X-Identity-Status") != "Confirmed":
            return wsgi.error_response(401, "Authentication required: send a valid "
                                            "X-Auth-Token header.")
        if not req.headers.get("X-Project-Id"):
            return wsgi.error_response(403, "The X-Auth-Token is not scoped to a project; "
                                            "ask Keystone for a project-scoped one.")
        req.environ["virtstack.context"] = vs_context.RequestContext.from_environ(
            req.environ,
            request_id=req.environ.setdefault("virtstack.request_id",
                                              vs_context.RequestContext().request_id))
        return self.app


#: How the ``keystone`` strategy validates tokens, by ``[identity] mode``.
KEYSTONE_MODES: dict[str, type] = {"embedded": KeystoneAuth, "keystone": ExternalKeystoneAuth}


def keystone_auth(app, is_public: Callable[[str], bool]):
    """The ``keystone`` strategy: the validator of ``[identity] mode``."""
    return KEYSTONE_MODES[CONF.identity.mode](app, is_public)


STRATEGIES: dict[str, Callable[..., Any]] = {"noauth": NoAuth, "keystone": keystone_auth}


def wrap(app, strategy: str, is_public: Callable[[str], bool]):
    """``app`` behind the named authentication middleware."""
    try:
        middleware = STRATEGIES[strategy]
    except KeyError:
        raise exception.ConfigError(
            reason=f"[api] auth_strategy '{strategy}' is unknown; available: "
                   f"{', '.join(sorted(STRATEGIES))}")
    if strategy == "noauth":
        LOG.warning("API authentication is 'noauth': anyone can act as anyone. "
                    "For development only.")
    return middleware(app, is_public)
