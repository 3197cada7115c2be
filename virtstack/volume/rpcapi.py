"""The volume service's RPC interface (topic ``volume``), as its callers use it.

A volume's ``host`` is its pool, "host@backend#pool"; messages go to the
volume service of the part before '@'.
"""

from __future__ import annotations

from typing import Any

from virtstack import rpc
from virtstack.conf import CONF

TOPIC = "volume"


def service_host(pool: str) -> str:
    """The volume service host of a pool name ("host@backend#pool")."""
    return pool.partition("@")[0]


class VolumeRPCAPI:
    """Casts for operations that report through the volume's status; calls
    for the ones whose answer the caller needs now (exports)."""

    def __init__(self) -> None:
        self.client = rpc.Client(TOPIC)

    def create_volume(self, ctxt, pool: str, volume_id: str) -> None:
        """Create the volume recorded as ``creating`` (its source, if any, is
        on the row: snapshot_id, source_volid or image_id)."""
        self.client.cast(ctxt, "create_volume", server=service_host(pool), volume_id=volume_id)

    def delete_volume(self, ctxt, pool: str, volume_id: str) -> None:
        self.client.cast(ctxt, "delete_volume", server=service_host(pool), volume_id=volume_id)

    def extend_volume(self, ctxt, pool: str, volume_id: str, new_size: int) -> None:
        self.client.cast(ctxt, "extend_volume", server=service_host(pool), volume_id=volume_id,
                         new_size=new_size)

    def create_snapshot(self, ctxt, pool: str, snapshot_id: str) -> None:
        self.client.cast(ctxt, "create_snapshot", server=service_host(pool),
                         snapshot_id=snapshot_id)

    def delete_snapshot(self, ctxt, pool: str, snapshot_id: str) -> None:
        self.client.cast(ctxt, "delete_snapshot", server=service_host(pool),
                         snapshot_id=snapshot_id)

    def initialize_connection(self, ctxt, pool: str, volume_id: str,
                              connector: dict[str, Any]) -> dict[str, Any]:
        """The connection_info for ``connector`` (see the backend ABC)."""
        return self.client.call(ctxt, "initialize_connection", server=service_host(pool),
                                timeout=CONF.volume.rpc_call_timeout, volume_id=volume_id,
                                connector=connector)

    def terminate_connection(self, ctxt, pool: str, volume_id: str,
                             connector: dict[str, Any] | None) -> None:
        self.client.call(ctxt, "terminate_connection", server=service_host(pool),
                         timeout=CONF.volume.rpc_call_timeout, volume_id=volume_id,
                         connector=connector)

    def ping(self, ctxt, host: str, payload: str) -> str:
        return self.client.call(ctxt, "ping", server=host, payload=payload)
