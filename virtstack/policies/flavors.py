"""Compute API: /flavors (Nova's rule names for flavor management)."""

from __future__ import annotations

from virtstack.policies.base import ANY, RULE_ADMIN_API, documented

rules = [
    # Nova checks no rule for reading flavors; these two let a policy file
    # restrict it like everything else.
    documented("os_compute_api:flavors:index", ANY, "List flavors.",
               [("GET", "/flavors"), ("GET", "/flavors/detail")]),
    documented("os_compute_api:flavors:show", ANY, "Show a flavor.",
               [("GET", "/flavors/{flavor_id}")]),
    documented("os_compute_api:os-flavor-manage:create", RULE_ADMIN_API, "Create a flavor.",
               [("POST", "/flavors")]),
    documented("os_compute_api:os-flavor-manage:delete", RULE_ADMIN_API, "Delete a flavor.",
               [("DELETE", "/flavors/{flavor_id}")]),
]


def list_rules():
    return rules
