"""The RPC facade end to end: calls and casts with the request context, remote
errors, over both in-process transports (``inproc://``, the default, and
oslo.messaging's ``fake://``) and over real RabbitMQ."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid as uuidlib

import oslo_messaging as messaging
import pytest

from virtstack import context as vs_context
from virtstack import exception
from virtstack import rpc

RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/"
WAIT = 20  # seconds: a deadline, not a sleep


class PrivateError(Exception):
    """Defined outside ALLOWED_EXMODS: must not be rebuilt by callers."""


class Endpoint:
    target = messaging.Target(version="1.0")

    def __init__(self):
        self.contexts: list = []
        self.casts: list = []
        self.cast_seen = threading.Event()

    def echo(self, ctxt, payload):
        self.contexts.append(ctxt)
        return {"payload": payload, "user": ctxt.user_id, "thread": threading.current_thread().name}

    def remember(self, ctxt, value):
        self.casts.append((ctxt, value))
        self.cast_seen.set()

    def refuse(self, ctxt, instance_uuid):
        raise exception.InstanceInvalidState(action="stop", instance_uuid=instance_uuid,
                                             attr="vm_state", state="stopped")

    def break_privately(self, ctxt):
        raise PrivateError("not for export")

    def break_builtin(self, ctxt):
        raise ValueError("bad value")


@pytest.fixture
def fresh(conf):
    """No process transport before or after the test."""
    rpc.cleanup()
    yield
    rpc.cleanup()


@pytest.fixture(params=["inproc://", "fake://"])
def transport(request, conf, fresh):
    """A fresh process transport of each in-process kind for the test."""
    conf.config(transport_url=request.param)
    return request.param


@pytest.fixture
def served(transport):
    """(client, endpoint) on a unique topic with a running server."""
    topic = f"test-rpc-{uuidlib.uuid4().hex[:12]}"
    endpoint = Endpoint()
    server = rpc.get_server(topic, "server-1", [endpoint])
    server.start()
    try:
        yield rpc.Client(topic), endpoint
    finally:
        server.stop()
        server.wait()


def _ctx(**kw) -> vs_context.RequestContext:
    values = dict(user_id="user-1", project_id="project-1", request_id="req-" + uuidlib.uuid4().hex,
                  roles=["member"], overwrite=False)
    values.update(kw)
    return vs_context.RequestContext(**values)


def test_inproc_transport_is_the_default(fresh):
    """Unset means in-process, also after a transport was made and closed
    (oslo.messaging's own default would be a broker on localhost)."""
    for _ in range(2):
        assert rpc.transport_url() == "inproc://"
        transport = rpc.get_transport()
        assert transport is rpc.get_transport()
        assert type(transport._driver).__name__ == "InProcessDriver"
        rpc.cleanup()


def test_the_configured_in_process_transport_is_used(transport):
    assert rpc.transport_url() == transport
    expected = {"inproc://": "InProcessDriver", "fake://": "FakeDriver"}[transport]
    assert type(rpc.get_transport()._driver).__name__ == expected


def test_inproc_calls_do_not_wait_for_a_poll(fresh):
    """fake:// servers look for messages every 50 ms, so 20 calls in a row
    take about a second; on inproc:// (the default) each is picked up at once."""
    topic = f"test-rpc-{uuidlib.uuid4().hex[:12]}"
    server = rpc.get_server(topic, "server-1", [Endpoint()])
    server.start()
    try:
        client = rpc.Client(topic)
        client.call(_ctx(), "echo", timeout=WAIT, payload=0)
        t0 = time.monotonic()
        for n in range(20):
            assert client.call(_ctx(), "echo", timeout=WAIT, payload=n)["payload"] == n
        assert time.monotonic() - t0 < 0.5
    finally:
        server.stop()
        server.wait()


def test_call_round_trip_keeps_the_context(served):
    client, endpoint = served
    ctxt = _ctx()
    reply = client.call(ctxt, "echo", timeout=WAIT, payload={"n": [1, 2, 3]})
    assert reply["payload"] == {"n": [1, 2, 3]} and reply["user"] == "user-1"
    assert reply["thread"] != threading.current_thread().name  # really dispatched
    [seen] = endpoint.contexts
    assert isinstance(seen, vs_context.RequestContext)
    assert (seen.user_id, seen.project_id, seen.request_id) == \
        ("user-1", "project-1", ctxt.request_id)
    assert seen.roles == ["member"] and seen.is_admin is False
    assert seen.can_see("project-1") and not seen.can_see("project-2")


def test_admin_context_stays_admin(served):
    client, endpoint = served
    client.call(vs_context.get_admin_context("req-admin"), "echo", timeout=WAIT, payload=1)
    [seen] = endpoint.contexts
    assert seen.is_admin is True and seen.request_id == "req-admin"
    assert seen.can_see("any-project")


def test_cast_round_trip_keeps_the_context(served):
    client, endpoint = served
    ctxt = _ctx(user_id="user-2", project_id="project-2")
    assert client.cast(ctxt, "remember", value=42) is None   # does not wait
    assert endpoint.cast_seen.wait(WAIT), "cast never arrived"
    [(seen, value)] = endpoint.casts
    assert value == 42
    assert (seen.user_id, seen.project_id, seen.request_id) == \
        ("user-2", "project-2", ctxt.request_id)


def test_call_to_a_named_server(served):
    client, endpoint = served
    reply = client.call(_ctx(), "echo", server="server-1", timeout=WAIT, payload="x")
    assert reply["payload"] == "x"


def test_remote_virtstack_error_comes_back_as_itself(served):
    client, _ = served
    with pytest.raises(exception.InstanceInvalidState) as err:
        client.call(_ctx(), "refuse", timeout=WAIT, instance_uuid="i-1")
    assert err.value.code == 409
    assert err.value.format_message() == \
        "Cannot 'stop' instance i-1 while it is in vm_state stopped"
    assert err.value.kwargs["state"] == "stopped"
    assert isinstance(err.value, exception.Conflict)


def test_builtin_error_comes_back_as_itself(served):
    client, _ = served
    with pytest.raises(ValueError, match="bad value"):
        client.call(_ctx(), "break_builtin", timeout=WAIT)


def test_other_errors_come_back_as_remote_error(served):
    client, _ = served
    with pytest.raises(messaging.RemoteError) as err:
        client.call(_ctx(), "break_privately", timeout=WAIT)
    assert err.value.exc_type == "PrivateError" and "not for export" in err.value.value


def test_configured_transport_url_is_used_from_the_first_call(tmp_path):
    """A fresh process whose config file names RabbitMQ must not fall back to
    fake:// because oslo.messaging registers its options late."""
    cfg = tmp_path / "virtstack.conf"
    cfg.write_text(f"[DEFAULT]\ntransport_url = {RABBIT_URL}\n")
    code = textwrap.dedent(f"""
        from virtstack.conf import CONF
        from virtstack import rpc
        CONF([], project="virtstack", default_config_files=[{str(cfg)!r}])
        print(rpc.transport_url())
    """)
    repo = pathlib.Path(rpc.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=repo)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == RABBIT_URL


def _rabbit_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=5):
            return None
    except OSError as exc:
        return str(exc)


@pytest.mark.rabbit
def test_call_over_real_rabbitmq(conf):
    problem = _rabbit_reachable()
    if problem:
        message = f"RabbitMQ on 127.0.0.1:5672 unreachable: {problem}"
        if os.environ.get("VIRTSTACK_TEST_ALLOW_SKIP_RABBIT") == "1":
            pytest.skip(message)
        pytest.fail(message)
    rpc.cleanup()
    conf.config(transport_url=RABBIT_URL)
    topic = f"virtstack-test-{uuidlib.uuid4().hex[:12]}"
    endpoint = Endpoint()
    server = None
    try:
        assert "RabbitDriver" in type(rpc.get_transport()._driver).__name__
        server = rpc.get_server(topic, "rabbit-server", [endpoint])
        server.start()
        ctxt = _ctx()
        reply = rpc.Client(topic).call(ctxt, "echo", timeout=WAIT, payload="over amqp")
        assert reply["payload"] == "over amqp" and reply["user"] == "user-1"
        [seen] = endpoint.contexts
        assert seen.request_id == ctxt.request_id and seen.project_id == "project-1"
        with pytest.raises(exception.InstanceInvalidState):
            rpc.Client(topic).call(ctxt, "refuse", timeout=WAIT, instance_uuid="i-9")
    finally:
        if server is not None:
            server.stop()
            server.wait()
        rpc.cleanup()
