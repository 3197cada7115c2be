"""The ``iscsi`` volume backend: raw files exported by the tgt iSCSI target.

Each volume is a sparse raw file (``filestore``) exported as LUN 1 of a
target of its own, named ``[volume] iscsi_target_prefix`` + ``volume-<id>``,
on the portal ``[volume] iscsi_ip_address:iscsi_port``. Compute hosts reach
it with QEMU's built-in iSCSI client; no kernel initiator is involved.

Access needs both:

- **CHAP**: every volume gets an incoming user with a random secret when it
  is created; the manager stores them as the volume's ``provider_auth``
  (``"CHAP <user> <secret>"``) and they travel only in connection_info.
  The secret is never logged (see ``tgt``).
- **ACL**: a target lets in only the initiator names bound to it:
  ``initialize_connection`` binds the connector's, ``terminate_connection``
  unbinds it. A new volume's target lets nobody in.

The target is made when the volume is (so a bad tgt setup fails the create,
not a later attach) and removed with it. tgtd keeps targets in memory only:
``ensure_exports`` rebuilds them from the database at service start, and
``initialize_connection`` rebuilds a missing one on its own.

``provider_location`` is ``"<portal>,1 <iqn> 1"`` (portal group tag 1, LUN
1): the volume keeps its IQN if the prefix option changes later.

connection_info::

    {"driver_volume_type": "iscsi",
     "data": {"volume_id": "<id>", "target_portal": "127.0.0.1:3260",
              "target_iqn": "iqn.2010-10.org.virtstack:volume-<id>", "target_lun": 1,
              "target_discovered": False, "auth_method": "CHAP",
              "auth_username": "<user>", "auth_password": "<secret>",
              "access_mode": "rw", "encrypted": False}}
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import types
from typing import Any, Sequence

from oslo_config import cfg

from virtstack import exception
from virtstack.volume.backends import filestore, tgt
from virtstack.volume.backends.base import ModelUpdate, VolumeExport, VolumeRef
from virtstack.volume.backends.file import volumes_dir

LOG = logging.getLogger(__name__)

LUN = 1
#: tgt's portal group tag: tgt has one portal group, number 1.
PORTAL_GROUP_TAG = 1
#: How often to pick another tid when other processes take the chosen one.
TID_ATTEMPTS = 20
FORMAT = "raw"  # tgt's rdwr backing store reads the file as it is

# Picking a free tid and creating the target must not interleave between
# threads; other processes using the same tgtd are handled by retrying.
_target_lock = threading.Lock()


def parse_provider_auth(provider_auth: str | None) -> tuple[str, str] | None:
    """``(user, secret)`` of ``"CHAP <user> <secret>"``, else None."""
    parts = (provider_auth or "").split()
    if len(parts) == 3 and parts[0] == "CHAP":
        return parts[1], parts[2]
    return None


class TgtISCSIBackend(filestore.ExportedRawFileBackend):
    """Raw files behind tgt targets with CHAP and per-initiator ACLs."""

    name = "iscsi"
    capabilities = types.MappingProxyType({
        "driver_volume_type": "iscsi",
        "thin_provisioning": True,
        # The LUN is re-added with the grown file (see extend_volume).
        "online_extend": True,
    })

    def __init__(self, host: str, conf: cfg.ConfigOpts | None = None,
                 tgtadm: tgt.Tgtadm | None = None) -> None:
        super().__init__(host)
        if conf is None:
            from virtstack.conf import CONF as conf
        self.conf = conf
        self.store = filestore.VolumeFileStore(volumes_dir(conf))
        self.tgtadm = tgtadm or tgt.Tgtadm()

    # -- names ------------------------------------------------------------------

    @property
    def portal(self) -> str:
        address = self.conf.volume.iscsi_ip_address
        if ":" in address:  # IPv6
            address = f"[{address}]"
        return f"{address}:{self.conf.volume.iscsi_port}"

    def iqn(self, volume: VolumeRef) -> str:
        """The volume's target name: from its provider_location, or (a volume
        being created) made from the prefix option."""
        parts = (volume.provider_location or "").split()
        if len(parts) == 3:
            return parts[1]
        return f"{self.conf.volume.iscsi_target_prefix}volume-{volume.id}"

    def _model_update(self, volume: VolumeRef, user: str, secret: str) -> ModelUpdate:
        return {"provider_location": f"{self.portal},{PORTAL_GROUP_TAG} {self.iqn(volume)} {LUN}",
                "provider_auth": f"CHAP {user} {secret}"}

    def _credentials(self, volume: VolumeRef) -> tuple[str, str]:
        credentials = parse_provider_auth(volume.provider_auth)
        if credentials is None:
            raise exception.VolumeBackendError(
                reason=f"volume {volume.id} has no CHAP credentials (provider_auth); it was "
                       f"not created by the iscsi backend")
        return credentials

    # -- service --------------------------------------------------------------------

    def check_setup(self) -> None:
        self.store.prepare()
        try:
            self.tgtadm.show_targets()
        except exception.VolumeBackendError as exc:
            raise exception.VolumeBackendError(
                reason=f"tgtd does not answer ({exc.format_message()}); install and start it "
                       f"with tools/install-tgt.sh") from None

    # -- exports --------------------------------------------------------------------

    def _new_target(self, iqn: str) -> tgt.Target:
        """Create the target ``iqn`` with the lowest free tid (or find it)."""
        with _target_lock:
            for _ in range(TID_ATTEMPTS):
                targets = self.tgtadm.show_targets()
                for target in targets:
                    if target.iqn == iqn:
                        return target
                used = {t.tid for t in targets}
                tid = next(n for n in range(1, len(used) + 2) if n not in used)
                try:
                    self.tgtadm.new_target(tid, iqn)
                except tgt.TgtObjectExists:
                    continue  # another process took the tid (or made iqn): look again
                LOG.info("Created iSCSI target %s (tid %d)", iqn, tid)
                return tgt.Target(tid=tid, iqn=iqn, luns={}, incoming_users=(), acl=(),
                                  sessions=())
        raise exception.VolumeBackendError(
            reason=f"could not create target {iqn}: tids kept being taken by others")

    def _export(self, volume: VolumeRef, user: str, secret: str,
                initiators: set[str] | None = None) -> tgt.Target:
        """Make the volume's target, LUN and CHAP user exist (each step only
        if missing); with ``initiators``, make the ACL exactly those."""
        path = self.store.volume_path(volume.id)
        if not os.path.exists(path):
            raise exception.VolumeBackendError(reason=f"volume file {path} does not exist")
        iqn = self.iqn(volume)
        target = self.tgtadm.find_target(iqn) or self._new_target(iqn)
        lun = target.luns.get(LUN)
        if lun is not None and lun.backing_store != path:
            self.tgtadm.delete_lun(target.tid, LUN)
            lun = None
        if lun is None:
            self.tgtadm.add_lun(target.tid, LUN, path)

        for stale in set(target.incoming_users) - {user}:
            # Left by a create that a crash interrupted (it drew another
            # user). Removed before ours is bound: tgtd 1.0.85 corrupts its
            # memory (and dies) when one of several incoming users of a
            # target is removed, so a target never has more than one.
            self._remove_account(target.tid, stale)
        # An existing account is trusted to hold this secret: the user name
        # is random per volume and only this backend makes such accounts.
        if user not in self.tgtadm.accounts():
            self._ignore(tgt.TgtObjectExists, self.tgtadm.new_account, user, secret)
        if user not in target.incoming_users:
            self._ignore(tgt.TgtObjectExists, self.tgtadm.bind_account, target.tid, user)

        if initiators is not None:
            for name in initiators - set(target.acl):
                self._ignore(tgt.TgtObjectExists, self.tgtadm.bind_initiator, target.tid, name)
            for name in set(target.acl) - initiators:
                self._ignore(tgt.TgtObjectMissing, self.tgtadm.unbind_initiator, target.tid, name)
        return target

    @staticmethod
    def _ignore(error: type[tgt.TgtadmError], call, *args) -> None:
        """``call(*args)``, where ``error`` means it is done already (another
        caller got there first)."""
        try:
            call(*args)
        except error:
            pass

    def _exported(self, volume: VolumeRef) -> ModelUpdate:
        """Export the just-made file of ``volume`` with new credentials (or
        those it has, when a create is retried). On failure neither the
        export nor the file is left."""
        credentials = parse_provider_auth(volume.provider_auth)
        if credentials is None:
            credentials = (f"vs{secrets.token_hex(8)}", secrets.token_urlsafe(15))
        try:
            self._export(volume, *credentials)
        except Exception:
            try:
                self._unexport(volume, credentials[0])
            except exception.VirtstackException as cleanup_error:
                LOG.warning("Could not remove the partial export of volume %s: %s",
                            volume.id, cleanup_error.format_message())
            self.store.delete(self.store.volume_path(volume.id))
            raise
        return self._model_update(volume, *credentials)

    def _remove_account(self, tid: int | None, user: str) -> None:
        """Unbind ``user`` from target ``tid`` (if given) and delete it."""
        if tid is not None:
            self._ignore(tgt.TgtObjectMissing, self.tgtadm.unbind_account, tid, user)
        self._ignore(tgt.TgtObjectMissing, self.tgtadm.delete_account, user)

    def _unexport(self, volume: VolumeRef, user: str | None) -> None:
        target = self.tgtadm.find_target(self.iqn(volume))
        users = set(target.incoming_users) if target else set()
        for name in users:
            self._ignore(tgt.TgtObjectMissing, self.tgtadm.unbind_account, target.tid, name)
        if target is not None:
            # --force: a volume is only deleted detached; any session left
            # is stale and must not keep the target alive.
            self._ignore(tgt.TgtObjectMissing, self.tgtadm.delete_target, target.tid, True)
            LOG.info("Deleted iSCSI target %s (tid %d)", target.iqn, target.tid)
        for name in users | ({user} if user else set()):
            self._remove_account(None, name)

    def ensure_exports(self, exports: Sequence[VolumeExport]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for export in exports:
            volume = export.volume
            initiators = {c["initiator"] for c in export.connectors if c.get("initiator")}
            try:
                self._export(volume, *self._credentials(volume), initiators=initiators)
            except exception.VirtstackException as exc:
                LOG.error("Could not export volume %s: %s", volume.id, exc.format_message())
                failed[volume.id] = exc.format_message()
        LOG.info("Ensured the iSCSI exports of %d volumes (%d failed)", len(exports), len(failed))
        return failed

    # -- volumes ------------------------------------------------------------------------

    def delete_volume(self, volume: VolumeRef) -> None:
        credentials = parse_provider_auth(volume.provider_auth)
        self._unexport(volume, credentials[0] if credentials else None)
        self.store.delete(self.store.volume_path(volume.id))

    def extend_volume(self, volume: VolumeRef, new_size: int) -> None:
        """Grow the file, then make tgt report the new size: tgt reads a
        LUN's size only when the LUN is added, so LUN 1 is deleted and added
        again. The target, its ACL, CHAP user and logged-in sessions stay;
        a request the guest sends in the moment between the two tgtadm calls
        fails (LUN not supported) and is retried by the guest's SCSI layer.
        Initiators see the new capacity at their next READ CAPACITY (QEMU:
        libvirt's blockResize)."""
        path = self.store.volume_path(volume.id)
        self.store.grow(path, FORMAT, new_size)
        target = self.tgtadm.find_target(self.iqn(volume))
        lun = target.luns.get(LUN) if target else None
        if lun is None:
            return  # not exported now: whoever exports it again adds the grown file
        if abs(lun.size_mb - new_size * filestore.GiB / 10 ** 6) >= 1:
            self._ignore(tgt.TgtObjectMissing, self.tgtadm.delete_lun, target.tid, LUN)
            self.tgtadm.add_lun(target.tid, LUN, path)
            LOG.info("Re-added LUN %d of %s to report %d GiB", LUN, target.iqn, new_size)

    # -- snapshots ----------------------------------------------------------------------

    # -- export to compute hosts ----------------------------------------------------------

    def initialize_connection(self, volume: VolumeRef, connector: dict[str, Any]) -> dict[str, Any]:
        initiator = (connector or {}).get("initiator")
        if not initiator:
            raise exception.VolumeBackendError(
                reason=f"host {(connector or {}).get('host')!r} gave no iSCSI initiator name "
                       f"in its connector; iSCSI volumes cannot be attached there")
        user, secret = self._credentials(volume)
        target = self._export(volume, user, secret)
        if initiator not in target.acl:
            self._ignore(tgt.TgtObjectExists, self.tgtadm.bind_initiator, target.tid, initiator)
            LOG.info("Let initiator %s into %s", initiator, target.iqn)
        return {"driver_volume_type": "iscsi",
                "data": {"volume_id": volume.id, "target_portal": self.portal,
                         "target_iqn": target.iqn, "target_lun": LUN,
                         "target_discovered": False, "auth_method": "CHAP",
                         "auth_username": user, "auth_password": secret,
                         "access_mode": "rw", "encrypted": False}}

    def terminate_connection(self, volume: VolumeRef, connector: dict[str, Any] | None) -> None:
        target = self.tgtadm.find_target(self.iqn(volume))
        if target is None:
            return
        if connector is None:
            names = set(target.acl)
        else:
            initiator = connector.get("initiator")
            names = {initiator} & set(target.acl) if initiator else set()
        for name in names:
            self._ignore(tgt.TgtObjectMissing, self.tgtadm.unbind_initiator, target.tid, name)
            LOG.info("Shut initiator %s out of %s", name, target.iqn)

    # -- host-side access ---------------------------------------------------------------
