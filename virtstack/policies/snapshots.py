"""Block Storage API: /snapshots (Cinder's rule names)."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, ADMIN_OR_READER, RULE_ADMIN_API, documented

rules = [
    documented("volume:get_all_snapshots", ADMIN_OR_READER, "List the project's snapshots.",
               [("GET", "/snapshots"), ("GET", "/snapshots/detail")]),
    documented("volume:get_snapshot", ADMIN_OR_READER, "Show a snapshot.",
               [("GET", "/snapshots/{snapshot_id}")]),
    documented("volume:create_snapshot", ADMIN_OR_MEMBER, "Create a snapshot of a volume.",
               [("POST", "/snapshots")]),
    documented("volume:update_snapshot", ADMIN_OR_MEMBER, "Update a snapshot.",
               [("PUT", "/snapshots/{snapshot_id}")]),
    documented("volume:delete_snapshot", ADMIN_OR_MEMBER, "Delete a snapshot.",
               [("DELETE", "/snapshots/{snapshot_id}")]),
    documented("volume_extension:snapshot_admin_actions:reset_status", RULE_ADMIN_API,
               "Reset a snapshot's status without any check.",
               [("POST", "/snapshots/{snapshot_id}/action (os-reset_status)")]),
]


def list_rules():
    return rules
