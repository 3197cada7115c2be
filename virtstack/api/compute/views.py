"""How servers, flavors and hypervisors look in Compute API responses,
per microversion."""

from __future__ import annotations

import datetime
import functools
import hashlib
from typing import Any, Iterable

from virtstack.compute import states
from virtstack.db import block_device as db_bd
from virtstack.db import host as db_host
from virtstack.db import instance as db_instance
from virtstack.db import models


def isotime(dt: datetime.datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") + "Z" if dt else None


def usage_time(dt: datetime.datetime | None) -> str | None:
    # os-simple-tenant-usage style (no zone), as OS-SRV-USG shows it.
    return dt.isoformat(timespec="microseconds") if dt else None


def links(base_url: str, collection: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base_url}/v2.1/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{base_url}/{collection}/{ident}"}]


@functools.lru_cache(maxsize=4096)
def host_id(project_id: str, host: str | None) -> str:
    """Opaque per-project host id: equal ids mean the same host."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def server_brief(row: models.Instance, base_url: str) -> dict[str, Any]:
    return {"id": row.uuid, "name": row.display_name,
            "links": links(base_url, "servers", row.uuid)}


def server_detail(row: models.Instance, base_url: str, version, is_admin: bool,
                  fault: models.InstanceFault | None = None,
                  host_statuses: dict[str, str] | None = None,
                  volumes: list[models.BlockDeviceMapping] | None = None) -> dict[str, Any]:
    status = states.status_from_states(row.vm_state, row.task_state)
    server = {
        "id": row.uuid,
        "name": row.display_name,
        "status": status,
        "tenant_id": row.project_id,
        "user_id": row.user_id,
        "metadata": dict(row.metadata_ or {}),
        "hostId": host_id(row.project_id, row.host),
        "image": {"id": row.image_ref, "links": [
            {"rel": "bookmark", "href": f"{base_url}/images/{row.image_ref}"}]} if row.image_ref else "",
        "flavor": {"id": row.flavorid, "links": [
            {"rel": "bookmark", "href": f"{base_url}/flavors/{row.flavorid}"}]},
        "created": isotime(row.created_at),
        "updated": isotime(row.updated_at or row.created_at),
        "addresses": {},
        "accessIPv4": row.access_ip_v4 or "",
        "accessIPv6": row.access_ip_v6 or "",
        "links": links(base_url, "servers", row.uuid),
        "key_name": row.key_name,
        "config_drive": row.config_drive or "",
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": row.availability_zone or "nova",
        "OS-EXT-STS:power_state": row.power_state,
        "OS-EXT-STS:task_state": row.task_state,
        "OS-EXT-STS:vm_state": row.vm_state,
        "OS-SRV-USG:launched_at": usage_time(row.launched_at),
        "OS-SRV-USG:terminated_at": usage_time(row.terminated_at),
        "os-extended-volumes:volumes_attached": volumes_attached(volumes or [], version),
        "security_groups": [{"name": "default"}],
    }
    if status in ("BUILD", "ACTIVE"):
        server["progress"] = 100 if status == "ACTIVE" else 0
    if is_admin:
        server["OS-EXT-SRV-ATTR:host"] = row.host
        server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = row.node
        server["OS-EXT-SRV-ATTR:instance_name"] = db_instance.instance_name(row)
        if version.matches("2.3"):
            server.update({
                "OS-EXT-SRV-ATTR:reservation_id": row.reservation_id,
                "OS-EXT-SRV-ATTR:launch_index": row.launch_index,
                "OS-EXT-SRV-ATTR:hostname": row.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": row.kernel_id,
                "OS-EXT-SRV-ATTR:ramdisk_id": row.ramdisk_id,
                "OS-EXT-SRV-ATTR:root_device_name": row.root_device_name,
                "OS-EXT-SRV-ATTR:user_data": row.user_data,
            })
    if version.matches("2.9"):
        server["locked"] = bool(row.locked)
    if version.matches("2.16") and is_admin:
        server["host_status"] = (host_statuses or {}).get(row.host, "UNKNOWN") if row.host else ""
    if version.matches("2.19"):
        server["description"] = row.display_description
    if fault is not None and row.vm_state == states.ERROR:
        server["fault"] = {"code": fault.code, "message": fault.message,
                           "created": isotime(fault.created_at)}
        if is_admin and fault.details:
            server["fault"]["details"] = fault.details
    return server


def _host_statuses() -> dict[str, str]:
    """host_status (2.16) of every compute host, from one query."""
    out = {}
    for service in db_host.services("virtstack-compute"):
        if service.disabled:
            out[service.host] = "MAINTENANCE"
        else:
            out[service.host] = "UP" if db_host.service_is_up(service) else "DOWN"
    return out


def servers_detail(rows: Iterable[models.Instance], base_url: str, version,
                   is_admin: bool) -> list[dict[str, Any]]:
    rows = list(rows)
    faults = db_instance.latest_faults(r.uuid for r in rows if r.vm_state == states.ERROR)
    statuses = _host_statuses() if is_admin and version.matches("2.16") else None
    volumes = db_bd.volumes_by_instance(r.uuid for r in rows)
    return [server_detail(r, base_url, version, is_admin, faults.get(r.uuid), statuses,
                          volumes.get(r.uuid))
            for r in rows]


def volumes_attached(bdms: Iterable[models.BlockDeviceMapping], version) -> list[dict[str, Any]]:
    """os-extended-volumes:volumes_attached: the server's volumes (with
    delete_on_termination from 2.3)."""
    if version.matches("2.3"):
        return [{"id": b.volume_id, "delete_on_termination": bool(b.delete_on_termination)}
                for b in bdms]
    return [{"id": b.volume_id} for b in bdms]


def flavor(row: models.Flavor, base_url: str, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.flavorid, "name": row.name,
                           "links": links(base_url, "flavors", row.flavorid)}
    if detail:
        out.update({
            "ram": row.memory_mb, "disk": row.root_gb, "vcpus": row.vcpus,
            "swap": row.swap or "", "rxtx_factor": row.rxtx_factor,
            "OS-FLV-EXT-DATA:ephemeral": row.ephemeral_gb,
            "OS-FLV-DISABLED:disabled": row.disabled,
            "os-flavor-access:is_public": row.is_public,
        })
    return out


def hypervisor(node: models.ComputeNode, service: models.Service | None,
               detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": node.id, "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if db_host.service_is_up(service) else "down",
        "status": "disabled" if service is not None and service.disabled else "enabled",
    }
    if detail:
        out.update({
            "hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
            "host_ip": node.host_ip, "vcpus": node.vcpus, "vcpus_used": node.vcpus_used,
            "memory_mb": node.memory_mb, "memory_mb_used": node.memory_mb_used,
            "free_ram_mb": node.memory_mb - node.memory_mb_used,
            "local_gb": node.local_gb, "local_gb_used": node.local_gb_used,
            "free_disk_gb": node.local_gb - node.local_gb_used,
            "disk_available_least": node.local_gb - node.local_gb_used,
            "running_vms": node.running_vms, "current_workload": 0,
            "cpu_info": node.cpu_info,
            "service": {"host": node.host, "id": service.id if service else None,
                        "disabled_reason": service.disabled_reason if service else None},
        })
    return out
