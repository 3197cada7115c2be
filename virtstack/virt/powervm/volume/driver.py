"""The volume-adapter interface: how a Cinder-style volume reaches an LPAR.

A volume adapter is made per (instance, volume) with the volume service's
``connection_info`` and adds its VIOS mapping changes as subtasks to a
pypowervm FeedTask that the caller executes (one POST per VIOS for all the
changes of one request, retried on a stale etag). Example ``connection_info``
(``driver_volume_type`` chooses the adapter family; ``[powervm]
fc_attach_strategy`` chooses vSCSI or NPIV for ``fibre_channel``)::

    {"driver_volume_type": "fibre_channel",
     "data": {"volume_id": "7d3c...", "target_wwn": ["500507680B215660"],
              "target_lun": 1,
              "initiator_target_map": {"10000090FA1B6302": ["500507680B215660"]}}}
"""

from __future__ import annotations

import abc
from typing import Any

from pypowervm.utils import transaction as pvm_tx

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.powervm import vm


class VolumeAdapter(abc.ABC):
    """One volume of one instance."""

    #: The pypowervm extended attribute groups the VIOS feed must carry.
    min_xags: tuple[str, ...] = ()

    def __init__(self, adapter: Any, host_uuid: str, instance: Instance,
                 connection_info: dict[str, Any], options: dict[str, Any]) -> None:
        self.adapter = adapter
        self.host_uuid = host_uuid
        self.instance = instance
        self.connection_info = connection_info
        self.data = connection_info.get("data") or {}
        self.options = options  # fabrics, fabric_port_wwpns, ports_per_fabric
        volume_id = self.data.get("volume_id")
        if not volume_id:
            raise exception.Invalid(reason="connection_info data has no volume_id")
        self.volume_id = str(volume_id)

    @property
    def lpar_uuid(self) -> str:
        return vm.pvm_uuid(self.instance)

    @classmethod
    @abc.abstractmethod
    def host_connector(cls, adapter: Any, host_uuid: str, instance: Instance,
                       options: dict[str, Any]) -> dict[str, Any]:
        """Connector properties this attach strategy adds, e.g.
        ``{"wwpns": ["10000090FA1B6302"], "wwnns": [...]}``. ``InstanceNotFound``
        when the strategy needs the instance's LPAR and there is none."""

    @abc.abstractmethod
    def attached_at(self, mountpoint: str) -> bool | None:
        """Whether a volume of the LPAR is attached at ``mountpoint``; None
        when the hypervisor cannot tell (NPIV: the guest sees the LUNs, the
        VIOS does not)."""

    @abc.abstractmethod
    def connect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Make the volume visible where needed (e.g. discover the LUN on
        the VIOSes) and add the mapping subtasks to ``stg_ftsk``. Raises
        ``VolumeNotFound`` (naming the volume) when no VIOS can see it."""

    @abc.abstractmethod
    def disconnect_volume(self, mountpoint: str, stg_ftsk: pvm_tx.FeedTask) -> None:
        """Add the subtasks removing the volume's mappings. Disconnecting a
        volume that is not connected adds nothing (idempotent)."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """After ``disconnect_volume``'s FeedTask ran: forget host-side
        devices (hdisks) of the volume that nothing maps any more."""

    @abc.abstractmethod
    def extend_volume(self) -> None:
        """Make the hosts see the volume's new size; ``DeviceNotFound`` when
        it is not attached to the LPAR."""


def device_name(mountpoint: str) -> str:
    """``/dev/vdb`` -> ``vdb``."""
    return mountpoint.rsplit("/", 1)[-1]
