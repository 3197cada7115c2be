"""Access rules: one oslo.policy enforcer over ``CONF`` for every API.

Each controller action calls ``authorize(ctxt, rule)`` before it does
anything else. The defaults are registered from ``virtstack.policies``; a
policy file (``[oslo_policy] policy_file``, default ``policy.yaml``, looked
up beside the config files; reloaded when it changes) overrides any of them.

Two questions are kept apart:

* *may this caller attempt the operation?* -- these rules (403 when not);
* *which rows does it act on?* -- the ``*/api.py`` layers, which scope every
  read to the caller's project unless the context is admin (the ``admin``
  role; 404 for other projects' ids, so that ids do not leak).

So a policy file can open an operation to more roles, or close it, but it
cannot make one project's servers, volumes or images visible to another.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from oslo_policy import opts as policy_opts
from oslo_policy import policy

from virtstack import exception, policies
from virtstack.conf import CONF

# The [oslo_policy] options exist (for the sample config and for a config
# file that sets them) before the first enforcer does.
policy_opts.set_defaults(CONF)

_ENFORCER: policy.Enforcer | None = None
_LOCK = threading.Lock()


def init() -> policy.Enforcer:
    """The enforcer, made on first use from the options as they are then."""
    global _ENFORCER
    if _ENFORCER is None:
        with _LOCK:
            if _ENFORCER is None:
                enforcer = policy.Enforcer(CONF)
                enforcer.register_defaults(policies.list_rules())
                enforcer.load_rules()
                _ENFORCER = enforcer
    return _ENFORCER


def reset() -> None:
    """Forget the enforcer: the next check reads ``[oslo_policy]`` again
    (tests that change the options, a service reloading its config)."""
    global _ENFORCER
    with _LOCK:
        if _ENFORCER is not None:
            _ENFORCER.clear()
        _ENFORCER = None


def get_enforcer() -> policy.Enforcer:
    """For the oslopolicy-* tools (entry point ``oslo.policy.enforcer``):
    parses the command line's config options first, as they expect."""
    CONF([], project="virtstack")
    return init()


def _target(ctxt, target: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if target is not None:
        return target
    return {"project_id": ctxt.project_id, "user_id": ctxt.user_id}


def authorize(ctxt, rule: str, target: Mapping[str, Any] | None = None) -> None:
    """Raise ``Forbidden`` (403, naming ``rule``) unless ``rule`` allows
    ``ctxt`` (a ``RequestContext``) to act on ``target`` (default: the
    caller's own project and user). A rule that is not registered is a bug
    (``PolicyNotRegistered``, a 500)."""
    try:
        init().authorize(rule, _target(ctxt, target), ctxt, do_raise=True,
                         exc=exception.Forbidden, action=rule)
    except policy.InvalidScope:
        raise exception.Forbidden(action=rule) from None


def check(ctxt, rule: str, target: Mapping[str, Any] | None = None) -> bool:
    """Whether ``rule`` allows ``ctxt``: for what a response shows rather
    than whether the request is allowed (admin-only fields, filters)."""
    try:
        return bool(init().authorize(rule, _target(ctxt, target), ctxt))
    except policy.InvalidScope:
        return False

