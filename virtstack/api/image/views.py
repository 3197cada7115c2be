"""Images as the Image API v2 renders them."""

from __future__ import annotations

import datetime
import urllib.parse
from typing import Any, Sequence

from virtstack.db import image as db_image
from virtstack.db import models


def _isotime(value: datetime.datetime | None) -> str | None:
    # The Image API shows whole seconds in UTC with a "Z".
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def image(row: models.Image) -> dict[str, Any]:
    """One image: its extra properties beside the attributes, and links
    relative to the endpoint (``self``, ``file``, ``schema``)."""
    props = row.properties or {}
    # A property without a value shows as "" (never null), as in the Image API.
    view: dict[str, Any] = {k: ("" if v is None else v)
                            for k, v in db_image.extra_properties(row).items()}
    view.update({
        "id": row.id, "name": row.name, "status": row.status,
        "disk_format": row.disk_format, "container_format": row.container_format,
        "visibility": row.visibility, "protected": bool(row.protected),
        "os_hidden": bool(props.get("os_hidden", False)), "owner": row.owner,
        "size": row.size, "virtual_size": props.get("virtual_size"),
        "checksum": row.checksum, "os_hash_algo": props.get("os_hash_algo"),
        "os_hash_value": props.get("os_hash_value"),
        "min_ram": row.min_ram or 0, "min_disk": row.min_disk or 0,
        "tags": db_image.tags(row),
        "created_at": _isotime(row.created_at),
        "updated_at": _isotime(row.updated_at or row.created_at),
        "self": f"/v2/images/{row.id}", "file": f"/v2/images/{row.id}/file",
        "schema": "/v2/schemas/image",
    })
    return view


def images(rows: Sequence[models.Image], params: list[tuple[str, str]],
           next_marker: str | None) -> dict[str, Any]:
    """A page of images with its ``first`` and (when more follow) ``next``
    links, which repeat the request's query (``params``) with the marker."""
    query = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"images": [image(r) for r in rows], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if query:
        body["first"] += "?" + urllib.parse.urlencode(query)
    if next_marker is not None:
        body["next"] = "/v2/images?" + urllib.parse.urlencode(query + [("marker", next_marker)])
    return body
