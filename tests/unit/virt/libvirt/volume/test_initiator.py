"""Tests of this host's iSCSI initiator name, the initiator choice and the
connector properties (os-brick runs for real: it only reads the host)."""

from __future__ import annotations

import re
import subprocess
import threading
from unittest import mock

import pytest

from virtstack.virt.libvirt.volume import initiator

IQN = re.compile(r"^iqn\.2010-10\.org\.virtstack:[a-z0-9.-]+:[0-9a-f]{12}$")


def test_configured_name_wins(tmp_path):
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("InitiatorName=iqn.1993-08.org.debian:01:abc\n")
    assert initiator.initiator_iqn("iqn.2000-01.com.example:x", str(tmp_path), "h",
                                   str(name_file)) == "iqn.2000-01.com.example:x"
    assert not (tmp_path / initiator.GENERATED_NAME_FILE).exists()


def test_open_iscsi_name_is_used_when_there(tmp_path):
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:abc\n")
    assert initiator.initiator_iqn("", str(tmp_path), "h", str(name_file)) == \
        "iqn.1993-08.org.debian:01:abc"


def test_generated_name_is_kept_and_reused(tmp_path):
    absent = str(tmp_path / "absent")
    state = tmp_path / "state"
    first = initiator.initiator_iqn("", str(state), "Compute_1.example", absent)
    assert IQN.match(first), first
    assert first.startswith("iqn.2010-10.org.virtstack:compute-1.example:")
    assert (state / initiator.GENERATED_NAME_FILE).read_text().strip() == first
    assert initiator.initiator_iqn("", str(state), "another-name", absent) == first


def test_concurrent_first_calls_agree(tmp_path):
    absent = str(tmp_path / "absent")
    names: list[str] = []
    start = threading.Barrier(8)

    def call():
        start.wait()
        names.append(initiator.initiator_iqn("", str(tmp_path), "h", absent))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 1 and len(names) == 8


def test_a_name_kept_by_another_process_first_is_taken(tmp_path, monkeypatch):
    # The other process links its file in between our check and our link.
    kept = tmp_path / initiator.GENERATED_NAME_FILE
    real_link = initiator.os.link

    def link_after_the_other(src, dst):
        kept.write_text("iqn.2010-10.org.virtstack:other:000000000000\n")
        return real_link(src, dst)

    monkeypatch.setattr(initiator.os, "link", link_after_the_other)
    assert initiator.initiator_iqn("", str(tmp_path), "h", str(tmp_path / "absent")) == \
        "iqn.2010-10.org.virtstack:other:000000000000"
    assert [p.name for p in tmp_path.iterdir()] == [initiator.GENERATED_NAME_FILE]


@pytest.mark.parametrize("mode", ["qemu", "host"])
def test_explicit_initiator_is_taken_as_is(mode):
    assert initiator.choose_initiator(mode) == mode


def test_auto_is_qemu_without_iscsiadm(monkeypatch):
    monkeypatch.setattr(initiator.shutil, "which", lambda name: None)
    assert initiator.choose_initiator("auto") == "qemu"


@pytest.mark.parametrize("returncode,expected", [(0, "host"), (21, "host"), (20, "qemu")])
def test_auto_is_host_when_iscsiadm_reaches_iscsid(monkeypatch, tmp_path, returncode, expected):
    # No kernel initiator on this machine: iscsiadm's answer is stood in for.
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("InitiatorName=iqn.1993-08.org.debian:01:abc\n")
    monkeypatch.setattr(initiator, "OPEN_ISCSI_NAME_FILE", str(name_file))
    monkeypatch.setattr(initiator.shutil, "which", lambda name: "/usr/sbin/iscsiadm")
    run = mock.create_autospec(subprocess.run)
    run.return_value = subprocess.CompletedProcess(["iscsiadm"], returncode)
    monkeypatch.setattr(initiator.subprocess, "run", run)
    assert initiator.choose_initiator("auto") == expected
    assert run.call_args[0][0] == ["/usr/sbin/iscsiadm", "-m", "session"]


def test_auto_is_qemu_when_open_iscsi_has_no_name(monkeypatch, tmp_path):
    monkeypatch.setattr(initiator, "OPEN_ISCSI_NAME_FILE", str(tmp_path / "absent"))
    monkeypatch.setattr(initiator.shutil, "which", lambda name: "/usr/sbin/iscsiadm")
    assert initiator.choose_initiator("auto") == "qemu"


def test_connector_properties_come_from_os_brick_with_our_name():
    pytest.importorskip("os_brick")
    props = initiator.connector_properties("192.0.2.10", "cmp1", "iqn.2010-10.org.virtstack:c:1")
    assert props["initiator"] == "iqn.2010-10.org.virtstack:c:1"
    assert (props["host"], props["ip"], props["multipath"]) == ("cmp1", "192.0.2.10", False)
    assert props["platform"] and props["os_type"] == "linux"


@pytest.fixture
def brick_cache():
    """os-brick's answers are kept per process: start and end empty."""
    initiator._brick_properties.cache_clear()
    yield
    initiator._brick_properties.cache_clear()


def test_os_brick_is_asked_once_per_host(brick_cache):
    """Its six commands ran on every attach; the host they describe stays."""
    brick = pytest.importorskip("os_brick.initiator.connector")
    with mock.patch.object(brick, "get_connector_properties", autospec=True,
                           return_value={"platform": "x86_64", "ip": "192.0.2.10",
                                         "host": "cmp1", "wwpns": ["50014380186af83c"]}) as ask:
        first = initiator.connector_properties("192.0.2.10", "cmp1", "iqn.2010-10.x:a")
        first["wwpns"].append("changed by a caller")
        second = initiator.connector_properties("192.0.2.10", "cmp1", "iqn.2010-10.x:b")
        assert ask.call_count == 1
        assert second["initiator"] == "iqn.2010-10.x:b" and first["initiator"] == "iqn.2010-10.x:a"
        assert second["wwpns"] == ["50014380186af83c"]  # each caller has its own copy
        initiator.connector_properties("192.0.2.11", "cmp1", "iqn.2010-10.x:a")
        assert ask.call_count == 2  # another address: asked again
        assert ask.call_args[0][1] == "192.0.2.11"
