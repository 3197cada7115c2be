"""The one RPC facade: services talk to each other only through this.

Built on oslo.messaging. ``[DEFAULT] transport_url`` picks the transport:
``fake://`` keeps every message in this process (all-in-one), ``rabbit://``
goes over RabbitMQ so services can run on many hosts. Request contexts travel
with every message (``ContextSerializer``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterable

import oslo_messaging as messaging

from virtstack import context as vs_context
from virtstack.conf import CONF

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_transport: messaging.Transport | None = None

#: Exceptions that may cross RPC and be re-raised as themselves by callers.
ALLOWED_EXMODS = ["virtstack.exception"]


class ContextSerializer(messaging.Serializer):
    """Turns our RequestContext into a dict on the wire and back."""

    def serialize_entity(self, ctxt, entity):
        return entity

    def deserialize_entity(self, ctxt, entity):
        return entity

    def serialize_context(self, ctxt):
        return ctxt.to_dict() if hasattr(ctxt, "to_dict") else dict(ctxt or {})

    def deserialize_context(self, ctxt):
        return vs_context.RequestContext.from_dict(ctxt)


def get_transport() -> messaging.Transport:
    """The process's transport (made on first use from transport_url)."""
    global _transport
    if _transport is None:
        with _lock:
            if _transport is None:
                messaging.get_rpc_transport  # registers transport_url on CONF
                url = transport_url()
                _transport = messaging.get_rpc_transport(
                    CONF, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
    return _transport


def cleanup() -> None:
    """Close the transport (service shutdown; tests switching transports)."""
    global _transport
    with _lock:
        if _transport is not None:
            _transport.cleanup()
        _transport = None


def transport_url() -> str:
    """The configured transport, ``fake://`` (in-process) when unset."""
    try:
        return CONF.transport_url or "fake://"
    except Exception:  # not registered yet: oslo.messaging registers it lazily
        return "fake://"


class Client:
    """Sends to one topic (optionally one server). ``cast`` does not wait;
    ``call`` waits for the return value and re-raises remote virtstack errors."""

    def __init__(self, topic: str, version: str = "1.0"):
        self._target = messaging.Target(topic=topic, version=version)
        self._client = messaging.get_rpc_client(get_transport(), self._target,
                                                serializer=ContextSerializer())

    def prepare(self, server: str | None = None, timeout: int | None = None) -> "messaging.RPCClient":
        return self._client.prepare(server=server, timeout=timeout or CONF.rpc_response_timeout)

    def cast(self, ctxt, method: str, server: str | None = None, **kwargs: Any) -> None:
        self.prepare(server).cast(ctxt, method, **kwargs)

    def call(self, ctxt, method: str, server: str | None = None, timeout: int | None = None,
             **kwargs: Any) -> Any:
        return self.prepare(server, timeout).call(ctxt, method, **kwargs)


def get_server(topic: str, server: str, endpoints: Iterable[Any]) -> messaging.MessageHandlingServer:
    """An RPC server for ``topic`` on ``server`` dispatching to ``endpoints``
    in a thread pool (oslo.messaging's threading executor). Start it with ``.start()``; stop with ``.stop(); .wait()``."""
    target = messaging.Target(topic=topic, server=server)
    return messaging.get_rpc_server(get_transport(), target, list(endpoints),
                                    serializer=ContextSerializer())
