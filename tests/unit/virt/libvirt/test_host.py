"""Tests of the parts of ``host`` that need no libvirtd: event translation
and dispatch, waits, the uptime line, connection errors, facts from files.
(tests/functional/virt/libvirt/ runs the rest against the real daemon.)"""

from __future__ import annotations

import threading
import time
from unittest import mock

import pytest

libvirt = pytest.importorskip("libvirt")

from virtstack import exception  # noqa: E402
from virtstack.virt import event as virtevent  # noqa: E402
from virtstack.virt.libvirt import host as libvirt_host  # noqa: E402

UUID = "1b7c6f0e-2f57-4d0e-9b55-0c4cf3b8d1aa"


@pytest.mark.parametrize("event, detail, transition", [
    (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED,
     virtevent.EVENT_LIFECYCLE_STARTED),
    (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_RESTORED,
     virtevent.EVENT_LIFECYCLE_RESUMED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN,
     virtevent.EVENT_LIFECYCLE_STOPPED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED,
     virtevent.EVENT_LIFECYCLE_STOPPED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED,
     virtevent.EVENT_LIFECYCLE_SUSPENDED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED,
     virtevent.EVENT_LIFECYCLE_CRASHED),
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED,
     virtevent.EVENT_LIFECYCLE_PAUSED),
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED,
     virtevent.EVENT_LIFECYCLE_RESUMED),
    (libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED, 0, virtevent.EVENT_LIFECYCLE_SUSPENDED),
    (libvirt.VIR_DOMAIN_EVENT_CRASHED, 0, virtevent.EVENT_LIFECYCLE_CRASHED),
    (libvirt.VIR_DOMAIN_EVENT_DEFINED, 0, None),
    (libvirt.VIR_DOMAIN_EVENT_UNDEFINED, 0, None),
    (libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, 0, None),
])
def test_lifecycle_transition(event, detail, transition):
    assert libvirt_host.lifecycle_transition(event, detail) == transition


def test_uptime_line_looks_like_uptime():
    now = time.struct_time((2024, 5, 1, 10, 1, 2, 2, 122, 0))
    assert libvirt_host.format_uptime(3 * 86400 + 4 * 3600 + 5 * 60, (0.0, 0.01, 0.05), now) == (
        " 10:01:02 up 3 days,  4:05,  0 users,  load average: 0.00, 0.01, 0.05")
    assert libvirt_host.format_uptime(17 * 60, (1, 2, 3), now, users=1) == (
        " 10:01:02 up 17 min,  1 user,  load average: 1.00, 2.00, 3.00")
    assert " up 1 day, 17 min," in libvirt_host.format_uptime(86400 + 17 * 60, (0, 0, 0), now)


def _domain(uuid: str = UUID):
    dom = mock.create_autospec(libvirt.virDomain, instance=True)
    dom.UUIDString.return_value = uuid
    return dom


@pytest.fixture
def dispatching_host():
    """A Host with its dispatcher running but no connection; events it hands
    on are collected in ``host.delivered``."""
    delivered: list[virtevent.Event] = []
    arrived = threading.Semaphore(0)

    def handler(event):
        delivered.append(event)
        arrived.release()

    host = libvirt_host.Host("qemu:///nowhere", event_handler=handler)
    with host._lock:
        host._start_dispatcher()
    host.delivered = delivered
    host.arrived = arrived
    yield host
    host.close()


def test_lifecycle_callbacks_reach_the_handler_with_the_domain_uuid(dispatching_host):
    host = dispatching_host
    host._on_lifecycle(None, _domain(), libvirt.VIR_DOMAIN_EVENT_STARTED, 0, None)
    host._on_lifecycle(None, _domain(), libvirt.VIR_DOMAIN_EVENT_DEFINED, 0, None)  # dropped
    host._on_lifecycle(None, _domain(), libvirt.VIR_DOMAIN_EVENT_SUSPENDED, 0, None)
    assert host.arrived.acquire(timeout=5) and host.arrived.acquire(timeout=5)
    assert [(e.uuid, e.transition) for e in host.delivered] == [
        (UUID, virtevent.EVENT_LIFECYCLE_STARTED), (UUID, virtevent.EVENT_LIFECYCLE_PAUSED)]


def test_a_failing_handler_does_not_stop_the_dispatcher():
    calls = []
    done = threading.Event()

    def handler(event):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("listener bug")
        done.set()

    host = libvirt_host.Host("qemu:///nowhere", event_handler=handler)
    with host._lock:
        host._start_dispatcher()
    try:
        for _ in range(2):
            host._on_lifecycle(None, _domain(), libvirt.VIR_DOMAIN_EVENT_STOPPED, 0, None)
        assert done.wait(5)
    finally:
        host.close()


def test_device_removed_is_reported_by_target_when_a_detach_waits_for_it(dispatching_host):
    host = dispatching_host
    removed = host.expect_device_removal(UUID, "virtio-disk1", "vdb")
    host._on_device_removed(None, _domain(), "virtio-disk1", None)
    assert removed.wait(5)
    host._on_device_removed(None, _domain(), "ua-vdc", None)  # nobody waits: user alias
    host._on_device_removed(None, _domain(), "virtio-disk3", None)  # nobody waits: as is
    for _ in range(3):
        assert host.arrived.acquire(timeout=5)
    assert [(type(e), e.uuid, e.dev) for e in host.delivered] == [
        (virtevent.DeviceRemovedEvent, UUID, "vdb"),
        (virtevent.DeviceRemovedEvent, UUID, "vdc"),
        (virtevent.DeviceRemovedEvent, UUID, "virtio-disk3")]
    host.forget_device_removal(UUID, "virtio-disk1")
    assert host._removals == {}


def test_wait_for_wakes_when_an_event_arrives(dispatching_host):
    host = dispatching_host
    flag = threading.Event()

    def later():
        flag.set()
        host._on_lifecycle(None, _domain(), libvirt.VIR_DOMAIN_EVENT_STARTED, 0, None)

    timer = threading.Timer(0.1, later)
    timer.start()
    started = time.monotonic()
    # The poll interval is far longer than the deadline: only the event wakes it.
    host.wait_for(flag.is_set, timeout=20, poll_interval=30, what="the flag")
    assert time.monotonic() - started < 10
    timer.join()


def test_wait_for_times_out_naming_what_it_waited_for(dispatching_host):
    with pytest.raises(TimeoutError, match="the impossible"):
        dispatching_host.wait_for(lambda: False, timeout=0.1, poll_interval=0.05,
                                  what="the impossible")


def test_close_of_an_old_connection_is_ignored(dispatching_host):
    host = dispatching_host
    old, current = object(), object()
    host._conn = current
    host._connection_closed(old, libvirt.VIR_CONNECT_CLOSE_REASON_EOF)
    assert host._conn is current
    host._conn = None


def test_unreachable_libvirtd_is_hypervisor_unavailable():
    host = libvirt_host.Host("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    try:
        with pytest.raises(libvirt_host.HypervisorUnavailable, match="/nonexistent"):
            host.get_connection()
    finally:
        host.close()
    assert libvirt_host.HypervisorUnavailable.code == 503


def test_virt_type_other_than_auto_is_taken_as_is():
    host = libvirt_host.Host("qemu:///nowhere")
    with mock.patch.object(libvirt_host.probe, "choose_virt_type", autospec=True) as probe:
        assert host.choose_virt_type("kvm", "/unused") == "kvm"
        assert host.choose_virt_type("qemu", "/unused") == "qemu"
    probe.assert_not_called()


def test_auto_virt_type_is_probed_once_per_uri(monkeypatch):
    monkeypatch.setattr(libvirt_host, "_choices", {})
    host = libvirt_host.Host("qemu:///probe-once")
    with mock.patch.object(libvirt_host.probe, "choose_virt_type", autospec=True,
                           return_value=libvirt_host.probe.VirtTypeChoice("qemu", "no kvm")) \
            as probe, mock.patch.object(host, "get_arch", autospec=True, return_value="x86_64"):
        assert host.choose_virt_type("auto", "/work") == "qemu"
        assert libvirt_host.Host("qemu:///probe-once").choose_virt_type("auto", "/w") == "qemu"
    probe.assert_called_once_with(host, "/work", "x86_64")


def test_disk_stats_of_a_directory(tmp_path):
    stats = libvirt_host.Host.get_disk_stats(str(tmp_path))
    assert stats["total"] >= stats["free"] >= 0
    assert stats["used"] == stats["total"] - stats["free"]


def test_missing_libvirt_python_is_a_clear_config_error(monkeypatch):
    monkeypatch.setattr(libvirt_host, "libvirt", None)
    with pytest.raises(exception.ConfigError, match="install-libvirt.sh"):
        libvirt_host.require_libvirt()


def test_the_probe_answer_is_kept_on_disk_until_the_host_changes(monkeypatch, tmp_path):
    monkeypatch.setattr(libvirt_host, "_choices", {})
    key = {"value": "kernel-1|libvirt-9|qemu-7|True|qemu:///disk"}
    monkeypatch.setattr(libvirt_host.Host, "_probe_key", lambda self: key["value"])
    choice = libvirt_host.probe.VirtTypeChoice("qemu", "kvm too slow")
    with mock.patch.object(libvirt_host.probe, "choose_virt_type", autospec=True,
                           return_value=choice) as probe, \
            mock.patch.object(libvirt_host.Host, "get_arch", autospec=True,
                              return_value="x86_64"):
        assert libvirt_host.Host("qemu:///disk").choose_virt_type("auto", str(tmp_path)) == "qemu"
        assert probe.call_count == 1
        # A new process (no in-memory answer) reads it back without probing.
        monkeypatch.setattr(libvirt_host, "_choices", {})
        assert libvirt_host.Host("qemu:///disk").choose_virt_type("auto", str(tmp_path)) == "qemu"
        assert probe.call_count == 1
        # The host changed (say, a new kernel): probe again.
        monkeypatch.setattr(libvirt_host, "_choices", {})
        key["value"] = "kernel-2|libvirt-9|qemu-7|True|qemu:///disk"
        libvirt_host.Host("qemu:///disk").choose_virt_type("auto", str(tmp_path))
        assert probe.call_count == 2


# -- secrets ------------------------------------------------------------------------

def _secret_host(monkeypatch):
    host = libvirt_host.Host("qemu:///nowhere")
    conn = mock.create_autospec(libvirt.virConnect, instance=True)
    monkeypatch.setattr(host, "get_connection", lambda: conn)
    return host, conn


def test_secret_value_goes_through_set_value_not_xml(monkeypatch):
    from virtstack.virt.libvirt import designer

    host, conn = _secret_host(monkeypatch)
    handle = conn.secretDefineXML.return_value
    secret = designer.build_chap_secret("inst", "vol")
    host.define_secret(secret, b"p4ssw0rd")
    [(xml, flags), _] = conn.secretDefineXML.call_args
    assert "p4ssw0rd" not in xml and config_secret(xml) == secret
    handle.setValue.assert_called_once_with(b"p4ssw0rd", 0)


def test_a_secret_whose_value_cannot_be_set_is_undefined_again(monkeypatch):
    from virtstack.virt.libvirt import designer

    host, conn = _secret_host(monkeypatch)
    handle = conn.secretDefineXML.return_value
    handle.setValue.side_effect = libvirt.libvirtError("no")
    with pytest.raises(libvirt.libvirtError):
        host.define_secret(designer.build_chap_secret("inst", "vol"), b"x")
    handle.undefine.assert_called_once_with()


def test_delete_of_a_secret_gone_is_false(monkeypatch):
    host, conn = _secret_host(monkeypatch)
    gone = libvirt.libvirtError("no secret")
    gone.err = (libvirt.VIR_ERR_NO_SECRET, 0, "no secret", 0, None, None, None, -1, -1)
    conn.secretLookupByUUIDString.side_effect = gone
    assert host.delete_secret("4c7d1f52-2b0e-4a4b-9d6e-2f1c9a3b5e10") is False


def config_secret(xml: str):
    from virtstack.virt.libvirt import config

    return config.Secret.from_xml(xml)
