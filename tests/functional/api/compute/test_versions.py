"""Version discovery and microversion negotiation of the Compute API."""

from __future__ import annotations

from virtstack.api import compute as compute_app

from .conftest import error_message

MAX = compute_app.MAX_VERSION


def _check_version_doc(doc: dict) -> None:
    assert doc["id"] == "v2.1"
    assert doc["status"] == "CURRENT"
    assert doc["min_version"] == "2.1"
    assert doc["version"] == MAX
    assert doc["updated"]
    self_links = [link["href"] for link in doc["links"] if link["rel"] == "self"]
    assert self_links == ["http://localhost/v2.1/"]
    assert doc["media-types"][0]["base"] == "application/json"


def test_discovery_without_or_with_a_token(cloud):
    for token in (None, "demo:demo", "garbage"):
        resp = cloud.request("GET", "/", token=token)
        assert resp.status_int == 200 and resp.content_type == "application/json"
        versions = resp.json["versions"]
        assert len(versions) == 1
        _check_version_doc(versions[0])
        for path in ("/v2.1/", "/v2.1"):
            resp = cloud.request("GET", path, token=token)
            assert resp.status_int == 200, path
            _check_version_doc(resp.json["version"])


def test_discovery_refuses_other_methods(cloud):
    for method, path in (("POST", "/"), ("PUT", "/v2.1/"), ("DELETE", "/v2.1")):
        resp = cloud.request(method, path, {"x": 1}, token=None)
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "HEAD"}
        assert method in error_message(resp, 405)


def _negotiated(resp) -> str:
    header = resp.headers["OpenStack-API-Version"]
    service, version = header.split()
    assert service == "compute"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == version
    return version


def test_no_header_is_the_minimum_and_both_headers_echo_it(cloud):
    resp = cloud.request("GET", "/v2.1/servers")
    assert resp.status_int == 200
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"


def test_vary_names_both_version_headers(cloud):
    resp = cloud.request("GET", "/v2.1/flavors", version="2.9")
    vary = [v.strip() for v in resp.headers["Vary"].split(",")]
    assert "OpenStack-API-Version" in vary
    assert "X-OpenStack-Nova-API-Version" in vary


def test_latest_is_the_maximum(cloud):
    for asked in ("latest", "LATEST", "Latest"):
        resp = cloud.request("GET", "/v2.1/servers", version=asked)
        assert resp.status_int == 200
        assert _negotiated(resp) == MAX, asked


def test_each_version_in_range_is_echoed(cloud):
    for minor in range(1, int(MAX.split(".")[1]) + 1):
        asked = f"2.{minor}"
        resp = cloud.request("GET", "/v2.1/servers", version=asked)
        assert resp.status_int == 200, asked
        assert _negotiated(resp) == asked


def test_legacy_header_alone_selects_the_version(cloud):
    body = {"server": {"name": "s", "flavorRef": "42", "imageRef": cloud.image_id,
                       "description": "legacy"}}
    sid = cloud.request("POST", "/v2.1/servers", body, version="2.19").json["server"]["id"]
    resp = cloud.request("GET", f"/v2.1/servers/{sid}",
                         headers={"X-OpenStack-Nova-API-Version": "2.19"})
    assert resp.status_int == 200
    assert _negotiated(resp) == "2.19"
    assert resp.json["server"]["description"] == "legacy"
    # The same request at the default version has no description field.
    assert "description" not in cloud.request("GET", f"/v2.1/servers/{sid}").json["server"]


def test_new_header_wins_over_legacy_header(cloud):
    resp = cloud.request("GET", "/v2.1/servers", version="2.3",
                         headers={"X-OpenStack-Nova-API-Version": "2.9"})
    assert _negotiated(resp) == "2.3"


def test_header_naming_services(cloud):
    for header, expected in (
            ("volume 3.5", "2.1"),                  # another service's version is not ours
            ("volume 3.5, compute 2.9", "2.9"),     # a list naming several services
            ("compute 2.9 , volume 3.5", "2.9"),
            ("Compute 2.16", "2.16"),               # the service type is case-insensitive
            ("compute", "2.1")):                    # no version given: the default
        resp = cloud.request("GET", "/v2.1/servers", headers={"OpenStack-API-Version": header})
        assert resp.status_int == 200, header
        assert _negotiated(resp) == expected, header


def test_out_of_range_version_is_406(cloud):
    for asked in ("2.1000", "2.20", "3.0", "1.1", "2.0"):
        resp = cloud.request("GET", "/v2.1/servers", version=asked)
        message = error_message(resp, 406)
        assert asked in message
        assert "2.1" in message and MAX in message


def test_malformed_version_is_400(cloud):
    for asked in ("2.x", "abc", "2", "2.01", "2.1.1", "-2.1", "2..1", "v2.1"):
        resp = cloud.request("GET", "/v2.1/servers", version=asked)
        assert asked in error_message(resp, 400), asked
    resp = cloud.request("GET", "/v2.1/servers", headers={"X-OpenStack-Nova-API-Version": "two"})
    assert "two" in error_message(resp, 400)


def test_error_responses_carry_version_and_request_id(cloud):
    resp = cloud.request("GET", "/v2.1/servers/does-not-exist", version="2.9")
    error_message(resp, 404)
    assert _negotiated(resp) == "2.9"
    assert resp.headers["X-OpenStack-Request-Id"].startswith("req-")
