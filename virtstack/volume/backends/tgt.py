"""``tgtadm``, the management client of the tgt iSCSI target daemon.

One small method per tgtadm operation, and the parsed ``--op show`` output.
tgtd keeps everything (targets, LUNs, accounts, ACLs) in memory: nothing
survives a restart of the daemon, which is why the ``iscsi`` backend has
``ensure_exports``.

Facts about tgt 1.0.85 this relies on (checked on this machine):

- every failed request exits 22 with one line on stderr; "... already
  exists" and "can't find ..." / "... does not exist" are the ones that
  idempotent callers want to tell apart (``TgtObjectExists`` /
  ``TgtObjectMissing``);
- a target name (IQN) can be used by one target only, and tid 0 is invalid;
- accounts are global; binding one to a target makes it that target's
  incoming CHAP user; deleting an account also removes it from its targets;
- with two or more incoming users on one target, removing one of them
  (unbind or delete) corrupts tgtd's memory: a later ``show`` kills the
  daemon (and every export with it). Callers keep at most one incoming user
  per target;
- a target with an empty ACL refuses every initiator;
- ``Size:`` in ``show`` is decimal megabytes (10**6 bytes), rounded;
- tgt reads a LUN's size when the LUN is added and never again: after its
  backing file grows, the LUN must be deleted and added again (that works
  while initiators are logged in; SCSI id and serial stay the same, as tgt
  derives them from tid and LUN number).

Secrets: CHAP passwords go to tgtadm as ``--password <secret>``, which
``processutils.execute`` masks (``strutils.mask_password``) in everything it
logs and in its ``ProcessExecutionError``; ``show`` never prints passwords.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

from oslo_concurrency import processutils

from virtstack import exception

TGTADM = "tgtadm"


class TgtadmError(exception.VolumeBackendError):
    """A tgtadm request failed; ``stderr`` holds tgtadm's message."""

    def __init__(self, command: str, stderr: str, exit_code: int | None = None) -> None:
        self.stderr = stderr.strip()
        self.exit_code = exit_code
        detail = self.stderr or f"exit code {exit_code}"
        super().__init__(reason=f"tgtadm {command} failed: {detail}")


class TgtObjectExists(TgtadmError):
    """What the request would create exists already."""


class TgtObjectMissing(TgtadmError):
    """What the request names does not exist."""


def _error_class(stderr: str) -> type[TgtadmError]:
    if "already exists" in stderr:
        return TgtObjectExists
    if "can't find" in stderr or "does not exist" in stderr:
        return TgtObjectMissing
    return TgtadmError


@dataclasses.dataclass(frozen=True)
class LogicalUnit:
    lun: int
    type: str  # "controller" (LUN 0, made by tgt) or "disk"
    size_mb: int  # decimal MB, as tgt prints it
    backing_store: str | None  # None for the controller


@dataclasses.dataclass(frozen=True)
class Target:
    """One target of ``tgtadm --op show --mode target``."""

    tid: int
    iqn: str
    luns: dict[int, LogicalUnit]
    #: Incoming CHAP users bound to the target.
    incoming_users: tuple[str, ...]
    #: ``--initiator-name`` / ``--initiator-address`` entries let in.
    acl: tuple[str, ...]
    #: Initiator names of the sessions logged in now (one per I_T nexus).
    sessions: tuple[str, ...]


_TARGET_RE = re.compile(r"^Target (\d+): (\S+)$")
_SIZE_RE = re.compile(r"^(\d+) MB")


def parse_targets(text: str) -> list[Target]:
    """Parse the output of ``tgtadm --op show --mode target``; an example
    of it is ``tests/unit/volume/backends/test_tgt.py: SHOW_TARGETS``.

    The output is a tree by indentation: ``Target <tid>: <iqn>`` at column
    0, sections (``LUN information:``, ...) at 4, their entries at 8 and
    the entries' fields at 12.
    """
    targets: list[Target] = []
    current: dict | None = None
    section = ""
    lun: dict | None = None

    def finish_lun() -> None:
        nonlocal lun
        if lun is not None and current is not None:
            current["luns"][lun["lun"]] = LogicalUnit(**lun)
        lun = None

    def finish_target() -> None:
        finish_lun()
        if current is not None:
            targets.append(Target(tid=current["tid"], iqn=current["iqn"], luns=current["luns"],
                                  incoming_users=tuple(current["users"]),
                                  acl=tuple(current["acl"]),
                                  sessions=tuple(current["sessions"])))

    for raw in text.splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0:
            match = _TARGET_RE.match(line)
            if not match:
                raise exception.VolumeBackendError(
                    reason=f"unexpected line in tgtadm show output: {line!r}")
            finish_target()
            current = {"tid": int(match.group(1)), "iqn": match.group(2), "luns": {},
                       "users": [], "acl": [], "sessions": []}
            section = ""
            continue
        if current is None:
            raise exception.VolumeBackendError(
                reason=f"unexpected line in tgtadm show output: {line!r}")
        if indent == 4:
            finish_lun()
            section = line.rstrip(":")
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if section == "LUN information":
            if indent == 8 and key == "LUN":
                finish_lun()
                lun = {"lun": int(value), "type": "", "size_mb": 0, "backing_store": None}
            elif lun is not None and key == "Type":
                lun["type"] = value
            elif lun is not None and key == "Size":
                size = _SIZE_RE.match(value)
                lun["size_mb"] = int(size.group(1)) if size else 0
            elif lun is not None and key == "Backing store path":
                lun["backing_store"] = None if value == "None" else value
        elif section == "I_T nexus information":
            if key == "Initiator":
                # "Initiator: iqn.1993-08.org.debian:01:abc alias: none"
                current["sessions"].append(value.split()[0])
        elif section == "Account information" and indent == 8:
            if not line.endswith("(outgoing)"):
                current["users"].append(line)
        elif section == "ACL information" and indent == 8:
            current["acl"].append(line)
    finish_target()
    return targets


def parse_accounts(text: str) -> list[str]:
    """The user names of ``tgtadm --op show --mode account``
    (``Account list:`` then one name a line)."""
    return [line.strip() for line in text.splitlines()[1:] if line.strip()]


class Tgtadm:
    """tgtadm's operations on tgtd's iSCSI driver. Runs as root (no sudo).

    ``execute`` is ``processutils.execute``'s signature; every error is a
    ``TgtadmError`` (``TgtObjectExists``/``TgtObjectMissing`` where tgtadm
    says so), or ``VolumeBackendError`` when tgtadm is not installed.
    """

    def __init__(self, execute: Callable[..., tuple[str, str]] = processutils.execute) -> None:
        self._execute = execute

    def _run(self, op: str, mode: str, *args: str) -> str:
        cmd = [TGTADM, "--lld", "iscsi", "--op", op, "--mode", mode, *args]
        try:
            stdout, _ = self._execute(*cmd)
        except FileNotFoundError as exc:
            raise exception.VolumeBackendError(
                reason="tgtadm is not installed: run tools/install-tgt.sh") from exc
        except processutils.ProcessExecutionError as exc:
            # exc.cmd and exc.stderr are masked by processutils already; the
            # command named here holds no secret either (see _describe).
            stderr = exc.stderr or ""
            raise _error_class(stderr)(_describe(op, mode, args), stderr,
                                       exc.exit_code) from None
        return stdout

    # -- reading -------------------------------------------------------------

    def show_targets(self) -> list[Target]:
        return parse_targets(self._run("show", "target"))

    def find_target(self, iqn: str) -> Target | None:
        return next((t for t in self.show_targets() if t.iqn == iqn), None)

    def accounts(self) -> list[str]:
        return parse_accounts(self._run("show", "account"))

    # -- targets ---------------------------------------------------------------

    def new_target(self, tid: int, iqn: str) -> None:
        self._run("new", "target", "--tid", str(tid), "--targetname", iqn)

    def delete_target(self, tid: int, force: bool = False) -> None:
        """``force``: also when initiators are logged in (they are cut off)."""
        self._run("delete", "target", *(["--force"] if force else []), "--tid", str(tid))

    def add_lun(self, tid: int, lun: int, backing_store: str) -> None:
        """Export the file ``backing_store`` as ``lun`` (read/write, through
        tgt's ``rdwr`` backing-store type: plain pread/pwrite)."""
        self._run("new", "logicalunit", "--tid", str(tid), "--lun", str(lun),
                  "--backing-store", backing_store, "--bstype", "rdwr")

    def delete_lun(self, tid: int, lun: int) -> None:
        self._run("delete", "logicalunit", "--tid", str(tid), "--lun", str(lun))

    # -- access control ------------------------------------------------------

    def bind_initiator(self, tid: int, initiator: str) -> None:
        self._run("bind", "target", "--tid", str(tid), "--initiator-name", initiator)

    def unbind_initiator(self, tid: int, initiator: str) -> None:
        self._run("unbind", "target", "--tid", str(tid), "--initiator-name", initiator)

    # -- CHAP accounts ---------------------------------------------------------

    def new_account(self, user: str, password: str) -> None:
        self._run("new", "account", "--user", user, "--password", password)

    def delete_account(self, user: str) -> None:
        self._run("delete", "account", "--user", user)

    def bind_account(self, tid: int, user: str) -> None:
        """Make ``user`` an incoming CHAP user of target ``tid``."""
        self._run("bind", "account", "--tid", str(tid), "--user", user)

    def unbind_account(self, tid: int, user: str) -> None:
        self._run("unbind", "account", "--tid", str(tid), "--user", user)


def _describe(op: str, mode: str, args: tuple[str, ...]) -> str:
    """``--op new --mode account --user u`` for an error message: option
    values after ``--password`` are left out."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append("***")
            hide_next = False
            continue
        shown.append(arg)
        hide_next = arg == "--password"
    return " ".join(["--op", op, "--mode", mode, *shown])
