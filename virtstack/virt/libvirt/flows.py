"""The libvirt driver's spawn, as a TaskFlow flow of thin tasks.

``get_spawn_flow(power_on)`` (module level, as ``FlowRunner`` wants)::

    CreateInstanceDir -> FetchKernelAndRamdisk -> CreateRootDisk -> ConnectVolumes
        -> DefineGuest -> PlugVifs -> PowerOn -> WaitRunning

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
- ``network_info``: list of VIFs; ``block_device_info``: dict (see
  ``LibvirtDriver.spawn``); ``volumes``: the driver's
  ``volume.VolumeConnectors``;
- ``running_timeout``: seconds ``WaitRunning`` waits.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from taskflow import task
from taskflow.patterns import linear_flow

from virtstack import exception
from virtstack.virt import power_state, snapshot
from virtstack.virt.libvirt import designer
from virtstack.virt.snapshot import MoveToStore

LOG = logging.getLogger(__name__)


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
    copy). Provides ``root_disk`` (``imagebackend.RootDisk``), None when a
    volume is the root disk."""

    default_provides = "root_disk"

    def execute(self, backend, instance, image_meta, image_paths: Callable[[str], str],
                block_device_info):
        if designer.boots_from_volume(block_device_info):
            return None
        # The location the caller knows, while it is there; else the store's.
        image_path = image_meta.location
        if not image_path or not os.path.exists(image_path):
            image_path = image_paths(image_meta.id)
        return backend.create_root_disk(instance, image_meta, image_path)

    def revert(self, backend, instance, *args: Any, **kwargs: Any) -> None:
        backend.remove_root_disk(instance.uuid)


class ConnectVolumes(task.Task):
    """Connect the volumes of ``block_device_info`` on this host (CHAP
    secrets, logins) and provide their ``<disk>``s as ``volume_disks``.
    Revert disconnects every mapping (idempotent: also those a failure cut
    short) and removes whatever else the connectors keep for the guest."""

    default_provides = "volume_disks"

    def execute(self, volumes, instance, block_device_info) -> list:
        disks = []
        for connection_info, target in designer.volume_mappings(block_device_info):
            source = volumes.get(connection_info).connect(connection_info, instance)
            disks.append(designer.build_volume_disk(source, target))
        return disks

    def revert(self, volumes, instance, block_device_info, *args: Any, **kwargs: Any) -> None:
        for bdm in (block_device_info or {}).get("block_device_mapping") or []:
            connection_info = bdm.get("connection_info") or {}
            try:
                connector = volumes.get(connection_info)
            except exception.VolumeDriverNotFound:
                continue  # the failure itself: nothing was connected
            connector.disconnect(connection_info, instance)
        volumes.forget_instance(instance.uuid)


class DefineGuest(task.Task):
    """Define the domain from the designer's XML; revert undefines it."""

    def execute(self, host, backend, facts, instance, image_meta, root_disk,
                boot_files, volume_disks) -> None:
        files = designer.GuestFiles(
            root_disk_path=root_disk.path if root_disk else None,
            root_disk_format=root_disk.format if root_disk else "raw",
            console_log_path=backend.console_log_path(instance.uuid),
            kernel_path=boot_files["kernel"], ramdisk_path=boot_files["ramdisk"])
        domain = designer.build_domain(instance, image_meta, facts, files, volume_disks)
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
        ConnectVolumes("connect_volumes"),
        DefineGuest("define_guest"),
        PlugVifs("plug_vifs"),
    )
    if power_on:
        flow.add(PowerOn("power_on"), WaitRunning("wait_running"))
    return flow


# -- snapshot ------------------------------------------------------------------
#
# Inputs: ``guest`` (guest.Guest), ``backend``, ``root_file`` and
# ``root_format`` (the root disk), ``part`` (a temporary path in the
# instance directory), ``dest`` (the image store's path for the new image),
# ``update_task_state`` (the compute manager's callback). The capture's
# revert and the last step (``MoveToStore``) are every driver's:
# ``virt/snapshot.py``.

class NoteRunning(task.Task):
    """Whether the guest runs before the capture (the reverts need to know,
    whatever the pause step's own outcome)."""

    default_provides = "was_running"

    def execute(self, guest) -> bool:
        return guest.get_power_state() == power_state.RUNNING

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # only looked


class PauseForCapture(task.Task):
    """A running guest is paused so QEMU flushes its disks and the copy is
    crash-consistent. Its revert runs also when the pause itself failed
    half-way (TaskFlow reverts the failing task too): it resumes a guest
    that ran before and is paused now."""

    def execute(self, guest, was_running: bool) -> None:
        if was_running:
            guest.pause()

    def revert(self, guest, was_running: bool, *args: Any, **kwargs: Any) -> None:
        if was_running and guest.get_power_state() == power_state.PAUSED:
            guest.resume()


class CaptureDisk(snapshot.CaptureToPart):
    """Copy the root disk (backing chain collapsed) to ``part`` as qcow2;
    revert removes the copy."""

    def execute(self, backend, root_file: str, root_format: str, part: str,
                update_task_state) -> None:
        update_task_state(task_state="image_pending_upload", expected_state="image_snapshot")
        backend.capture(root_file, root_format, part)


class ResumeAfterCapture(task.Task):
    def execute(self, guest, was_running: bool) -> None:
        if was_running:
            guest.resume()

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass  # the guest runs as it did before; nothing to undo


def get_snapshot_flow() -> linear_flow.Flow:
    return linear_flow.Flow("libvirt-snapshot").add(
        NoteRunning("note_running"),
        PauseForCapture("pause_for_capture"),
        CaptureDisk("capture_disk"),
        ResumeAfterCapture("resume_after_capture"),
        MoveToStore("move_to_store"),
    )


# -- destroy -------------------------------------------------------------------
#
# Inputs: ``host``, ``backend``, ``instance``, ``volumes`` (the driver's
# ``volume.VolumeConnectors``), ``block_device_info``. Each step is idempotent and
# finishes its part whether or not the earlier ones found anything; a
# destroyed guest cannot be un-destroyed, so the reverts are no-ops and a
# failed destroy is simply run again.

class PowerOffGuest(task.Task):
    def execute(self, host, instance) -> None:
        guest = host.find_guest(instance.uuid)
        if guest is not None:
            try:
                guest.poweroff()
            except exception.InstanceNotFound:
                pass  # gone meanwhile

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class UndefineGuest(task.Task):
    """Forget the domain, with its managed-save image."""

    def execute(self, host, instance) -> None:
        guest = host.find_guest(instance.uuid)
        if guest is not None:
            try:
                guest.delete_configuration()
            except exception.InstanceNotFound:
                pass

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class DisconnectVolumes(task.Task):
    """Disconnect the volumes of ``block_device_info`` on this host, then
    remove whatever the connectors still keep for the guest (CHAP secrets of
    volumes the caller no longer lists)."""

    def execute(self, volumes, instance, block_device_info) -> None:
        for bdm in (block_device_info or {}).get("block_device_mapping") or []:
            connection_info = bdm.get("connection_info") or {}
            try:
                volumes.get(connection_info).disconnect(connection_info, instance)
            except exception.VolumeDriverNotFound as exc:
                LOG.warning("Destroying %s: not disconnecting a volume: %s", instance.uuid, exc)
        volumes.forget_instance(instance.uuid)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


class DeleteInstanceFiles(task.Task):
    """Disk, overlay, kernel/ramdisk links, console log: the whole directory."""

    def execute(self, backend, instance) -> None:
        backend.delete_instance_dir(instance.uuid)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass


def get_destroy_flow(destroy_disks: bool = True) -> linear_flow.Flow:
    flow = linear_flow.Flow("libvirt-destroy").add(
        PowerOffGuest("power_off_guest"), UndefineGuest("undefine_guest"),
        DisconnectVolumes("disconnect_volumes"))
    if destroy_disks:
        flow.add(DeleteInstanceFiles("delete_instance_files"))
    return flow
