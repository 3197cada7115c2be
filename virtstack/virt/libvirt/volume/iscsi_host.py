"""iSCSI volumes through the host's kernel initiator (open-iscsi, driven by
os-brick): the host logs in, a block device appears, and the guest's disk is
``<disk type='block'>`` on it. Used instead of QEMU's client when
``[libvirt] iscsi_initiator`` is ``host`` (or ``auto`` finds a working
``iscsiadm``); machines without a kernel initiator cannot run it.
"""

from __future__ import annotations

import threading
from typing import Any

from virtstack.objects import Instance
from virtstack.virt.libvirt import designer
from virtstack.virt.libvirt.volume import base, initiator

#: How often os-brick rescans for the LUN's device before it gives up.
DEVICE_SCAN_ATTEMPTS = 5


class HostISCSIVolumeConnector(base.VolumeConnector):
    """The same ``connection_info`` as ``QemuISCSIVolumeConnector`` -> the
    block device os-brick logged in to. ``connect`` records the device in
    ``connection_info["data"]["device_path"]`` (the caller keeps
    connection_info, so a later ``disconnect`` finds it again)."""

    def __init__(self, host: Any, initiator_iqn: str) -> None:
        super().__init__(host, initiator_iqn)
        self._brick = None
        self._brick_lock = threading.Lock()

    def _connector(self) -> Any:
        with self._brick_lock:
            if self._brick is None:
                from os_brick import initiator as brick_initiator
                from os_brick.initiator import connector as brick_connector

                initiator.use_privsep_in_process()
                self._brick = brick_connector.InitiatorConnector.factory(
                    brick_initiator.ISCSI, None, use_multipath=False,
                    device_scan_attempts=DEVICE_SCAN_ATTEMPTS)
            return self._brick

    def connect(self, connection_info: dict[str, Any], instance: Instance) -> designer.VolumeSource:
        data = base.volume_data(connection_info, "target_portal", "target_iqn")
        device = self._connector().connect_volume(data)
        data["device_path"] = device["path"]
        return designer.VolumeSource(volume_id=data["volume_id"], source_type="block",
                                     path=device["path"], read_only=base.read_only(data))

    def disconnect(self, connection_info: dict[str, Any], instance: Instance) -> None:
        data = connection_info.get("data") or {}
        if not data.get("target_iqn"):
            return  # never connected: nothing to log out of
        device = {"path": data["device_path"]} if data.get("device_path") else None
        self._connector().disconnect_volume(data, device, force=True, ignore_errors=True)

    def extend(self, connection_info: dict[str, Any], instance: Instance,
               requested_size: int) -> int:
        """Rescan the LUN; the size the host's block device has now."""
        new_size = self._connector().extend_volume(connection_info["data"])
        return int(new_size) if new_size else requested_size
