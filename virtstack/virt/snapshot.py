"""Snapshot tasks every driver's snapshot flow shares: a capture step writes
the disk's data to ``part`` (a temporary path beside ``dest``), then
``MoveToStore`` puts it at ``dest`` (the image store's path for the new
image). ``update_task_state`` is the compute manager's callback.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from taskflow import task


class CaptureToPart(task.Task):
    """Base of a driver's capture step: ``execute`` writes the disk's data to
    ``part``; revert removes whatever of it exists."""

    def revert(self, part: str, *args: Any, **kwargs: Any) -> None:
        if os.path.exists(part):
            os.unlink(part)


class MoveToStore(task.Task):
    """Put the copy where the image store wants it (a rename when both are
    on one filesystem); provides its size."""

    default_provides = "size"

    def execute(self, part: str, dest: str, update_task_state) -> int:
        update_task_state(task_state="image_uploading", expected_state="image_pending_upload")
        shutil.move(part, dest)
        return os.path.getsize(dest)

    def revert(self, dest: str, *args: Any, **kwargs: Any) -> None:
        if os.path.exists(dest):
            os.unlink(dest)
