"""/flavors: listing, filters, paging, and admin-only management."""

from __future__ import annotations

from virtstack.db import flavor as db_flavor

from .conftest import ADMIN, DEMO, error_message

DETAIL_FIELDS = {"id", "name", "links", "ram", "disk", "vcpus", "swap", "rxtx_factor",
                 "OS-FLV-EXT-DATA:ephemeral", "OS-FLV-DISABLED:disabled",
                 "os-flavor-access:is_public"}
SEEDED = {f[0]: f for f in db_flavor.DEFAULT_FLAVORS}


def _flavors(cloud, query="", token=DEMO, detail=False):
    path = "/v2.1/flavors" + ("/detail" if detail else "") + query
    resp = cloud.request("GET", path, token=token)
    assert resp.status_int == 200, resp.text
    return resp.json["flavors"]


def _create(cloud, token=ADMIN, **fields):
    flavor = {"name": "custom", "ram": 256, "vcpus": 2, "disk": 5}
    flavor.update(fields)
    return cloud.request("POST", "/v2.1/flavors", {"flavor": flavor}, token=token)


def test_list_shows_seeded_defaults_briefly(cloud):
    flavors = _flavors(cloud)
    assert [f["id"] for f in flavors] == sorted(SEEDED)
    for f in flavors:
        assert set(f) == {"id", "name", "links"}
        assert f["name"] == SEEDED[f["id"]][1]
        assert f["links"][0] == {"rel": "self",
                                 "href": f"http://localhost/v2.1/flavors/{f['id']}"}


def test_detail_and_show(cloud):
    detail = {f["id"]: f for f in _flavors(cloud, detail=True)}
    assert set(detail) == set(SEEDED)
    for flavorid, name, vcpus, ram, disk in db_flavor.DEFAULT_FLAVORS:
        f = detail[flavorid]
        assert set(f) == DETAIL_FIELDS
        assert (f["name"], f["vcpus"], f["ram"], f["disk"]) == (name, vcpus, ram, disk)
        assert f["swap"] == "" and f["OS-FLV-EXT-DATA:ephemeral"] == 0
        assert f["os-flavor-access:is_public"] is True
        assert f["OS-FLV-DISABLED:disabled"] is False
    shown = cloud.request("GET", "/v2.1/flavors/42").json["flavor"]
    assert shown == detail["42"]
    assert "999" in error_message(cloud.request("GET", "/v2.1/flavors/999"), 404)


def test_min_ram_and_min_disk(cloud):
    assert {f["id"] for f in _flavors(cloud, "?minRam=4096")} == {"3", "4", "5"}
    assert {f["id"] for f in _flavors(cloud, "?minDisk=80")} == {"4", "5"}
    assert {f["id"] for f in _flavors(cloud, "?minRam=2048&minDisk=160", detail=True)} == {"5"}
    assert _flavors(cloud, "?minRam=999999") == []


def test_limit_marker_and_sort(cloud):
    ids = [f["id"] for f in _flavors(cloud)]
    seen, marker = [], None
    while True:
        query = "?limit=3" + (f"&marker={marker}" if marker else "")
        page = _flavors(cloud, query)
        assert len(page) <= 3
        if not page:
            break
        seen += [f["id"] for f in page]
        marker = page[-1]["id"]
    assert seen == ids
    by_ram = _flavors(cloud, "?sort_key=memory_mb&sort_dir=desc", detail=True)
    assert [f["ram"] for f in by_ram] == sorted((f[3] for f in SEEDED.values()), reverse=True)
    by_name = _flavors(cloud, "?sort_key=name&sort_dir=asc")
    assert [f["name"] for f in by_name] == sorted(f[1] for f in SEEDED.values())


def test_full_page_has_a_next_link(cloud):
    resp = cloud.request("GET", "/v2.1/flavors?limit=2")
    links = resp.json["flavors_links"]
    assert links[0]["rel"] == "next"
    assert f"marker={resp.json['flavors'][-1]['id']}" in links[0]["href"]
    assert "flavors_links" not in cloud.request("GET", "/v2.1/flavors?limit=100").json


def test_bad_list_parameters_are_400(cloud):
    for query, word in (("minRam=abc", "minRam"), ("minDisk=-1", "minDisk"),
                        ("limit=-1", "limit"), ("limit=x", "limit"), ("marker=nope", "marker"),
                        ("sort_key=colour", "sort"), ("sort_dir=sideways", "sort"),
                        ("is_public=perhaps", "is_public")):
        resp = cloud.request("GET", "/v2.1/flavors?" + query, token=ADMIN)
        assert word.lower() in error_message(resp, 400).lower(), query


def test_is_public_filter_for_admin(cloud):
    assert _create(cloud, name="private", id="p1",
                   **{"os-flavor-access:is_public": False}).status_int == 200
    public = set(SEEDED)
    assert {f["id"] for f in _flavors(cloud, token=ADMIN)} == public
    assert {f["id"] for f in _flavors(cloud, "?is_public=false", token=ADMIN)} == {"p1"}
    assert {f["id"] for f in _flavors(cloud, "?is_public=none", token=ADMIN)} == public | {"p1"}
    # Members see public flavors only, whatever they ask for.
    assert {f["id"] for f in _flavors(cloud, "?is_public=false")} == public
    assert {f["id"] for f in _flavors(cloud, "?is_public=none")} == public
    error_message(cloud.request("GET", "/v2.1/flavors/p1", token=DEMO), 404)
    assert cloud.request("GET", "/v2.1/flavors/p1", token=ADMIN).status_int == 200


def test_admin_creates_and_deletes(cloud):
    resp = _create(cloud, name="m1.custom", id="c1", swap=64, rxtx_factor=2.0,
                   **{"OS-FLV-EXT-DATA:ephemeral": 3})
    assert resp.status_int == 200
    flavor = resp.json["flavor"]
    assert set(flavor) == DETAIL_FIELDS
    assert (flavor["id"], flavor["name"], flavor["ram"], flavor["vcpus"], flavor["disk"]) == (
        "c1", "m1.custom", 256, 2, 5)
    assert flavor["swap"] == 64 and flavor["rxtx_factor"] == 2.0
    assert flavor["OS-FLV-EXT-DATA:ephemeral"] == 3
    assert cloud.request("GET", "/v2.1/flavors/c1").json["flavor"] == flavor
    sid = cloud.create_server(flavor="c1")
    cloud.wait_for_status(sid, "ACTIVE")
    resp = cloud.request("DELETE", "/v2.1/flavors/c1", token=ADMIN)
    assert resp.status_int == 202
    error_message(cloud.request("GET", "/v2.1/flavors/c1"), 404)
    error_message(cloud.request("DELETE", "/v2.1/flavors/c1", token=ADMIN), 404)
    # The server keeps the flavor it was built with.
    server = cloud.request("GET", f"/v2.1/servers/{sid}").json["server"]
    assert server["flavor"]["id"] == "c1"


def test_create_without_id_generates_one(cloud):
    resp = _create(cloud, name="auto")
    flavor_id = resp.json["flavor"]["id"]
    assert len(flavor_id) == 36
    assert "auto" in {f["name"] for f in _flavors(cloud)}


def test_members_may_not_manage_flavors(cloud):
    assert "create" in error_message(_create(cloud, token=DEMO), 403)
    assert "delete" in error_message(cloud.request("DELETE", "/v2.1/flavors/42"), 403)
    assert cloud.request("GET", "/v2.1/flavors/42").status_int == 200
    assert "custom" not in {f["name"] for f in _flavors(cloud)}


def test_duplicates_are_409(cloud):
    assert "42" in error_message(_create(cloud, id="42", name="fresh"), 409)
    assert "m1.tiny" in error_message(_create(cloud, id="fresh", name="m1.tiny"), 409)
    assert "fresh" not in {f["id"] for f in _flavors(cloud)}


def test_bad_create_input_is_400(cloud):
    wrong = []
    for fields, word in (
            ({"ram": 0}, "ram"), ({"ram": "0"}, "ram"), ({"ram": -1}, "ram"),
            ({"ram": "lots"}, "ram"), ({"ram": 2 ** 31}, "ram"), ({"ram": str(2 ** 31)}, "ram"),
            ({"vcpus": "0"}, "vcpus"), ({"vcpus": 1.5}, "vcpus"), ({"disk": -1}, "disk"),
            ({"disk": None}, "disk"), ({"swap": "abc"}, "swap"), ({"swap": -1}, "swap"),
            ({"name": " x"}, "name"), ({"name": "x\n"}, "name"), ({"name": "x" * 256}, "name"),
            ({"name": None}, "name"), ({"id": "bad id!"}, "id"), ({"id": ""}, "id"),
            ({"id": "x\n"}, "id"), ({"rxtx_factor": "abc"}, "rxtx_factor"),
            ({"rxtx_factor": -1}, "rxtx_factor"), ({"rxtx_factor": 0}, "rxtx_factor"),
            ({"os-flavor-access:is_public": "yes"}, "is_public"), ({"colour": "red"}, "colour"),
            ({"OS-FLV-EXT-DATA:ephemeral": -2}, "ephemeral")):
        resp = _create(cloud, **fields)
        try:
            assert word in error_message(resp, 400)
        except AssertionError as exc:
            wrong.append((fields, str(exc)[:200]))
    assert wrong == []
    assert len(_flavors(cloud, "?is_public=none", token=ADMIN)) == len(SEEDED)


def test_missing_required_fields_are_400(cloud):
    for field in ("name", "ram", "vcpus", "disk"):
        flavor = {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}
        del flavor[field]
        resp = cloud.request("POST", "/v2.1/flavors", {"flavor": flavor}, token=ADMIN)
        assert field in error_message(resp, 400)
    assert "flavor" in error_message(cloud.request("POST", "/v2.1/flavors", {}, token=ADMIN), 400)
