"""Tasks of a snapshot: read the boot disk into the image store.

Inputs: ``read_disk`` (``udid -> chunks``, from the connection),
``disk_udid`` (the boot disk), ``part`` (a temporary path beside ``dest``),
``dest`` (the image store's path for the new image), ``update_task_state``
(the compute manager's callback).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from taskflow import task


class CaptureBootDisk(task.Task):
    """Copy the boot disk's data to ``part``; revert removes the copy."""

    def execute(self, read_disk, disk_udid: str, part: str, update_task_state) -> None:
        update_task_state(task_state="image_pending_upload", expected_state="image_snapshot")
        with open(part, "wb") as out:
            for chunk in read_disk(disk_udid):
                out.write(chunk)

    def revert(self, part: str, *args: Any, **kwargs: Any) -> None:
        if os.path.exists(part):
            os.unlink(part)


class MoveToStore(task.Task):
    """Put the copy where the image store wants it; provides its size."""

    default_provides = "size"

    def execute(self, part: str, dest: str, update_task_state) -> int:
        update_task_state(task_state="image_uploading", expected_state="image_pending_upload")
        shutil.move(part, dest)
        return os.path.getsize(dest)

    def revert(self, dest: str, *args: Any, **kwargs: Any) -> None:
        if os.path.exists(dest):
            os.unlink(dest)
