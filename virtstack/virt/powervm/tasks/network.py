"""Tasks on the LPAR's network adapters.

Inputs: ``adapter``, ``instance``, ``network_info`` (list of VIF dicts),
``vswitch_name``.
"""

from __future__ import annotations

from typing import Any

from taskflow import task

from virtstack.virt.powervm import vif


class PlugVifs(task.Task):
    """A client network adapter per VIF; revert deletes them."""

    def execute(self, adapter, instance, network_info, vswitch_name: str) -> None:
        vif.plug(adapter, instance, network_info, vswitch_name)

    def revert(self, adapter, instance, network_info, *args: Any, **kwargs: Any) -> None:
        vif.unplug(adapter, instance, network_info)


class UnplugVifs(task.Task):
    """Delete the VIFs' adapters (destroy; idempotent)."""

    def execute(self, adapter, instance, network_info) -> None:
        vif.unplug(adapter, instance, network_info)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass
