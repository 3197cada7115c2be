"""The volume backend registry: name -> "module:Class" (DESIGN rule 2).

``load_backend()`` makes the one named by ``[volume] backend``; an unknown
name fails with one line naming the available backends.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from virtstack import exception
from virtstack.volume.backends.base import VolumeBackend

BUILTIN_BACKENDS: dict[str, str] = {
    "file": "virtstack.volume.backends.file:FileBackend",
    "iscsi": "virtstack.volume.backends.iscsi:TgtISCSIBackend",
    # An emulated Fibre Channel SAN (no hardware): drives FC attach paths.
    "fake_fc": "virtstack.volume.backends.fake_fc:FakeFCBackend",
}

ENTRY_POINT_GROUP = "virtstack.volume_backends"


def available_backends() -> dict[str, str]:
    backends = dict(BUILTIN_BACKENDS)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        backends.setdefault(ep.name, ep.value)
    return backends


def backend_class(name: str) -> type[VolumeBackend]:
    backends = available_backends()
    try:
        target = backends[name]
    except KeyError:
        raise exception.ConfigError(
            reason=f"[volume] backend '{name}' is unknown; available: "
                   f"{', '.join(sorted(backends))}") from None
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, VolumeBackend)):
        raise exception.ConfigError(reason=f"volume backend '{name}' ({target}) is not a "
                                           f"VolumeBackend")
    return cls


def load_backend(host: str, name: str | None = None) -> VolumeBackend:
    if name is None:
        from virtstack.conf import CONF
        name = CONF.volume.backend
    return backend_class(name)(host)
