"""The service catalog: where clients find each API, built from ``[api]``.

One region (``[identity] region_name``), three interfaces per endpoint
(public, internal, admin; all the same URL on an all-in-one host). The
Block Storage API is listed under both service types clients look for
(``volumev3`` and ``block-storage``) with its project-scoped URL. Ids are
derived from the service type and interface, so they are stable across
restarts and hosts.
"""

from __future__ import annotations

import uuid
from typing import Any

from virtstack.conf import CONF

INTERFACES = ("public", "internal", "admin")

#: (service type, service name, port option of [api], path after the port).
#: ``{project_id}`` is replaced by the token's project.
SERVICES = (
    ("identity", "keystone", "identity_port", "/v3"),
    ("compute", "nova", "compute_port", "/v2.1"),
    ("volumev3", "cinderv3", "volume_port", "/v3/{project_id}"),
    ("block-storage", "cinder", "volume_port", "/v3/{project_id}"),
    ("image", "glance", "image_port", ""),
)

_NAMESPACE = uuid.UUID("6a1c7e0e-8f8e-4b39-9f39-5b8d3c1f0a54")


def public_host() -> str:
    """The host name clients use: ``[api] public_host``, else the listen
    address."""
    return CONF.api.public_host or CONF.api.listen


def service_url(port_option: str, path: str = "") -> str:
    host = public_host()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{getattr(CONF.api, port_option)}{path}"


def identity_url() -> str:
    """The Identity v3 endpoint (``http://host:5000/v3``)."""
    return service_url("identity_port", "/v3")


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex


def build(project_id: str) -> list[dict[str, Any]]:
    """The catalog of a token scoped to ``project_id``, in Identity v3's shape."""
    region = CONF.identity.region_name
    catalog = []
    for service_type, name, port_option, path in SERVICES:
        url = service_url(port_option, path.format(project_id=project_id))
        catalog.append({
            "id": _stable_id("service", service_type),
            "type": service_type,
            "name": name,
            "endpoints": [{"id": _stable_id("endpoint", service_type, interface),
                           "interface": interface, "region": region, "region_id": region,
                           "url": url} for interface in INTERFACES],
        })
    return catalog
