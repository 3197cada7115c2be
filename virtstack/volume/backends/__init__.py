"""The volume backend registry: name -> "module:Class" (DESIGN rule 2).

``load_backend()`` makes the one named by ``[volume] backend``; an unknown
name fails with one line naming the available backends.
"""

from __future__ import annotations

from virtstack import exception, registry
from virtstack.volume.backends.base import VolumeBackend

BUILTIN_BACKENDS: dict[str, str] = {
    "file": "virtstack.volume.backends.file:FileBackend",
    "iscsi": "virtstack.volume.backends.iscsi:TgtISCSIBackend",
    # An emulated Fibre Channel SAN (no hardware): drives FC attach paths.
    "fake_fc": "virtstack.volume.backends.fake_fc:FakeFCBackend",
}

ENTRY_POINT_GROUP = "virtstack.volume_backends"


def available_backends() -> dict[str, str]:
    return registry.with_entry_points(BUILTIN_BACKENDS, ENTRY_POINT_GROUP)


def backend_class(name: str) -> type[VolumeBackend]:
    backends = available_backends()
    try:
        target = backends[name]
    except KeyError:
        raise exception.ConfigError(
            reason=f"[volume] backend '{name}' is unknown; available: "
                   f"{', '.join(sorted(backends))}") from None
    return registry.load_class(target, VolumeBackend, lambda: exception.ConfigError(
        reason=f"volume backend '{name}' ({target}) is not a VolumeBackend"))


def load_backend(host: str, name: str | None = None) -> VolumeBackend:
    if name is None:
        from virtstack.conf import CONF
        name = CONF.volume.backend
    return backend_class(name)(host)
