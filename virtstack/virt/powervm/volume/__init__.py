"""Volume adapters: how volumes reach an LPAR. One registry,
``VOLUME_ADAPTERS``, keyed by (``driver_volume_type`` of the connection_info,
attach strategy); for ``fibre_channel`` the strategy is ``[powervm]
fc_attach_strategy`` (vscsi or npiv)."""

from __future__ import annotations

from typing import Any

from virtstack import exception, registry
from virtstack.objects import Instance
from virtstack.virt.powervm.volume.driver import VolumeAdapter

#: (driver_volume_type, strategy) -> "module:Class"
VOLUME_ADAPTERS: dict[tuple[str, str], str] = {
    ("fibre_channel", "vscsi"): "virtstack.virt.powervm.volume.vscsi:VSCSIVolumeAdapter",
    ("fibre_channel", "npiv"): "virtstack.virt.powervm.volume.npiv:NPIVVolumeAdapter",
}


def volume_adapter_class(driver_volume_type: str, strategy: str) -> type[VolumeAdapter]:
    """The adapter for a volume type and strategy; ``Invalid`` naming the
    supported combinations for any other."""
    try:
        target = VOLUME_ADAPTERS[(driver_volume_type, strategy)]
    except KeyError:
        known = ", ".join(f"{t} ({s})" for t, s in sorted(VOLUME_ADAPTERS))
        raise exception.Invalid(reason=(
            f"the PowerVM driver cannot attach {driver_volume_type!r} volumes with the "
            f"{strategy!r} strategy; it attaches: {known}"))
    return registry.load_target(target)


def get_volume_adapter(adapter: Any, host_uuid: str, instance: Instance,
                       connection_info: dict[str, Any], strategy: str,
                       options: dict[str, Any]) -> VolumeAdapter:
    cls = volume_adapter_class(connection_info.get("driver_volume_type", ""), strategy)
    return cls(adapter, host_uuid, instance, connection_info, options)
