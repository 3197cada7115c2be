"""Block Storage API: /volumes and their metadata, and the admin-facing
attributes of the volume views (Cinder's rule names)."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, ADMIN_OR_READER, RULE_ADMIN_API, documented

rules = [
    documented("volume:get_all", ADMIN_OR_READER, "List the project's volumes.",
               [("GET", "/volumes"), ("GET", "/volumes/detail"),
                ("GET", "/volumes/summary")]),
    documented("volume:get", ADMIN_OR_READER, "Show a volume.",
               [("GET", "/volumes/{volume_id}")]),
    documented("volume:create", ADMIN_OR_MEMBER, "Create a volume.", [("POST", "/volumes")]),
    documented("volume:update", ADMIN_OR_MEMBER,
               "Update a volume (name, description, metadata) or its bootable flag.",
               [("PUT", "/volumes/{volume_id}"),
                ("POST", "/volumes/{volume_id}/action (os-set_bootable)")]),
    documented("volume:delete", ADMIN_OR_MEMBER, "Delete a volume.",
               [("DELETE", "/volumes/{volume_id}")]),
    documented("volume:force_delete", RULE_ADMIN_API,
               "Delete a volume whatever its status (force=true).",
               [("DELETE", "/volumes/{volume_id}?force=true")]),
    documented("volume_extension:volume_host_attribute", RULE_ADMIN_API,
               "Show a volume's host, migration and cluster attributes.",
               [("GET", "/volumes/{volume_id}"), ("GET", "/volumes/detail")]),
    documented("volume:get_volume_metadata", ADMIN_OR_READER,
               "Show a volume's metadata or one item of it.",
               [("GET", "/volumes/{volume_id}/metadata"),
                ("GET", "/volumes/{volume_id}/metadata/{key}")]),
    documented("volume:create_volume_metadata", ADMIN_OR_MEMBER, "Add to a volume's metadata.",
               [("POST", "/volumes/{volume_id}/metadata")]),
    documented("volume:update_volume_metadata", ADMIN_OR_MEMBER,
               "Replace a volume's metadata or one item of it.",
               [("PUT", "/volumes/{volume_id}/metadata"),
                ("PUT", "/volumes/{volume_id}/metadata/{key}")]),
    documented("volume:delete_volume_metadata", ADMIN_OR_MEMBER,
               "Delete one item of a volume's metadata.",
               [("DELETE", "/volumes/{volume_id}/metadata/{key}")]),
]


def list_rules():
    return rules
