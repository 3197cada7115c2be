"""The fake PowerVM REST server: URI routing, etags, feeds, search, quick
properties and uploads. What a create/update/delete *means* for each kind
of object lives in ``kinds``; jobs (``/do/<Operation>``) in ``jobs``.

``handle(method, path, headers, body, filehandle)`` returns
``(status, headers, body_text)`` or raises ``RESTError``; the session turns
that into what ``pypowervm.adapter.Session.request`` returns or raises.

URIs served (all under ``/rest/api/``)::

    uom/<Root>[/<uuid>]                       feed / entry of a ROOT type
    uom/<Root>/<uuid>/<Child>[/<uuid>]        child feed / entry
    uom/<Root>/search/(<Key>=='<value>')      search of a ROOT feed
    uom/<Root>/<uuid>/quick/<Property>        one property, as JSON
    uom/<...>/do/<Operation>                  job template (GET), job run (PUT)
    uom/jobs/<job id>                         job status (GET), cleanup (DELETE)
    web/File[/<uuid>]                         upload metadata
    web/File/contents/<uuid>                  upload data
    web/Logon                                 logon / logoff
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, BinaryIO, Iterable

from lxml import etree

from virtstack.virt.powervm.fake import jobs, kinds
from virtstack.virt.powervm.fake.world import API_BASE, WEB_NS, Stored, World, text

_SEARCH = re.compile(r"^\((\w+)(==|!=)'?(.*?)'?\)$")

ATOM_TYPE = "application/atom+xml"


class RESTError(Exception):
    """An HTTP error the fake REST server answers with."""

    def __init__(self, status: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or {400: "Bad Request", 404: "Not Found", 409: "Conflict",
                                 412: "Precondition Failed"}.get(status, "Error")


class Server:
    """Routes requests to the world, the kind hooks and the job runner."""

    def __init__(self, world: World):
        self.world = world
        self.jobs = jobs.JobRunner(self)
        self.kinds = kinds.KindRules(self)

    # -- entry point ----------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any,
               filehandle: BinaryIO | Iterable[bytes] | None = None
               ) -> tuple[int, dict[str, str], str]:
        clean = path.split("?", 1)[0]
        if not clean.startswith(API_BASE):
            raise RESTError(404, f"{path} is not a PowerVM REST API path")
        service, *parts = [urllib.parse.unquote(p) for p in
                           clean[len(API_BASE):].strip("/").split("/")]
        with self.world.lock:
            if service == "web":
                return self._web(method, parts, headers, body, filehandle)
            if service != "uom":
                raise RESTError(404, f"unknown service {service}")
            return self._uom(method, clean, parts, headers, body)

    # -- uom ------------------------------------------------------------------------

    def _uom(self, method: str, path: str, parts: list[str], headers: dict[str, str],
             body: Any) -> tuple[int, dict[str, str], str]:
        if parts and parts[0] == "jobs":
            return self.jobs.job_request(method, parts[1:])
        if "do" in parts:
            index = parts.index("do")
            target = self._resolve(parts[:index]) if index > 1 else None
            operation = parts[index + 1] if len(parts) > index + 1 else ""
            group = parts[index - 2] if index >= 2 else parts[0]
            if method == "GET":
                return self.jobs.template(group, operation)
            if method == "PUT":
                return self.jobs.submit(group, target, operation, parse_body(body))
            raise RESTError(405, f"{method} is not allowed on a job URI")
        if "quick" in parts:
            index = parts.index("quick")
            stored = self._resolve(parts[:index])
            return self._quick(stored, parts[index + 1:])
        if "search" in parts:
            index = parts.index("search")
            return self._search(parts[:index], parts[index + 1], path)

        if method == "GET":
            return self._get(parts, path, headers)
        if method == "PUT":
            return self._create(parts, body)
        if method == "POST":
            stored = self._resolve(parts)
            self._check_etag(stored, headers)
            self.kinds.update(stored, parse_body(body))
            return self._entry_response(stored)
        if method == "DELETE":
            stored = self._resolve(parts)
            self._check_etag(stored, headers)
            self.kinds.delete(stored)
            return 204, {}, ""
        raise RESTError(405, f"{method} is not supported")

    def _resolve(self, parts: list[str]) -> Stored:
        """The object a path names: ``<Root>/<uuid>`` or
        ``<Root>/<uuid>/<Child>/<uuid>``. 404 when there is none."""
        if len(parts) == 2:
            stored = self.world.get(parts[0], parts[1])
            if stored is None or not stored.root:
                raise RESTError(404, f"{parts[0]} {parts[1]} does not exist")
            return stored
        if len(parts) == 4:
            parent = self._resolve(parts[:2])
            stored = self.world.get(parts[2], parts[3])
            if stored is None or not self._is_child(stored, parent):
                raise RESTError(404, f"{parts[2]} {parts[3]} does not exist under "
                                     f"{parts[0]} {parts[1]}")
            return stored
        raise RESTError(404, f"/{'/'.join(parts)} names no object")

    @staticmethod
    def _is_child(stored: Stored, parent: Stored) -> bool:
        return (stored.parent is not None and stored.parent[0] == parent.kind
                and stored.parent[1].lower() == parent.uuid.lower())

    def _get(self, parts: list[str], path: str, headers: dict[str, str]
             ) -> tuple[int, dict[str, str], str]:
        if len(parts) in (2, 4):
            stored = self._resolve(parts)
            if headers.get("If-None-Match") == stored.etag:
                return 304, {"etag": stored.etag}, ""
            return self._entry_response(stored)
        if len(parts) == 1:
            return self._feed_response(self.world.roots(parts[0]), path)
        if len(parts) == 3:
            parent = self._resolve(parts[:2])
            return self._feed_response(self.world.children(parent.kind, parent.uuid, parts[2]),
                                       path)
        raise RESTError(404, f"{path} names nothing")

    def _create(self, parts: list[str], body: Any) -> tuple[int, dict[str, str], str]:
        element = parse_body(body)
        if len(parts) == 1:
            stored = self.kinds.create(parts[0], None, element)
        elif len(parts) == 3:
            stored = self.kinds.create(parts[2], self._resolve(parts[:2]), element)
        else:
            raise RESTError(400, f"cannot create at /{'/'.join(parts)}")
        return self._entry_response(stored)

    @staticmethod
    def _check_etag(stored: Stored, headers: dict[str, str]) -> None:
        wanted = headers.get("If-Match")
        if wanted and wanted != stored.etag:
            raise RESTError(412, f"The etag {wanted} of {stored.kind} {stored.uuid} is out of "
                                 f"date (now {stored.etag}).")

    def _quick(self, stored: Stored, rest: list[str]) -> tuple[int, dict[str, str], str]:
        if not rest or not rest[0]:
            values = {child.tag.split("}")[-1]: _json_value(child.text)
                      for child in stored.element if len(child) == 0 and child.text}
            return 200, {"content-type": "application/json"}, json.dumps(values)
        value = text(stored.element, rest[0])
        if value is None:
            raise RESTError(404, f"{stored.kind} has no quick property {rest[0]}")
        return 200, {"content-type": "application/json"}, json.dumps(_json_value(value))

    def _search(self, parts: list[str], expression: str, path: str
                ) -> tuple[int, dict[str, str], str]:
        match = _SEARCH.match(expression)
        if not match:
            raise RESTError(400, f"bad search expression {expression}")
        key, op, value = match.group(1), match.group(2), urllib.parse.unquote(match.group(3))
        if len(parts) == 1:
            candidates = self.world.roots(parts[0])
        elif len(parts) == 3:
            parent = self._resolve(parts[:2])
            candidates = self.world.children(parent.kind, parent.uuid, parts[2])
        else:
            raise RESTError(400, f"cannot search {path}")
        found = [s for s in candidates if (text(s.element, key) == value) == (op == "==")]
        return self._feed_response(found, path)

    # -- web ------------------------------------------------------------------------

    def _web(self, method: str, parts: list[str], headers: dict[str, str], body: Any,
             filehandle) -> tuple[int, dict[str, str], str]:
        if parts[:1] == ["Logon"]:
            return self._logon(method)
        if parts[:1] != ["File"]:
            raise RESTError(404, f"unknown web resource {'/'.join(parts)}")
        if len(parts) == 1 and method == "PUT":
            stored = self.kinds.create("File", None, parse_body(body))
            return self._entry_response(stored)
        if len(parts) == 3 and parts[1] == "contents" and method in ("PUT", "POST"):
            stored = self.world.get("File", parts[2])
            if stored is None:
                raise RESTError(404, f"File {parts[2]} does not exist")
            self.kinds.upload(stored, _chunks(filehandle))
            return 204, {}, ""
        if len(parts) == 2:
            stored = self.world.get("File", parts[1])
            if stored is None:
                raise RESTError(404, f"File {parts[1]} does not exist")
            if method == "GET":
                return self._entry_response(stored)
            if method == "DELETE":
                self.world.remove(stored)
                return 204, {}, ""
        if len(parts) == 1 and method == "GET":
            return self._feed_response(self.world.roots("File"), API_BASE + "web/File")
        raise RESTError(405, f"{method} /web/{'/'.join(parts)} is not supported")

    def _logon(self, method: str) -> tuple[int, dict[str, str], str]:
        if method == "DELETE":
            return 204, {}, ""
        root = etree.Element(f"{{{WEB_NS}}}LogonResponse", nsmap={None: WEB_NS},
                             schemaVersion="V1_0")
        etree.SubElement(root, f"{{{WEB_NS}}}X-API-Session").text = "fake-session-token"
        return 200, {"X-MC-Type": "PVM", "content-type": "application/vnd.ibm.powervm.web+xml"}, \
            etree.tostring(root, encoding="unicode")

    # -- responses --------------------------------------------------------------------

    def _entry_response(self, stored: Stored) -> tuple[int, dict[str, str], str]:
        return 200, {"etag": stored.etag, "content-type": ATOM_TYPE}, \
            etree.tostring(self.world.entry(stored), encoding="unicode")

    def _feed_response(self, items: list[Stored], path: str) -> tuple[int, dict[str, str], str]:
        if not items:
            return 204, {}, ""  # PowerVM answers an empty feed with No Content
        etag = str(hash(tuple(s.etag for s in items)) & 0x7fffffff)
        return 200, {"etag": etag, "content-type": ATOM_TYPE}, \
            etree.tostring(self.world.feed(items, path), encoding="unicode")


def parse_body(body: Any) -> etree._Element:
    if isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        raise RESTError(400, "request has no XML body")
    try:
        return etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        raise RESTError(400, f"request body is not XML: {exc}")


def _chunks(filehandle) -> Iterable[bytes]:
    if filehandle is None:
        return []
    if hasattr(filehandle, "read"):
        return iter(lambda: filehandle.read(65536), b"")
    return filehandle


def _json_value(value: str | None) -> Any:
    if value is None:
        return None
    value = value.strip()
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value
