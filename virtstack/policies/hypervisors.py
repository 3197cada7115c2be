"""Compute API: /os-hypervisors and /limits (Nova's rule names)."""

from __future__ import annotations

from virtstack.policies.base import ANY, RULE_ADMIN_API, documented

HYPERVISORS = "os_compute_api:os-hypervisors:%s"

rules = [
    documented(HYPERVISORS % "list", RULE_ADMIN_API, "List hypervisors.",
               [("GET", "/os-hypervisors")]),
    documented(HYPERVISORS % "list-detail", RULE_ADMIN_API, "List hypervisors with details.",
               [("GET", "/os-hypervisors/detail")]),
    documented(HYPERVISORS % "statistics", RULE_ADMIN_API,
               "Show the summed statistics of all hypervisors.",
               [("GET", "/os-hypervisors/statistics")]),
    documented(HYPERVISORS % "show", RULE_ADMIN_API, "Show a hypervisor.",
               [("GET", "/os-hypervisors/{hypervisor_id}")]),
    documented("os_compute_api:limits", ANY,
               "Show the rate and absolute limits of the caller's project.",
               [("GET", "/limits")]),
    documented("os_compute_api:limits:other_project", RULE_ADMIN_API,
               "Show the limits of another project (tenant_id).",
               [("GET", "/limits?tenant_id={project_id}")]),
]


def list_rules():
    return rules
