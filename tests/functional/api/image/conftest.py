"""Fixtures and helpers of the Image API tests: an in-process client of the
Image API on the test database, and checks of Glance's error body."""

from __future__ import annotations

import json
from typing import Any

import pytest
import webob

ADMIN = "admin:admin"
DEMO = "demo:demo"
OTHER = "other:other"
PATCH_V21 = "application/openstack-images-v2.1-json-patch"


def error_message(resp: webob.Response, status: int) -> str:
    """Assert ``resp`` is the Image API's error body for ``status``; its message."""
    assert resp.status_int == status, (resp.status, resp.text)
    assert resp.content_type == "application/json", resp.headers
    body = resp.json
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"].startswith(f"{status} "), body
    assert isinstance(body["message"], str) and body["message"].strip(), body
    return body["message"]


class ImageClient:
    """Requests to an Image API app in this process (webob, no sockets)."""

    def __init__(self, app) -> None:
        self.app = app

    def request(self, method: str, path: str, body: Any = None, token: str | None = DEMO,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                content_type: str | None = None) -> webob.Response:
        req = webob.Request.blank(path, method=method)
        if token is not None:
            req.headers["X-Auth-Token"] = token
        if raw is not None:
            req.body = raw
            req.content_type = content_type or "application/octet-stream"
        elif body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = content_type or "application/json"
        for key, value in (headers or {}).items():
            req.headers[key] = value
        return req.get_response(self.app)

    def create(self, token: str = DEMO, **attributes) -> dict:
        resp = self.request("POST", "/v2/images", attributes, token=token)
        assert resp.status_int == 201, resp.text
        return resp.json

    def show(self, image_id: str, token: str = DEMO) -> dict:
        resp = self.request("GET", f"/v2/images/{image_id}", token=token)
        assert resp.status_int == 200, resp.text
        return resp.json

    def patch(self, image_id: str, ops: list, token: str = DEMO,
              media_type: str = PATCH_V21) -> webob.Response:
        return self.request("PATCH", f"/v2/images/{image_id}", ops, token=token,
                            content_type=media_type)

    def upload(self, image_id: str, data: bytes, token: str = DEMO) -> webob.Response:
        return self.request("PUT", f"/v2/images/{image_id}/file", raw=data, token=token)

    def download(self, image_id: str, token: str = DEMO) -> webob.Response:
        return self.request("GET", f"/v2/images/{image_id}/file", token=token)

    def list(self, query: str = "", token: str = DEMO) -> dict:
        resp = self.request("GET", "/v2/images" + (f"?{query}" if query else ""), token=token)
        assert resp.status_int == 200, resp.text
        return resp.json

    def active_image(self, data: bytes = b"x" * 1024, token: str = DEMO, **attributes) -> dict:
        attributes.setdefault("disk_format", "raw")
        attributes.setdefault("container_format", "bare")
        image = self.create(token=token, **attributes)
        resp = self.upload(image["id"], data, token=token)
        assert resp.status_int == 204, resp.text
        return self.show(image["id"], token=token)


@pytest.fixture
def images(database):
    """The Image API on an empty, upgraded SQLite database."""
    from virtstack.api.image import ImageApp

    return ImageClient(ImageApp())
