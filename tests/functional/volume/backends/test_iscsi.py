"""The ``iscsi`` backend against the real tgtd: targets, CHAP, ACLs, online
extend, restoring exports, and logins with QEMU's own iSCSI client (what
guests use)."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading

import pytest

from tests.functional.volume.backends import environment as env
from tests.waiting import poll
from virtstack import exception
from virtstack.volume.backends import tgt
from virtstack.volume.backends.base import VolumeExport, VolumeRef

MiB, GiB = env.MiB, env.GiB
A, B = env.INITIATOR_A, env.INITIATOR_B


def target_of(volume: VolumeRef) -> tgt.Target | None:
    return next((t for t in env.our_targets() if t.iqn.endswith(f"volume-{volume.id}")), None)


def chap(volume: VolumeRef) -> tuple[str, str]:
    _, user, secret = volume.provider_auth.split()
    return user, secret


def test_create_exports_lun_1_with_chap_and_an_empty_acl(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)

    target = target_of(volume)
    user, secret = chap(volume)
    assert target.iqn == f"{env.IQN_PREFIX}volume-{volume.id}"
    assert volume.provider_location == f"127.0.0.1:3260,1 {target.iqn} 1"
    assert target.luns[1].backing_store == iscsi_backend.local_path(volume)
    assert target.luns[1].size_mb == round(GiB / 10 ** 6)
    assert target.incoming_users == (user,)
    assert user in tgt.Tgtadm().accounts()
    assert len(secret) >= 16
    assert target.acl == ()  # nobody until initialize_connection

    iscsi_backend.delete_volume(volume)
    assert target_of(volume) is None
    assert user not in tgt.Tgtadm().accounts()
    assert not os.path.exists(iscsi_backend.local_path(volume))
    iscsi_backend.delete_volume(volume)  # idempotent


def test_volumes_get_their_own_credentials(iscsi_backend, volumes):
    vols = volumes(iscsi_backend)
    first, second = vols.create(), vols.create()
    assert chap(first)[0] != chap(second)[0]
    assert chap(first)[1] != chap(second)[1]


def test_retried_create_replaces_the_export_of_the_interrupted_one(iscsi_backend, volumes):
    vols = volumes(iscsi_backend)
    volume = vols.create(size=1)
    old_user = chap(volume)[0]

    # The manager never stored the first create's result (crash) and runs it again.
    update = iscsi_backend.create_volume(VolumeRef(volume.id, 1))
    vols.volumes[volume.id] = VolumeRef(volume.id, 1, update["provider_location"],
                                        update["provider_auth"])

    new_user = update["provider_auth"].split()[1]
    assert target_of(volume).incoming_users == (new_user,)
    assert old_user not in tgt.Tgtadm().accounts()


def test_initialize_and_terminate_bind_exactly_the_connectors_initiator(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)
    user, secret = chap(volume)

    info = iscsi_backend.initialize_connection(volume, env.connector(A))
    assert info == {
        "driver_volume_type": "iscsi",
        "data": {"volume_id": volume.id, "target_portal": "127.0.0.1:3260",
                 "target_iqn": f"{env.IQN_PREFIX}volume-{volume.id}", "target_lun": 1,
                 "target_discovered": False, "auth_method": "CHAP",
                 "auth_username": user, "auth_password": secret,
                 "access_mode": "rw", "encrypted": False}}
    assert target_of(volume).acl == (A,)
    assert iscsi_backend.initialize_connection(volume, env.connector(A)) == info  # idempotent
    assert target_of(volume).acl == (A,)
    iscsi_backend.initialize_connection(volume, env.connector(B))
    assert set(target_of(volume).acl) == {A, B}
    assert target_of(volume).incoming_users == (user,)

    iscsi_backend.terminate_connection(volume, env.connector(A))
    assert target_of(volume).acl == (B,)
    iscsi_backend.terminate_connection(volume, env.connector(A))  # idempotent
    assert target_of(volume).acl == (B,)
    iscsi_backend.initialize_connection(volume, env.connector(A))
    iscsi_backend.terminate_connection(volume, None)  # every host
    assert target_of(volume).acl == ()


def test_initialize_connection_needs_an_initiator_name(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)
    connector = dict(env.connector(), initiator=None)
    with pytest.raises(exception.VolumeBackendError, match="no iSCSI initiator name"):
        iscsi_backend.initialize_connection(volume, connector)
    assert target_of(volume).acl == ()


def test_qemu_reads_with_chap_from_the_bound_initiator_only(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)
    env.write_pattern(iscsi_backend.local_path(volume), "raw", 0xC3, 5 * MiB, 4096)
    data = iscsi_backend.initialize_connection(volume, env.connector(A))["data"]

    assert env.iscsi_read(data, A, 5 * MiB, 4096) == b"\xc3" * 4096
    refused = env.iscsi_read(data, B, 5 * MiB, 4096)
    assert isinstance(refused, str) and "Target not found" in refused
    wrong_secret = env.iscsi_read(data, A, 5 * MiB, 4096, password="not-the-secret-at-all")
    assert isinstance(wrong_secret, str) and "Authentication failure" in wrong_secret

    # Writes through iSCSI land in the volume's file.
    result = env.qemu_iscsi("qemu-io", data, A, "-c", f"write -P 0x3e {7 * MiB} 4096")
    assert result.returncode == 0, result.stderr
    assert env.read_bytes(iscsi_backend.local_path(volume), "raw", 7 * MiB, 4096) == b"\x3e" * 4096

    iscsi_backend.terminate_connection(volume, env.connector(A))
    assert isinstance(env.iscsi_read(data, A, 5 * MiB, 4096), str)


def test_extend_makes_tgt_and_initiators_see_the_new_size(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)
    env.write_pattern(iscsi_backend.local_path(volume), "raw", 0x5D, 0, 4096)
    data = iscsi_backend.initialize_connection(volume, env.connector(A))["data"]
    assert env.iscsi_capacity(data, A) == GiB
    tid = target_of(volume).tid

    iscsi_backend.extend_volume(volume, 3)

    target = target_of(volume)
    assert os.path.getsize(iscsi_backend.local_path(volume)) == 3 * GiB
    assert target.luns[1].size_mb == round(3 * GiB / 10 ** 6)
    # Same target, ACL and CHAP user; the data is still there.
    assert (target.tid, target.acl, target.incoming_users) == (tid, (A,), (chap(volume)[0],))
    assert env.iscsi_capacity(data, A) == 3 * GiB
    assert env.iscsi_read(data, A, 0, 4096) == b"\x5d" * 4096
    assert env.iscsi_read(data, A, 2 * GiB + 4096, 4096) == bytes(4096)


def test_extend_while_an_initiator_is_logged_in(iscsi_backend, volumes):
    """A logged-in initiator keeps working across the LUN being re-added and
    reads the new capacity when it asks again (as QEMU does on
    blockResize)."""
    volume = volumes(iscsi_backend).create(size=1)
    data = iscsi_backend.initialize_connection(volume, env.connector(A))["data"]
    with tempfile.NamedTemporaryFile("w") as secret:
        secret.write(data["auth_password"])
        secret.flush()
        # qemu-io reading commands from a pipe holds one session open.
        session = subprocess.Popen(
            ["qemu-io", "--object", f"secret,id=chap,file={secret.name}", "--image-opts",
             env.iscsi_image_opts(data, A)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            session.stdin.write("write -P 0x21 0 4096\n")
            session.stdin.flush()
            poll(lambda: A in target_of(volume).sessions, 30, "the initiator's session")

            iscsi_backend.extend_volume(volume, 2)

            assert A in target_of(volume).sessions  # not cut off
            session.stdin.write("truncate 2G\nlength\nwrite -P 0x22 1G 4096\nquit\n")
            session.stdin.flush()
            output, _ = session.communicate(timeout=60)
        finally:
            if session.poll() is None:
                session.kill()
                session.wait()
    assert "2 GiB" in output, output
    assert "error" not in output.lower(), output
    assert env.read_bytes(iscsi_backend.local_path(volume), "raw", GiB, 4096) == b"\x22" * 4096


def test_ensure_exports_rebuilds_what_tgtd_lost(iscsi_backend, volumes):
    vols = volumes(iscsi_backend)
    attached, idle = vols.create(), vols.create()
    env.write_pattern(iscsi_backend.local_path(attached), "raw", 0x4B, 0, 4096)
    data = iscsi_backend.initialize_connection(attached, env.connector(A))["data"]
    iscsi_backend.initialize_connection(idle, env.connector(B))  # a stale ACL entry
    # tgtd restarted (it keeps nothing): remove the targets and accounts
    # behind the backend's back.
    tgtadm = tgt.Tgtadm()
    for volume in (attached, idle):
        target = target_of(volume)
        tgtadm.delete_target(target.tid, force=True)
        tgtadm.delete_account(chap(volume)[0])
    assert target_of(attached) is None

    failed = iscsi_backend.ensure_exports([VolumeExport(attached, (env.connector(A),)),
                                           VolumeExport(idle, ())])

    assert failed == {}
    assert target_of(attached).acl == (A,)
    assert target_of(idle).acl == ()  # the database says nobody is attached
    for volume in (attached, idle):
        assert target_of(volume).incoming_users == (chap(volume)[0],)
        assert target_of(volume).luns[1].backing_store == iscsi_backend.local_path(volume)
    # The same credentials work again.
    assert env.iscsi_read(data, A, 0, 4096) == b"\x4b" * 4096
    # Idempotent when nothing is missing.
    assert iscsi_backend.ensure_exports([VolumeExport(attached, (env.connector(A),))]) == {}
    assert target_of(attached).acl == (A,)


def test_ensure_exports_reports_a_volume_it_cannot_export_and_does_the_rest(iscsi_backend,
                                                                           volumes):
    vols = volumes(iscsi_backend)
    good = vols.create()
    tgt.Tgtadm().delete_target(target_of(good).tid, force=True)
    missing = VolumeRef("0" * 8 + "-no-file", 1, None, "CHAP vsnobody secretsecretsecret")

    failed = iscsi_backend.ensure_exports([VolumeExport(missing), VolumeExport(good)])

    assert list(failed) == [missing.id] and "does not exist" in failed[missing.id]
    assert target_of(good) is not None
    assert target_of(missing) is None


def test_initialize_connection_rebuilds_a_lost_target(iscsi_backend, volumes):
    volume = volumes(iscsi_backend).create(size=1)
    tgt.Tgtadm().delete_target(target_of(volume).tid, force=True)

    data = iscsi_backend.initialize_connection(volume, env.connector(A))["data"]

    assert target_of(volume).acl == (A,)
    assert env.iscsi_capacity(data, A) == GiB


def test_concurrent_creates_get_distinct_targets(iscsi_backend, volumes):
    vols = volumes(iscsi_backend)
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def create():
        try:
            barrier.wait(timeout=30)
            vols.create(size=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    targets = [target_of(v) for v in vols.volumes.values()]
    assert all(targets) and len(targets) == 10
    assert len({t.tid for t in targets}) == 10
    assert all(t.luns[1].backing_store.endswith(t.iqn.rsplit(":", 1)[1]) for t in targets)


def test_chap_secrets_are_never_logged(iscsi_backend, volumes, caplog):
    caplog.set_level(logging.DEBUG)
    vols = volumes(iscsi_backend)
    volume = vols.create(size=1)
    clone = vols.clone(volume, size=1)
    iscsi_backend.initialize_connection(volume, env.connector(A))
    iscsi_backend.extend_volume(volume, 2)
    iscsi_backend.ensure_exports([VolumeExport(volume, (env.connector(A),))])
    user, secret = chap(volume)
    # A failing tgtadm call with the secret on its command line.
    with pytest.raises(tgt.TgtObjectExists) as failure:
        tgt.Tgtadm().new_account(user, secret)
    iscsi_backend.terminate_connection(volume, None)
    iscsi_backend.delete_volume(volume)
    logging.getLogger("test").debug("repr: %r %r", volume, clone)

    # processutils' command logging was captured, the secret-bearing
    # commands included (masked).
    assert "--op new --mode account" in caplog.text and "--password ***" in caplog.text
    for each in (volume, clone):
        assert chap(each)[1] not in caplog.text
    assert secret not in str(failure.value)
    assert secret not in repr(failure.value.__cause__ or "")


def test_check_setup_says_how_to_fix_a_missing_tgtd(volume_conf):
    from virtstack.volume.backends.iscsi import TgtISCSIBackend

    def no_tgtadm(*cmd, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", cmd[0])

    backend = TgtISCSIBackend("h", tgtadm=tgt.Tgtadm(execute=no_tgtadm))
    with pytest.raises(exception.VolumeBackendError, match="tools/install-tgt.sh"):
        backend.check_setup()
