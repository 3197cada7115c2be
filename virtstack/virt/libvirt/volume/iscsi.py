"""iSCSI volumes through QEMU's own iSCSI client (libiscsi): no initiator on
the host, the guest's disk is ``<disk type='network'><source protocol='iscsi'>``.

QEMU logs in as ``initiator_iqn`` (this host's name, the one the volume
service put in the target's ACL). A CHAP password goes to QEMU through a
libvirt secret, one per (instance, volume), defined by ``connect`` and
undefined by ``disconnect``; ``forget_instance`` removes any of an
instance's that a crash left behind. The password is never logged and
never written into domain XML.
"""

from __future__ import annotations

import logging
from typing import Any

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.libvirt import designer
from virtstack.virt.libvirt.volume import base

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 3260


def parse_portal(portal: str) -> tuple[str, int]:
    """``"127.0.0.1:3260"`` -> ("127.0.0.1", 3260); ``"[::1]:3260"`` -> ("::1", 3260);
    a portal without a port gets 3260. ``Invalid`` for anything else."""
    host, port = portal, str(DEFAULT_PORT)
    if portal.startswith("["):
        host, sep, rest = portal[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise exception.Invalid(reason=f"iSCSI portal {portal!r} is not [address]:port")
        port = rest[1:] or port
    elif portal.count(":") == 1:
        host, port = portal.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise exception.Invalid(reason=f"iSCSI portal {portal!r} is not address:port")
    return host, int(port)


def chap_credentials(data: dict[str, Any]) -> tuple[str, str] | None:
    """(username, password) for CHAP, None without authentication;
    ``Invalid`` for another method or CHAP without both."""
    method = data.get("auth_method")
    if not method:
        return None
    if str(method).upper() != "CHAP":
        raise exception.Invalid(reason=f"volume {data['volume_id']}: iSCSI auth_method "
                                       f"{method!r} is not supported (CHAP is)")
    if not data.get("auth_username") or not data.get("auth_password"):
        raise exception.Invalid(reason=f"volume {data['volume_id']}: CHAP without "
                                       "auth_username and auth_password")
    return data["auth_username"], data["auth_password"]


class QemuISCSIVolumeConnector(base.VolumeConnector):
    """``{"driver_volume_type": "iscsi", "data": {"volume_id": "8f1e...",
    "target_portal": "127.0.0.1:3260", "target_iqn":
    "iqn.2010-10.org.virtstack:volume-8f1e...", "target_lun": 1,
    "auth_method": "CHAP", "auth_username": "...", "auth_password": "...",
    "access_mode": "rw"}}`` -> a network disk QEMU logs in to itself."""

    def connect(self, connection_info: dict[str, Any], instance: Instance) -> designer.VolumeSource:
        data = base.volume_data(connection_info, "target_portal", "target_iqn")
        portal = parse_portal(str(data["target_portal"]))
        lun = data.get("target_lun") or 0
        if not isinstance(lun, int) or isinstance(lun, bool) or lun < 0:
            raise exception.Invalid(reason=f"volume {data['volume_id']}: target_lun {lun!r} "
                                           "is not a LUN number")
        credentials = chap_credentials(data)
        secret_uuid = None
        if credentials is not None:
            secret = designer.build_chap_secret(instance.uuid, data["volume_id"])
            self.host.define_secret(secret, credentials[1].encode())
            secret_uuid = secret.uuid
            LOG.debug("Defined CHAP secret %s for volume %s of %s", secret.uuid,
                      data["volume_id"], instance.uuid)
        return designer.VolumeSource(
            volume_id=data["volume_id"], source_type="network", protocol="iscsi",
            name=f"{data['target_iqn']}/{lun}", portal=portal, initiator_iqn=self.initiator_iqn,
            auth_username=credentials[0] if credentials else None,
            auth_secret_uuid=secret_uuid, read_only=base.read_only(data))

    def disconnect(self, connection_info: dict[str, Any], instance: Instance) -> None:
        volume_id = (connection_info.get("data") or {}).get("volume_id")
        if volume_id:
            self.host.delete_secret(designer.build_chap_secret(instance.uuid, volume_id).uuid)

    def forget_instance(self, instance_uuid: str) -> None:
        prefix = designer.secret_usage(instance_uuid, "")
        for secret in self.host.list_secrets():
            if secret.usage_type == "iscsi" and (secret.usage_target or "").startswith(prefix):
                LOG.info("Removing CHAP secret %s left by instance %s", secret.uuid,
                         instance_uuid)
                self.host.delete_secret(secret.uuid)
