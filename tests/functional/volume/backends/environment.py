"""What the volume backends' functional tests need: tgtd, files with known
bytes, and QEMU's own iSCSI client (the one guests use) to log in with.

Everything runs against the real tgtd of this machine (started by
tools/install-tgt.sh) and real files. Other test runs may use the same tgtd
at the same time: each run names its targets with its own IQN prefix
(``IQN_PREFIX``) and touches no other target.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid

import pytest

from virtstack.volume.backends import tgt

#: Unique to this test run (pid + random), so parallel runs never collide.
IQN_PREFIX = f"iqn.2010-10.org.virtstack.test-{os.getpid()}-{uuid.uuid4().hex[:6]}:"
INITIATOR_A = "iqn.1993-08.org.debian:01:virtstack-test-a"
INITIATOR_B = "iqn.1993-08.org.debian:01:virtstack-test-b"
MiB = 1024 ** 2
GiB = 1024 ** 3

_tgt_problem: str | None = None  # None: not checked; "": answers; else why not


def require_tgt() -> None:
    """Fail the test, saying how to fix it, unless tgtd answers."""
    global _tgt_problem
    if _tgt_problem is None:
        try:
            tgt.Tgtadm().show_targets()
            _tgt_problem = ""
        except Exception as exc:  # noqa: BLE001 - any failure means "no tgt"
            _tgt_problem = f"tgtd does not answer ({exc}); run tools/install-tgt.sh"
    if _tgt_problem:
        pytest.fail(_tgt_problem)


def our_targets() -> list[tgt.Target]:
    return [t for t in tgt.Tgtadm().show_targets() if t.iqn.startswith(IQN_PREFIX)]


def connector(initiator: str = INITIATOR_A) -> dict:
    return {"host": "test-compute", "ip": "127.0.0.1", "initiator": initiator,
            "platform": "x86_64", "os_type": "linux", "multipath": False}


# -- bytes in files ----------------------------------------------------------------

def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True)


def write_pattern(path: str, fmt: str, byte: int, offset: int, length: int) -> None:
    """Fill ``length`` bytes at ``offset`` of the image ``path`` with ``byte``."""
    run("qemu-io", "-f", fmt, "-c", f"write -P {byte} {offset} {length}", path)


def read_bytes(path: str, fmt: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` as a reader of the image sees them."""
    if fmt == "raw":
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)
    return parse_hexdump(run("qemu-io", "-f", fmt, "-c", f"read -v {offset} {length}",
                             path).stdout)


def parse_hexdump(text: str) -> bytes:
    """The bytes of qemu-io's ``read -v`` dump: lines of ``<offset>:``, 16
    hex bytes and their ASCII."""
    data = bytearray()
    for line in text.splitlines():
        address, sep, rest = line.partition(":  ")
        if sep and len(address) == 8 and all(c in "0123456789abcdef" for c in address):
            data.extend(bytes.fromhex("".join(rest[:48].split())))
    return bytes(data)


def virtual_size(path: str, fmt: str) -> int:
    import json

    return json.loads(run("qemu-img", "info", "-U", "--output=json", "-f", fmt, path).stdout)[
        "virtual-size"]


# -- QEMU's iSCSI client -------------------------------------------------------------

def iscsi_image_opts(data: dict, initiator: str, secret_id: str = "chap") -> str:
    """``--image-opts`` for the LUN of connection_info ``data``, logging in
    as ``initiator`` with its CHAP user (password from the secret object)."""
    return ",".join([
        "driver=iscsi", "transport=tcp", f"portal={data['target_portal']}",
        f"target={data['target_iqn']}", f"lun={data['target_lun']}",
        f"user={data['auth_username']}", f"password-secret={secret_id}",
        f"initiator-name={initiator}"])


def qemu_iscsi(tool: str, data: dict, initiator: str, *args: str,
               password: str | None = None) -> subprocess.CompletedProcess:
    """Run ``qemu-io``/``qemu-img`` (``tool``; for qemu-img, ``args[0]`` is
    its command) on the LUN, logging in as ``initiator``; the password (by
    default connection_info's) goes in a file, not on the command line."""
    with tempfile.NamedTemporaryFile("w") as secret:
        secret.write(data["auth_password"] if password is None else password)
        secret.flush()
        secret_object = f"secret,id=chap,file={secret.name}"
        if tool == "qemu-io":
            cmd = ["qemu-io", "--object", secret_object, "--image-opts",
                   iscsi_image_opts(data, initiator), *args]
        else:
            cmd = ["qemu-img", args[0], "--object", secret_object, "--image-opts",
                   *args[1:], iscsi_image_opts(data, initiator)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def iscsi_read(data: dict, initiator: str, offset: int, length: int,
               password: str | None = None) -> bytes | str:
    """The bytes read through iSCSI, or qemu-io's error message (a str)."""
    result = qemu_iscsi("qemu-io", data, initiator, "-c", f"read -v {offset} {length}",
                        password=password)
    if result.returncode != 0:
        return result.stderr.strip() or result.stdout.strip()
    return parse_hexdump(result.stdout)


def iscsi_capacity(data: dict, initiator: str) -> int:
    """The LUN's size as an initiator reads it (READ CAPACITY at login)."""
    import json

    result = qemu_iscsi("qemu-img", data, initiator, "info", "--output=json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["virtual-size"]
