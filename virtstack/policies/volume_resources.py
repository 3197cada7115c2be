"""Block Storage API: volume types, limits, quota sets, availability zones
and services (Cinder's rule names)."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_READER, ANY, RULE_ADMIN_API, documented

rules = [
    documented("volume_extension:type_get_all", ANY, "List volume types.",
               [("GET", "/types")]),
    documented("volume_extension:type_get", ANY, "Show a volume type or the default one.",
               [("GET", "/types/{type_id}"), ("GET", "/types/default")]),
    documented("limits_extension:used_limits", ADMIN_OR_READER,
               "Show a project's limits and usage (another project's: project_id, 3.39).",
               [("GET", "/limits")]),
    documented("volume_extension:quotas:show", ADMIN_OR_READER,
               "Show a project's quotas or their defaults.",
               [("GET", "/os-quota-sets/{project_id}"),
                ("GET", "/os-quota-sets/{project_id}/defaults")]),
    documented("volume_extension:quotas:update", RULE_ADMIN_API, "Update a project's quotas.",
               [("PUT", "/os-quota-sets/{project_id}")]),
    documented("volume_extension:availability_zone_list", ANY, "List availability zones.",
               [("GET", "/os-availability-zone")]),
    documented("volume_extension:services:index", RULE_ADMIN_API, "List volume services.",
               [("GET", "/os-services")]),
]


def list_rules():
    return rules
