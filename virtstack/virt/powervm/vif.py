"""Guest NICs: one client network adapter (CNA) per VIF on the LPAR, on
``[powervm] vswitch_name`` with the VIF's VLAN (``details.vlan``, 1 without)
as its port VLAN id and the VIF's MAC address. CNAs live on the LPAR, so a
VIF of an instance that has no LPAR yet is plugged when the LPAR is made.
"""

from __future__ import annotations

import logging
from typing import Any

from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import cna as pvm_cna
from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import network as pvm_net

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.powervm import vm

LOG = logging.getLogger(__name__)


def mac_of(vif: dict[str, Any]) -> str:
    """A VIF's MAC as PowerVM writes it: upper case, no colons."""
    address = vif.get("address")
    if not address:
        raise exception.Invalid(reason=f"VIF {vif.get('id')} has no MAC address")
    return address.replace(":", "").upper()


def _cnas(adapter, instance: Instance) -> list[pvm_net.CNA]:
    try:
        return pvm_net.CNA.get(adapter, parent_type=pvm_lpar.LPAR,
                               parent_uuid=vm.pvm_uuid(instance))
    except pvm_exc.HttpNotFound:
        return []  # no LPAR (yet, or any more)


def plug(adapter, instance: Instance, network_info: list[dict[str, Any]],
         vswitch_name: str) -> list[str]:
    """Create the CNAs that are missing; the MACs created. Needs the LPAR."""
    have = {cna.mac for cna in _cnas(adapter, instance)}
    created = []
    for vif in network_info:
        mac = mac_of(vif)
        if mac in have:
            continue
        vlan = (vif.get("details") or {}).get("vlan") or 1
        pvm_cna.crt_cna(adapter, None, vm.pvm_uuid(instance), vlan, vswitch=vswitch_name,
                        mac_addr=mac)
        LOG.info("Plugged VIF %s (%s) of %s on %s", vif.get("id"), mac, instance.uuid,
                 vswitch_name)
        created.append(mac)
    return created


def unplug(adapter, instance: Instance, network_info: list[dict[str, Any]]) -> list[str]:
    """Delete the CNAs of ``network_info``; the MACs deleted. Idempotent."""
    wanted = {mac_of(vif) for vif in network_info}
    removed = []
    for cna in _cnas(adapter, instance):
        if cna.mac in wanted:
            try:
                cna.delete()
            except pvm_exc.HttpNotFound:
                continue
            removed.append(cna.mac)
    return removed
