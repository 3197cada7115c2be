"""The JSON Schemas of the Image API (``/v2/schemas/image``, ``/images``).

Clients fetch them to learn which attributes are base attributes, which are
read-only and what values they take (glanceclient validates against them),
so they follow Glance's published schema: the base attributes, the extra
properties Glance ships in its default ``schema-image.json`` (``kernel_id``,
``ramdisk_id``, ...), and any other property as a string. The same schema
validates create and PATCH bodies here.
"""

from __future__ import annotations

import copy
from typing import Any

from virtstack.image import formats

_UUID = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
         "-([0-9a-fA-F]){12}$")

STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]
VISIBILITIES = ["community", "public", "private", "shared"]


def _string(description: str, max_length: int | None = None, nullable: bool = True,
            read_only: bool = False, **extra: Any) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": ["null", "string"] if nullable else "string",
                            "description": description, **extra}
    if max_length:
        prop["maxLength"] = max_length
    if read_only:
        prop["readOnly"] = True
    return prop


BASE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
    "name": _string("Descriptive name for the image", 255),
    "status": {"type": "string", "readOnly": True, "description": "Status of the image",
               "enum": STATUSES},
    "visibility": {"type": "string", "description": "Scope of image accessibility",
                   "enum": VISIBILITIES},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean",
                  "description": "If true, image will not appear in default image list "
                                 "response."},
    "checksum": _string("md5 hash of image contents.", 32, read_only=True),
    "os_hash_algo": _string("Algorithm to calculate the os_hash_value", 64, read_only=True),
    "os_hash_value": _string("Hexdigest of the image contents using the algorithm "
                             "specified by the os_hash_algo", 128, read_only=True),
    "owner": _string("Owner of the image", 255),
    "size": {"type": ["null", "integer"], "readOnly": True,
             "description": "Size of image file in bytes"},
    "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                     "description": "Virtual size of image in bytes"},
    "container_format": {"type": ["null", "string"], "description": "Format of the container",
                         "enum": [None, *formats.CONTAINER_FORMATS]},
    "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                    "enum": [None, *formats.DISK_FORMATS]},
    "created_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "description": "List of strings related to the image",
             "items": {"type": "string", "maxLength": 255}},
    "direct_url": {"type": "string", "readOnly": True,
                   "description": "URL to access the image file kept in external store"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot "
                                                  "image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required "
                                                   "to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "stores": {"type": "string", "readOnly": True,
               "description": "Store in which image data resides."},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {"type": "array", "description": "A set of URLs to access the image file "
                                                   "kept in external store",
                  "items": {"type": "object", "required": ["url", "metadata"],
                            "properties": {"url": {"type": "string", "maxLength": 255},
                                           "metadata": {"type": "object"}}}},
}

#: Extra properties with a meaning (Glance's default schema-image.json).
KNOWN_PROPERTIES: dict[str, Any] = {
    "kernel_id": _string("ID of image stored in Glance that should be used as the kernel "
                         "when booting an AMI-style image.", pattern=_UUID),
    "ramdisk_id": _string("ID of image stored in Glance that should be used as the ramdisk "
                          "when booting an AMI-style image.", pattern=_UUID),
    "instance_uuid": _string("Metadata which can be used to record which instance this "
                             "image is associated with.", nullable=False),
    "architecture": _string("Operating system architecture", nullable=False),
    "os_distro": _string("Common name of operating system distribution", nullable=False),
    "os_version": _string("Operating system version as specified by the distributor.",
                          nullable=False),
    "description": _string("A human-readable string describing this image.",
                           nullable=False),
    "cinder_encryption_key_id": _string("Identifier in the OpenStack Key Management Service "
                                        "for the encryption key of this image",
                                        nullable=False),
    "cinder_encryption_key_deletion_policy": _string(
        "States the condition under which the Image Service will delete the object "
        "associated with the 'cinder_encryption_key_id' image property.", nullable=False,
        enum=["on_image_deletion", "do_not_delete"]),
}

_LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
          {"rel": "describedby", "href": "{schema}"}]


def image_schema() -> dict[str, Any]:
    """``GET /v2/schemas/image``: any property not named is a string."""
    return {"name": "image",
            "properties": copy.deepcopy({**BASE_PROPERTIES, **KNOWN_PROPERTIES}),
            "additionalProperties": {"type": "string"},
            "links": copy.deepcopy(_LINKS)}


def images_schema() -> dict[str, Any]:
    """``GET /v2/schemas/images``: a page of images and its links."""
    return {"name": "images",
            "properties": {"images": {"type": "array", "items": image_schema()},
                           "first": {"type": "string"}, "next": {"type": "string"},
                           "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


#: The schema bodies are validated against (built once: it never changes).
IMAGE = image_schema()
