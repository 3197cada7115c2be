"""Tasks of the config drive.

Inputs: ``adapter``, ``instance``, ``config_drive_dir`` (a private
directory the driver makes for one spawn and removes after it).
"""

from __future__ import annotations

import os
from typing import Any

from taskflow import task

from virtstack.virt.powervm import configdrive, media


def _iso_path(config_drive_dir: str, instance) -> str:
    return os.path.join(config_drive_dir, media.media_name(instance))


class BuildConfigDrive(task.Task):
    """Write the instance's config drive ISO; provides its path. Revert
    removes the file."""

    default_provides = "config_drive_iso"

    def execute(self, instance, config_drive_dir: str) -> str:
        return configdrive.build_iso(instance, _iso_path(config_drive_dir, instance))

    def revert(self, instance, config_drive_dir: str, *args: Any, **kwargs: Any) -> None:
        path = _iso_path(config_drive_dir, instance)
        if os.path.exists(path):
            os.unlink(path)


class AttachConfigDrive(task.Task):
    """Upload the ISO to the media repository and map it to the LPAR;
    revert unmaps and deletes the medium (also one a failed try left)."""

    def execute(self, adapter, instance, config_drive_iso: str) -> None:
        media.attach_iso(adapter, instance, config_drive_iso)

    def revert(self, adapter, instance, *args: Any, **kwargs: Any) -> None:
        media.detach_iso(adapter, instance)


class DeleteConfigDrive(task.Task):
    """Unmap and delete the instance's config drive medium, if it has one
    (destroy; idempotent)."""

    def execute(self, adapter, instance) -> None:
        media.detach_iso(adapter, instance)

    def revert(self, *args: Any, **kwargs: Any) -> None:
        pass
