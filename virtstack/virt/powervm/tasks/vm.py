"""Tasks on the LPAR itself.

Inputs: ``adapter`` (pypowervm Adapter), ``host_w`` (the ManagedSystem
wrapper), ``instance`` (objects.Instance), ``proc_units_factor`` (float),
``power_timeout`` (seconds an OS shutdown may take before a hard one).
"""

from __future__ import annotations

from typing import Any

from taskflow import task

from virtstack.virt.powervm import vm


class CreateVM(task.Task):
    """Create the LPAR (off). Revert deletes the LPAR of this uuid: the
    driver made sure none existed before the flow, so any found is ours."""

    def execute(self, adapter, host_w, instance, proc_units_factor: float) -> None:
        vm.create_lpar(adapter, host_w, instance, proc_units_factor)

    def revert(self, adapter, instance, *args: Any, **kwargs: Any) -> None:
        vm.delete_lpar(adapter, instance)


class PowerOn(task.Task):
    """Start the LPAR; revert stops it (hard)."""

    def execute(self, adapter, instance) -> None:
        vm.power_on(adapter, instance)

    def revert(self, adapter, instance, *args: Any, **kwargs: Any) -> None:
        if vm.find_lpar(adapter, instance) is not None:
            vm.power_off(adapter, instance)


class PowerOff(task.Task):
    """Stop the LPAR if there is one (destroy, migrate). Nothing to revert:
    a guest stopped on the way to its deletion is not restarted."""

    def execute(self, adapter, instance, power_timeout: int) -> None:
        lpar = vm.find_lpar(adapter, instance)
        if lpar is not None:
            vm.power_off(adapter, instance, timeout=power_timeout, lpar=lpar)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class DeleteVM(task.Task):
    """Delete the LPAR (idempotent; cannot be undone)."""

    def execute(self, adapter, instance) -> None:
        vm.delete_lpar(adapter, instance)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class ResizeVM(task.Task):
    """Give the (stopped) LPAR the new flavor's memory and processors;
    revert gives it the instance's old flavor back."""

    def execute(self, adapter, host_w, instance, new_flavor, proc_units_factor: float) -> None:
        vm.update_lpar(adapter, host_w, instance, new_flavor, proc_units_factor)

    def revert(self, adapter, host_w, instance, proc_units_factor: float, *args: Any,
               **kwargs: Any) -> None:
        if vm.find_lpar(adapter, instance) is not None:
            vm.update_lpar(adapter, host_w, instance, instance.flavor, proc_units_factor)
