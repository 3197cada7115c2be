"""``inproc://``: oslo.messaging's in-process transport, without the polling.

oslo.messaging's ``fake://`` driver keeps messages in per-topic lists in this
process, which is all an all-in-one virtstack needs, but its listener finds
them by sleeping: it looks at its queues, and when they are empty sleeps up
to 50 ms (a constant in ``impl_fake.FakeListener.poll``) before it looks
again. Every cast then waits 25 ms on average before a server sees it, and
every call pays that once more for each call it makes on the way.

This driver *is* the fake driver (its exchanges, queues, messages, replies
and serialisation checks), with one change: a delivery notifies a condition
that idle listeners wait on, so a message is picked up as soon as it is
queued, and an idle listener does no work at all. It is registered in
oslo.messaging's own driver group (``oslo.messaging.drivers`` entry point
``inproc``, in ``pyproject.toml``), so ``transport_url = inproc://`` selects
it like any other transport.
"""

from __future__ import annotations

import threading

from oslo_messaging._drivers import base
from oslo_messaging._drivers import impl_fake


class _Exchange(impl_fake.FakeExchange):
    """The fake exchange; every delivery wakes the waiting listeners."""

    def __init__(self, name: str, arrived: threading.Condition):
        super().__init__(name)
        self._arrived = arrived

    def deliver_message(self, *args, **kwargs):
        with self._arrived:
            super().deliver_message(*args, **kwargs)
            self._arrived.notify_all()


class _ExchangeManager(impl_fake.FakeExchangeManager):
    """Exchanges of the ``inproc://`` transports of this process (not shared
    with ``fake://``), and the one condition their listeners wait on (one
    for all: a listener may listen on several exchanges)."""

    _exchanges_lock = threading.Lock()
    _exchanges: dict[str, _Exchange] = {}
    arrived = threading.Condition()

    def get_exchange(self, name: str | None) -> _Exchange:
        name = self._default_exchange if name is None else name
        with self._exchanges_lock:
            exchange = self._exchanges.get(name)
            if exchange is None:
                exchange = self._exchanges[name] = _Exchange(name, self.arrived)
            return exchange


class _WakingListener(impl_fake.FakeListener):
    """The fake listener, waiting on the manager's condition instead of
    sleeping between looks. It adds no state of its own: the driver turns
    the fake driver's listeners into this class (see ``_waking``)."""

    def _take(self) -> impl_fake.FakeIncomingMessage | None:
        """The first message queued for one of this listener's targets."""
        for target in self._targets:
            exchange = self._exchange_manager.get_exchange(target.exchange)
            ctxt, message, reply_q, requeue = exchange.poll(target, self._pool)
            if message is not None:
                return impl_fake.FakeIncomingMessage(ctxt, message, reply_q, requeue)
        return None

    @base.batch_poll_helper
    def poll(self, timeout: float | None = None) -> impl_fake.FakeIncomingMessage | None:
        """A message, or None when ``timeout`` (None: none) passes or the
        listener is stopped first."""
        found: list[impl_fake.FakeIncomingMessage] = []

        def ready() -> bool:
            if self._stopped.is_set():
                return True
            message = self._take()
            if message is not None:
                found.append(message)
            return bool(found)

        # A delivery queues and notifies under the condition, and the
        # condition is held from the look until wait() releases it: no
        # message can arrive unnoticed in between.
        with self._exchange_manager.arrived:
            self._exchange_manager.arrived.wait_for(ready, timeout)
        return found[0] if found else None

    def stop(self) -> None:
        super().stop()
        with self._exchange_manager.arrived:
            self._exchange_manager.arrived.notify_all()


class InProcessDriver(impl_fake.FakeDriver):
    """oslo.messaging's fake driver with listeners woken by deliveries
    (``inproc://``; see the module docstring)."""

    def __init__(self, conf, url, default_exchange=None, allowed_remote_exmods=None):
        super().__init__(conf, url, default_exchange, allowed_remote_exmods)
        self._exchange_manager = _ExchangeManager(default_exchange)

    @staticmethod
    def _waking(adapter: base.PollStyleListenerAdapter) -> base.PollStyleListenerAdapter:
        # The fake driver builds the listener (its targets and queues, on
        # our exchange manager); only how it waits changes.
        adapter._poll_style_listener.__class__ = _WakingListener
        return adapter

    def listen(self, target, batch_size, batch_timeout):
        return self._waking(super().listen(target, batch_size, batch_timeout))

    def listen_for_notifications(self, targets_and_priorities, pool, batch_size,
                                 batch_timeout):
        return self._waking(super().listen_for_notifications(
            targets_and_priorities, pool, batch_size, batch_timeout))
