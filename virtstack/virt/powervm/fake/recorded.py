"""Recorded PowerVM REST responses, read from the installed pypowervm package.

pypowervm ships responses captured from real NovaLink/HMC systems in
``pypowervm/tests/data/*.txt``. Each file has up to three sections::

    INFO{
    {'comment': ..., 'path': 'ManagedSystem', 'status': 200, 'reason': 'OK'}
    END OF SECTION}
    HEADERS{
    {'content-type': 'application/atom+xml', ...}
    END OF SECTION}
    BODY{
    <feed ...> or <entry ...>
    END OF SECTION}

This module reads them as data (our own parser; pypowervm's test helpers are
not imported). ``rewrite`` substitutes strings in the body before parsing,
which is how the fake re-homes objects recorded on different systems onto
one managed system (see ``fake.world.seed``).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.resources
from typing import Any, Mapping

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
_SECTIONS = ("INFO{", "HEADERS{", "BODY{")
_END = "END OF SECTION}"


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recorded response: its request path, status and body text."""

    name: str
    path: str
    status: int
    headers: Mapping[str, Any]
    body: str


def data_dir() -> importlib.resources.abc.Traversable:
    """The directory of recorded responses inside the installed pypowervm."""
    return importlib.resources.files("pypowervm") / "tests" / "data"


def read_text(name: str) -> str:
    return (data_dir() / name).read_text(encoding="utf-8")


def parse(name: str, text: str) -> Recording:
    """Split a recording into its sections. ``ValueError`` on a malformed file."""
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if current is None:
            if not line.strip() or line.startswith("#"):
                continue
            marker = next((s for s in _SECTIONS if line.startswith(s)), None)
            if marker is None:
                raise ValueError(f"{name}: unexpected line outside a section: {line[:60]!r}")
            current, lines = marker, []
            continue
        if line.startswith(_END):
            sections[current] = "\n".join(lines)
            current = None
            continue
        lines.append(line)
    if current is not None:
        raise ValueError(f"{name}: section {current} is not closed")
    info = ast.literal_eval(sections.get("INFO{", "{}").strip() or "{}")
    headers = ast.literal_eval(sections.get("HEADERS{", "{}").strip() or "{}")
    return Recording(name=name, path=info.get("path") or "", status=int(info.get("status", 200)),
                     headers=headers, body=sections.get("BODY{", "").strip())


def load(name: str, rewrite: Mapping[str, str] | None = None) -> Recording:
    """The recording ``name`` (a file name in pypowervm/tests/data), with every
    key of ``rewrite`` replaced by its value in the body."""
    recording = parse(name, read_text(name))
    body = recording.body
    for old, new in (rewrite or {}).items():
        body = body.replace(old, new)
    return dataclasses.replace(recording, body=body)


def entries(recording: Recording) -> list[etree._Element]:
    """The Atom ``<entry>`` elements of a recorded feed or single entry."""
    root = etree.fromstring(recording.body.encode("utf-8"))
    if root.tag == f"{{{ATOM_NS}}}entry":
        return [root]
    return root.findall(f"{{{ATOM_NS}}}entry")


def content(entry: etree._Element) -> etree._Element:
    """The PowerVM object inside an Atom entry (the child of ``<content>``)."""
    return entry.find(f"{{{ATOM_NS}}}content")[0]


def entry_id(entry: etree._Element) -> str:
    return entry.findtext(f"{{{ATOM_NS}}}id")
