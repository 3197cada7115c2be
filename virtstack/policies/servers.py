"""Compute API: /servers, their actions, consoles, volume attachments and
instance actions (Nova's rule names)."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, ADMIN_OR_READER, RULE_ADMIN_API, documented

SERVERS = "os_compute_api:servers:%s"
ACTION = "/servers/{server_id}/action (%s)"

rules = [
    documented(SERVERS % "index", ADMIN_OR_READER, "List the project's servers.",
               [("GET", "/servers")]),
    documented(SERVERS % "detail", ADMIN_OR_READER, "List the project's servers with details.",
               [("GET", "/servers/detail")]),
    documented(SERVERS % "index:get_all_tenants", RULE_ADMIN_API,
               "List servers of every project (all_tenants).",
               [("GET", "/servers?all_tenants=1")]),
    documented(SERVERS % "detail:get_all_tenants", RULE_ADMIN_API,
               "List servers of every project with details (all_tenants).",
               [("GET", "/servers/detail?all_tenants=1")]),
    documented(SERVERS % "allow_all_filters", RULE_ADMIN_API,
               "Filter server lists by host, node, project_id, user_id, vm_state, "
               "task_state and deleted (others' filters are ignored).",
               [("GET", "/servers"), ("GET", "/servers/detail")]),
    documented(SERVERS % "show", ADMIN_OR_READER, "Show a server.",
               [("GET", "/servers/{server_id}")]),
    documented(SERVERS % "create", ADMIN_OR_MEMBER, "Create servers.",
               [("POST", "/servers")]),
    documented(SERVERS % "create:attach_volume", ADMIN_OR_MEMBER,
               "Create a server with block device mappings (boot from volume).",
               [("POST", "/servers")]),
    documented(SERVERS % "update", ADMIN_OR_MEMBER, "Update a server.",
               [("PUT", "/servers/{server_id}")]),
    documented(SERVERS % "delete", ADMIN_OR_MEMBER, "Delete a server.",
               [("DELETE", "/servers/{server_id}")]),
    documented(SERVERS % "start", ADMIN_OR_MEMBER, "Start a server.",
               [("POST", ACTION % "os-start")]),
    documented(SERVERS % "stop", ADMIN_OR_MEMBER, "Stop a server.",
               [("POST", ACTION % "os-stop")]),
    documented(SERVERS % "reboot", ADMIN_OR_MEMBER, "Reboot a server.",
               [("POST", ACTION % "reboot")]),
    documented(SERVERS % "create_image", ADMIN_OR_MEMBER, "Snapshot a server to an image.",
               [("POST", ACTION % "createImage")]),
    documented("os_compute_api:os-pause-server:pause", ADMIN_OR_MEMBER, "Pause a server.",
               [("POST", ACTION % "pause")]),
    documented("os_compute_api:os-pause-server:unpause", ADMIN_OR_MEMBER, "Unpause a server.",
               [("POST", ACTION % "unpause")]),
    documented("os_compute_api:os-suspend-server:suspend", ADMIN_OR_MEMBER,
               "Suspend a server.", [("POST", ACTION % "suspend")]),
    documented("os_compute_api:os-suspend-server:resume", ADMIN_OR_MEMBER,
               "Resume a suspended server.", [("POST", ACTION % "resume")]),
    documented("os_compute_api:os-console-output", ADMIN_OR_MEMBER,
               "Show a server's console output.",
               [("POST", ACTION % "os-getConsoleOutput")]),
    documented("os_compute_api:os-remote-consoles", ADMIN_OR_MEMBER,
               "Get a remote console address for a server.",
               [("POST", ACTION % "os-getVNCConsole"),
                ("POST", "/servers/{server_id}/remote-consoles")]),
    documented("os_compute_api:os-extended-server-attributes", RULE_ADMIN_API,
               "Show a server's host, hypervisor, instance name, host_status and "
               "fault details.",
               [("GET", "/servers/{server_id}"), ("GET", "/servers/detail"),
                ("PUT", "/servers/{server_id}")]),
    documented("os_compute_api:os-volumes-attachments:index", ADMIN_OR_READER,
               "List the volumes attached to a server.",
               [("GET", "/servers/{server_id}/os-volume_attachments")]),
    documented("os_compute_api:os-volumes-attachments:show", ADMIN_OR_READER,
               "Show a volume attachment of a server.",
               [("GET", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    documented("os_compute_api:os-volumes-attachments:create", ADMIN_OR_MEMBER,
               "Attach a volume to a server.",
               [("POST", "/servers/{server_id}/os-volume_attachments")]),
    documented("os_compute_api:os-volumes-attachments:update", ADMIN_OR_MEMBER,
               "Update a volume attachment (swapping volumes is not offered).",
               [("PUT", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    documented("os_compute_api:os-volumes-attachments:delete", ADMIN_OR_MEMBER,
               "Detach a volume from a server.",
               [("DELETE", "/servers/{server_id}/os-volume_attachments/{volume_id}")]),
    documented("os_compute_api:os-instance-actions:list", ADMIN_OR_READER,
               "List a server's actions.",
               [("GET", "/servers/{server_id}/os-instance-actions")]),
    documented("os_compute_api:os-instance-actions:show", ADMIN_OR_READER,
               "Show a server's action and its events.",
               [("GET", "/servers/{server_id}/os-instance-actions/{request_id}")]),
    documented("os_compute_api:os-instance-actions:events:details", RULE_ADMIN_API,
               "Show the tracebacks of an action's events.",
               [("GET", "/servers/{server_id}/os-instance-actions/{request_id}")]),
]


def list_rules():
    return rules
