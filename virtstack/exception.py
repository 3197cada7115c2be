"""Errors of virtstack, each with the HTTP status the API returns for it.

The API turns any ``VirtstackException`` into the OpenStack error body with
``code`` as the status; anything else becomes a 500 (and is a bug).
"""

from __future__ import annotations


class VirtstackException(Exception):
    """Base error. ``msg_fmt`` is %-formatted with the keyword arguments."""

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message: str | None = None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = message
        super().__init__(message)

    def format_message(self) -> str:
        return self.message


# 400
class Invalid(VirtstackException):
    msg_fmt = "Invalid input: %(reason)s"
    code = 400


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field/attribute %(field)s: %(reason)s"


class InvalidMicroversion(Invalid):
    msg_fmt = "Invalid microversion: %(reason)s"


class FlavorNotFoundForCreate(Invalid):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class ImageNotFoundForCreate(Invalid):
    msg_fmt = "Can not find requested image %(image_id)s."


class ImageNotActive(Invalid):
    msg_fmt = "Image %(image_id)s is not active."


class FlavorTooSmall(Invalid):
    msg_fmt = "%(what)s of flavor %(flavor_id)s is smaller than the image requires (%(needed)s)."


# 401/403
class NotAuthenticated(VirtstackException):
    msg_fmt = "Authentication required."
    code = 401


class Forbidden(VirtstackException):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."
    code = 403


class QuotaExceeded(Forbidden):
    msg_fmt = ("Quota exceeded for %(resources)s: requested %(requested)s, "
               "but already used %(used)s of %(allowed)s %(resources)s")


# 404
class NotFound(VirtstackException):
    msg_fmt = "Resource could not be found."
    code = 404


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class ImageNotFound(NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class ComputeHostNotFound(NotFound):
    msg_fmt = "Compute host %(host)s could not be found."


class HypervisorNotFound(NotFound):
    msg_fmt = "Hypervisor %(hypervisor_id)s could not be found."


class InstanceActionNotFound(NotFound):
    msg_fmt = "Action for request_id %(request_id)s on instance %(instance_id)s not found"


# 406
class VersionNotAcceptable(VirtstackException):
    msg_fmt = "Version %(version)s is not supported by the API. Minimum is %(min)s and maximum is %(max)s."
    code = 406


# 409
class Conflict(VirtstackException):
    msg_fmt = "Conflict: %(reason)s"
    code = 409


class InstanceInvalidState(Conflict):
    msg_fmt = ("Cannot '%(action)s' instance %(instance_uuid)s while it is in "
               "%(attr)s %(state)s")


class FlavorExists(Conflict):
    msg_fmt = "Flavor with %(what)s %(value)s already exists."


# 5xx and service-side failures
class NoValidHost(VirtstackException):
    msg_fmt = "No valid host was found. %(reason)s"
    code = 500


class NotSupported(VirtstackException):
    """The driver does not implement this optional operation."""

    msg_fmt = "Operation %(operation)s is not supported by the %(driver)s driver."
    code = 501


class DriverNotFound(VirtstackException):
    msg_fmt = "Unknown compute driver '%(name)s'; available drivers: %(available)s"


class DriverLoadError(VirtstackException):
    msg_fmt = "Compute driver '%(name)s' (%(target)s) cannot be loaded: %(reason)s"


class InstanceNotRunning(Conflict):
    msg_fmt = "Instance %(instance_id)s is not running."


class InstanceExists(Conflict):
    msg_fmt = "Instance %(name)s already exists on the hypervisor."


class InstancePowerOffFailure(VirtstackException):
    msg_fmt = "Failed to power off instance: %(reason)s"


class InstanceRebootFailure(VirtstackException):
    msg_fmt = "Failed to reboot instance: %(reason)s"


class DeviceNotFound(NotFound):
    msg_fmt = "Device %(device)s not found on instance %(instance_id)s."


class DeviceInUse(Conflict):
    msg_fmt = "Device %(device)s is already in use on instance %(instance_id)s."


class ConfigError(VirtstackException):
    msg_fmt = "Configuration error: %(reason)s"


# -- block storage ------------------------------------------------------------

class VolumeNotFound(NotFound):
    msg_fmt = "Volume %(volume_id)s could not be found."


class SnapshotNotFound(NotFound):
    msg_fmt = "Snapshot %(snapshot_id)s could not be found."


class VolumeAttachmentNotFound(NotFound):
    msg_fmt = "Volume attachment %(attachment_id)s could not be found."


class VolumeTypeNotFound(NotFound):
    msg_fmt = "Volume type %(volume_type_id)s could not be found."


class InvalidVolume(Invalid):
    """A volume is not in a state (or shape) that allows the request (400,
    as the Block Storage API answers)."""
    msg_fmt = "Invalid volume: %(reason)s"


class InvalidSnapshot(Invalid):
    msg_fmt = "Invalid snapshot: %(reason)s"


class VolumeIsBusy(Invalid):
    msg_fmt = "Volume %(volume_id)s is busy: %(reason)s"


class VolumeSizeExceedsAvailableQuota(QuotaExceeded):
    msg_fmt = ("Requested volume or snapshot exceeds allowed %(name)s quota. Requested "
               "%(requested)sG, quota is %(quota)sG and %(consumed)sG has been consumed.")
    code = 413


class VolumeLimitExceeded(QuotaExceeded):
    msg_fmt = "Maximum number of %(name)s allowed (%(allowed)d) exceeded"
    code = 413


class NoValidBackend(VirtstackException):
    """No volume pool can take the request (the volume goes to ``error``)."""
    msg_fmt = "No valid backend was found. %(reason)s"
    code = 400


class VolumeBackendError(VirtstackException):
    msg_fmt = "Volume backend error: %(reason)s"
    code = 500


# Compute side of block storage (attach/detach, block_device_mapping_v2).
class InvalidBDM(Invalid):
    msg_fmt = "Block Device Mapping is Invalid: %(reason)s"


class VolumeAttachFailed(VirtstackException):
    """The compute host failed to attach a volume (and rolled back)."""
    msg_fmt = "Attaching volume %(volume_id)s to server %(server_id)s failed: %(reason)s"


class VolumeAttachRolledBack(VirtstackException):
    """A persisted attach flow found unfinished at start-up: its caller's
    RPC call failed long ago, so it is rolled back rather than finished."""
    msg_fmt = ("The attach of volume %(volume_id)s to instance %(instance_uuid)s was "
               "interrupted by a restart of the compute service and rolled back.")


# Identity (embedded Identity v3): messages never hold a token or password.
class AuthenticationFailed(NotAuthenticated):
    msg_fmt = "The request you have made requires authentication."


class TokenNotFound(NotFound):
    msg_fmt = "The token could not be found: it is malformed, expired or revoked."


class DomainNotFound(NotFound):
    msg_fmt = "Could not find domain: %(domain_id)s."


class ProjectNotFound(NotFound):
    msg_fmt = "Could not find project: %(project_id)s."


class UserNotFound(NotFound):
    msg_fmt = "Could not find user: %(user_id)s."


class RoleNotFound(NotFound):
    msg_fmt = "Could not find role: %(role_id)s."


class RoleAssignmentNotFound(NotFound):
    msg_fmt = "Could not find role assignment with role: %(role_id)s, user: %(user_id)s, project: %(project_id)s."


class IdentityConflict(Conflict):
    msg_fmt = "Conflict occurred attempting to store %(type)s: %(details)s"


# -- image service ------------------------------------------------------------

class ImageExists(Conflict):
    msg_fmt = "Image with identifier %(image_id)s already exists!"


class ImageStatusConflict(Conflict):
    msg_fmt = "Image %(image_id)s is '%(status)s'; %(action)s needs it %(needed)s."


class ImageProtected(Forbidden):
    msg_fmt = "Image %(image_id)s is protected and cannot be deleted."


class ImageTooLarge(VirtstackException):
    msg_fmt = "The incoming image is too large: %(reason)s"
    code = 413


class ImageGone(VirtstackException):
    """The image was deleted while its data was being uploaded."""
    msg_fmt = ("Image %(image_id)s could not be found after upload. The image may have "
               "been deleted during the upload; the uploaded data was removed.")
    code = 410


# -- hypervisor-side volumes ----------------------------------------------------

class DeviceDetachFailed(VirtstackException):
    """The guest did not release a device: it is still attached (live and
    persistent), so the caller can roll the volume back to ``in-use``."""
    msg_fmt = ("Device %(device)s was not detached from instance %(instance_id)s after "
               "%(attempts)d requests: %(reason)s")


class VolumeDriverNotFound(Invalid):
    msg_fmt = ("No volume connector for driver_volume_type '%(driver_type)s' on this "
               "host; known: %(known)s")
