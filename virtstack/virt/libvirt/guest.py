"""One libvirt domain, with small named operations.

``Guest`` wraps a ``virDomain``: it starts, stops, pauses, saves, attaches
and detaches, and reads the domain's configuration as ``config`` objects.
It decides nothing about when to do what (that is the driver's job) and
holds no connection of its own: the ``Host`` that made it serves the event
waits (a detach waits for libvirt's device-removed event).

libvirt errors that mean "there is no such domain" become
``InstanceNotFound``; other libvirt errors pass through.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from typing import TYPE_CHECKING, Any, Iterator

from virtstack import exception
from virtstack.virt import power_state
from virtstack.virt.libvirt import config

try:
    import libvirt
except ImportError:  # Host reports it; no Guest exists without a Host
    libvirt = None

if TYPE_CHECKING:
    from virtstack.virt.libvirt.host import Host

LOG = logging.getLogger(__name__)

#: Defaults of ``detach_disk``: seconds one live detach request gets to be
#: acknowledged by the guest (libvirt itself waits up to 5 s before
#: returning), and how many requests are made before giving up (a guest
#: still booting ignores the first). The driver passes ``[libvirt]
#: device_detach_timeout`` and ``device_detach_attempts``.
DETACH_TIMEOUT = 10.0
DETACH_ATTEMPTS = 3
#: How often a power-off that QEMU refuses (EBUSY: the process is still
#: releasing a device) is tried.
POWEROFF_ATTEMPTS = 3

#: Raised by ``detach_disk`` when the guest never lets go (kept here under
#: its old name; callers outside the libvirt driver catch the exception's).
DeviceDetachFailed = exception.DeviceDetachFailed


@contextlib.contextmanager
def _not_found_as(uuid: str) -> Iterator[None]:
    """Turn libvirt's "no such domain" into InstanceNotFound."""
    try:
        yield
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise exception.InstanceNotFound(instance_id=uuid) from exc
        raise


def _is_error(exc: Exception, *codes: int) -> bool:
    return isinstance(exc, libvirt.libvirtError) and exc.get_error_code() in codes


class Guest:
    """One domain. ``uuid`` and ``name`` are the instance's uuid and name."""

    def __init__(self, domain: Any, host: Host | None = None) -> None:
        self._domain = domain
        self._host = host
        self.uuid: str = domain.UUIDString()
        self.name: str = domain.name()

    def __repr__(self) -> str:
        return f"Guest({self.name}, {self.uuid})"

    # -- state -----------------------------------------------------------

    def is_active(self) -> bool:
        """Whether a QEMU process runs for it (running, paused, ...)."""
        with _not_found_as(self.uuid):
            return bool(self._domain.isActive())

    def get_power_state(self) -> int:
        """The virtstack power state. A stopped domain with a managed-save
        image is SUSPENDED (libvirt calls it shut off, reason "saved")."""
        with _not_found_as(self.uuid):
            state, _reason = self._domain.state()
            if state == libvirt.VIR_DOMAIN_SHUTOFF and self._domain.hasManagedSaveImage(0):
                return power_state.SUSPENDED
        return power_state.from_libvirt(state)

    def get_vcpu_count(self) -> int:
        with _not_found_as(self.uuid):
            return int(self._domain.info()[3])

    def get_config(self, inactive: bool = False) -> config.Domain:
        """The domain's definition: live (with libvirt's aliases, the VNC
        port) when it runs, or the persistent one with ``inactive``."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with _not_found_as(self.uuid):
            return config.Domain.from_xml(self._domain.XMLDesc(flags))

    def has_managed_save(self) -> bool:
        with _not_found_as(self.uuid):
            return bool(self._domain.hasManagedSaveImage(0))

    # -- power -----------------------------------------------------------

    def launch(self, pause: bool = False) -> None:
        """Start the domain (restoring its managed-save image if it has one)."""
        flags = libvirt.VIR_DOMAIN_START_PAUSED if pause else 0
        with _not_found_as(self.uuid):
            self._domain.createWithFlags(flags)

    def poweroff(self) -> None:
        """Cut the power (``virDomainDestroy``); a stopped domain is left alone."""
        for attempt in range(1, POWEROFF_ATTEMPTS + 1):
            try:
                with _not_found_as(self.uuid):
                    self._domain.destroy()
                return
            except libvirt.libvirtError as exc:
                if _is_error(exc, libvirt.VIR_ERR_OPERATION_INVALID) and not self.is_active():
                    return  # not running
                if (_is_error(exc, libvirt.VIR_ERR_SYSTEM_ERROR)
                        and exc.get_int1() == errno.EBUSY and attempt < POWEROFF_ATTEMPTS):
                    LOG.warning("%s: power-off refused (busy), trying again", self)
                    continue
                raise

    def shutdown(self) -> None:
        """Press the ACPI power button; the guest OS decides what follows."""
        with _not_found_as(self.uuid):
            self._domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)

    def reboot(self) -> None:
        """Ask the guest OS to restart in place (ACPI), QEMU keeps running.
        The driver's soft reboot uses ``shutdown`` + ``launch`` instead: it
        sees the guest go down (or not, within a deadline) and restarts it
        with its current definition."""
        with _not_found_as(self.uuid):
            self._domain.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)

    def pause(self) -> None:
        """Stop the vCPUs; QEMU drains and flushes the disks first."""
        with _not_found_as(self.uuid):
            self._domain.suspend()

    def resume(self) -> None:
        """Start the vCPUs of a paused domain again."""
        with _not_found_as(self.uuid):
            self._domain.resume()

    def save_managed(self) -> None:
        """Save memory and device state to libvirt's managed-save image and
        stop; the next ``launch`` restores it, running (even if it was paused)."""
        with _not_found_as(self.uuid):
            self._domain.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)

    def remove_managed_save(self) -> None:
        """Drop the managed-save image, if any: the next launch boots afresh."""
        with _not_found_as(self.uuid):
            if self._domain.hasManagedSaveImage(0):
                self._domain.managedSaveRemove(0)

    def delete_configuration(self) -> None:
        """Undefine the (stopped) domain with its managed-save image, snapshot
        and checkpoint metadata and NVRAM. A domain already gone is fine."""
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                 | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        try:
            self._domain.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if _is_error(exc, libvirt.VIR_ERR_NO_DOMAIN):
                return
            if not _is_error(exc, libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
                raise
            # An older libvirt without some of the flags: one thing at a time.
            LOG.debug("%s: undefine with flags failed (%s); falling back", self, exc)
            try:
                self.remove_managed_save()
                self._domain.undefine()
            except libvirt.libvirtError as again:
                if not _is_error(again, libvirt.VIR_ERR_NO_DOMAIN):
                    raise
            except exception.InstanceNotFound:
                return

    # -- devices ---------------------------------------------------------

    def _device_flags(self, live: bool, persistent: bool) -> int:
        flags = 0
        if persistent:
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if live and self.is_active():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def attach_device(self, device: config.ConfigObject, persistent: bool = True,
                      live: bool = True) -> None:
        """Add ``device`` to the running domain (``live``, when it runs) and
        to its definition (``persistent``)."""
        flags = self._device_flags(live, persistent)
        if flags:
            with _not_found_as(self.uuid):
                self._domain.attachDeviceFlags(device.to_xml(pretty=False), flags)

    def get_disks(self, inactive: bool = False) -> list[config.Disk]:
        """The disks of the live (or, with ``inactive``, persistent) definition."""
        return self.get_config(inactive=inactive).devices_of(config.Disk)

    def find_disk(self, target_dev: str, inactive: bool = False) -> config.Disk | None:
        """The disk at ``target_dev`` (``vdb``) in the live or persistent definition."""
        for disk in self.get_disks(inactive=inactive):
            if disk.target_dev == target_dev:
                return disk
        return None

    def detach_disk(self, target_dev: str, persistent: bool = True, live: bool = True,
                    timeout: float = DETACH_TIMEOUT, attempts: int = DETACH_ATTEMPTS) -> None:
        """Remove the disk at ``target_dev`` from the definition (``persistent``)
        and from the running guest (``live``).

        A live detach needs the guest's cooperation (ACPI hot-unplug): this
        waits for libvirt's device-removed event, asking again up to
        ``attempts`` times, ``timeout`` seconds apart. The live detach comes
        first and the persistent copy goes only after it succeeded, so a
        guest that never lets go keeps the disk in both definitions (the
        caller can say the volume is still in use). Raises
        ``DeviceNotFound`` if no such disk is attached where asked and
        ``DeviceDetachFailed`` if the guest never lets go.
        """
        live = live and self.is_active()
        live_disk = self.find_disk(target_dev) if live else None
        persistent_disk = self.find_disk(target_dev, inactive=True) if persistent else None
        if live_disk is None and persistent_disk is None:
            raise exception.DeviceNotFound(device=target_dev, instance_id=self.uuid)
        if live_disk is not None:
            self._detach_live(live_disk, timeout, attempts)
        if persistent_disk is not None:
            with _not_found_as(self.uuid):
                self._domain.detachDeviceFlags(persistent_disk.to_xml(pretty=False),
                                               libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def _detach_live(self, disk: config.Disk, timeout: float, attempts: int) -> None:
        if self._host is None:
            raise RuntimeError(f"{self}: a live detach needs the Host's events")
        alias, xml = disk.alias or "", disk.to_xml(pretty=False)
        removed = self._host.expect_device_removal(self.uuid, alias, disk.target_dev)
        reason = "the guest did not acknowledge the unplug"
        try:
            for attempt in range(1, attempts + 1):
                try:
                    with _not_found_as(self.uuid):
                        self._domain.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                except libvirt.libvirtError as exc:
                    # Already on its way out (an earlier request): keep waiting.
                    reason = exc.get_error_message()
                    if self.find_disk(disk.target_dev) is None:
                        return
                    LOG.debug("%s: detach of %s, attempt %d: %s", self, disk.target_dev,
                              attempt, reason)
                if removed.wait(timeout) or self.find_disk(disk.target_dev) is None:
                    return
                LOG.info("%s: %s still attached after %.0fs (attempt %d of %d)", self,
                         disk.target_dev, timeout, attempt, attempts)
        finally:
            self._host.forget_device_removal(self.uuid, alias)
        raise DeviceDetachFailed(device=disk.target_dev, instance_id=self.uuid,
                                 attempts=attempts, reason=reason)

    def get_disk_capacity(self, target_dev: str) -> int:
        """Bytes the guest sees on disk ``target_dev`` (``virDomainGetBlockInfo``)."""
        with _not_found_as(self.uuid):
            return int(self._domain.blockInfo(target_dev, 0)[0])

    def block_resize(self, target_dev: str, size_bytes: int) -> None:
        """Grow the running guest's disk ``target_dev`` to ``size_bytes``;
        QEMU resizes the image and tells the guest."""
        with _not_found_as(self.uuid):
            self._domain.blockResize(target_dev, size_bytes,
                                     libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
