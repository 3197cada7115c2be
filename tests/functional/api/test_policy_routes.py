"""Every route of every API checks a policy rule before it does anything.

The routes are read from the apps' routers (not listed here), each is
called as an admin under a policy file that denies every rule, and each
must answer 403 naming a registered rule: a route added without an
``authorize`` call answers something else (200, 400, 404) and fails this
test. Action routes are called once per action their controller offers.
The few routes that deliberately have no rule are listed with the reason.
"""

from __future__ import annotations

import json
import re

import pytest
import webob
import yaml

from tests.functional.api.identity.conftest import identity  # noqa: F401  (fixture)
from virtstack import policies, policy
from virtstack.api import wsgi
from virtstack.api.compute import servers
from virtstack.api.image import ImageApp
from virtstack.api.volume import actions as volume_actions_api
from virtstack.policies import volume_actions

#: Routes without a rule, and why (every other route must have one).
UNPROTECTED = {
    ("identity", "POST", "/v3/auth/tokens"): "authentication itself: it takes no token",
    ("image", "GET", "/v2/schemas/image"): "the API's own schema documents (Glance has no "
                                           "rule for them either)",
    ("image", "GET", "/v2/schemas/images"): "the API's own schema documents",
    ("image", "GET", "/v2/info/import"): "the import methods offered (none): a document",
}

#: The actions each action route offers (the controllers' own tables).
ACTIONS = {
    ("compute", "/v2.1/servers/{server_id}/action"): sorted(servers.ACTION_RULES),
    ("volume", "/v3/volumes/{volume_id}/action"): sorted(volume_actions.ACTIONS),
    ("volume", "/v3/snapshots/{snapshot_id}/action"): ["os-reset_status"],
    ("volume", "/v3/attachments/{attachment_id}/action"): ["os-complete"],
}

#: Rules checked only for part of a request (a parameter, a field of the
#: answer): no route's first check. Every other registered rule must be
#: some route's.
CONDITIONAL = {
    "os_compute_api:servers:index:get_all_tenants", "os_compute_api:servers:detail:get_all_tenants",
    "os_compute_api:servers:allow_all_filters", "os_compute_api:servers:create:attach_volume",
    "os_compute_api:os-extended-server-attributes", "os_compute_api:limits:other_project",
    "os_compute_api:os-instance-actions:events:details", "volume:force_delete",
    "volume_extension:volume_host_attribute", "publicize_image", "communitize_image",
}

VERSIONS = {"compute": "compute 2.19", "volume": "volume 3.67"}
_DENIED = re.compile(r"^Policy doesn't allow (\S+) to be performed\.$")


@pytest.fixture
def deny_everything(conf, tmp_path):
    """A policy file that sets every registered rule to "!" (never)."""
    path = tmp_path / "deny.yaml"
    path.write_text(yaml.safe_dump({r.name: "!" for r in policies.list_rules()}))
    conf.config(policy_file=str(path), group="oslo_policy")
    policy.reset()
    yield path
    policy.reset()


@pytest.fixture
def apps(cloud, identity):  # noqa: F811  (the identity fixture)
    return {"compute": cloud.app, "volume": cloud.volume_app, "image": ImageApp(),
            "identity": identity.app}


def _routes(app) -> list[tuple[str, str]]:
    router = app.router
    assert isinstance(router, wsgi.Router)
    return [(r.conditions["method"][0], r.routepath) for r in router.mapper.matchlist]


def _message(resp: webob.Response) -> str:
    body = resp.json
    if "message" in body:          # Image API
        return body["message"]
    if "error" in body:            # Identity API
        return body["error"]["message"]
    (inner,) = body.values()       # Compute, Block Storage
    return inner["message"]


def _call(api: str, app, method: str, path: str, body, token: str) -> webob.Response:
    req = webob.Request.blank(path, method=method)
    req.headers["X-Auth-Token"] = token
    # The token routes act on a subject token: the caller's own.
    req.headers["X-Subject-Token"] = token
    if api in VERSIONS:
        req.headers["OpenStack-API-Version"] = VERSIONS[api]
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    return req.get_response(app)


def test_every_route_checks_a_rule(apps, identity, deny_everything):  # noqa: F811
    tokens = {"compute": "admin:admin", "volume": "admin:admin", "image": "admin:admin",
              "identity": identity.token()}
    registered = {r.name for r in policies.list_rules()}
    seen: set[str] = set()
    wrong = []
    count = 0
    for api, app in apps.items():
        routes = _routes(app)
        assert len(routes) > 5, (api, routes)
        for method, template in routes:
            path = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", template)
            if (api, method, template) in UNPROTECTED:
                continue
            bodies = [{name: None} for name in ACTIONS.get((api, template), [])] or [
                {} if method in ("POST", "PUT", "PATCH") else None]
            for body in bodies:
                count += 1
                resp = _call(api, app, method, path, body, tokens[api])
                if resp.status_int != 403:
                    wrong.append((api, method, template, body, resp.status, resp.text[:150]))
                    continue
                if method == "HEAD":
                    continue  # no body to name the rule
                match = _DENIED.match(_message(resp))
                if match is None or match.group(1) not in registered:
                    wrong.append((api, method, template, body, _message(resp)))
                else:
                    seen.add(match.group(1))
    assert wrong == []
    assert count > 100
    # Every rule is some route's (HEAD routes named theirs in no body).
    base = {r.name for r in policies.base.list_rules()}
    unused = registered - seen - base - CONDITIONAL - {"identity:check_token",
                                                         "identity:check_grant"}
    assert unused == set()


def test_unprotected_routes_are_the_listed_ones_and_answer(apps, identity,  # noqa: F811
                                                            deny_everything):
    listed = {(api, method, template) for api, app in apps.items()
              for method, template in _routes(app)}
    assert set(UNPROTECTED) <= listed
    for api, method, path in UNPROTECTED:
        if method == "POST":
            continue  # issuing a token is the identity tests' business
        resp = _call(api, apps[api], method, path, None, "admin:admin")
        assert resp.status_int == 200, (path, resp.text)


def test_action_tables_match_the_controllers(cloud):
    # An action with a handler but no rule is not offered; a rule for an
    # action without a handler is dead.
    controller = volume_actions_api.VolumeActionsController(cloud.volume_app.api)
    assert set(controller.handlers) == set(volume_actions.ACTIONS)
    registered = {r.name for r in policies.list_rules()}
    assert set(volume_actions.ACTIONS.values()) <= registered
    assert set(servers.ACTION_RULES.values()) <= registered
    resp = cloud.request("POST", f"/v2.1/servers/{'0' * 32}/action", {"os-migrateLive": None})
    assert resp.status_int == 400 and "not supported" in resp.text
