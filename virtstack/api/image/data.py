"""/v2/images/{id}/file: image data in and out, streamed.

Neither direction holds an image in memory: the upload is read from the
request in chunks and written to the store as it comes (the WSGI server
spools the body to disk first), the download is a file iterator.
"""

from __future__ import annotations

import os
from typing import Iterator

import webob
import webob.request
import webob.static

from virtstack import exception, policy
from virtstack.api import wsgi
from virtstack.image import api as image_api

#: The largest image accepted, in bytes (Glance's default ``image_size_cap``, 1 TiB).
IMAGE_SIZE_CAP = 1024 ** 4

_CHUNK = 1 << 20


def _chunks(req: webob.Request) -> Iterator[bytes]:
    """The request body in chunks; ``Invalid`` (400) when the client stops
    sending before its Content-Length."""
    if "chunked" in req.headers.get("Transfer-Encoding", "").lower():
        req.is_body_readable = True  # the server de-chunks; there is no Content-Length
    body = req.body_file
    while True:
        try:
            chunk = body.read(_CHUNK)
        except (OSError, webob.request.DisconnectionError) as exc:
            raise exception.Invalid(reason=f"the image data stopped before its end ({exc})"
                                    ) from None
        if not chunk:
            return
        yield chunk


class ImageDataController:
    def __init__(self, api: image_api.ImageAPI):
        self.api = api

    def upload(self, req: webob.Request, image_id: str) -> None:
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "upload_image")
        if (req.content_type or "").lower() != "application/octet-stream":
            raise webob.exc.HTTPUnsupportedMediaType(
                explanation=f"Content-Type '{req.content_type}' is not supported for image "
                            "data; use application/octet-stream.")
        if req.content_length is not None and req.content_length > IMAGE_SIZE_CAP:
            raise exception.ImageTooLarge(reason=f"{req.content_length} bytes is more than "
                                                 f"{IMAGE_SIZE_CAP}")
        self.api.upload(ctxt, image_id, _chunks(req), IMAGE_SIZE_CAP)

    def download(self, req: webob.Request, image_id: str) -> webob.Response | None:
        ctxt = wsgi.context_of(req)
        policy.authorize(ctxt, "download_image")
        row, data = self.api.download(ctxt, image_id)
        if data is None:
            return None  # 204: the image has no data (yet)
        resp = webob.Response(status=200, content_type="application/octet-stream",
                              charset=None)
        resp.app_iter = webob.static.FileIter(data)
        # Setting app_iter resets the length and Content-MD5: set them after.
        resp.content_length = os.fstat(data.fileno()).st_size
        if row.checksum:
            resp.headers["Content-MD5"] = row.checksum
        return resp
