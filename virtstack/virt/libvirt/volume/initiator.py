"""This host as a volume client: its iSCSI initiator name, who logs in to
iSCSI targets (QEMU or the host's kernel), and the connector properties
handed to the volume service.

The initiator name is what the volume service puts in a target's ACL and
what the guest's iSCSI session presents, so it must stay the same for the
life of the host: it is, in this order, ``[libvirt] iscsi_initiator_iqn``,
the host's open-iscsi name (``/etc/iscsi/initiatorname.iscsi``), or a name
generated once and kept in ``state_path/iscsi_initiator_iqn``.

os-brick does the host-side work; its privileged calls go through
oslo.privsep, which would start a helper with ``sudo`` (absent here).
Running as root, privsep runs in process instead (``set_client_mode(False)``).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
from typing import Any

LOG = logging.getLogger(__name__)

OPEN_ISCSI_NAME_FILE = "/etc/iscsi/initiatorname.iscsi"
GENERATED_NAME_FILE = "iscsi_initiator_iqn"  # under state_path
#: Naming authority of the names virtstack makes up (RFC 3720 iqn. format).
IQN_PREFIX = "iqn.2010-10.org.virtstack"
#: ``iscsiadm`` exit status for "no sessions": it runs and reaches iscsid.
_ISCSI_ERR_NO_OBJS_FOUND = 21

_lock = threading.Lock()


def read_open_iscsi_name(path: str | None = None) -> str | None:
    """The ``InitiatorName=`` of open-iscsi's name file, or None."""
    path = path or OPEN_ISCSI_NAME_FILE
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "InitiatorName" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return None


def generate_iqn(nodename: str) -> str:
    """A new initiator name: ``iqn.2010-10.org.virtstack:<host>:<random>``
    (the host part reduced to the characters an IQN allows)."""
    host = re.sub(r"[^a-z0-9.-]+", "-", nodename.lower()).strip("-.") or "host"
    return f"{IQN_PREFIX}:{host}:{secrets.token_hex(6)}"


def initiator_iqn(configured: str, state_path: str, nodename: str,
                  open_iscsi_file: str | None = None) -> str:
    """This host's initiator name (see the module docstring for the order).

    A generated name is written atomically before it is returned, so two
    callers (threads or processes) end up with the same one.
    """
    if configured:
        return configured
    name = read_open_iscsi_name(open_iscsi_file)
    if name:
        return name
    path = os.path.join(state_path, GENERATED_NAME_FILE)
    with _lock:
        kept = _read_kept(path)
        if kept:
            return kept
        os.makedirs(state_path, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(generate_iqn(nodename) + "\n")
        try:
            os.link(tmp, path)  # fails if another process kept one first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        name = _read_kept(path)
        LOG.info("iSCSI initiator name of this host: %s (kept in %s)", name, path)
        return name


def _read_kept(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def host_initiator_works() -> bool:
    """Whether the host has a working kernel iSCSI initiator: ``iscsiadm``
    is installed and reaches iscsid (listing sessions succeeds or finds
    none), and open-iscsi has a name."""
    iscsiadm = shutil.which("iscsiadm")
    if iscsiadm is None or read_open_iscsi_name() is None:
        return False
    try:
        proc = subprocess.run([iscsiadm, "-m", "session"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode in (0, _ISCSI_ERR_NO_OBJS_FOUND)


def choose_initiator(mode: str) -> str:
    """``[libvirt] iscsi_initiator`` resolved: ``qemu`` or ``host``
    (``auto``: host when its initiator works, else qemu)."""
    if mode != "auto":
        return mode
    chosen = "host" if host_initiator_works() else "qemu"
    LOG.info("[libvirt] iscsi_initiator = auto: iSCSI volumes are attached by %s", {
        "host": "the host's open-iscsi (os-brick)",
        "qemu": "QEMU's own iSCSI client (no working iscsiadm here)"}[chosen])
    return chosen


def use_privsep_in_process() -> None:
    """Run os-brick's privileged calls in this (root) process: oslo.privsep
    would otherwise start its helper through sudo, which is not there."""
    from os_brick.privileged import default as brick_privileged

    brick_privileged.set_client_mode(False)


def connector_properties(my_ip: str, nodename: str, iqn: str) -> dict[str, Any]:
    """The connector the volume service gets, from os-brick with our
    initiator name, e.g. ``{"platform": "x86_64", "os_type": "linux", "ip":
    "127.0.0.1", "host": "cmp1", "multipath": False, "initiator":
    "iqn.2010-10.org.virtstack:cmp1:4f1c0a9e2b7d", ...}``."""
    props = copy.deepcopy(_brick_properties(my_ip, nodename))
    props["initiator"] = iqn  # also the name QEMU presents: they must agree
    props["multipath"] = bool(props.get("multipath"))
    return props


@functools.lru_cache(maxsize=8)
def _brick_properties(my_ip: str, nodename: str) -> dict[str, Any]:
    """os-brick's connector properties, asked for once per process (per ip
    and host name). os-brick learns them by running commands (six here,
    each a fork of the service: 140-240 ms of every attach in a busy compute
    service, more than the rest of the attach); what it reports describes
    the host (platform, OS, NVMe host NQN and UUID, FC ports, which the
    connectors of this driver do not use) and does not change while the
    service runs. Callers get a copy."""
    from os_brick.initiator import connector as brick_connector

    use_privsep_in_process()
    return brick_connector.get_connector_properties(None, my_ip, False, False, host=nodename)
