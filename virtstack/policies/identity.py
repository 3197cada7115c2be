"""Identity API v3 of the embedded identity (Keystone's rule names).

Targets are flat dictionaries with Keystone's keys (``target.user.id``,
``target.project.id``, ``target.domain.id``, ``target.token.user_id``);
the credentials are the caller's token (user, project, their domains,
roles)."""

from __future__ import annotations

from virtstack.policies.base import RULE_ADMIN_API, documented

ADMIN_OR_SELF = f"{RULE_ADMIN_API} or user_id:%(target.user.id)s"
ADMIN_OR_TOKEN_SUBJECT = f"{RULE_ADMIN_API} or user_id:%(target.token.user_id)s"
#: Anyone with a valid token, scoped or not (what Keystone says too).
EVERYONE = ""

_TOKENS = "/v3/auth/tokens"


def _admin(name: str, description: str, method: str, path: str):
    return documented(f"identity:{name}", RULE_ADMIN_API, description, [(method, path)])


rules = [
    documented("identity:validate_token", ADMIN_OR_TOKEN_SUBJECT,
               "Validate a token (one's own; any, for admins).", [("GET", _TOKENS)]),
    documented("identity:check_token", ADMIN_OR_TOKEN_SUBJECT,
               "Check a token (one's own; any, for admins).", [("HEAD", _TOKENS)]),
    documented("identity:revoke_token", ADMIN_OR_TOKEN_SUBJECT,
               "Revoke a token (one's own; any, for admins).", [("DELETE", _TOKENS)]),
    documented("identity:get_auth_projects", EVERYONE,
               "List the projects the caller may scope a token to.",
               [("GET", "/v3/auth/projects")]),
    documented("identity:get_auth_domains", EVERYONE,
               "List the domains the caller may scope a token to.",
               [("GET", "/v3/auth/domains")]),
    documented("identity:get_auth_catalog", EVERYONE,
               "Show the service catalog of the caller's project.",
               [("GET", "/v3/auth/catalog")]),
    _admin("list_domains", "List domains.", "GET", "/v3/domains"),
    documented("identity:get_domain",
               f"{RULE_ADMIN_API} or user_domain_id:%(target.domain.id)s or "
               "project_domain_id:%(target.domain.id)s",
               "Show a domain (the caller's user's or project's; any, for admins).",
               [("GET", "/v3/domains/{domain_id}")]),
    _admin("list_projects", "List projects.", "GET", "/v3/projects"),
    _admin("create_project", "Create a project.", "POST", "/v3/projects"),
    documented("identity:get_project", f"{RULE_ADMIN_API} or project_id:%(target.project.id)s",
               "Show a project (the token's; any, for admins).",
               [("GET", "/v3/projects/{project_id}")]),
    _admin("update_project", "Update a project.", "PATCH", "/v3/projects/{project_id}"),
    _admin("delete_project", "Delete a project.", "DELETE", "/v3/projects/{project_id}"),
    _admin("list_grants", "List a user's roles on a project.", "GET",
           "/v3/projects/{project_id}/users/{user_id}/roles"),
    _admin("create_grant", "Grant a user a role on a project.", "PUT",
           "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
    _admin("check_grant", "Check a user's role on a project.", "HEAD",
           "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
    _admin("revoke_grant", "Revoke a user's role on a project.", "DELETE",
           "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
    _admin("list_users", "List users.", "GET", "/v3/users"),
    _admin("create_user", "Create a user.", "POST", "/v3/users"),
    documented("identity:get_user", ADMIN_OR_SELF, "Show a user (oneself; any, for admins).",
               [("GET", "/v3/users/{user_id}")]),
    _admin("update_user", "Update a user.", "PATCH", "/v3/users/{user_id}"),
    _admin("delete_user", "Delete a user.", "DELETE", "/v3/users/{user_id}"),
    documented("identity:list_user_projects", ADMIN_OR_SELF,
               "List a user's projects (one's own; any user's, for admins).",
               [("GET", "/v3/users/{user_id}/projects")]),
    _admin("list_roles", "List roles.", "GET", "/v3/roles"),
    _admin("create_role", "Create a role.", "POST", "/v3/roles"),
    _admin("get_role", "Show a role.", "GET", "/v3/roles/{role_id}"),
    _admin("update_role", "Update a role.", "PATCH", "/v3/roles/{role_id}"),
    _admin("delete_role", "Delete a role.", "DELETE", "/v3/roles/{role_id}"),
    _admin("list_role_assignments", "List role assignments.", "GET", "/v3/role_assignments"),
]


def list_rules():
    return rules
