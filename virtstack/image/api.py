"""The image service below HTTP: who may do what to an image, its status
machine, and the store and registry calls behind each Image API request.

Status machine (the Image API's)::

    queued --upload--> saving --data stored--> active <--> deactivated
       ^                  |
       +--upload failed---+            any live status --delete--> deleted

Every status change is a compare-and-set (``db.image.transition``) or a
locked read-modify-write (``db.image.modify``): of two racing uploads one
moves the image to ``saving`` and the other gets 409.

Which images a project sees and may change is decided here: it sees
public and community images and its own; it may change only its own (404
for what it cannot see, 403 for what it sees but does not own); only admins
give images to other projects. Which roles may attempt each operation is
the API's oslo.policy rules (``virtstack/policies/images.py``), and so are
publishing (``publicize_image``: admins) and ``communitize_image``, checked
here where the visibility is set.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any, BinaryIO, Iterable

from virtstack import exception, policy
from virtstack.db import image as db_image
from virtstack.db import models
from virtstack.image import store

LOG = logging.getLogger(__name__)

#: Attributes with a column of their own that users may set.
COLUMN_ATTRIBUTES = ("name", "visibility", "protected", "min_ram", "min_disk", "disk_format",
                     "container_format", "owner")
#: Attributes users may set that are kept in ``properties``.
PROPERTY_ATTRIBUTES = ("tags", "os_hidden")
#: Most tags and extra properties one image may have (Glance's default quotas).
MAX_TAGS = 128
MAX_PROPERTIES = 128


@dataclasses.dataclass(frozen=True)
class Change:
    """One operation of an image PATCH, on an attribute or extra property.

    ``op``: ``add``, ``replace`` or ``remove``; ``name``: the attribute or
    property; ``value``: the new value (ignored by ``remove``);
    ``add_must_be_new``: ``add`` of something present is a conflict (the
    older patch media type) instead of a replace.
    """

    op: str
    name: str
    value: Any = None
    add_must_be_new: bool = False


def _scope(ctxt) -> str | None:
    """The project whose images the caller sees (None: every image, for admins)."""
    return None if ctxt.is_admin else ctxt.project_id


def _check_modify(ctxt, row: models.Image, what: str) -> None:
    """404 unless the caller sees ``row``; 403 unless it may change it."""
    if not db_image.visible(row, _scope(ctxt)):
        raise exception.ImageNotFound(image_id=row.id)
    if not ctxt.is_admin and row.owner != ctxt.project_id:
        raise exception.Forbidden(f"You are not permitted to {what} image {row.id}: "
                                  "it belongs to another project.")


def _check_attribute(ctxt, row: models.Image | None, name: str, value: Any) -> None:
    """What an attribute may be set to, by whom and when (``row``: the image
    as it is, None while it is created)."""
    if name == "visibility" and value in ("public", "community"):
        policy.authorize(ctxt, "publicize_image" if value == "public" else "communitize_image")
    if name == "owner" and not ctxt.is_admin and value != ctxt.project_id:
        raise exception.Forbidden("Only administrators may give an image to another "
                                  "project (owner).")
    if name in ("min_ram", "min_disk") and value is not None and value < 0:
        raise exception.Invalid(reason=f"{name} {value}: cannot be a negative value")
    if (name in ("disk_format", "container_format") and row is not None
            and row.status != "queued" and value != getattr(row, name)):
        raise exception.Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name == "tags" and len(set(value)) > MAX_TAGS:
        raise exception.ImageTooLarge(reason=f"an image may have at most {MAX_TAGS} tags")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class ImageAPI:
    """Image operations on behalf of a request context (``ctxt``: who asks)."""

    # -- reading ------------------------------------------------------------

    def get(self, ctxt, image_id: str) -> models.Image:
        """The image if the caller may see it; ``ImageNotFound`` otherwise."""
        return db_image.get(image_id, _scope(ctxt))

    def list(self, ctxt, query: db_image.ImageQuery) -> tuple[list[models.Image], bool]:
        """One page of the images the caller may see, and whether more follow.
        ``query.project_id``/``is_admin`` are set from ``ctxt`` here."""
        query = dataclasses.replace(query, project_id=ctxt.project_id, is_admin=ctxt.is_admin)
        return db_image.query(query)

    # -- creating and changing ----------------------------------------------

    def create(self, ctxt, attributes: dict[str, Any], properties: dict[str, str],
               tags: Iterable[str] = ()) -> models.Image:
        """A new ``queued`` image without data.

        ``attributes``: the Image API attributes given (``id`` and those in
        ``COLUMN_ATTRIBUTES``/``PROPERTY_ATTRIBUTES``); ``properties``: extra
        properties. Defaults as the Image API's: ``shared``, not protected,
        not hidden, owned by the caller's project.
        """
        given = dict(attributes, tags=_unique(tags))
        given.setdefault("visibility", "shared")
        given.setdefault("owner", ctxt.project_id)
        for name, value in given.items():
            _check_attribute(ctxt, None, name, value)
        if len(properties) > MAX_PROPERTIES:
            raise exception.ImageTooLarge(
                reason=f"an image may have at most {MAX_PROPERTIES} properties")
        now = models.utcnow()
        values = {
            "id": given.get("id") or str(uuid.uuid4()), "status": "queued",
            "name": given.get("name"), "visibility": given["visibility"],
            "owner": given["owner"], "protected": bool(given.get("protected", False)),
            "disk_format": given.get("disk_format"),
            "container_format": given.get("container_format"),
            "min_disk": given.get("min_disk") or 0, "min_ram": given.get("min_ram") or 0,
            "size": None, "checksum": None, "created_at": now, "updated_at": now,
            "properties": dict(properties, tags=given["tags"],
                               os_hidden=bool(given.get("os_hidden", False))),
        }
        return db_image.create(values)

    def update(self, ctxt, image_id: str, changes: list[Change]) -> models.Image:
        """Apply a PATCH's changes all together or not at all.

        Attributes cannot be removed (403); replacing or removing a property
        the image lacks is a conflict (409), as in the Image API.
        """
        def apply(row: models.Image) -> dict[str, Any]:
            _check_modify(ctxt, row, "modify")
            columns: dict[str, Any] = {}
            properties = dict(row.properties or {})
            for change in changes:
                name = change.name
                if name in COLUMN_ATTRIBUTES or name in PROPERTY_ATTRIBUTES:
                    if change.op == "remove":
                        raise exception.Forbidden(f"Property {name} may not be removed.")
                    if change.op == "add" and change.add_must_be_new:
                        # Attributes are always present.
                        raise exception.Conflict(reason=f"Property {name} already present.")
                    _check_attribute(ctxt, row, name, change.value)
                    if name in COLUMN_ATTRIBUTES:
                        columns[name] = change.value
                    else:
                        properties[name] = (_unique(change.value) if name == "tags"
                                            else change.value)
                    continue
                present = name in properties
                if change.op == "remove" or change.op == "replace":
                    if not present:
                        raise exception.Conflict(reason=f"Property {name} does not exist.")
                elif change.add_must_be_new and present:
                    raise exception.Conflict(reason=f"Property {name} already present.")
                if change.op == "remove":
                    del properties[name]
                else:
                    properties[name] = change.value
            if sum(k not in db_image.ATTRIBUTE_KEYS for k in properties) > MAX_PROPERTIES:
                raise exception.ImageTooLarge(
                    reason=f"an image may have at most {MAX_PROPERTIES} properties")
            for key in ("min_ram", "min_disk"):
                if key in columns and columns[key] is None:
                    columns[key] = 0
            return dict(columns, properties=properties)

        return db_image.modify(image_id, apply)

    def delete(self, ctxt, image_id: str) -> None:
        """Delete the image and its data; ``ImageProtected`` (403) while
        ``protected``."""
        def mark_deleted(row: models.Image) -> dict[str, Any]:
            _check_modify(ctxt, row, "delete")
            if row.protected:
                raise exception.ImageProtected(image_id=image_id)
            return {"status": "deleted", "deleted": True}

        row = db_image.modify(image_id, mark_deleted)
        store.remove_file(row.location)

    def add_tag(self, ctxt, image_id: str, tag: str) -> None:
        def add(row: models.Image) -> dict[str, Any] | None:
            _check_modify(ctxt, row, "tag")
            tags = db_image.tags(row)
            if tag in tags:
                return None
            _check_attribute(ctxt, row, "tags", tags + [tag])
            return {"properties": dict(row.properties or {}, tags=tags + [tag])}

        db_image.modify(image_id, add)

    def remove_tag(self, ctxt, image_id: str, tag: str) -> None:
        def remove(row: models.Image) -> dict[str, Any]:
            _check_modify(ctxt, row, "untag")
            tags = db_image.tags(row)
            if tag not in tags:
                raise exception.NotFound(f"Tag {tag} is not on image {image_id}.")
            return {"properties": dict(row.properties or {},
                                       tags=[t for t in tags if t != tag])}

        db_image.modify(image_id, remove)

    # -- data ---------------------------------------------------------------

    def upload(self, ctxt, image_id: str, chunks: Iterable[bytes],
               size_cap: int) -> models.Image:
        """Store the image's data from ``chunks``: ``queued`` -> ``saving`` ->
        ``active`` with size, checksum and hashes. An upload that fails for
        any reason (the client's included) returns the image to ``queued``
        and leaves no data. 409 unless ``queued``; 410 when the image was
        deleted while its data came in."""
        row = self.get(ctxt, image_id)
        _check_modify(ctxt, row, "upload data to")
        missing = [k for k in ("disk_format", "container_format") if not getattr(row, k)]
        if missing:
            raise exception.Invalid(
                reason=f"{' and '.join(missing)} must be set prior to saving data.")
        if not db_image.transition(image_id, ["queued"], {"status": "saving"}):
            current = db_image.get(image_id)
            raise exception.ImageStatusConflict(image_id=image_id, status=current.status,
                                                action="uploading data", needed="'queued'")
        try:
            stored = store.write(image_id, chunks, row.disk_format, size_cap)
        except BaseException:
            db_image.transition(image_id, ["saving"], {"status": "queued"})
            raise

        def activate(current: models.Image) -> dict[str, Any]:
            if current.status != "saving":
                raise exception.ImageGone(image_id=image_id)
            return dict(stored.values(current.properties), status="active")

        try:
            return db_image.modify(image_id, activate)
        except (exception.ImageNotFound, exception.ImageGone):
            store.remove_file(stored.location)
            raise exception.ImageGone(image_id=image_id) from None

    def download(self, ctxt, image_id: str) -> tuple[models.Image, BinaryIO | None]:
        """The image and its data opened for reading (None: it has none).
        Only admins read a deactivated image's data (403)."""
        row = self.get(ctxt, image_id)
        if row.status == "deactivated" and not ctxt.is_admin:
            raise exception.Forbidden("The requested image has been deactivated. "
                                      "Image data download is forbidden.")
        if row.status not in ("active", "deactivated"):
            return row, None
        return row, store.open_data(row)

    # -- admin actions --------------------------------------------------------

    def deactivate(self, ctxt, image_id: str) -> None:
        self._set_active(ctxt, image_id, "deactivate", "active", "deactivated")

    def reactivate(self, ctxt, image_id: str) -> None:
        self._set_active(ctxt, image_id, "reactivate", "deactivated", "active")

    def _set_active(self, ctxt, image_id: str, action: str, source: str, target: str) -> None:
        """Which roles may is the API's rules (``deactivate``, ``reactivate``);
        which images: an admin any, others their own project's (403 for
        another project's image they can see), as Glance has it."""
        _check_modify(ctxt, self.get(ctxt, image_id), action)
        if db_image.transition(image_id, [source], {"status": target}):
            LOG.info("Image %s: %s", image_id, target)
            return
        status = db_image.get(image_id).status
        if status != target:  # already there: nothing to do, as in the Image API
            raise exception.Forbidden(f"Not allowed to {action} image in status '{status}'")
