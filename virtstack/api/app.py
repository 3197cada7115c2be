"""The front of every API application: version discovery on public paths,
everything else behind authentication.

Each API (compute, volume, image, identity) subclasses ``APIApp`` and keeps
its own version documents, public paths, routes and error style; this
module holds only the request flow they all share.
"""

from __future__ import annotations

from typing import Any

import webob
import webob.dec

from virtstack.api import auth, wsgi
from virtstack.conf import CONF

#: The paths that list the versions (the others describe one).
ROOT_PATHS = ("", "/")


def json_response(body: Any, status: int = 200) -> webob.Response:
    """A JSON response of ``body`` with ``status``."""
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    resp.json_body = body
    return resp


class APIApp:
    """A WSGI application: a request for one of ``public_paths`` gets the
    version document (``GET``/``HEAD`` only, else 405 with ``Allow``), no
    token needed; any other request goes to ``protected(req)``, by default
    ``self.authed`` (set it with ``wrap_auth``)."""

    #: The version-discovery paths: no token, read only.
    public_paths: tuple[str, ...] = ()
    #: The error body layout of ``wsgi.ERROR_STYLES``.
    error_style = "compute"
    #: The application behind authentication (see ``wrap_auth``).
    authed: Any = None

    def is_public(self, path: str) -> bool:
        return path in self.public_paths

    def wrap_auth(self, app) -> Any:
        """``app`` behind the ``[api] auth_strategy`` middleware, with this
        API's public paths passed without a token."""
        return auth.wrap(app, CONF.api.auth_strategy, self.is_public)

    def version_response(self, base_url: str, root: bool) -> webob.Response:
        """The version document; ``root`` for the list of versions (``/``)
        rather than the versioned endpoint's own path."""
        raise NotImplementedError

    def method_not_allowed(self, req: webob.Request) -> webob.Response:
        """The 405 for a write to a version document."""
        return wsgi.error_response(405, f"Method {req.method} is not allowed on {req.path}",
                                   {"Allow": "GET, HEAD"}, style=self.error_style)

    def protected(self, req: webob.Request) -> Any:
        """The response, or the WSGI app to answer, for a non-public path."""
        return self.authed

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        if self.is_public(req.path_info):
            if req.method not in ("GET", "HEAD"):
                return self.method_not_allowed(req)
            return self.version_response(req.host_url + req.script_name,
                                         root=req.path_info in ROOT_PATHS)
        return self.protected(req)
