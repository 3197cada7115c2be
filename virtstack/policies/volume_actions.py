"""Block Storage API: POST /volumes/{volume_id}/action (Cinder's rule
names). ``ACTIONS`` maps each action the API offers to its rule: an action
without a rule cannot be offered."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, RULE_ADMIN_API, documented

_PATH = "/volumes/{volume_id}/action (%s)"

#: action name -> rule name.
ACTIONS = {
    "os-extend": "volume:extend",
    "os-reserve": "volume_extension:volume_actions:reserve",
    "os-unreserve": "volume_extension:volume_actions:unreserve",
    "os-begin_detaching": "volume_extension:volume_actions:begin_detaching",
    "os-roll_detaching": "volume_extension:volume_actions:roll_detaching",
    "os-attach": "volume_extension:volume_actions:attach",
    "os-detach": "volume_extension:volume_actions:detach",
    "os-initialize_connection": "volume_extension:volume_actions:initialize_connection",
    "os-terminate_connection": "volume_extension:volume_actions:terminate_connection",
    "os-reset_status": "volume_extension:volume_admin_actions:reset_status",
    "os-force_delete": "volume_extension:volume_admin_actions:force_delete",
    "os-set_bootable": "volume:update",
    "os-update_readonly_flag": "volume:update_readonly_flag",
}

_DESCRIPTIONS = {
    "os-extend": "Extend a volume.",
    "os-reserve": "Mark a volume reserved (legacy attach).",
    "os-unreserve": "Unmark a reserved volume (legacy attach).",
    "os-begin_detaching": "Begin detaching a volume.",
    "os-roll_detaching": "Roll a detaching volume back to in-use.",
    "os-attach": "Record a volume's attachment (legacy attach).",
    "os-detach": "Clear a volume's attachment (legacy attach).",
    "os-initialize_connection": "Initialize a volume's connection to a host.",
    "os-terminate_connection": "Terminate a volume's connection to a host.",
    "os-reset_status": "Reset a volume's status words without any check.",
    "os-force_delete": "Delete a volume whatever its status.",
    "os-update_readonly_flag": "Set a volume's readonly flag.",
}

_ADMIN_ONLY = ("os-reset_status", "os-force_delete")

# os-set_bootable is governed by volume:update (volumes.py), as in Cinder.
rules = [
    documented(ACTIONS[action], RULE_ADMIN_API if action in _ADMIN_ONLY else ADMIN_OR_MEMBER,
               description, [("POST", _PATH % action)])
    for action, description in _DESCRIPTIONS.items()
]


def list_rules():
    return rules
