"""Request parsing the Block Storage controllers share: list parameters
(filters, sorting, paging), single-key action bodies and update bodies."""

from __future__ import annotations

import ast
import json
from typing import Any, Iterable

from virtstack import exception
from virtstack.api import validation, wsgi
from virtstack.conf import CONF

PAGING = ("limit", "marker", "sort", "sort_key", "sort_dir", "offset", "with_count")


def list_params(req, filters: Iterable[str]) -> dict[str, Any]:
    """``{"filters", "limit", "marker", "sort_keys", "sort_dirs", "with_count"}``
    from the query string; 400 for anything else (the Block Storage API's
    "Invalid filters" rule) or for malformed values."""
    allowed = set(filters) | set(PAGING) | {"all_tenants", "project_id"}
    bad = sorted(k for k in req.GET if k not in allowed)
    if bad:
        raise exception.Invalid(reason=f"Invalid filters {', '.join(bad)} are found in query "
                                       f"options.")
    ctxt = wsgi.context_of(req)
    out: dict[str, Any] = {"filters": {}, "limit": None, "marker": req.GET.get("marker"),
                           "with_count": False}
    if "limit" in req.GET:
        out["limit"] = validation.to_int(req.GET["limit"], "limit", minimum=0)
    out["limit"] = min(out["limit"] if out["limit"] is not None else CONF.api.max_limit,
                       CONF.api.max_limit)
    if "offset" in req.GET:
        raise exception.Invalid(reason="offset is not supported; page with marker and limit.")
    if "with_count" in req.GET:
        if not wsgi.api_version(req).matches("3.45"):
            raise exception.Invalid(reason="Invalid filters with_count are found in query "
                                           "options.")
        out["with_count"] = validation.to_bool(req.GET["with_count"], "with_count")
    out["sort_keys"], out["sort_dirs"] = _sort(req)
    for key in filters:
        if key in req.GET:
            out["filters"][key] = req.GET[key]
    if "all_tenants" in req.GET and ctxt.is_admin:
        out["filters"]["all_tenants"] = validation.to_bool(req.GET["all_tenants"],
                                                           "all_tenants")
    if "project_id" in req.GET and ctxt.is_admin and out["filters"].get("all_tenants"):
        out["filters"]["project_id"] = req.GET["project_id"]
    if "metadata" in out["filters"]:
        out["filters"]["metadata"] = parse_metadata(out["filters"]["metadata"])
    if "bootable" in out["filters"]:
        out["filters"]["bootable"] = validation.to_bool(out["filters"]["bootable"], "bootable")
    return out


def _sort(req) -> tuple[list[str], list[str]]:
    if "sort" in req.GET:
        if "sort_key" in req.GET or "sort_dir" in req.GET:
            raise exception.Invalid(reason="The 'sort_key' and 'sort_dir' parameters are "
                                           "deprecated and cannot be used with the 'sort' "
                                           "parameter.")
        keys, dirs = [], []
        for item in req.GET["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            if not key:
                raise exception.Invalid(reason=f"Invalid sort '{req.GET['sort']}'")
            keys.append(key)
            dirs.append(direction.strip().lower() or "desc")
        return keys, dirs
    keys = [k.strip() for k in req.GET.getall("sort_key")] or ["created_at"]
    dirs = [d.strip().lower() for d in req.GET.getall("sort_dir")]
    return keys, dirs


def parse_metadata(text: str) -> dict[str, str]:
    """A metadata filter: a JSON (or Python literal) object of strings."""
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise exception.Invalid(reason=f"metadata filter '{text}' must be an object of "
                                       f"strings, e.g. {{\"key\": \"value\"}}")
    return value


def single_key_body(req, wrapper: str | None = None) -> tuple[str, Any]:
    """The one key of an action body ({"os-extend": {...}}) and its value."""
    body = wsgi.json_body(req)
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.Invalid(reason="The action body must be an object with exactly one "
                                       "key, the action's name.")
    return next(iter(body.items()))


def entity(req, key: str) -> dict[str, Any]:
    """``body[key]``, which must be an object; 400 otherwise."""
    body = wsgi.json_body(req)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise exception.Invalid(reason=f"Missing required element '{key}' in request body.")
    return body[key]


def require_version(req, minimum: str) -> None:
    """404 below ``minimum``, as the Block Storage API answers for a
    resource or action its microversion does not have yet."""
    if not wsgi.api_version(req).matches(minimum):
        raise exception.NotFound(
            message=f"The resource could not be found: this needs microversion {minimum} or "
                    f"later (OpenStack-API-Version: volume {minimum}).")


#: A PUT body's keys -> the columns they set (both names of each field).
_UPDATABLE = (("name", "display_name"), ("display_name", "display_name"),
              ("description", "display_description"),
              ("display_description", "display_description"))


def update_values(element: dict[str, Any]) -> dict[str, Any]:
    """The column values a validated PUT body element (``body["volume"]`` or
    ``body["snapshot"]``) sets: names, descriptions, metadata (a null
    metadata changes nothing). 400 for an empty element."""
    if not element:
        raise exception.Invalid(reason="Missing request body element: give name, "
                                       "description or metadata to update.")
    values: dict[str, Any] = {col: element[key] for key, col in _UPDATABLE if key in element}
    if element.get("metadata") is not None:
        values["metadata_"] = element["metadata"]
    return values
