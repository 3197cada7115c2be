"""The Image API v2 application: version documents, schemas, routes.

The Image API has no microversions: a client learns the minor version from
the version document (``GET /`` answers 300 Multiple Choices, as Glance
does) and every v2.x is served at ``/v2``. Errors have Glance's body
(``{"message", "code", "title"}``).
"""

from __future__ import annotations

import webob

from virtstack.api import app, wsgi
from virtstack.api.image import data, images, schemas
from virtstack.image import api as image_api

#: v2.0 .. v2.7 (2.7: os_hidden and the os_hash_* attributes). Image import
#: (2.6) is announced with no import method, which is what /v2/info/import says.
CURRENT_VERSION = "2.7"
SUPPORTED_VERSIONS = ("2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")

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


class ImageApp(app.APIApp):
    """Version discovery, authentication, then the v2 router."""

    public_paths = ("", "/", "/versions")
    error_style = "image"

    def __init__(self, api: image_api.ImageAPI | None = None):
        self.api = api or image_api.ImageAPI()
        self.router = self._build_router()
        self.authed = self.wrap_auth(self.router)

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

    def version_response(self, base_url: str, root: bool) -> webob.Response:
        # "/" lists the choices (300); "/versions" answers the same, 200.
        return app.json_response(versions(base_url), status=300 if root else 200)
