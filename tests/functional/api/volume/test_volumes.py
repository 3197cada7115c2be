"""The Block Storage API v3 through the WSGI app: version documents,
volume create/list/show/update/delete with good and bad input, project
isolation, quotas and pool capacity."""

from __future__ import annotations

import uuid

import pytest

from tests.functional.api.volume.conftest import (ADMIN, LATEST, OTHER, create_volume,
                                                  error_message, show, vol_url, wait_gone,
                                                  wait_status)

MISSING = str(uuid.uuid4())


# -- versions ------------------------------------------------------------------

def test_version_documents(cloud):
    resp = cloud.volume_request("GET", "/", token=None)
    assert resp.status_int == 300
    (doc,) = resp.json["versions"]
    assert (doc["id"], doc["min_version"], doc["version"]) == ("v3.0", "3.0", LATEST)
    resp = cloud.volume_request("GET", "/v3/", token=None)
    assert resp.status_int == 200 and resp.json["versions"][0]["status"] == "CURRENT"


def test_microversion_negotiation(cloud):
    resp = cloud.volume_request("GET", "/v3/demo/volumes", version="3.44")
    assert resp.headers["OpenStack-API-Version"] == "volume 3.44"
    assert "OpenStack-API-Version" in resp.headers["Vary"]
    resp = cloud.volume_request("GET", "/v3/demo/volumes")
    assert resp.headers["OpenStack-API-Version"] == "volume 3.0"
    assert "3.0" in error_message(cloud.volume_request("GET", "/v3/demo/volumes",
                                                       version="3.99"), 406)
    error_message(cloud.volume_request("GET", "/v3/demo/volumes", version="2.0"), 406)
    error_message(cloud.volume_request("GET", "/v3/demo/volumes", version="three"), 400)


def test_project_in_url_must_be_the_tokens(cloud):
    msg = error_message(cloud.volume_request("GET", "/v3/other/volumes"), 400)
    assert "Malformed request url" in msg
    # Without a project id only from 3.67.
    error_message(cloud.volume_request("GET", "/v3/volumes", version="3.66"), 404)
    resp = cloud.volume_request("GET", "/v3/volumes", version="3.67")
    assert resp.status_int == 200 and resp.json == {"volumes": []}


def test_unauthenticated_is_401(cloud):
    error_message(cloud.volume_request("GET", "/v3/demo/volumes", token=None), 401)


# -- create / show / list ------------------------------------------------------

def test_create_show_and_the_view(cloud):
    resp = cloud.volume_request("POST", vol_url(), {"volume": {
        "size": 1, "name": "data", "description": "d", "metadata": {"a": "b"}}})
    assert resp.status_int == 202, resp.text
    assert resp.json["volume"]["status"] == "creating"
    vol = wait_status(cloud, resp.json["volume"]["id"], "available")
    assert vol["name"] == "data" and vol["description"] == "d" and vol["size"] == 1
    assert vol["metadata"] == {"a": "b"} and vol["bootable"] == "false"
    assert vol["volume_type"] == "__DEFAULT__" and vol["attachments"] == []
    assert vol["os-vol-tenant-attr:tenant_id"] == "demo"
    for key in ("encrypted", "multiattach", "replication_status", "consistencygroup_id",
                "migration_status", "links", "user_id", "availability_zone", "created_at"):
        assert key in vol, key
    assert "os-vol-host-attr:host" not in vol  # admins only
    assert "provider_auth" not in str(vol) and "provider_location" not in vol
    admin_view = show(cloud, vol["id"], token=ADMIN, project="admin")
    assert admin_view["os-vol-host-attr:host"] == "testhost@file#file"
    latest = cloud.volume_request("GET", vol_url(vol["id"]), version=LATEST).json["volume"]
    assert latest["group_id"] is None and latest["volume_type_id"]
    assert latest["shared_targets"] is False and latest["consumes_quota"] is True
    # The file exists on the volume host, at the size asked for.
    path = cloud.volume_backend.local_path(_ref(vol["id"]))
    with open(path, "rb") as f:
        f.seek(0, 2)
        assert f.tell() == 1024 ** 3


def _ref(volume_id):
    from virtstack.db import volume as db_volume
    from virtstack.volume import flows

    return flows.volume_ref(db_volume.volume_get(volume_id))


@pytest.mark.parametrize("size, status, words", [
    (0, 400, "must be an integer and greater than 0"),
    (-1, 400, "must be an integer and greater than 0"),
    ("abc", 400, "must be an integer"),
    ("1.5", 400, "must be an integer"),
    (1.5, 400, "size"),
    (True, 400, "size"),
    (2 ** 40, 400, "must be at most"),
    (5000, 413, "exceeds allowed gigabytes quota"),
])
def test_create_with_bad_sizes(cloud, size, status, words):
    resp = cloud.volume_request("POST", vol_url(), {"volume": {"size": size}})
    assert words in error_message(resp, status)
    assert cloud.volume_request("GET", vol_url()).json["volumes"] == []


@pytest.mark.parametrize("body, words", [
    ({"volume": {}}, "size is required"),
    ({"volume": {"size": 1, "bogus": 1}}, "bogus"),
    ({"vol": {"size": 1}}, "volume"),
    ({"volume": {"size": 1, "metadata": {"k": 1}}}, "metadata"),
    ({"volume": {"size": 1, "name": "x" * 256}}, "name"),
    ({"volume": {"size": 1, "availability_zone": "mars"}}, "Availability zone 'mars'"),
    ({"volume": {"size": 1, "snapshot_id": MISSING, "source_volid": MISSING}}, "Only one"),
    ([1, 2], "request body"),
])
def test_create_with_bad_bodies(cloud, body, words):
    assert words in error_message(cloud.volume_request("POST", vol_url(), body), 400)


def test_create_from_unknown_sources_is_404(cloud):
    for key, what in (("snapshot_id", "Snapshot"), ("source_volid", "Volume"),
                      ("imageRef", "Image")):
        msg = error_message(cloud.volume_request("POST", vol_url(),
                                                 {"volume": {key: MISSING}}), 404)
        assert what in msg and MISSING in msg
    assert "nope" in error_message(cloud.volume_request(
        "POST", vol_url(), {"volume": {"size": 1, "volume_type": "nope"}}), 404)


def test_malformed_json_and_wrong_content_type(cloud):
    error_message(cloud.volume_request("POST", vol_url(), raw=b"{not json"), 400)
    resp = cloud.volume_request("POST", vol_url(), raw=b'{"volume": {"size": 1}}',
                                headers={"Content-Type": "text/plain"})
    error_message(resp, 415)


def test_unknown_ids_are_404(cloud):
    for method in ("GET", "PUT", "DELETE"):
        body = {"volume": {"name": "x"}} if method == "PUT" else None
        msg = error_message(cloud.volume_request(method, vol_url(MISSING), body), 404)
        assert MISSING in msg
    error_message(cloud.volume_request("POST", vol_url(MISSING) + "/action",
                                       {"os-extend": {"new_size": 2}}), 404)
    error_message(cloud.volume_request("GET", "/v3/demo/nothing-here"), 404)
    error_message(cloud.volume_request("PATCH", vol_url(MISSING)), 405)


def test_list_detail_filters_sort_and_paging(cloud):
    ids = [create_volume(cloud, name=f"v{i}", metadata={"even": str(i % 2 == 0)})
           for i in range(5)]
    summary = cloud.volume_request("GET", vol_url()).json["volumes"]
    assert {v["id"] for v in summary} == set(ids)
    assert set(summary[0]) == {"id", "name", "links"}
    detail = cloud.volume_request("GET", vol_url() + "/detail").json["volumes"]
    assert all(v["status"] == "available" for v in detail)
    named = cloud.volume_request("GET", vol_url() + "?name=v3").json["volumes"]
    assert [v["id"] for v in named] == [ids[3]]
    even = cloud.volume_request("GET", vol_url() + '/detail?metadata={"even": "True"}')
    assert {v["name"] for v in even.json["volumes"]} == {"v0", "v2", "v4"}
    asc = cloud.volume_request("GET", vol_url() + "?sort=name:asc").json["volumes"]
    assert [v["name"] for v in asc] == ["v0", "v1", "v2", "v3", "v4"]
    old = cloud.volume_request("GET", vol_url() + "?sort_key=name&sort_dir=desc").json
    assert [v["name"] for v in old["volumes"]] == ["v4", "v3", "v2", "v1", "v0"]
    page = cloud.volume_request("GET", vol_url() + "?sort=name:asc&limit=2").json
    assert [v["name"] for v in page["volumes"]] == ["v0", "v1"]
    (link,) = page["volumes_links"]
    assert link["rel"] == "next" and f"marker={ids[1]}" in link["href"]
    nxt = cloud.volume_request("GET", link["href"].replace("http://localhost", "")).json
    assert [v["name"] for v in nxt["volumes"]] == ["v2", "v3"]
    counted = cloud.volume_request("GET", vol_url() + "?with_count=true", version="3.45").json
    assert counted["count"] == 5
    assert "bogus" in error_message(cloud.volume_request("GET", vol_url() + "?bogus=1"), 400)
    error_message(cloud.volume_request("GET", vol_url() + "?sort=nope:asc"), 400)
    error_message(cloud.volume_request("GET", vol_url() + "?limit=-1"), 400)
    error_message(cloud.volume_request("GET", vol_url() + f"?marker={MISSING}"), 400)


def test_update_and_metadata(cloud):
    vid = create_volume(cloud, name="a", metadata={"x": "1"})
    resp = cloud.volume_request("PUT", vol_url(vid), {"volume": {"name": "b",
                                                                "description": "new"}})
    assert resp.status_int == 200 and resp.json["volume"]["name"] == "b"
    assert show(cloud, vid)["description"] == "new"
    error_message(cloud.volume_request("PUT", vol_url(vid), {"volume": {}}), 400)
    error_message(cloud.volume_request("PUT", vol_url(vid), {"volume": {"size": 3}}), 400)
    url = vol_url(vid) + "/metadata"
    assert cloud.volume_request("POST", url, {"metadata": {"y": "2"}}).json == {
        "metadata": {"x": "1", "y": "2"}}
    assert cloud.volume_request("PUT", url, {"metadata": {"z": "3"}}).json == {
        "metadata": {"z": "3"}}
    assert cloud.volume_request("GET", url + "/z").json == {"meta": {"z": "3"}}
    assert cloud.volume_request("DELETE", url + "/z").status_int == 200
    error_message(cloud.volume_request("GET", url + "/z"), 404)
    assert show(cloud, vid)["metadata"] == {}


def test_delete(cloud):
    vid = create_volume(cloud)
    path = cloud.volume_backend.local_path(_ref(vid))
    assert cloud.volume_request("DELETE", vol_url(vid)).status_int == 202
    wait_gone(cloud, vid)
    import os
    assert not os.path.exists(path)
    # Its capacity is back in the pool.
    from virtstack.db import volume as db_volume
    assert db_volume.pools()[0].allocated_gb == 0


def test_delete_with_snapshots_needs_cascade(cloud):
    from tests.functional.api.volume.conftest import snapshot

    vid = create_volume(cloud)
    snapshot(cloud, vid)
    msg = error_message(cloud.volume_request("DELETE", vol_url(vid)), 400)
    assert "snapshot" in msg and "cascade" in msg
    assert cloud.volume_request("DELETE", vol_url(vid) + "?cascade=true").status_int == 202
    wait_gone(cloud, vid)
    assert cloud.volume_request("GET", "/v3/demo/snapshots").json["snapshots"] == []


# -- isolation and admin ----------------------------------------------------------

def test_projects_are_isolated(cloud):
    vid = create_volume(cloud)
    assert cloud.volume_request("GET", "/v3/other/volumes", token=OTHER).json["volumes"] == []
    for method, suffix, body in (("GET", "", None), ("PUT", "", {"volume": {"name": "x"}}),
                                 ("DELETE", "", None),
                                 ("POST", "/action", {"os-extend": {"new_size": 2}}),
                                 ("GET", "/metadata", None)):
        resp = cloud.volume_request(method, vol_url(vid, "other") + suffix, body, token=OTHER)
        assert vid in error_message(resp, 404)
    # Nor can it be used as a source, or a marker.
    error_message(cloud.volume_request("POST", vol_url(project="other"),
                                       {"volume": {"source_volid": vid}}, token=OTHER), 404)
    error_message(cloud.volume_request("GET", vol_url(project="other") + f"?marker={vid}",
                                       token=OTHER), 400)
    assert show(cloud, vid)["status"] == "available"
    # An admin sees it with all_tenants, and by id.
    everyone = cloud.volume_request("GET", "/v3/admin/volumes?all_tenants=1", token=ADMIN)
    assert vid in {v["id"] for v in everyone.json["volumes"]}
    own = cloud.volume_request("GET", "/v3/admin/volumes", token=ADMIN)
    assert own.json["volumes"] == []
    assert show(cloud, vid, token=ADMIN, project="admin")["id"] == vid


def test_quota_limits(cloud, conf):
    conf.config(volumes=2, gigabytes=5, group="quota")
    create_volume(cloud, size=2)
    msg = error_message(cloud.volume_request("POST", vol_url(), {"volume": {"size": 4}}), 413)
    assert msg == ("Requested volume or snapshot exceeds allowed gigabytes quota. Requested "
                   "4G, quota is 5G and 2G has been consumed.")
    create_volume(cloud, size=1)
    msg = error_message(cloud.volume_request("POST", vol_url(), {"volume": {"size": 1}}), 413)
    assert "Maximum number of volumes allowed (2) exceeded" in msg
    limits = cloud.volume_request("GET", "/v3/demo/limits").json["limits"]["absolute"]
    assert (limits["maxTotalVolumes"], limits["totalVolumesUsed"],
            limits["maxTotalVolumeGigabytes"], limits["totalGigabytesUsed"]) == (2, 2, 5, 3)
    qs = cloud.volume_request("GET", "/v3/demo/os-quota-sets/demo?usage=true").json
    assert qs["quota_set"]["volumes"] == {"limit": 2, "in_use": 2, "reserved": 0,
                                          "allocated": 0}
    error_message(cloud.volume_request("GET", "/v3/demo/os-quota-sets/other"), 403)
    assert cloud.volume_request("GET", "/v3/admin/os-quota-sets/demo",
                                token=ADMIN).json["quota_set"]["gigabytes"] == 5


def test_capacity_exhaustion_is_refused_and_leaves_nothing(cloud, conf):
    conf.config(gigabytes=-1, volumes=-1, group="quota")
    total = _pool().total_gb
    create_volume(cloud, size=total - 1)
    msg = error_message(cloud.volume_request("POST", vol_url(), {"volume": {"size": 2}}), 400)
    assert "No valid backend" in msg and "Insufficient free space" in msg
    assert len(cloud.volume_request("GET", vol_url()).json["volumes"]) == 1
    assert _pool().allocated_gb == total - 1
    create_volume(cloud, size=1)  # exactly what is left still fits
    assert _pool().allocated_gb == total


def _pool():
    from virtstack.db import volume as db_volume

    (pool,) = db_volume.pools()
    return pool


def test_types_zones_services(cloud):
    types = cloud.volume_request("GET", "/v3/demo/types").json["volume_types"]
    assert [t["name"] for t in types] == ["__DEFAULT__"]
    assert "extra_specs" not in types[0]
    tid = types[0]["id"]
    assert cloud.volume_request("GET", f"/v3/demo/types/{tid}").json["volume_type"]["id"] == tid
    error_message(cloud.volume_request("GET", "/v3/demo/types/default", version="3.61"), 404)
    default = cloud.volume_request("GET", "/v3/demo/types/default", version="3.62").json
    assert default["volume_type"]["name"] == "__DEFAULT__"
    error_message(cloud.volume_request("GET", f"/v3/demo/types/{MISSING}"), 404)
    zones = cloud.volume_request("GET", "/v3/demo/os-availability-zone").json
    assert zones["availabilityZoneInfo"] == [{"zoneName": "nova",
                                              "zoneState": {"available": True}}]
    error_message(cloud.volume_request("GET", "/v3/demo/os-services"), 403)
    services = cloud.volume_request("GET", "/v3/admin/os-services", token=ADMIN).json
    assert services["services"][0]["state"] == "up"
    assert services["services"][0]["host"] == "testhost@file"


# -- found by Tempest (docs/tempest.md) ------------------------------------------

def test_create_and_update_answer_without_the_show_only_attributes(cloud, tmp_path):
    # Tempest's create/update response schemas forbid what the Block Storage
    # API adds to show and list only (tenant, host, image metadata).
    from virtstack.image import store

    src = tmp_path / "disk.raw"
    src.write_bytes(b"\0" * 1024 * 1024)
    image = store.add_file(str(src), "tiny", "raw")
    show_only = {"os-vol-tenant-attr:tenant_id", "volume_image_metadata",
                 "os-vol-host-attr:host", "os-vol-mig-status-attr:migstat",
                 "os-vol-mig-status-attr:name_id"}
    resp = cloud.volume_request("POST", vol_url(project="admin"), {"volume": {
        "size": 1, "imageRef": image.id}}, token=ADMIN)
    assert resp.status_int == 202, resp.text
    assert not show_only & set(resp.json["volume"]), resp.json
    vid = resp.json["volume"]["id"]
    wait_status(cloud, vid, "available", token=ADMIN, project="admin")
    resp = cloud.volume_request("PUT", vol_url(vid, "admin"), {"volume": {"name": "n"}},
                                token=ADMIN)
    assert resp.status_int == 200 and resp.json["volume"]["name"] == "n"
    assert not show_only & set(resp.json["volume"]), resp.json
    shown = show(cloud, vid, token=ADMIN, project="admin")
    assert {"os-vol-tenant-attr:tenant_id", "volume_image_metadata",
            "os-vol-host-attr:host"} <= set(shown)


def test_volume_summary_counts_what_the_caller_sees(cloud):
    error_message(cloud.volume_request("GET", vol_url("summary"), version="3.11"), 404)
    first = create_volume(cloud, size=1, metadata={"tier": "gold"})
    create_volume(cloud, size=2, metadata={"tier": "silver", "x": "1"})
    create_volume(cloud, size=3, token=OTHER, project="other")
    resp = cloud.volume_request("GET", vol_url("summary"), version="3.12")
    assert resp.status_int == 200, resp.text
    assert resp.json == {"volume-summary": {"total_count": 2, "total_size": 3}}
    resp = cloud.volume_request("GET", vol_url("summary"), version="3.36")
    assert resp.json["volume-summary"]["metadata"] == {"tier": ["gold", "silver"], "x": ["1"]}
    # The list's filters apply.
    resp = cloud.volume_request("GET", vol_url("summary") + "?name=nothing", version="3.12")
    assert resp.json["volume-summary"]["total_count"] == 0
    assert show(cloud, first)["size"] == 1
