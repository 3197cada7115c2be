"""The check strings every API's rules are built from, and the named base
rules they refer to.

Roles are the embedded identity's implied roles (admin > member > reader):
an admin token also lists ``member`` and ``reader``. ``%(project_id)s`` is
the project of the target, which the controllers pass as the caller's own
project (the ``*/api.py`` layers then answer 404 for other projects' ids).

The per-API modules refer to the base rules by name (``rule:...``), so a
policy file that redefines, say, ``project_member_api`` changes every
project-member operation at once.
"""

from __future__ import annotations

from oslo_policy import policy

#: Check strings (the defaults of the base rules below).
ADMIN = "role:admin"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
#: Anyone with a valid token (operations on shared, read-only resources).
ANY = "@"

#: References to the base rules: what the per-API modules use.
RULE_ADMIN_API = "rule:admin_api"
ADMIN_OR_READER = "rule:project_reader_or_admin"
ADMIN_OR_MEMBER = "rule:project_member_or_admin"
#: Cinder's name for the same default.
ADMIN_OR_OWNER = ADMIN_OR_MEMBER

#: Every rule of virtstack applies to project-scoped tokens (the only kind
#: the Compute, Block Storage and Image APIs accept).
SCOPE = ["project"]

rules = [
    policy.RuleDefault(
        "admin_api", ADMIN,
        description="Default rule for administrative operations. (Which projects' "
                    "rows a request reads is decided by the 'admin' role itself, "
                    "not by this rule.)"),
    policy.RuleDefault("project_reader_api", PROJECT_READER,
                       description="A reader (or more) of the target's project."),
    policy.RuleDefault("project_member_api", PROJECT_MEMBER,
                       description="A member (or more) of the target's project."),
    policy.RuleDefault("project_reader_or_admin", "rule:project_reader_api or rule:admin_api",
                       description="Default rule for reading a project's resources."),
    policy.RuleDefault("project_member_or_admin", "rule:project_member_api or rule:admin_api",
                       description="Default rule for creating, changing and deleting a "
                                   "project's resources."),
]


def documented(name: str, check_str: str, description: str,
               operations: list[tuple[str, str]]) -> policy.DocumentedRuleDefault:
    """A rule of one API operation: ``operations`` are (method, path) pairs
    as the API reference writes them."""
    return policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description,
        operations=[{"method": method, "path": path} for method, path in operations],
        scope_types=SCOPE)


def list_rules() -> list[policy.RuleDefault]:
    return rules
