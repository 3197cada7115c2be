"""The ``inproc://`` driver: oslo.messaging's fake driver whose listeners are
woken by deliveries instead of sleeping between looks at their queues."""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from unittest import mock

import oslo_messaging as messaging
import pytest
from oslo_messaging._drivers import impl_fake

from virtstack.rpc import inproc

WAIT = 20  # seconds: a deadline, not a sleep


@pytest.fixture
def transports(conf):
    """Transports made here, cleaned up after the test."""
    made: list[messaging.Transport] = []

    def make(url: str = "inproc://") -> messaging.Transport:
        made.append(messaging.get_rpc_transport(conf.conf, url=url))
        return made[-1]

    yield make
    for transport in made:
        transport.cleanup()


def _topic() -> str:
    return f"inproc-{uuidlib.uuid4().hex[:12]}"


def _listener(transport: messaging.Transport, topic: str):
    """The poll-style listener the driver gives a server of ``topic`` on
    server ``s1`` (what oslo.messaging's server thread polls)."""
    adapter = transport._driver.listen(messaging.Target(topic=topic, server="s1"),
                                       batch_size=1, batch_timeout=None)
    return adapter._poll_style_listener


def _send(transport: messaging.Transport, topic: str, method: str = "ping") -> None:
    transport._driver.send(messaging.Target(topic=topic, server="s1"), {"user": "u1"},
                           {"method": method, "args": {}})


class Looks:
    """Counts a listener's looks at its queues; ``first`` is set on the first."""

    def __init__(self, listener):
        self.count = 0
        self.first = threading.Event()
        self._take = listener._take

    def __call__(self):
        self.count += 1
        self.first.set()
        return self._take()


def _polling(listener, timeout):
    """Poll in a thread (as the server does); (thread, received messages)."""
    got: list = []
    thread = threading.Thread(target=lambda: got.extend(listener.poll(timeout=timeout)))
    thread.start()
    return thread, got


def test_transport_url_selects_the_driver_through_oslo_messaging(transports):
    """Registered in oslo.messaging's driver group (pyproject.toml), so the
    library loads it for the URL like any transport."""
    assert type(transports("inproc://")._driver) is inproc.InProcessDriver
    assert type(transports("fake://")._driver) is impl_fake.FakeDriver


def test_listeners_are_the_waking_kind(transports):
    transport = transports()
    assert type(_listener(transport, _topic())) is inproc._WakingListener
    notify = transport._driver.listen_for_notifications(
        [(messaging.Target(topic=_topic()), "info")], None, 1, None)
    assert type(notify._poll_style_listener) is inproc._WakingListener


def test_a_delivery_wakes_a_waiting_listener(transports):
    transport = transports()
    topic = _topic()
    listener = _listener(transport, topic)
    looks = Looks(listener)
    with mock.patch.object(listener, "_take", side_effect=looks):
        thread, got = _polling(listener, timeout=None)  # would wait for ever
        assert looks.first.wait(WAIT), "the listener never looked"
        _send(transport, topic, "wake")
        thread.join(WAIT)
    assert not thread.is_alive(), "the delivery did not wake the listener"
    [message] = got
    assert message.message == {"method": "wake", "args": {}} and message.ctxt == {"user": "u1"}
    # One look before waiting, one when woken: it never polled in between.
    assert looks.count == 2


def test_an_idle_listener_does_not_poll(transports):
    """fake:// looks every 50 ms while idle; this looks once, waits, and
    looks once more when the time is up."""
    listener = _listener(transports(), _topic())
    looks = Looks(listener)
    with mock.patch.object(listener, "_take", side_effect=looks):
        t0 = time.monotonic()
        assert listener.poll(timeout=0.3) == []
        elapsed = time.monotonic() - t0
    assert elapsed >= 0.3
    assert looks.count == 2


def test_a_queued_message_is_taken_without_waiting(transports):
    transport = transports()
    topic = _topic()
    listener = _listener(transport, topic)
    _send(transport, topic, "first")
    _send(transport, topic, "second")
    assert [m.message["method"] for m in listener.poll(timeout=0)] == ["first"]
    assert [m.message["method"] for m in listener.poll(timeout=0)] == ["second"]
    assert listener.poll(timeout=0) == []


def test_stop_wakes_a_waiting_listener(transports):
    listener = _listener(transports(), _topic())
    looks = Looks(listener)
    with mock.patch.object(listener, "_take", side_effect=looks):
        thread, got = _polling(listener, timeout=None)
        assert looks.first.wait(WAIT), "the listener never looked"
        listener.stop()
        thread.join(WAIT)
    assert not thread.is_alive(), "stop did not wake the listener"
    assert got == []


def test_queues_are_not_shared_with_fake_transports(transports):
    """A fake:// listener never sees inproc:// messages (each keeps its own
    exchanges), and cleanup of one transport empties only its kind."""
    ours, fake = transports("inproc://"), transports("fake://")
    topic = _topic()
    ours_listener, fake_listener = _listener(ours, topic), _listener(fake, topic)
    _send(ours, topic, "for-inproc")
    _send(fake, topic, "for-fake")
    fake.cleanup()
    assert fake_listener.poll(timeout=0) == []
    [message] = ours_listener.poll(timeout=0)
    assert message.message["method"] == "for-inproc"
    _send(ours, topic, "dropped")
    ours.cleanup()
    assert ours_listener.poll(timeout=0) == []


def test_call_reply_and_failure_cross_in_process(transports):
    """A call waits for the listener's reply (as on fake://); a failure
    replied is raised in the caller."""
    transport = transports()
    topic = _topic()
    listener = _listener(transport, topic)
    driver = transport._driver

    def serve(reply=None, failure=None):
        [incoming] = listener.poll(timeout=WAIT)
        incoming.reply(reply, failure)

    server = threading.Thread(target=serve, kwargs={"reply": {"n": 2}})
    server.start()
    assert driver.send(messaging.Target(topic=topic, server="s1"), {}, {"method": "m"},
                       wait_for_reply=True, timeout=WAIT) == {"n": 2}
    server.join(WAIT)
    err = ValueError("refused")
    server = threading.Thread(target=serve, kwargs={"failure": (ValueError, err, None)})
    server.start()
    with pytest.raises(ValueError, match="refused"):
        driver.send(messaging.Target(topic=topic, server="s1"), {}, {"method": "m"},
                    wait_for_reply=True, timeout=WAIT)
    server.join(WAIT)
