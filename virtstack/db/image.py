"""The image registry: what ``imageRef`` may name (the Image API builds on it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from virtstack import exception
from virtstack.db import api as db_api
from virtstack.db import models


def create(values: dict[str, Any]) -> models.Image:
    row = models.Image(**values)
    with db_api.session() as sess:
        sess.add(row)
    return row


def get(image_id: str, project_id: str | None = None) -> models.Image:
    """The image, if visible to ``project_id`` (None: any); 404 otherwise."""
    with db_api.reader() as sess:
        row = sess.get(models.Image, image_id)
    if row is None or row.deleted or not visible(row, project_id):
        raise exception.ImageNotFound(image_id=image_id)
    return row


def update(image_id: str, values: dict[str, Any]) -> None:
    with db_api.session() as sess:
        result = sess.execute(sa.update(models.Image).where(models.Image.id == image_id)
                              .values(**values).execution_options(synchronize_session=False))
    if result.rowcount == 0:
        raise exception.ImageNotFound(image_id=image_id)


def visible(row: models.Image, project_id: str | None) -> bool:
    return (project_id is None or row.visibility in ("public", "community")
            or row.owner == project_id)


def list_(project_id: str | None = None) -> list[models.Image]:
    M = models.Image
    q = sa.select(M).where(M.deleted.is_(False)).order_by(M.created_at.desc(), M.id)
    if project_id is not None:
        q = q.where(sa.or_(M.visibility.in_(["public", "community"]), M.owner == project_id))
    with db_api.reader() as sess:
        return list(sess.scalars(q))


def to_meta(row: models.Image):
    from virtstack import objects

    return objects.ImageMeta(id=row.id, name=row.name or "", disk_format=row.disk_format or "raw",
                             container_format=row.container_format or "bare",
                             min_disk=row.min_disk, min_ram=row.min_ram, size=row.size or 0,
                             properties=dict(row.properties or {}), location=row.location)
