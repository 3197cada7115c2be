"""The compute service's RPC interface, as its callers use it."""

from __future__ import annotations

from typing import Any

from virtstack import rpc
from virtstack.conf import CONF

TOPIC = "compute"


class ComputeRPCAPI:
    """Casts for operations that report through instance state; calls for
    the ones whose answer the caller needs now."""

    def __init__(self) -> None:
        self.client = rpc.Client(TOPIC)

    def build_and_run_instance(self, ctxt, host: str, instance_uuid: str, image_id: str) -> None:
        self.client.cast(ctxt, "build_and_run_instance", server=host,
                         instance_uuid=instance_uuid, image_id=image_id)

    def instance_action(self, ctxt, host: str, instance_uuid: str, action: str,
                        **kwargs: Any) -> None:
        """start, stop, reboot_soft, reboot_hard, pause, unpause, suspend, resume."""
        self.client.cast(ctxt, "instance_action", server=host, instance_uuid=instance_uuid,
                         action=action, **kwargs)

    def terminate_instance(self, ctxt, host: str, instance_uuid: str) -> None:
        self.client.cast(ctxt, "terminate_instance", server=host, instance_uuid=instance_uuid)

    def get_console_output(self, ctxt, host: str, instance_uuid: str, length: int | None) -> str:
        return self.client.call(ctxt, "get_console_output", server=host,
                                instance_uuid=instance_uuid, length=length)

    def snapshot_instance(self, ctxt, host: str, instance_uuid: str, image_id: str) -> None:
        self.client.cast(ctxt, "snapshot_instance", server=host, instance_uuid=instance_uuid,
                         image_id=image_id)

    def get_vnc_console(self, ctxt, host: str, instance_uuid: str) -> dict:
        """{"host": ..., "port": ...} of the guest's VNC server."""
        return self.client.call(ctxt, "get_vnc_console", server=host, instance_uuid=instance_uuid)

    def attach_volume(self, ctxt, host: str, instance_uuid: str, volume_id: str,
                      device: str | None, tag: str | None,
                      delete_on_termination: bool) -> dict[str, Any]:
        """A call: the attach runs to its end (or is rolled back) before the
        answer, ``{"bdm_uuid", "volume_id", "device", "attachment_id", "tag",
        "delete_on_termination"}``; the failure is re-raised here."""
        return self.client.call(ctxt, "attach_volume", server=host,
                                timeout=CONF.compute.volume_attach_timeout,
                                instance_uuid=instance_uuid, volume_id=volume_id, device=device,
                                tag=tag, delete_on_termination=delete_on_termination)

    def detach_volume(self, ctxt, host: str, instance_uuid: str, volume_id: str) -> None:
        self.client.cast(ctxt, "detach_volume", server=host, instance_uuid=instance_uuid,
                         volume_id=volume_id)

    def extend_volume(self, ctxt, host: str, instance_uuid: str, volume_id: str,
                      new_size: int) -> None:
        """Tell the guest an attached volume grew to ``new_size`` GiB (the
        volume service casts this after growing an in-use volume)."""
        self.client.cast(ctxt, "extend_volume", server=host, instance_uuid=instance_uuid,
                         volume_id=volume_id, new_size=new_size)

    def ping(self, ctxt, host: str, payload: str) -> str:
        """Round trip to a compute service (health checks and transport tests)."""
        return self.client.call(ctxt, "ping", server=host, payload=payload)
