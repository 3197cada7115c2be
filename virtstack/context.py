"""Request context: who is asking, for which project, with which roles."""

from __future__ import annotations

from typing import Any

from oslo_context import context as oslo_context


class RequestContext(oslo_context.RequestContext):
    """oslo.context's context, with admin derived from roles and a
    ``can_see(project_id)`` check used for project scoping."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("is_admin", "admin" in (kwargs.get("roles") or []))
        super().__init__(*args, **kwargs)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RequestContext":
        return super().from_dict(values)

    def can_see(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id


def get_admin_context(request_id: str | None = None) -> RequestContext:
    """A context for the services' own work (periodic tasks, recovery)."""
    kwargs: dict[str, Any] = {"user_id": None, "project_id": None, "roles": ["admin"],
                              "is_admin": True, "overwrite": False}
    if request_id:
        kwargs["request_id"] = request_id
    return RequestContext(**kwargs)
