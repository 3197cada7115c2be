"""Parsing tgtadm's output and telling its errors apart (no tgtd needed)."""

from __future__ import annotations

import pytest
from oslo_concurrency import processutils

from virtstack import exception
from virtstack.volume.backends import tgt

#: ``tgtadm --lld iscsi --op show --mode target`` of tgt 1.0.85: a target
#: with a logged-in initiator, CHAP users (one outgoing) and ACL entries, and
#: a bare target.
SHOW_TARGETS = """\
Target 1: iqn.2010-10.org.virtstack:volume-aaa
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 5
            Initiator: iqn.1993-08.org.debian:01:host-a alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: 
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 2147 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /var/lib/virtstack/volumes/volume-aaa
            Backing store flags: 
    Account information:
        vs0123456789abcdef
        mutual (outgoing)
    ACL information:
        iqn.1993-08.org.debian:01:host-a
        iqn.1993-08.org.debian:01:host-b
Target 12: iqn.2010-10.org.virtstack:volume-bbb
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     000c0000
            SCSI SN: beaf120
            Size: 0 MB, Block size: 1
            Backing store path: None
    Account information:
    ACL information:
"""


def test_parse_targets_reads_every_part():
    first, second = tgt.parse_targets(SHOW_TARGETS)

    assert first == tgt.Target(
        tid=1, iqn="iqn.2010-10.org.virtstack:volume-aaa",
        luns={0: tgt.LogicalUnit(0, "controller", 0, None),
              1: tgt.LogicalUnit(1, "disk", 2147, "/var/lib/virtstack/volumes/volume-aaa")},
        incoming_users=("vs0123456789abcdef",),
        acl=("iqn.1993-08.org.debian:01:host-a", "iqn.1993-08.org.debian:01:host-b"),
        sessions=("iqn.1993-08.org.debian:01:host-a",))
    assert (second.tid, second.iqn, list(second.luns)) == (
        12, "iqn.2010-10.org.virtstack:volume-bbb", [0])
    assert second.incoming_users == second.acl == second.sessions == ()


def test_parse_targets_of_an_idle_tgtd_is_empty():
    assert tgt.parse_targets("") == []


@pytest.mark.parametrize("text", ["tgtadm: something odd\n", "    LUN information:\n"])
def test_parse_targets_refuses_output_it_does_not_know(text):
    with pytest.raises(exception.VolumeBackendError, match="unexpected line"):
        tgt.parse_targets(text)


def test_parse_accounts():
    assert tgt.parse_accounts("Account list:\n    vs01\n    vs02\n") == ["vs01", "vs02"]
    assert tgt.parse_accounts("Account list:\n") == []


def failing(stderr: str, exit_code: int = 22):
    def execute(*cmd, **kwargs):
        raise processutils.ProcessExecutionError(
            stdout="", stderr=stderr, exit_code=exit_code,
            cmd=processutils.strutils.mask_password(" ".join(cmd)))
    return execute


@pytest.mark.parametrize("stderr,error", [
    ("tgtadm: this target already exists\n", tgt.TgtObjectExists),
    ("tgtadm: this account already exists\n", tgt.TgtObjectExists),
    ("tgtadm: can't find the target\n", tgt.TgtObjectMissing),
    ("tgtadm: this access control rule does not exist\n", tgt.TgtObjectMissing),
    ("tgtadm: invalid request\n", tgt.TgtadmError),
    ("tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected\n",
     tgt.TgtadmError),
])
def test_errors_are_told_apart_by_what_tgtadm_says(stderr, error):
    tgtadm = tgt.Tgtadm(execute=failing(stderr))
    with pytest.raises(error) as raised:
        tgtadm.new_target(1, "iqn.x:y")
    assert type(raised.value) is error
    assert isinstance(raised.value, exception.VolumeBackendError)
    assert stderr.strip() in raised.value.format_message()


def test_error_messages_leave_out_the_chap_secret():
    tgtadm = tgt.Tgtadm(execute=failing("tgtadm: this account already exists\n"))
    with pytest.raises(tgt.TgtObjectExists) as raised:
        tgtadm.new_account("vs01", "s3cret-s3cret-s3cret")
    message = raised.value.format_message()
    assert "s3cret" not in message
    assert "--op new --mode account --user vs01 --password ***" in message


def test_commands_are_what_tgtadm_expects():
    calls = []

    def execute(*cmd, **kwargs):
        calls.append(cmd)
        return "", ""

    tgtadm = tgt.Tgtadm(execute=execute)
    tgtadm.new_target(3, "iqn.x:v")
    tgtadm.add_lun(3, 1, "/v/volume-1")
    tgtadm.bind_initiator(3, "iqn.i:a")
    tgtadm.bind_account(3, "vs01")
    tgtadm.delete_target(3, force=True)
    base = ("tgtadm", "--lld", "iscsi")
    assert calls == [
        base + ("--op", "new", "--mode", "target", "--tid", "3", "--targetname", "iqn.x:v"),
        base + ("--op", "new", "--mode", "logicalunit", "--tid", "3", "--lun", "1",
                "--backing-store", "/v/volume-1", "--bstype", "rdwr"),
        base + ("--op", "bind", "--mode", "target", "--tid", "3", "--initiator-name", "iqn.i:a"),
        base + ("--op", "bind", "--mode", "account", "--tid", "3", "--user", "vs01"),
        base + ("--op", "delete", "--mode", "target", "--force", "--tid", "3"),
    ]
