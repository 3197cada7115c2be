"""``[identity] mode = keystone`` settings, checked at start-up, and the
``keystone`` strategy picking its validator by mode (no Keystone needed)."""

from __future__ import annotations

import pytest
import webob
from keystoneauth1 import loading as ks_loading

from virtstack import exception, identity
from virtstack.api import auth

URL = "http://127.0.0.1:1/v3"  # nothing listens: these tests never call Keystone


@pytest.fixture
def keystone_mode(conf):
    conf.config(mode="keystone", group="identity")
    conf.register_opts(ks_loading.get_auth_plugin_conf_options("password"),
                       group="keystone_authtoken")
    conf.config(www_authenticate_uri=URL, auth_type="password", auth_url=URL,
                username="virtstack", password="secret", user_domain_name="Default",
                project_name="service", project_domain_name="Default",
                group="keystone_authtoken")
    return conf


def _refused(match: str) -> None:
    with pytest.raises(exception.ConfigError, match=match):
        identity.check_config()


def test_a_complete_configuration_passes(keystone_mode):
    identity.check_config()
    assert not identity.embedded()
    assert identity.external_keystone_url() == URL


@pytest.mark.parametrize("option, message", [
    ("www_authenticate_uri", r"needs \[keystone_authtoken\] www_authenticate_uri"),
    ("auth_type", r"needs \[keystone_authtoken\] auth_type"),
    ("auth_url", r"auth_type 'password' needs auth_url"),
])
def test_a_missing_option_is_named(keystone_mode, option, message):
    keystone_mode.config(**{option: None}, group="keystone_authtoken")
    _refused(message)


def test_an_unknown_auth_plugin_is_named(keystone_mode):
    keystone_mode.config(auth_type="no-such-plugin", group="keystone_authtoken")
    _refused("auth_type 'no-such-plugin' is not a keystoneauth plugin")


def test_embedded_mode_needs_no_keystone_options(conf):
    conf.config(www_authenticate_uri=None, auth_type=None, group="keystone_authtoken")
    identity.check_config()
    assert identity.embedded()


def _app(req):
    return webob.Response(json={"context_user": req.environ["virtstack.context"].user_id})


def test_the_keystone_strategy_picks_its_validator_by_mode(conf, keystone_mode):
    wrapped = auth.wrap(webob.dec.wsgify(_app), "keystone", lambda path: path == "/")
    assert isinstance(wrapped, auth.ExternalKeystoneAuth)
    conf.config(mode="embedded", group="identity")
    wrapped = auth.wrap(webob.dec.wsgify(_app), "keystone", lambda path: path == "/")
    assert isinstance(wrapped, auth.KeystoneAuth)


def test_public_paths_pass_and_no_token_is_401(keystone_mode):
    public = webob.Response(json={"versions": []})
    wrapped = auth.wrap(lambda environ, start: public(environ, start), "keystone",
                        lambda path: path == "/")
    assert webob.Request.blank("/").get_response(wrapped).status_int == 200
    resp = webob.Request.blank("/v2.1/servers").get_response(wrapped)
    assert resp.status_int == 401
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{URL}"'


def test_with_delay_auth_decision_virtstack_refuses_itself(keystone_mode):
    """keystonemiddleware then passes unauthenticated requests on
    (X-Identity-Status: Invalid); the strategy answers 401 itself, and a
    client's forged identity headers do not count."""
    keystone_mode.config(delay_auth_decision=True, group="keystone_authtoken")
    wrapped = auth.wrap(webob.dec.wsgify(_app), "keystone", lambda path: False)
    req = webob.Request.blank("/v2.1/servers", headers={
        "X-Identity-Status": "Confirmed", "X-User-Id": "mallory", "X-Project-Id": "p1",
        "X-Roles": "admin"})
    resp = req.get_response(wrapped)
    assert resp.status_int == 401, resp.text
    assert "X-Auth-Token" in resp.json["unauthorized"]["message"]
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{URL}"'
