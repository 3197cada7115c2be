"""Plain data objects passed between layers (API, compute manager, drivers).

Drivers never see database rows: the compute manager builds these from the
database and hands them over. They are plain data, safe to pass between
threads and to serialise (``to_dict``/``from_dict``) over RPC.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Flavor:
    """The size of a server: what the driver must give the guest."""

    flavorid: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Flavor":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass
class Instance:
    """One server as a driver sees it.

    ``name`` is the hypervisor-side name (``[compute] instance_name_template``,
    ``instance-%08x``), unique per cloud; ``display_name`` is what the user called it.
    """

    uuid: str
    name: str
    display_name: str
    project_id: str
    user_id: str
    flavor: Flavor
    image_ref: str = ""
    kernel_id: str = ""
    ramdisk_id: str = ""
    host: str | None = None
    node: str | None = None
    vm_state: str = "building"
    task_state: str | None = None
    power_state: int = 0
    root_device_name: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The user asked for a config drive (the create request's ``config_drive``).
    config_drive: bool = False
    #: The guest's host name (derived from the display name by the compute API).
    hostname: str = ""
    #: ``user_data`` as the API received it: base64 text, or None.
    user_data: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Instance":
        kwargs = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        kwargs["flavor"] = Flavor.from_dict(data["flavor"])
        return cls(**kwargs)


@dataclasses.dataclass
class ImageMeta:
    """What the driver needs to know about the image it boots from."""

    id: str
    name: str = ""
    disk_format: str = "qcow2"
    container_format: str = "bare"
    min_disk: int = 0
    min_ram: int = 0
    size: int = 0
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Where the image's bits are on this host, if the image store is local.
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageMeta":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
