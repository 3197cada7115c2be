"""The one RPC facade: services talk to each other only through this.

Built on oslo.messaging. ``[DEFAULT] transport_url`` picks the transport:
``inproc://`` (the default, ``rpc/inproc.py``) keeps every message in this
process (all-in-one), as oslo.messaging's ``fake://`` does but without its
listeners' 50 ms polling; ``rabbit://`` goes over RabbitMQ so services can
run on many hosts. Request contexts travel with every message
(``ContextSerializer``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
from typing import Any, Iterable

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_messaging._drivers import common as rpc_common

from virtstack import context as vs_context
from virtstack.conf import CONF

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_transport: messaging.Transport | None = None

#: Exceptions that may cross RPC and be re-raised as themselves by callers.
ALLOWED_EXMODS = ["virtstack.exception"]

#: The transport when none is configured: every service in this process.
DEFAULT_URL = "inproc://"
#: Transports (URL schemes) whose messages never leave this process.
IN_PROCESS = ("inproc", "fake")


def register_opts(conf) -> None:
    """Register oslo.messaging's [DEFAULT] options (``transport_url``,
    ``rpc_response_timeout``, ...) on ``conf`` now. oslo.messaging does so only
    when it builds a transport, and until then a configured
    ``transport_url`` cannot be read: the first transport would be fake://."""
    from oslo_messaging import opts as messaging_opts

    for group, options in messaging_opts.list_opts():
        if group in (None, "DEFAULT"):
            conf.register_opts(options)  # a no-op when they already are


register_opts(CONF)


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
    """The configured transport, ``DEFAULT_URL`` (in-process) when unset.

    oslo.messaging's own default ('rabbit://', a broker on localhost) does
    not count as configured: only a value from a config file, the command
    line, the environment or an override does."""
    register_opts(CONF)  # again: a test fixture may have unregistered them
    location = CONF.get_location("transport_url")
    if location is None or location.location == cfg.Locations.opt_default:
        return DEFAULT_URL
    return CONF.transport_url or DEFAULT_URL


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


def get_server(topic: str, server: str,
               endpoints: Iterable[Any]) -> messaging.MessageHandlingServer:
    """An RPC server for ``topic`` on ``server`` dispatching to ``endpoints``
    in a thread pool (oslo.messaging's threading executor). Start it with
    ``.start()``; stop with ``.stop(); .wait()``.

    On the in-process transports, errors leave the endpoints as they would
    arrive over a broker (see ``_OverTheWire``), so that callers behave the
    same in process and on rabbit://."""
    target = messaging.Target(topic=topic, server=server)
    endpoints = list(endpoints)
    if transport_url().partition(":")[0] in IN_PROCESS:
        endpoints = [_OverTheWire(e) for e in endpoints]
    return messaging.get_rpc_server(get_transport(), target, endpoints,
                                    serializer=ContextSerializer())


class _OverTheWire:
    """An endpoint whose exceptions are serialised and rebuilt as a real
    transport does. oslo.messaging's fake driver (and so ``inproc://``) hands
    the endpoint's exception object itself to the caller; over RabbitMQ the
    caller gets the same class only for ``ALLOWED_EXMODS`` and builtins, and
    ``messaging.RemoteError`` for anything else."""

    def __init__(self, endpoint: Any):
        self._endpoint = endpoint
        if hasattr(endpoint, "target"):  # version/namespace filtering
            self.target = endpoint.target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._endpoint, name)
        if name.startswith("_") or not (inspect.ismethod(attr) or inspect.isfunction(attr)):
            return attr

        @functools.wraps(attr)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except messaging.ExpectedException:
                raise
            except Exception:
                data = rpc_common.serialize_remote_exception(sys.exc_info())
                raise rpc_common.deserialize_remote_exception(data, ALLOWED_EXMODS) from None

        return dispatch
