"""Tasks of a snapshot: read the boot disk into the image store.

Inputs: ``read_disk`` (``udid -> chunks``, from the connection),
``disk_udid`` (the boot disk), ``part`` (a temporary path beside ``dest``),
``dest`` (the image store's path for the new image), ``update_task_state``
(the compute manager's callback).
"""

from __future__ import annotations

from virtstack.virt import snapshot
from virtstack.virt.snapshot import MoveToStore  # noqa: F401 (the flow's last step)


class CaptureBootDisk(snapshot.CaptureToPart):
    """Copy the boot disk's data to ``part``; revert removes the copy."""

    def execute(self, read_disk, disk_udid: str, part: str, update_task_state) -> None:
        update_task_state(task_state="image_pending_upload", expected_state="image_snapshot")
        with open(part, "wb") as out:
            for chunk in read_disk(disk_udid):
                out.write(chunk)
