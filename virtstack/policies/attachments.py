"""Block Storage API: /attachments (Cinder's rule names; Cinder checks no
rule for reading attachments, the two ``attachment_get*`` rules are
virtstack's)."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, ADMIN_OR_READER, documented

rules = [
    documented("volume:attachment_get_all", ADMIN_OR_READER,
               "List the project's volume attachments.",
               [("GET", "/attachments"), ("GET", "/attachments/detail")]),
    documented("volume:attachment_get", ADMIN_OR_READER, "Show a volume attachment.",
               [("GET", "/attachments/{attachment_id}")]),
    documented("volume:attachment_create", ADMIN_OR_MEMBER, "Create a volume attachment.",
               [("POST", "/attachments")]),
    documented("volume:attachment_update", ADMIN_OR_MEMBER,
               "Update a volume attachment with a host connector.",
               [("PUT", "/attachments/{attachment_id}")]),
    documented("volume:attachment_delete", ADMIN_OR_MEMBER, "Delete a volume attachment.",
               [("DELETE", "/attachments/{attachment_id}")]),
    documented("volume:attachment_complete", ADMIN_OR_MEMBER,
               "Mark a volume attachment complete (volume in-use).",
               [("POST", "/attachments/{attachment_id}/action (os-complete)")]),
]


def list_rules():
    return rules
