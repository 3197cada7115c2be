"""Fixtures for the Identity API tests: a bootstrapped identity service, its
WSGI app, a clock the tests can move, and helpers for tokens and errors."""

from __future__ import annotations

import datetime
import json

import pytest
import webob

from virtstack.api.identity import IdentityApp
from virtstack.identity import bootstrap, tokens


class Clock:
    """Real time plus an offset the test moves (token expiry)."""

    def __init__(self):
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return tokens._utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += datetime.timedelta(seconds=seconds)


class Identity:
    """A bootstrapped identity service behind its WSGI app."""

    def __init__(self, app: IdentityApp, clock: Clock, accounts: dict):
        self.app, self.clock, self.accounts = app, clock, accounts
        self.provider = app.provider

    def request(self, method: str, path: str, body=None, token: str | None = None,
                headers: dict | None = None) -> webob.Response:
        req = webob.Request.blank(path, method=method)
        if token is not None:
            req.headers["X-Auth-Token"] = token
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        for key, value in (headers or {}).items():
            req.headers[key] = value
        return req.get_response(self.app)

    def password_auth(self, username: str, password: str, project: str | None = None,
                      **extra) -> webob.Response:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"id": "default"}, "password": password}}}}}
        if project is not None:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        body["auth"].update(extra)
        return self.request("POST", "/v3/auth/tokens", body)

    def token(self, username: str = "admin", project: str | None = "same",
              password: str | None = None) -> str:
        """A project-scoped token (``project`` 'same': the user's namesake
        project; None: unscoped)."""
        if password is None:
            password = self.accounts[username].password
        if project is None:
            resp = self.password_auth(username, password, scope="unscoped")
        else:
            resp = self.password_auth(username, password,
                                      username if project == "same" else project)
        assert resp.status_int == 201, resp.text
        return resp.headers["X-Subject-Token"]

    def create_user(self, name: str, password: str, project: str | None = None,
                    role: str = "member") -> dict:
        """A user (with ``role`` on ``project`` if given), made through the API."""
        admin = self.token()
        resp = self.request("POST", "/v3/users", {"user": {"name": name, "password": password}},
                            token=admin)
        assert resp.status_int == 201, resp.text
        user = resp.json["user"]
        if project is not None:
            project_id = self.project_id(project, admin)
            role_id = self.request("GET", f"/v3/roles?name={role}",
                                   token=admin).json["roles"][0]["id"]
            resp = self.request("PUT", f"/v3/projects/{project_id}/users/{user['id']}/roles/"
                                       f"{role_id}", token=admin)
            assert resp.status_int == 204, resp.text
        return user

    def create_project(self, name: str) -> str:
        resp = self.request("POST", "/v3/projects", {"project": {"name": name}},
                            token=self.token())
        assert resp.status_int == 201, resp.text
        return resp.json["project"]["id"]

    def project_id(self, name: str, token: str | None = None) -> str:
        resp = self.request("GET", f"/v3/projects?name={name}", token=token or self.token())
        assert resp.status_int == 200 and len(resp.json["projects"]) == 1, resp.text
        return resp.json["projects"][0]["id"]


def identity_error(resp, status: int) -> str:
    """Assert ``resp`` is a Keystone error body for ``status``; its message."""
    assert resp.status_int == status, (resp.status, resp.text)
    assert resp.content_type == "application/json", resp.headers
    body = resp.json
    assert list(body) == ["error"], body
    assert body["error"]["code"] == status, body
    assert body["error"]["title"] and isinstance(body["error"]["title"], str), body
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip(), body
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith('Keystone uri="http'), resp.headers
    return message


@pytest.fixture
def identity(database, conf, tmp_path):
    """A bootstrapped identity service (cheap bcrypt rounds: tests hash a lot)."""
    conf.config(password_hash_rounds=4, group="identity")
    result = bootstrap.bootstrap(clouds_path=str(tmp_path / "clouds.yaml"))
    clock = Clock()
    provider = tokens.TokenProvider(tokens.key_repository(), 3600, clock=clock)
    return Identity(IdentityApp(provider), clock, result.accounts)
