"""/v2/images: list, show, create, PATCH, delete; tags and admin actions.

Request checks follow the Image API: attributes clients may not set are 403
("read-only", "reserved"), malformed values 400 (checked against the image
schema clients fetch), and list filters and sorting are those of Glance.
"""

from __future__ import annotations

import csv
import datetime
import re
from typing import Any

import webob

from virtstack import exception, policy
from virtstack.api import validation
from virtstack.api import wsgi
from virtstack.api.image import schemas, views
from virtstack.conf import CONF
from virtstack.db import image as db_image
from virtstack.image import api as image_api

#: Attributes shown but never set by clients.
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size",
             "os_hash_algo", "os_hash_value", "direct_url", "self", "file", "schema", "stores",
             "locations")
#: Names no property may have.
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"
#: Attributes a create body may set (the rest of it is extra properties).
SETTABLE = ("id", *image_api.COLUMN_ATTRIBUTES, *image_api.PROPERTY_ATTRIBUTES)

PATCH_MEDIA_TYPES = {"application/openstack-images-v2.1-json-patch": 10,
                     "application/openstack-images-v2.0-json-patch": 4}
PATCH_OPERATIONS = ("add", "remove", "replace")

DEFAULT_LIMIT = 25
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
LIST_VISIBILITIES = (*schemas.VISIBILITIES, "all")
#: Filters that take ``in:a,b`` lists (and an optional ``eq:``).
LIST_FILTERS = ("name", "id", "status", "container_format", "disk_format")
TIME_FILTERS = ("created_at", "updated_at")
#: Query parameters that are not filters on properties.
_NOT_PROPERTIES = {"limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "tag",
                   "visibility", "os_hidden", "protected", "size_min", "size_max", "owner",
                   "checksum", "changes-since", *LIST_FILTERS, *TIME_FILTERS}


def _check_reserved(name: str) -> None:
    if name in READ_ONLY or name == "id":
        raise exception.Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise exception.Forbidden(f"Attribute '{name}' is reserved.")


def _bool_param(params, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    value = value.lower()  # openstacksdk sends Python's "True"
    if value not in ("true", "false"):
        raise exception.Invalid(reason=f"Invalid value '{value}' for '{name}' filter. "
                                       "Valid values are 'true' or 'false'.")
    return value == "true"


def _split_operator(value: str) -> tuple[str, str]:
    """('in', 'a,b') from 'in:a,b'; a value without a known operator is 'eq'
    (names may hold colons)."""
    op, sep, rest = value.partition(":")
    if sep and op in ("in", "eq"):
        return op, rest
    return "eq", value


def _time(value: str, name: str) -> tuple[str, datetime.datetime]:
    op, sep, rest = value.partition(":")
    if not sep or op not in db_image.OPERATORS:
        op, rest = "eq", value
    try:
        moment = datetime.datetime.fromisoformat(rest.strip())
    except ValueError:
        raise exception.Invalid(reason=f"Bad \"{name}\" query filter format. Use ISO 8601 "
                                       "DateTime notation.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return op, moment


def _sorting(params) -> tuple[list[str], list[str]]:
    """Sort keys and directions from ``sort=k:d,...`` or ``sort_key``/``sort_dir``."""
    keys: list[str] = []
    dirs: list[str] = []
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise exception.Invalid(reason="Old and new sorting syntax cannot be combined")
        for item in params["sort"].strip().split(","):
            key, _, direction = item.partition(":")
            keys.append(key.strip())
            dirs.append(direction.strip() or "desc")
    else:
        keys = [k.strip() for k in params.getall("sort_key")]
        dirs = [d.strip() for d in params.getall("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise exception.Invalid(
                reason="Number of sort dirs does not match the number of sort keys")
    for key in keys:
        if key not in db_image.SORT_KEYS:
            raise exception.Invalid(reason=f"Invalid sort key: {key}. It must be one of the "
                                           f"following: {', '.join(db_image.SORT_KEYS)}.")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise exception.Invalid(reason=f"Invalid sort direction: {direction}")
    keys = keys or ["created_at"]
    dirs = dirs or ["desc"]
    if len(dirs) == 1:
        dirs *= len(keys)
    return keys, dirs


def list_query(params) -> db_image.ImageQuery:
    """An ``ImageQuery`` from the query string of ``GET /v2/images``; 400
    naming the parameter that is wrong."""
    q = db_image.ImageQuery(project_id=None)
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise exception.Invalid(reason="limit param must be an integer") from None
        if limit < 0:
            raise exception.Invalid(reason="limit param must be positive")
    else:
        limit = DEFAULT_LIMIT
    q.limit = min(limit, CONF.api.max_limit)
    q.marker = params.get("marker")
    if params.get("member_status", "accepted") not in MEMBER_STATUSES:
        raise exception.Invalid(reason=f"Invalid status: {params['member_status']}")
    q.tags = [t.strip() for t in params.getall("tag")]
    q.sort_keys, q.sort_dirs = _sorting(params)
    if "changes-since" in params:
        raise exception.Invalid(reason='The "changes-since" filter is no longer available '
                                       'on v2.')
    visibility = params.get("visibility")
    if visibility is not None and visibility not in LIST_VISIBILITIES:
        raise exception.Invalid(reason=f"Invalid visibility value: {visibility}")
    q.visibility = visibility
    hidden = _bool_param(params, "os_hidden")
    q.os_hidden = False if hidden is None else hidden
    protected = _bool_param(params, "protected")
    if protected is not None:
        q.equals["protected"] = [protected]
    for key in ("owner", "checksum"):
        if key in params:
            q.equals[key] = [params[key]]
    for key in LIST_FILTERS:
        if key in params:
            op, value = _split_operator(params[key])
            q.equals[key] = (next(csv.reader([value], skipinitialspace=True), [])
                             if op == "in" else [value])
    for key, op in (("size_min", "gte"), ("size_max", "lte")):
        if key in params:
            try:
                q.ranges.append(("size", op, int(params[key])))
            except ValueError:
                raise exception.Invalid(reason=f"{key}: Unable to filter on a range with a "
                                               "non-numeric value.") from None
    for key in TIME_FILTERS:
        if key in params:
            q.ranges.append((key, *_time(params[key], key)))
    for key, value in params.items():
        if key not in _NOT_PROPERTIES:
            q.properties[key] = value
    return q


def _pointer(path: Any) -> str:
    """The one attribute or property a JSON pointer names (``/name``)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise exception.Invalid(reason=f"Pointer `{path}` does not start with \"/\".")
    if re.search(r"~[^01]", path) or path.endswith("~"):
        raise exception.Invalid(reason=f"Pointer `{path}` contains \"~\" not part of a "
                                       "recognized escape sequence.")
    parts = [p.replace("~1", "/").replace("~0", "~").strip() for p in path[1:].split("/")]
    if parts[0] in ("locations",):
        raise exception.Forbidden("Image locations are not exposed by this cloud.")
    if len(parts) != 1 or not parts[0]:
        raise exception.Invalid(reason=f"Invalid JSON pointer for this resource: '{path}'")
    return parts[0]


def _change(raw: Any, draft: int) -> image_api.Change:
    if not isinstance(raw, dict):
        raise exception.Invalid(reason="Operations must be JSON objects.")
    if draft == 10:
        op = raw.get("op")
        if op not in PATCH_OPERATIONS:
            raise exception.Invalid(reason=f"Invalid operation: `{op}`. It must be one of the "
                                           f"following: {', '.join(PATCH_OPERATIONS)}.")
        if "path" not in raw:
            raise exception.Invalid(reason="Unable to find 'path' in JSON Schema change")
        path = raw["path"]
    else:
        ops = [key for key in PATCH_OPERATIONS if key in raw]
        if len(ops) != 1:
            raise exception.Invalid(reason='Operation objects must contain exactly one member '
                                           'named "add", "remove", or "replace".')
        op = ops[0]
        path = raw[op]
    name = _pointer(path)
    if op != "remove" and "value" not in raw:
        raise exception.Invalid(reason=f'Operation "{op}" requires a member named "value".')
    _check_reserved(name)
    if len(name) > 255:
        raise exception.Invalid(reason="Custom property should not be greater than 255 "
                                       "characters.")
    value = raw.get("value")
    if op != "remove":
        validation.validate(schemas.IMAGE, {name: value})
    return image_api.Change(op=op, name=name, value=value, add_must_be_new=(draft == 4))


def _authorize(req: webob.Request, rule: str):
    """The request's context, once ``rule`` allows it (403 otherwise)."""
    ctxt = wsgi.context_of(req)
    policy.authorize(ctxt, rule)
    return ctxt


class ImagesController:
    def __init__(self, api: image_api.ImageAPI):
        self.api = api

    def index(self, req: webob.Request) -> dict:
        ctxt = _authorize(req, "get_images")
        try:
            rows, more = self.api.list(ctxt, list_query(req.GET))
        except exception.ImageNotFound:
            raise exception.Invalid(reason=f"marker {req.GET['marker']} could not be "
                                           "found.") from None
        next_marker = rows[-1].id if more and rows else None
        return views.images(rows, list(req.GET.items()), next_marker)

    def show(self, req: webob.Request, image_id: str) -> dict:
        return views.image(self.api.get(_authorize(req, "get_image"), image_id))

    def create(self, req: webob.Request) -> wsgi.Response:
        ctxt = _authorize(req, "add_image")
        body = wsgi.json_body(req)
        if not isinstance(body, dict):
            raise exception.Invalid(reason="The request body must be a JSON object (an image).")
        for name in READ_ONLY:
            if name in body:
                raise exception.Forbidden(f"Attribute '{name}' is read-only.")
        validation.validate(schemas.IMAGE, body)
        attributes = {k: body.pop(k) for k in list(body) if k in SETTABLE and k != "tags"}
        tags = body.pop("tags", [])
        for name in body:
            if len(name) > 255:
                raise exception.Invalid(reason="Custom property should not be greater than 255 "
                                               "characters.")
            _check_reserved(name)
        row = self.api.create(ctxt, attributes, body, tags)
        return wsgi.Response(views.image(row), 201,
                             {"Location": f"{req.application_url}/v2/images/{row.id}"})

    def update(self, req: webob.Request, image_id: str):
        ctxt = _authorize(req, "modify_image")
        draft = PATCH_MEDIA_TYPES.get((req.content_type or "").lower())
        if draft is None:
            allowed = ", ".join(sorted(PATCH_MEDIA_TYPES))
            return wsgi.error_response(
                415, f"Image PATCH expects Content-Type one of: {allowed}",
                {"Accept-Patch": allowed}, style="image")
        body = wsgi.json_body(req, media_types=tuple(PATCH_MEDIA_TYPES))
        if not isinstance(body, list):
            raise exception.Invalid(reason="Request body must be a JSON array of operation "
                                           "objects.")
        changes = [_change(raw, draft) for raw in body]
        return views.image(self.api.update(ctxt, image_id, changes))

    def delete(self, req: webob.Request, image_id: str) -> None:
        self.api.delete(_authorize(req, "delete_image"), image_id)

    def add_tag(self, req: webob.Request, image_id: str, tag: str) -> None:
        ctxt = _authorize(req, "modify_image")
        if len(tag) > 255:
            raise exception.Invalid(reason="A tag must be at most 255 characters long.")
        self.api.add_tag(ctxt, image_id, tag)

    def delete_tag(self, req: webob.Request, image_id: str, tag: str) -> None:
        self.api.remove_tag(_authorize(req, "modify_image"), image_id, tag)

    def deactivate(self, req: webob.Request, image_id: str) -> None:
        self.api.deactivate(_authorize(req, "deactivate"), image_id)

    def reactivate(self, req: webob.Request, image_id: str) -> None:
        self.api.reactivate(_authorize(req, "reactivate"), image_id)
