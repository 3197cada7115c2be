"""The PowerVM driver's operations as TaskFlow flows (module-level
factories, as ``flows.runner.FlowRunner`` wants). Every value the tasks
take is injected as a transient input by the driver (see each task module's
docstring); these flows run inside the compute manager's own persisted
flows, which repeat or roll back a step interrupted by a crash.

spawn::

    CreateVM -> PlugVifs -> CreateDiskFromImage -> ConnectDisk
        -> ConnectVolumes -> [BuildConfigDrive -> AttachConfigDrive] -> PowerOn

Each reverts what it did, so a failure at any step leaves no LPAR, disk,
medium or mapping. The config-drive steps are there when the instance asks
for one (``Instance.config_drive``): its ISO becomes virtual optical media
mapped to the LPAR.

destroy::

    PowerOff -> DisconnectVolumes -> DisconnectDisk -> RemoveLeftoverMappings
        -> DeleteConfigDrive -> [DeleteDisks] -> UnplugVifs -> DeleteVM

attach / detach of one volume: ``ConnectVolume`` / ``DisconnectVolume``.

snapshot::

    CaptureBootDisk -> MoveToStore

resize or cold migration on shared storage (source side)::

    PowerOff -> [ResizeVM]

(the disks stay where they are; the destination finds them by name).
"""

from __future__ import annotations

from taskflow.patterns import linear_flow

from virtstack.virt.powervm.tasks import image as tf_img
from virtstack.virt.powervm.tasks import media as tf_media
from virtstack.virt.powervm.tasks import network as tf_net
from virtstack.virt.powervm.tasks import storage as tf_stg
from virtstack.virt.powervm.tasks import vm as tf_vm


def get_spawn_flow(power_on: bool = True, config_drive: bool = False) -> linear_flow.Flow:
    flow = linear_flow.Flow("powervm-spawn").add(
        tf_vm.CreateVM("create_vm"),
        tf_net.PlugVifs("plug_vifs"),
        tf_stg.CreateDiskFromImage("create_disk_from_image"),
        tf_stg.ConnectDisk("connect_disk"),
        tf_stg.ConnectVolumes("connect_volumes"),
    )
    if config_drive:
        flow.add(tf_media.BuildConfigDrive("build_config_drive"),
                 tf_media.AttachConfigDrive("attach_config_drive"))
    if power_on:
        flow.add(tf_vm.PowerOn("power_on"))
    return flow


def get_destroy_flow(destroy_disks: bool = True) -> linear_flow.Flow:
    flow = linear_flow.Flow("powervm-destroy").add(
        tf_vm.PowerOff("power_off"),
        tf_stg.DisconnectVolumes("disconnect_volumes"),
        tf_stg.DisconnectDisk("disconnect_disk"),
        tf_stg.RemoveLeftoverMappings("remove_leftover_mappings"),
        tf_media.DeleteConfigDrive("delete_config_drive"),
    )
    if destroy_disks:
        flow.add(tf_stg.DeleteDisks("delete_disks"))
    flow.add(tf_net.UnplugVifs("unplug_vifs"), tf_vm.DeleteVM("delete_vm"))
    return flow


def get_attach_volume_flow() -> linear_flow.Flow:
    return linear_flow.Flow("powervm-attach-volume").add(tf_stg.ConnectVolume("connect_volume"))


def get_detach_volume_flow() -> linear_flow.Flow:
    return linear_flow.Flow("powervm-detach-volume").add(
        tf_stg.DisconnectVolume("disconnect_volume"))


def get_snapshot_flow() -> linear_flow.Flow:
    return linear_flow.Flow("powervm-snapshot").add(
        tf_img.CaptureBootDisk("capture_boot_disk"), tf_img.MoveToStore("move_to_store"))


def get_migrate_flow(resize: bool) -> linear_flow.Flow:
    flow = linear_flow.Flow("powervm-migrate-source").add(tf_vm.PowerOff("power_off"))
    if resize:
        flow.add(tf_vm.ResizeVM("resize_vm"))
    return flow
