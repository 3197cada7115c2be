"""The libvirt driver's spawn, as a TaskFlow flow of thin tasks.

``get_spawn_flow(power_on)`` (module level, as ``FlowRunner`` wants)::

    CreateInstanceDir -> FetchKernelAndRamdisk -> CreateRootDisk -> DefineGuest
        -> PlugVifs -> ConnectVolumes -> PowerOn -> WaitRunning

Each task makes one call and its ``revert`` undoes exactly that, so a
failure anywhere leaves no domain, disk or directory behind. A task that
failed half-way is reverted too (TaskFlow reverts the failing task), so
reverts undo by what exists (the instance's paths, its domain by uuid),
never by a result that may be missing. The driver checks before running the
flow that no domain of this uuid or name exists, so everything the reverts
find is this flow's.

Inputs (all transient: the compute manager's own spawn flow is the
persisted, recoverable one; this flow runs inside its ``DriverSpawn`` step,
which destroys a half-built guest and runs spawn again after a crash):

- ``host``: the ``host.Host``; ``backend``: the ``imagebackend.ImageBackend``;
- ``facts``: ``designer.HostFacts``; ``instance``: ``objects.Instance``;
- ``image_meta``: ``objects.ImageMeta``; ``image_paths``: a callable
  ``image_id -> local file path`` (the image store's ``path``);
- ``network_info``: list of VIFs; ``block_device_info``: dict;
- ``running_timeout``: seconds ``WaitRunning`` waits.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack import exception
from virtstack.virt import power_state
from virtstack.virt.libvirt import designer


class CreateInstanceDir(task.Task):
    """Make the instance's directory; revert removes it with all it holds
    (the console log libvirt started, snapshots half taken)."""

    default_provides = "instance_dir"

    def execute(self, backend, instance) -> str:
        return backend.create_instance_dir(instance.uuid)

    def revert(self, backend, instance, *args: Any, **kwargs: Any) -> None:
        backend.delete_instance_dir(instance.uuid)


class FetchKernelAndRamdisk(task.Task):
    """Link the image's kernel and ramdisk (``kernel_id``/``ramdisk_id``) into
    the instance directory. Provides ``boot_files``: ``{"kernel": path or
    None, "ramdisk": path or None}``."""

    default_provides = "boot_files"

    def execute(self, backend, instance, image_meta,
                image_paths: Callable[[str], str]) -> dict[str, str | None]:
        files: dict[str, str | None] = {}
        for kind, image_id in zip(("kernel", "ramdisk"),
                                  designer.boot_image_ids(instance, image_meta)):
            files[kind] = (backend.fetch_boot_file(instance.uuid, kind, image_paths(image_id))
                           if image_id else None)
        return files

    def revert(self, backend, instance, *args: Any, **kwargs: Any) -> None:
        backend.remove_boot_files(instance.uuid)


class CreateRootDisk(task.Task):
    """Make the root disk from the image (cached base + overlay, or a flat
    copy). Provides ``root_disk`` (``imagebackend.RootDisk``)."""

    default_provides = "root_disk"

    def execute(self, backend, instance, image_meta, image_paths: Callable[[str], str]):
        # The location the caller knows, while it is there; else the store's.
        image_path = image_meta.location
        if not image_path or not os.path.exists(image_path):
            image_path = image_paths(image_meta.id)
        return backend.create_root_disk(instance, image_meta, image_path)

    def revert(self, backend, instance, *args: Any, **kwargs: Any) -> None:
        backend.remove_root_disk(instance.uuid)


class DefineGuest(task.Task):
    """Define the domain from the designer's XML; revert undefines it."""

    def execute(self, host, backend, facts, instance, image_meta, root_disk,
                boot_files) -> None:
        files = designer.GuestFiles(
            root_disk_path=root_disk.path, root_disk_format=root_disk.format,
            console_log_path=backend.console_log_path(instance.uuid),
            kernel_path=boot_files["kernel"], ramdisk_path=boot_files["ramdisk"])
        domain = designer.build_domain(instance, image_meta, facts, files)
        host.define_guest(domain.to_xml())

    def revert(self, host, instance, *args: Any, **kwargs: Any) -> None:
        guest = host.find_guest(instance.uuid)
        if guest is not None:
            guest.poweroff()  # PowerOn reverted first; a guest started meanwhile is ours too
            guest.delete_configuration()


class PlugVifs(task.Task):
    """Host side of the guest's NICs. There is no VIF driver yet: a spawn
    with VIFs fails here rather than make a guest without its network."""

    def execute(self, instance, network_info) -> None:
        if network_info:
            raise exception.NotSupported(operation="plug_vifs", driver="libvirt")

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # nothing was plugged


class ConnectVolumes(task.Task):
    """Block-device mappings (volumes to boot with). Not implemented yet:
    a spawn with mappings fails here rather than boot without them."""

    def execute(self, instance, block_device_info) -> None:
        if (block_device_info or {}).get("block_device_mapping"):
            raise exception.NotSupported(operation="attach_volume", driver="libvirt")

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # nothing was connected


class PowerOn(task.Task):
    """Start the domain; revert cuts its power."""

    def execute(self, host, instance) -> None:
        host.get_guest(instance).launch()

    def revert(self, host, instance, *args: Any, **kwargs: Any) -> None:
        guest = host.find_guest(instance.uuid)
        if guest is not None:
            guest.poweroff()


class WaitRunning(task.Task):
    """Wait until libvirt reports the guest running (nothing to revert:
    PowerOn's revert stops it)."""

    def execute(self, host, instance, running_timeout: float) -> None:
        guest = host.get_guest(instance)
        host.wait_for(lambda: guest.get_power_state() == power_state.RUNNING,
                      running_timeout, what=f"{guest} to run")

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


def get_spawn_flow(power_on: bool = True) -> linear_flow.Flow:
    """The spawn flow; without ``power_on`` the guest is left defined, off."""
    flow = linear_flow.Flow("libvirt-spawn").add(
        CreateInstanceDir("create_instance_dir"),
        FetchKernelAndRamdisk("fetch_kernel_and_ramdisk"),
        CreateRootDisk("create_root_disk"),
        DefineGuest("define_guest"),
        PlugVifs("plug_vifs"),
        ConnectVolumes("connect_volumes"),
    )
    if power_on:
        flow.add(PowerOn("power_on"), WaitRunning("wait_running"))
    return flow
