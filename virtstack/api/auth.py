"""Authentication: one pluggable point in front of every API.

``[api] auth_strategy`` names a middleware from ``STRATEGIES``. Each one
either attaches a ``RequestContext`` to the request (``virtstack.context``)
or answers 401. Paths the API marks public (version discovery) pass without
a token. Tokens are never logged.
"""

from __future__ import annotations

import logging
from typing import Callable

import webob
import webob.dec

from virtstack import context as vs_context
from virtstack import exception
from virtstack.api import wsgi

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


STRATEGIES: dict[str, type] = {"noauth": NoAuth}


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
