"""Config drives: the OpenStack metadata of an instance as an ISO 9660
image that the guest's cloud-init (its ConfigDrive data source) reads.

The layout is OpenStack's config-drive format: volume label ``config-2``,
Rock Ridge and Joliet names, and under ``openstack/latest/``:

- ``meta_data.json``: ``{"uuid": ..., "name": <display name>, "hostname":
  ..., "meta": <server metadata>, "project_id": ..., "launch_index": 0,
  "files": []}`` (``meta`` is the key OpenStack gives the metadata);
- ``user_data``: the server's user data, decoded from base64 (only when
  the server has some);
- ``vendor_data.json``: ``{}``.

No ``network_data.json``: this driver's VIFs carry no addresses to
describe, and cloud-init falls back to DHCP on the first NIC without it.

The ISO is made by ``xorriso`` (its ``mkisofs`` emulation; Debian package
``xorriso``, installed by tools/install-libvirt.sh). Nothing here is
PowerVM-specific: another driver can use it as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from typing import Any

from oslo_concurrency import processutils

from virtstack import exception
from virtstack.objects import Instance

VOLUME_LABEL = "config-2"
VERSION_DIR = os.path.join("openstack", "latest")


def meta_data(instance: Instance) -> dict[str, Any]:
    """What ``meta_data.json`` holds for ``instance``."""
    return {"uuid": instance.uuid, "name": instance.display_name,
            "hostname": instance.hostname or instance.display_name,
            "meta": dict(instance.metadata), "project_id": instance.project_id,
            "launch_index": 0, "files": []}


def user_data(instance: Instance) -> bytes | None:
    """The instance's user data as the guest reads it (decoded), or None.
    ``Invalid`` if it is not base64 (the API checks this on create)."""
    if not instance.user_data:
        return None
    try:
        return base64.b64decode(instance.user_data, validate=True)
    except (binascii.Error, ValueError):
        raise exception.Invalid(reason=f"user_data of instance {instance.uuid} is not base64")


def build_iso(instance: Instance, dest: str) -> str:
    """Write the instance's config drive to ``dest`` (replaced if there);
    ``dest``. ``VirtstackException`` naming the tool's error when xorriso
    is missing or fails."""
    data = user_data(instance)
    with tempfile.TemporaryDirectory(prefix="configdrive-") as tree:
        version = os.path.join(tree, VERSION_DIR)
        os.makedirs(version)
        with open(os.path.join(version, "meta_data.json"), "w", encoding="utf-8") as out:
            json.dump(meta_data(instance), out)
        with open(os.path.join(version, "vendor_data.json"), "w", encoding="utf-8") as out:
            json.dump({}, out)
        if data is not None:
            with open(os.path.join(version, "user_data"), "wb") as out:
                out.write(data)
        part = dest + ".part"
        try:
            processutils.execute("xorriso", "-as", "mkisofs", "-quiet", "-o", part,
                                 "-V", VOLUME_LABEL, "-J", "-r", "-input-charset", "utf-8",
                                 tree)
            os.replace(part, dest)
        except FileNotFoundError:
            raise exception.VirtstackException(message=(
                "xorriso is not installed; config drives need it (Debian package xorriso, "
                "tools/install-libvirt.sh)")) from None
        except processutils.ProcessExecutionError as exc:
            raise exception.VirtstackException(message=(
                f"building the config drive of {instance.uuid} failed: "
                f"{(exc.stderr or '').strip()}")) from None
        finally:
            if os.path.exists(part):
                os.unlink(part)
    return dest
