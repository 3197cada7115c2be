"""The Image API v2 application: version documents, schemas, routes.

The Image API has no microversions: a client learns the minor version from
the version document (``GET /`` answers 300 Multiple Choices, as Glance
does) and every v2.x is served at ``/v2``. Errors have Glance's body
(``{"message", "code", "title"}``).
"""

from __future__ import annotations

import webob
import webob.dec

from virtstack.api import auth, wsgi
from virtstack.api.image import data, images, schemas
from virtstack.conf import CONF
from virtstack.image import api as image_api

#: v2.0 .. v2.7 (2.7: os_hidden and the os_hash_* attributes). Image import
#: (2.6) is announced with no import method, which is what /v2/info/import says.
CURRENT_VERSION = "2.7"
SUPPORTED_VERSIONS = ("2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")

_PUBLIC_PATHS = ("", "/", "/versions")


def _is_public(path: str) -> bool:
    return path in _PUBLIC_PATHS


def versions(base_url: str) -> dict:
    def version(number: str, status: str) -> dict:
        return {"id": f"v{number}", "status": status,
                "links": [{"rel": "self", "href": f"{base_url}/v2/"}]}

    return {"versions": [version(CURRENT_VERSION, "CURRENT")]
            + [version(v, "SUPPORTED") for v in SUPPORTED_VERSIONS]}


def _schema_image(req: webob.Request) -> dict:
    return schemas.image_schema()


def _schema_images(req: webob.Request) -> dict:
    return schemas.images_schema()


def _import_info(req: webob.Request) -> dict:
    return {"import-methods": {"description": "Import methods available.",
                               "type": "array", "value": []}}


class ImageApp:
    """Version discovery, authentication, then the v2 router."""

    def __init__(self, api: image_api.ImageAPI | None = None):
        self.api = api or image_api.ImageAPI()
        self.router = self._build_router()
        self.authed = auth.wrap(self.router, CONF.api.auth_strategy, _is_public)

    def _build_router(self) -> wsgi.Router:
        r = wsgi.Router(error_style="image")
        i = images.ImagesController(self.api)
        r.add("/v2/images", "GET", i.index)
        r.add("/v2/images", "POST", i.create, 201)
        r.add("/v2/images/{image_id}", "GET", i.show)
        r.add("/v2/images/{image_id}", "PATCH", i.update)
        r.add("/v2/images/{image_id}", "DELETE", i.delete, 204)
        r.add("/v2/images/{image_id}/tags/{tag}", "PUT", i.add_tag, 204)
        r.add("/v2/images/{image_id}/tags/{tag}", "DELETE", i.delete_tag, 204)
        r.add("/v2/images/{image_id}/actions/deactivate", "POST", i.deactivate, 204)
        r.add("/v2/images/{image_id}/actions/reactivate", "POST", i.reactivate, 204)
        d = data.ImageDataController(self.api)
        r.add("/v2/images/{image_id}/file", "PUT", d.upload, 204)
        r.add("/v2/images/{image_id}/file", "GET", d.download)
        r.add("/v2/schemas/image", "GET", _schema_image)
        r.add("/v2/schemas/images", "GET", _schema_images)
        r.add("/v2/info/import", "GET", _import_info)
        return r

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        if _is_public(req.path_info):
            if req.method not in ("GET", "HEAD"):
                return wsgi.error_response(405, f"Method {req.method} is not allowed on "
                                                f"{req.path}", {"Allow": "GET, HEAD"},
                                           style="image")
            # "/" lists the choices (300); "/versions" answers the same, 200.
            status = 300 if req.path_info in ("", "/") else 200
            resp = webob.Response(status=status, content_type="application/json",
                                  charset="utf-8")
            resp.json_body = versions(req.host_url + req.script_name)
            return resp
        return self.authed
