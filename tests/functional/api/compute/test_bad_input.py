"""Bad input of every kind gets a 4xx with the OpenStack error body and a
message naming the problem, never a 500, and creates nothing.

Each test walks a table of cases on one cloud and reports every case that
went wrong at once."""

from __future__ import annotations

import json

import pytest

from virtstack.api import wsgi

from .conftest import ADMIN, error_message

MISSING = "00000000-0000-4000-8000-000000000000"


def _check(cloud, cases, path="/v2.1/servers", method="POST"):
    """``cases``: (label, body or raw bytes, status, words the message names)."""
    wrong = []
    for label, body, status, words in cases:
        kwargs = {"raw": body} if isinstance(body, bytes) else {"body": body}
        resp = cloud.request(method, path, **kwargs)
        try:
            message = error_message(resp, status)
        except AssertionError as exc:
            wrong.append((label, str(exc)[:300]))
            continue
        missing = [w for w in words if w.lower() not in message.lower()]
        if missing:
            wrong.append((label, f"message {message!r} does not name {missing}"))
    assert wrong == [], "\n".join(map(str, wrong))


def _server(cloud, **fields):
    server = {"name": "bad", "flavorRef": "42", "imageRef": cloud.image_id}
    for key, value in fields.items():
        if value is _DROP:
            server.pop(key)
        else:
            server[key] = value
    return {"server": server}


_DROP = object()


@pytest.fixture
def nothing_created(cloud):
    yield
    listed = cloud.request("GET", "/v2.1/servers/detail?all_tenants=1", token=ADMIN)
    assert listed.json["servers"] == []
    assert cloud.driver.list_instances() == []


def test_malformed_and_non_object_bodies(cloud, nothing_created):
    _check(cloud, [
        ("malformed", b'{"server": {"name": ', 400, ["malformed"]),
        ("not utf-8", b"\xff\xfe\x00", 400, ["malformed"]),
        ("empty", b"", 400, ["empty"]),
        ("list", b"[]", 400, ["object"]),
        ("string", b'"server"', 400, ["object"]),
        ("number", b"42", 400, ["object"]),
        ("null", b"null", 400, ["object"]),
        ("server is a list", {"server": []}, 400, ["server", "object"]),
        ("server is null", {"server": None}, 400, ["server"]),
        ("no server key", {}, 400, ["server"]),
        ("unknown top-level key", {**_server(cloud), "extra": 1}, 400, ["extra"]),
        ("nested too deeply", b"[" * 100_000 + b"]" * 100_000, 400, ["malformed"]),
        ("NUL in a name", _server(cloud, name="a\x00b"), 400, ["NUL"]),
        ("NUL in metadata", _server(cloud, metadata={"k": "\x00"}), 400, ["NUL"]),
    ])


def test_bad_urls_and_query_strings(cloud):
    wrong = []
    for path, status, word in (
            ("/v2.1/servers?image=%FF", 400, "UTF-8"),
            ("/v2.1/servers/detail?status=%FF%FE", 400, "UTF-8"),
            ("/v2.1/servers?name=%00", 400, "NUL"),
            ("/v2.1/servers/%00", 400, "NUL"),
            ("/v2.1/flavors/a%00b", 400, "NUL"),
            ("/v2.1/servers?changes-since=0001-01-01T00:00:00%2B05:00", 400, "changes-since"),
            ("/v2.1/servers?changes-since=", 400, "changes-since"),
            ("/v2.1/flavors?minRam=99999999999999999999", 400, "minRam"),
            ("/v2.1/flavors?minDisk=99999999999999999999", 400, "minDisk")):
        resp = cloud.request("GET", path, token=ADMIN)
        try:
            assert word in error_message(resp, status)
        except AssertionError as exc:
            wrong.append((path, str(exc)[:200]))
    assert wrong == []
    resp = cloud.request("GET", "/v2.1/servers?all_tenants=1&project_id=", token=ADMIN)
    assert resp.status_int == 200 and resp.json == {"servers": []}


def test_wrong_content_type_is_415(cloud, nothing_created):
    body = json.dumps({"server": {"name": "x"}}).encode()
    for method, path in (("POST", "/v2.1/servers"), ("PUT", f"/v2.1/servers/{MISSING}"),
                         ("POST", f"/v2.1/servers/{MISSING}/action"), ("POST", "/v2.1/flavors")):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            resp = cloud.request(method, path, raw=body, headers={"Content-Type": ctype},
                                 token=ADMIN)
            assert ctype in error_message(resp, 415), (method, path)


def test_wrong_types_for_each_create_field(cloud, nothing_created):
    s = lambda **kw: _server(cloud, **kw)  # noqa: E731
    _check(cloud, [
        ("name int", s(name=123), 400, ["name"]),
        ("name null", s(name=None), 400, ["name"]),
        ("flavorRef object", s(flavorRef={}), 400, ["flavorRef"]),
        ("flavorRef list", s(flavorRef=["42"]), 400, ["flavorRef"]),
        ("flavorRef empty", s(flavorRef=""), 400, ["flavorRef"]),
        ("imageRef int", s(imageRef=5), 400, ["imageRef"]),
        ("imageRef null", s(imageRef=None), 400, ["imageRef"]),
        ("metadata string", s(metadata="a=b"), 400, ["metadata"]),
        ("min_count text", s(min_count="abc"), 400, ["min_count"]),
        ("min_count zero", s(min_count=0), 400, ["min_count"]),
        ("min_count zero string", s(min_count="0"), 400, ["min_count"]),
        ("max_count zero string", s(max_count="0"), 400, ["max_count"]),
        ("max_count negative", s(max_count=-1), 400, ["max_count"]),
        ("min over max", s(min_count=3, max_count=2), 400, ["min_count"]),
        ("min_count float", s(min_count=1.5), 400, ["min_count"]),
        ("accessIPv4", s(accessIPv4="1.2.3"), 400, ["accessIPv4"]),
        ("accessIPv6", s(accessIPv6="zz::zz::1"), 400, ["accessIPv6"]),
        ("config_drive text", s(config_drive="maybe"), 400, ["config_drive"]),
        ("config_drive int", s(config_drive=5), 400, ["config_drive"]),
        ("user_data int", s(user_data=5), 400, ["user_data"]),
        ("user_data not base64", s(user_data="not base64!"), 400, ["user_data", "base64"]),
        ("availability_zone empty", s(availability_zone=""), 400, ["availability_zone"]),
        ("availability_zone unknown", s(availability_zone="moon"), 400,
         ["availability_zone", "moon"]),
        ("key_name empty", s(key_name=""), 400, ["key_name"]),
        ("networks", s(networks=[{"uuid": MISSING}]), 400, ["networks"]),
        ("networks string", s(networks="auto"), 400, ["networks"]),
        ("security_groups string", s(security_groups="default"), 400, ["security_groups"]),
        ("return_reservation_id", s(return_reservation_id="maybe"), 400,
         ["return_reservation_id"]),
        ("diskConfig", s(**{"OS-DCF:diskConfig": "BAD"}), 400, ["diskConfig"]),
        ("adminPass int", s(adminPass=1), 400, ["adminPass"]),
        ("personality", s(personality=[{"path": "/etc/x", "contents": ""}]), 400,
         ["personality"]),
        ("bdm v2", s(block_device_mapping_v2=[{"boot_index": 0}]), 400,
         ["block_device_mapping_v2"]),
        ("unknown server field", s(colour="blue"), 400, ["colour"]),
        ("description before 2.19", s(description="x"), 400, ["description"]),
    ])


def test_missing_and_unknown_references(cloud, nothing_created):
    s = lambda **kw: _server(cloud, **kw)  # noqa: E731
    _check(cloud, [
        ("no name", s(name=_DROP), 400, ["name"]),
        ("no flavorRef", s(flavorRef=_DROP), 400, ["flavorRef"]),
        ("no imageRef", s(imageRef=_DROP), 400, ["imageRef"]),
        ("unknown flavor", s(flavorRef="999"), 400, ["999"]),
        ("unknown flavor URL", s(flavorRef="http://localhost/flavors/998"), 400, ["998"]),
        ("huge flavor number", s(flavorRef=10 ** 30), 400, [str(10 ** 30)]),
        ("unknown image", s(imageRef=MISSING), 400, [MISSING]),
        ("image not a uuid", s(imageRef="cirros"), 400, ["cirros"]),
    ])


def test_bad_names(cloud, nothing_created):
    s = lambda name: _server(cloud, name=name)  # noqa: E731
    _check(cloud, [
        ("256 chars", s("x" * 256), 400, ["name", "long"]),
        ("empty", s(""), 400, ["name"]),
        ("blank", s("   "), 400, ["name"]),
        ("leading space", s(" web"), 400, ["name", "whitespace"]),
        ("trailing space", s("web "), 400, ["name", "whitespace"]),
        ("trailing newline", s("web\n"), 400, ["name"]),
    ])


def test_longest_name_is_accepted(cloud):
    resp = cloud.request("POST", "/v2.1/servers", _server(cloud, name="x" * 255))
    assert resp.status_int == 202


def test_bad_metadata(cloud, conf, nothing_created):
    conf.config(metadata_items=3, group="quota")
    s = lambda md: _server(cloud, metadata=md)  # noqa: E731
    _check(cloud, [
        ("value int", s({"k": 1}), 400, ["metadata"]),
        ("value null", s({"k": None}), 400, ["metadata"]),
        ("value too long", s({"k": "v" * 256}), 400, ["metadata"]),
        ("key too long", s({"k" * 256: "v"}), 400, ["metadata"]),
        ("key empty", s({"": "v"}), 400, ["metadata"]),
        ("key with slash", s({"a/b": "v"}), 400, ["metadata"]),
        ("list", s(["k", "v"]), 400, ["metadata"]),
        ("too many items", s({f"k{i}": "v" for i in range(4)}), 403, ["metadata"]),
    ])


def test_bad_update_bodies(cloud):
    sid = cloud.create_server()
    _check(cloud, [
        ("no server", {}, 400, ["server"]),
        ("name too long", {"server": {"name": "x" * 256}}, 400, ["name"]),
        ("name spaces", {"server": {"name": " x "}}, 400, ["name"]),
        ("unknown field", {"server": {"flavorRef": "1"}}, 400, ["flavorRef"]),
        ("accessIPv4", {"server": {"accessIPv4": "300.1.1.1"}}, 400, ["accessIPv4"]),
        ("server list", {"server": []}, 400, ["server"]),
        ("malformed", b"{", 400, ["malformed"]),
    ], path=f"/v2.1/servers/{sid}", method="PUT")
    assert cloud.request("GET", f"/v2.1/servers/{sid}").json["server"]["name"] == "srv"


def test_bad_action_bodies(cloud):
    sid = cloud.create_server()
    cloud.wait_for_status(sid, "ACTIVE")
    _check(cloud, [
        ("unknown action", {"frobnicate": None}, 400, ["frobnicate"]),
        ("two actions", {"os-stop": None, "pause": None}, 400, ["one"]),
        ("no action", {}, 400, ["one"]),
        ("list", [], 400, ["object"]),
        ("stop with args", {"os-stop": {"force": True}}, 400, ["os-stop"]),
        ("pause with args", {"pause": {"x": 1}}, 400, ["pause"]),
        ("pause with a string", {"pause": "now"}, 400, ["pause"]),
        ("reboot type unknown", {"reboot": {"type": "MEDIUM"}}, 400, ["MEDIUM"]),
        ("reboot no type", {"reboot": {}}, 400, ["type"]),
        ("reboot null", {"reboot": None}, 400, ["reboot"]),
        ("reboot extra arg", {"reboot": {"type": "HARD", "force": 1}}, 400, ["force"]),
        ("console length text", {"os-getConsoleOutput": {"length": "abc"}}, 400, ["length"]),
        ("console length -2", {"os-getConsoleOutput": {"length": -2}}, 400, ["length"]),
        ("console length float", {"os-getConsoleOutput": {"length": 1.5}}, 400, ["length"]),
        ("console extra arg", {"os-getConsoleOutput": {"lines": 1}}, 400, ["lines"]),
        ("malformed", b"{'os-stop': None}", 400, ["malformed"]),
    ], path=f"/v2.1/servers/{sid}/action")
    server = cloud.request("GET", f"/v2.1/servers/{sid}").json["server"]
    assert server["status"] == "ACTIVE"
    actions = cloud.request("GET", f"/v2.1/servers/{sid}/os-instance-actions").json
    assert [a["action"] for a in actions["instanceActions"]] == ["create"]


def test_unknown_server_is_404(cloud):
    for method, path, body in (
            ("GET", f"/v2.1/servers/{MISSING}", None),
            ("PUT", f"/v2.1/servers/{MISSING}", {"server": {"name": "x"}}),
            ("DELETE", f"/v2.1/servers/{MISSING}", None),
            ("POST", f"/v2.1/servers/{MISSING}/action", {"os-stop": None}),
            ("POST", f"/v2.1/servers/{MISSING}/action", {"reboot": {"type": "HARD"}}),
            ("POST", f"/v2.1/servers/{MISSING}/action", {"os-getConsoleOutput": {}}),
            ("GET", f"/v2.1/servers/{MISSING}/os-instance-actions", None),
            ("GET", f"/v2.1/servers/{MISSING}/os-instance-actions/req-1", None)):
        assert MISSING in error_message(cloud.request(method, path, body), 404), (method, path)
    assert "not-a-uuid" in error_message(cloud.request("GET", "/v2.1/servers/not-a-uuid"), 404)


def test_wrong_method_is_405_with_allow(cloud):
    for method, path, allowed in (
            ("PATCH", "/v2.1/servers", {"GET", "POST"}),
            ("DELETE", "/v2.1/servers", {"GET", "POST"}),
            ("POST", f"/v2.1/servers/{MISSING}", {"GET", "PUT", "DELETE"}),
            ("GET", f"/v2.1/servers/{MISSING}/action", {"POST"}),
            ("PUT", "/v2.1/flavors/42", {"GET", "DELETE"}),
            ("POST", "/v2.1/limits", {"GET"})):
        resp = cloud.request(method, path, token=ADMIN)
        assert method in error_message(resp, 405), path
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed, path


def test_unknown_url_is_404(cloud):
    for path in ("/v2.1/server", "/v2.1/servers/x/y/z", "/v2.1/flavors/42/x",
                 "/v2.1/os-keypairs", "/v2"):
        assert path in error_message(cloud.request("GET", path), 404)


def test_body_over_one_mib_is_413(cloud, nothing_created):
    big = json.dumps({"server": {"name": "x", "flavorRef": "42", "imageRef": cloud.image_id,
                                 "user_data": "A" * (wsgi.MAX_BODY + 10)}}).encode()
    assert "large" in error_message(cloud.request("POST", "/v2.1/servers", raw=big), 413)
    sid = cloud.request("GET", "/v2.1/servers")  # the service is still fine
    assert sid.status_int == 200
