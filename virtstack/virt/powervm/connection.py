"""How the driver reaches the PowerVM REST API: a pypowervm ``Adapter`` on a
real NovaLink session or on the fake one, plus the few things that are not
REST calls (opening a VNC terminal runs ``mkvterm`` on the management
partition).

One registry (``SESSION_KINDS``) maps ``"novalink"`` and ``"fake"`` to the
factory of a ``Connection``; ``[powervm] fake_session`` picks between them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterable

from pypowervm import adapter as pvm_adapter
from pypowervm.helpers import log_helper, vios_busy
from pypowervm.tasks import partition as pvm_partition

from virtstack import exception

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Connection:
    """A logged-on adapter and the host-side operations that are not REST.

    ``open_vnc(lpar_uuid) -> port`` starts (or finds) the VNC server of an
    LPAR's virtual terminal and returns its TCP port. Reading a disk (for a
    snapshot) means mapping it to the management partition and reading the
    block device that appears there; that is not written for NovaLink yet,
    so only the fake connection has ``read_disk``.
    """

    adapter: pvm_adapter.Adapter
    open_vnc: Callable[[str], int]
    kind: str
    #: ``read_disk(udid) -> chunks`` of a boot disk's data, for snapshots;
    #: None where the driver cannot read disks (see docs/powervm.md).
    read_disk: Callable[[str], Iterable[bytes]] | None = None


def _novalink(vnc_listen: str, fabric_dir: str | None = None) -> Connection:
    """Local (file) authentication on the NovaLink partition this runs on.
    (``fabric_dir`` is for the fake: a real VIOS is cabled to a real SAN.)"""
    from pypowervm.tasks import vterm

    session = pvm_adapter.Session(conn_tries=60)
    adapter = pvm_adapter.Adapter(session, helpers=[log_helper.log_helper,
                                                    vios_busy.vios_busy_retry_helper])

    def open_vnc(lpar_uuid: str) -> int:
        return vterm.open_remotable_vnc_vterm(adapter, lpar_uuid, vnc_listen)

    return Connection(adapter=adapter, open_vnc=open_vnc, kind="novalink")


def _fake(vnc_listen: str, fabric_dir: str | None = None) -> Connection:
    """The fake session; its VIOS's FC ports reach the emulated SAN of the
    ``fake_fc`` volume backend kept in ``fabric_dir`` (if given)."""
    from virtstack.virt.powervm.fake.session import FakeSession
    from virtstack.volume.backends import fake_fc

    session = FakeSession(fabric=fake_fc.Fabric(fabric_dir) if fabric_dir else None)
    adapter = pvm_adapter.Adapter(session, helpers=[log_helper.log_helper])
    return Connection(adapter=adapter, open_vnc=session.open_vnc, kind="fake",
                      read_disk=session.read_disk)


SESSION_KINDS: dict[str, Callable[..., Connection]] = {"novalink": _novalink, "fake": _fake}


def connect(fake: bool, vnc_listen: str, fabric_dir: str | None = None) -> Connection:
    """``fabric_dir``: the emulated SAN's records (fake session only)."""
    kind = "fake" if fake else "novalink"
    LOG.info("Connecting to the PowerVM REST API (%s session)", kind)
    try:
        return SESSION_KINDS[kind](vnc_listen, fabric_dir=fabric_dir)
    except Exception as exc:  # pypowervm raises many kinds; say what failed once
        raise exception.ConfigError(reason=f"cannot open a PowerVM {kind} session: {exc}")


def wait_for_vioses(adapter: pvm_adapter.Adapter, timeout: int) -> None:
    """Block until the VIOSes can serve storage and networking (RMC up), at
    most ``timeout`` seconds; ``ConfigError`` if none becomes ready."""
    try:
        pvm_partition.validate_vios_ready(adapter, max_wait_time=timeout)
    except Exception as exc:
        raise exception.ConfigError(reason=f"no Virtual I/O Server became ready: {exc}")


def describe(adapter: pvm_adapter.Adapter) -> dict[str, Any]:
    """What the session says about the server (for logs)."""
    session = adapter.session
    return {"host": session.host, "mc_type": session.mc_type,
            "schema_version": session.schema_version}
