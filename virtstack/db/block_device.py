"""Block-device mappings (BDMs): the devices of each server, one row per
device, with the device name reserved atomically per instance.

A live row's ``deleted`` is 0; a deleted one's is its own id, so the unique
constraint ``(instance_uuid, device_name, deleted)`` lets the database decide
which of two racing reservations of one name wins, on every backend.

Rows may hold ``connection_info`` with secrets (CHAP passwords): never log a
row or its ``connection_info``.
"""

from __future__ import annotations

import re
import string
import uuid as uuidlib
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models

#: The root disk's name: a server's local image disk (or its boot volume) is
#: always the first virtio disk.
ROOT_DEVICE = "/dev/vda"

#: Device names a request may ask for: virtio disks, /dev/vdb ... /dev/vdzz.
DEVICE_NAME = re.compile(r"^/dev/vd[a-z]{1,2}\Z")

#: How often a reservation retries after losing a race for a free name.
_RESERVE_ATTEMPTS = 10

BDM = models.BlockDeviceMapping


def _device_names() -> Iterator[str]:
    """Every name in the order they are handed out: vda..vdz, vdaa..vdzz."""
    letters = string.ascii_lowercase
    for a in letters:
        yield f"/dev/vd{a}"
    for a in letters:
        for b in letters:
            yield f"/dev/vd{a}{b}"


def check_device_name(name: str) -> None:
    """``Invalid`` (400) unless ``name`` is a virtio disk name."""
    if not isinstance(name, str) or not DEVICE_NAME.match(name):
        raise exception.Invalid(
            reason=f"The supplied device path ({name}) is invalid: use /dev/vdX (a virtio "
                   f"disk such as /dev/vdb), 'auto' or leave it out.")


def _live(*conds) -> sa.Select:
    return sa.select(BDM).where(BDM.deleted == 0, *conds)


def create(values: dict[str, Any]) -> models.BlockDeviceMapping:
    """Insert a BDM (``uuid`` made when missing); ``DeviceInUse`` (409) when
    its device name is taken on that instance."""
    values = dict(values)
    values.setdefault("uuid", str(uuidlib.uuid4()))
    row = BDM(**values)
    try:
        with db_api.session() as sess:
            sess.add(row)
    except sa.exc.IntegrityError:
        raise exception.DeviceInUse(device=values.get("device_name"),
                                    instance_id=values.get("instance_uuid")) from None
    return row


def get(uuid: str) -> models.BlockDeviceMapping:
    """The live BDM ``uuid``; ``NotFound`` (404) otherwise."""
    with db_api.reader() as sess:
        row = sess.scalars(_live(BDM.uuid == uuid)).first()
    if row is None:
        raise exception.NotFound(message=f"Block device mapping {uuid} could not be found.")
    return row


def get_by_volume(instance_uuid: str, volume_id: str) -> models.BlockDeviceMapping | None:
    """The live BDM of ``volume_id`` on ``instance_uuid``, or None."""
    with db_api.reader() as sess:
        return sess.scalars(_live(BDM.instance_uuid == instance_uuid,
                                  BDM.volume_id == volume_id)).first()


def list_for_instance(instance_uuid: str) -> list[models.BlockDeviceMapping]:
    """Live BDMs of an instance, boot device first, then by device name."""
    q = _live(BDM.instance_uuid == instance_uuid).order_by(
        sa.case((BDM.boot_index == 0, 0), else_=1), BDM.device_name, BDM.id)
    with db_api.reader() as sess:
        return list(sess.scalars(q))


def volumes_by_instance(instance_uuids: Iterable[str]) -> dict[str, list[models.BlockDeviceMapping]]:
    """Live volume BDMs of each of ``instance_uuids`` that has any (one query),
    in attach order."""
    uuids = list(instance_uuids)
    if not uuids:
        return {}
    q = _live(BDM.instance_uuid.in_(uuids), BDM.destination_type == "volume",
              BDM.volume_id.is_not(None)).order_by(BDM.instance_uuid, BDM.id)
    out: dict[str, list[models.BlockDeviceMapping]] = {}
    with db_api.reader() as sess:
        for row in sess.scalars(q):
            out.setdefault(row.instance_uuid, []).append(row)
    return out


def reserve_device_name(instance_uuid: str, requested: str | None = None, *,
                        uuid: str | None = None, **values: Any) -> models.BlockDeviceMapping:
    """Insert a volume BDM for ``instance_uuid`` holding a device name: the
    ``requested`` one (``/dev/vdX``), or with None/``"auto"`` the first free
    ``/dev/vdX`` after the root disk. ``values`` are the row's other columns
    (``volume_id``, ``tag``, ``delete_on_termination``...).

    Atomic through the unique constraint: of two racing reservations of one
    name one gets it; an automatic pick that loses moves on to the next free
    name. Idempotent for a given ``uuid``: a live row with that uuid is
    returned as it is (a flow that crashed after reserving runs this again).

    Raises ``Invalid`` (400) for a malformed name, ``DeviceInUse`` (409) when
    the requested name is taken (the root disk's always is).
    """
    uuid = uuid or str(uuidlib.uuid4())
    with db_api.reader() as sess:
        existing = sess.scalars(_live(BDM.uuid == uuid)).first()
    if existing is not None:
        return existing
    row = {"source_type": "volume", "destination_type": "volume", "device_type": "disk",
           "disk_bus": "virtio", "boot_index": None}
    row.update(values, uuid=uuid, instance_uuid=instance_uuid)
    if requested not in (None, "auto"):
        check_device_name(requested)
        if requested == ROOT_DEVICE:
            raise exception.DeviceInUse(device=requested, instance_id=instance_uuid)
        return create(dict(row, device_name=requested))
    for _attempt in range(_RESERVE_ATTEMPTS):
        with db_api.reader() as sess:
            taken = set(sess.scalars(sa.select(BDM.device_name).where(
                BDM.instance_uuid == instance_uuid, BDM.deleted == 0)))
        taken.add(ROOT_DEVICE)
        name = next((n for n in _device_names() if n not in taken), None)
        if name is None:
            raise exception.Invalid(
                reason=f"Instance {instance_uuid} has no free device name left.")
        try:
            return create(dict(row, device_name=name))
        except exception.DeviceInUse:
            continue  # another reservation took it first: pick again
    raise exception.Conflict(reason=f"could not reserve a device name on instance "
                                    f"{instance_uuid}: too many concurrent reservations")


def update(uuid: str, values: dict[str, Any]) -> bool:
    """Change columns of the live BDM ``uuid`` (``connection_info``,
    ``attachment_id``, ``volume_id``...); whether it was there."""
    values = dict(values)
    values.setdefault("updated_at", models.utcnow())
    with db_api.session() as sess:
        result = sess.execute(sa.update(BDM).where(BDM.uuid == uuid, BDM.deleted == 0)
                              .values(**values).execution_options(synchronize_session=False))
        return result.rowcount == 1


def destroy(uuid: str) -> bool:
    """Soft-delete the BDM ``uuid`` (``deleted`` = id, freeing its device
    name); idempotent. Whether a live row was deleted."""
    now = models.utcnow()
    with db_api.session() as sess:
        result = sess.execute(sa.update(BDM).where(BDM.uuid == uuid, BDM.deleted == 0)
                              .values(deleted=BDM.id, deleted_at=now, updated_at=now)
                              .execution_options(synchronize_session=False))
        return result.rowcount == 1


def restore(uuid: str) -> bool:
    """Undo ``destroy`` of the BDM ``uuid`` (the detach flow's revert; the
    per-instance lock keeps its device name free meanwhile)."""
    with db_api.session() as sess:
        result = sess.execute(sa.update(BDM).where(BDM.uuid == uuid, BDM.deleted != 0)
                              .values(deleted=0, deleted_at=None, updated_at=models.utcnow())
                              .execution_options(synchronize_session=False))
        return result.rowcount == 1


def destroy_all(instance_uuid: str) -> int:
    """Soft-delete every BDM of an instance; how many."""
    now = models.utcnow()
    with db_api.session() as sess:
        result = sess.execute(sa.update(BDM).where(BDM.instance_uuid == instance_uuid,
                                                   BDM.deleted == 0)
                              .values(deleted=BDM.id, deleted_at=now, updated_at=now)
                              .execution_options(synchronize_session=False))
        return result.rowcount


def live_attachment_id(volume_id: str, instance_uuid: str) -> str | None:
    """The id of a live (not deleted) attachment of ``volume_id`` to
    ``instance_uuid``, or None. An attach flow that crashed after creating
    its attachment finds it here when it runs again, instead of leaving the
    volume reserved by an attachment nobody knows."""
    from virtstack.db import volume as db_volume

    rows = db_volume.attachment_list({"volume_id": volume_id, "instance_uuid": instance_uuid})
    return rows[0].id if rows else None
