"""/servers: create, show, list, update, delete, filters, paging, quotas."""

from __future__ import annotations

import datetime
import urllib.parse

from .conftest import ADMIN, DEMO, OTHER, active_server, error_message, show

BASE_FIELDS = {
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor",
    "created", "updated", "addresses", "accessIPv4", "accessIPv6", "links", "key_name",
    "config_drive", "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone",
    "OS-EXT-STS:power_state", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
    "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at",
    "os-extended-volumes:volumes_attached", "security_groups", "progress"}
ADMIN_2_1 = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname",
             "OS-EXT-SRV-ATTR:instance_name"}
ADMIN_2_3 = {"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index",
             "OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:kernel_id",
             "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:root_device_name",
             "OS-EXT-SRV-ATTR:user_data"}


def _create(cloud, version=None, token=DEMO, **server):
    body = {"server": {"name": "srv", "flavorRef": "42", "imageRef": cloud.image_id, **server}}
    return cloud.request("POST", "/v2.1/servers", body, token=token, version=version)


def _ids(resp) -> list[str]:
    assert resp.status_int == 200, resp.text
    return [s["id"] for s in resp.json["servers"]]


def test_create_answers_202_with_location_and_minimal_body(cloud):
    resp = _create(cloud, adminPass="s3cret", metadata={"role": "web"})
    assert resp.status_int == 202
    server = resp.json["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert server["adminPass"] == "s3cret"
    assert resp.headers["Location"] == f"http://localhost/v2.1/servers/{server['id']}"
    rels = {link["rel"]: link["href"] for link in server["links"]}
    assert rels["self"].endswith(f"/v2.1/servers/{server['id']}")
    assert rels["bookmark"].endswith(f"/servers/{server['id']}")
    shown = cloud.wait_for_status(server["id"], "ACTIVE")
    assert shown["metadata"] == {"role": "web"}
    assert shown["OS-EXT-STS:power_state"] == 1 and shown["OS-EXT-STS:vm_state"] == "active"
    assert shown["image"]["id"] == cloud.image_id and shown["flavor"]["id"] == "42"
    assert shown["OS-SRV-USG:launched_at"] and shown["progress"] == 100


def test_admin_fields_per_microversion(cloud):
    sid = active_server(cloud, user_data="aGVsbG8=")
    for version, extra in (
            ("2.1", ADMIN_2_1), ("2.2", ADMIN_2_1), ("2.3", ADMIN_2_1 | ADMIN_2_3),
            ("2.8", ADMIN_2_1 | ADMIN_2_3), ("2.9", ADMIN_2_1 | ADMIN_2_3 | {"locked"}),
            ("2.15", ADMIN_2_1 | ADMIN_2_3 | {"locked"}),
            ("2.16", ADMIN_2_1 | ADMIN_2_3 | {"locked", "host_status"}),
            ("2.19", ADMIN_2_1 | ADMIN_2_3 | {"locked", "host_status", "description"})):
        server = show(cloud, sid, token=ADMIN, version=version)
        assert set(server) == BASE_FIELDS | extra, version
        assert server["OS-EXT-SRV-ATTR:host"] == "testhost"
        assert server["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
        if "OS-EXT-SRV-ATTR:user_data" in extra:
            assert server["OS-EXT-SRV-ATTR:user_data"] == "aGVsbG8="
            assert server["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
            assert server["OS-EXT-SRV-ATTR:hostname"] == "srv"
            assert server["OS-EXT-SRV-ATTR:launch_index"] == 0
        if "host_status" in extra:
            assert server["host_status"] == "UP"


def test_member_fields_per_microversion(cloud):
    sid = active_server(cloud)
    for version, extra in (("2.1", set()), ("2.3", set()), ("2.8", set()), ("2.9", {"locked"}),
                           ("2.16", {"locked"}), ("2.19", {"locked", "description"})):
        server = show(cloud, sid, token=DEMO, version=version)
        assert set(server) == BASE_FIELDS | extra, version
        if "locked" in extra:
            assert server["locked"] is False
    assert server["tenant_id"] == "demo" and server["user_id"] == "demo"
    assert server["hostId"]


def test_description_at_2_19(cloud):
    resp = _create(cloud, version="2.19", description="first")
    assert resp.status_int == 202
    sid = resp.json["server"]["id"]
    assert show(cloud, sid, token=DEMO, version="2.19")["description"] == "first"
    resp = cloud.request("PUT", f"/v2.1/servers/{sid}",
                         {"server": {"description": "second", "name": "renamed"}}, version="2.19")
    assert resp.status_int == 200
    assert resp.json["server"]["description"] == "second"
    assert resp.json["server"]["name"] == "renamed"
    resp = cloud.request("PUT", f"/v2.1/servers/{sid}", {"server": {"description": None}},
                         version="2.19")
    assert resp.json["server"]["description"] is None
    detail = cloud.request("GET", "/v2.1/servers/detail", version="2.19").json["servers"]
    assert detail[0]["description"] is None and detail[0]["name"] == "renamed"


def test_description_before_2_19_is_400(cloud):
    assert "description" in error_message(_create(cloud, version="2.18", description="x"), 400)
    sid = cloud.create_server()
    resp = cloud.request("PUT", f"/v2.1/servers/{sid}", {"server": {"description": "x"}},
                         version="2.18")
    assert "description" in error_message(resp, 400)


def test_list_is_brief_and_detail_matches_show(cloud):
    sid = active_server(cloud, name="one")
    resp = cloud.request("GET", "/v2.1/servers")
    assert resp.json["servers"] == [{"id": sid, "name": "one", "links": [
        {"rel": "self", "href": f"http://localhost/v2.1/servers/{sid}"},
        {"rel": "bookmark", "href": f"http://localhost/servers/{sid}"}]}]
    detail = cloud.request("GET", "/v2.1/servers/detail", version="2.19").json["servers"]
    assert detail == [show(cloud, sid, token=DEMO, version="2.19")]


def test_update_name_and_access_ips(cloud):
    sid = active_server(cloud)
    resp = cloud.request("PUT", f"/v2.1/servers/{sid}",
                         {"server": {"name": "new-name", "accessIPv4": "10.0.0.1"}})
    assert resp.status_int == 200
    assert resp.json["server"]["name"] == "new-name"
    assert show(cloud, sid)["accessIPv4"] == "10.0.0.1"
    assert show(cloud, sid)["name"] == "new-name"


def test_delete_then_404_and_deleted_for_admin(cloud):
    sid = active_server(cloud)
    resp = cloud.request("DELETE", f"/v2.1/servers/{sid}")
    assert resp.status_int == 204 and resp.body == b""
    cloud.wait_for_status(sid, "DELETED")
    error_message(cloud.request("GET", f"/v2.1/servers/{sid}"), 404)
    error_message(cloud.request("DELETE", f"/v2.1/servers/{sid}"), 404)
    deleted = cloud.request("GET", "/v2.1/servers/detail?deleted=true&all_tenants=1",
                            token=ADMIN).json["servers"]
    assert [(s["id"], s["status"]) for s in deleted] == [(sid, "DELETED")]
    assert deleted[0]["OS-SRV-USG:terminated_at"]
    # A member asking for deleted servers gets only live ones.
    assert _ids(cloud.request("GET", "/v2.1/servers?deleted=true")) == []
    assert cloud.driver.list_instances() == []


def test_status_deleted_filter_is_admin_only(cloud):
    sid = active_server(cloud)
    cloud.request("DELETE", f"/v2.1/servers/{sid}")
    cloud.wait_for_status(sid, "DELETED")
    resp = cloud.request("GET", "/v2.1/servers?status=deleted&all_tenants=1", token=ADMIN)
    assert _ids(resp) == [sid]
    error_message(cloud.request("GET", "/v2.1/servers?status=DELETED"), 403)


def test_filters_name_status_image_flavor(cloud):
    web = active_server(cloud, name="web-1")
    db = active_server(cloud, name="db-1", flavor="84")
    cloud.request("POST", f"/v2.1/servers/{db}/action", {"os-stop": None})
    cloud.wait_for_status(db, "SHUTOFF")

    def ids(query):
        return set(_ids(cloud.request("GET", "/v2.1/servers?" + query)))

    assert ids("name=^web") == {web}
    assert ids("name=" + urllib.parse.quote("-1$")) == {web, db}
    assert ids("status=ACTIVE") == {web}
    assert ids("status=shutoff") == {db}
    assert ids("status=PAUSED") == set()
    assert ids("status=BOGUS") == set()   # before 2.38 an unknown status matches nothing
    assert _ids(cloud.request("GET", "/v2.1/servers?status=BOGUS", version="latest")) == []
    assert ids("image=" + cloud.image_id) == {web, db}
    assert ids("image=nope") == set()
    assert ids("flavor=84") == {db}
    assert ids("flavor=42") == {web}
    assert ids("ip=10.0.0.1") == set()


def test_invalid_name_regex_is_400(cloud):
    resp = cloud.request("GET", "/v2.1/servers?name=" + urllib.parse.quote("web[("))
    assert "name" in error_message(resp, 400)


def test_changes_since(cloud):
    before = (datetime.datetime.now(datetime.timezone.utc)
              - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sid = active_server(cloud)
    gone = active_server(cloud, name="gone")
    cloud.request("DELETE", f"/v2.1/servers/{gone}")
    cloud.wait_for_status(gone, "DELETED")
    listed = cloud.request("GET", "/v2.1/servers/detail?changes-since=" + before).json["servers"]
    assert {(s["id"], s["status"]) for s in listed} == {(sid, "ACTIVE"), (gone, "DELETED")}
    later = (datetime.datetime.now(datetime.timezone.utc)
             + datetime.timedelta(minutes=5)).isoformat()
    assert _ids(cloud.request("GET", "/v2.1/servers?changes-since="
                              + urllib.parse.quote(later))) == []
    error_message(cloud.request("GET", "/v2.1/servers?changes-since=yesterday"), 400)


def test_all_tenants_and_host_filters(cloud):
    mine = cloud.create_server(name="mine")
    theirs = cloud.create_server(name="theirs", token=OTHER)

    def ids(query, token):
        return set(_ids(cloud.request("GET", "/v2.1/servers" + query, token=token)))

    assert ids("?all_tenants=1", ADMIN) == {mine, theirs}
    assert ids("?all_tenants", ADMIN) == {mine, theirs}
    assert ids("?all_tenants=0", ADMIN) == set()
    assert ids("?all_tenants=1&project_id=other", ADMIN) == {theirs}
    assert ids("?all_tenants=1&host=testhost", ADMIN) == {mine, theirs}
    assert ids("?all_tenants=1&host=elsewhere", ADMIN) == set()
    # Admin-only filters are ignored for members; all_tenants is refused (as Nova).
    resp = cloud.request("GET", "/v2.1/servers?all_tenants=1", token=DEMO)
    assert "os_compute_api:servers:index:get_all_tenants" in error_message(resp, 403)
    assert ids("?host=elsewhere", DEMO) == {mine}
    assert ids("?project_id=other", DEMO) == {mine}
    error_message(cloud.request("GET", "/v2.1/servers?all_tenants=maybe", token=ADMIN), 400)


def test_pagination_with_limit_marker_and_next_links(cloud):
    resp = _create(cloud, min_count=5, name="page")
    assert resp.status_int == 202
    all_ids = _ids(cloud.request("GET", "/v2.1/servers"))
    assert len(all_ids) == 5
    seen, url, pages = [], "/v2.1/servers?limit=2&name=page", 0
    while url:
        resp = cloud.request("GET", url)
        page = resp.json
        assert len(page["servers"]) <= 2
        seen += [s["id"] for s in page["servers"]]
        pages += 1
        links = page.get("servers_links", [])
        url = None
        if links:
            href = links[0]["href"]
            assert links[0]["rel"] == "next"
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
            assert query["limit"] == ["2"] and query["name"] == ["page"]
            assert query["marker"] == [seen[-1]]
            url = href.replace("http://localhost", "")
    assert seen == all_ids and pages == 3
    detail = cloud.request("GET", f"/v2.1/servers/detail?limit=3&marker={all_ids[0]}").json
    assert [s["id"] for s in detail["servers"]] == all_ids[1:4]
    assert "/servers/detail?" in detail["servers_links"][0]["href"]


def test_sorting(cloud):
    _create(cloud, max_count=3, name="s")
    names = lambda q: [s["name"] for s in cloud.request("GET", "/v2.1/servers/detail?" + q)
                       .json["servers"]]
    assert names("sort_key=display_name&sort_dir=asc") == ["s-1", "s-2", "s-3"]
    assert names("sort_key=display_name&sort_dir=desc") == ["s-3", "s-2", "s-1"]
    assert names("sort_key=flavorid&sort_dir=asc&sort_key=display_name&sort_dir=desc") \
        == ["s-3", "s-2", "s-1"]
    assert names("sort_key=display_name") == ["s-3", "s-2", "s-1"]   # desc by default


def test_bad_list_parameters_are_400(cloud):
    for query, word in (("sort_key=password", "sort"), ("sort_key=display_name&sort_dir=up",
                                                         "sort"),
                        ("marker=00000000-0000-0000-0000-000000000000", "marker"),
                        ("limit=-1", "limit"), ("limit=abc", "limit"), ("limit=1.5", "limit"),
                        ("deleted=maybe", "deleted")):
        resp = cloud.request("GET", "/v2.1/servers?" + query, token=ADMIN)
        assert word in error_message(resp, 400), query


def test_min_and_max_count(cloud):
    resp = _create(cloud, min_count=2, max_count=3, name="multi")
    assert resp.status_int == 202
    detail = cloud.request("GET", "/v2.1/servers/detail?all_tenants=1&sort_key=display_name"
                           "&sort_dir=asc", token=ADMIN, version="2.3").json["servers"]
    assert [s["name"] for s in detail] == ["multi-1", "multi-2", "multi-3"]
    assert len({s["OS-EXT-SRV-ATTR:reservation_id"] for s in detail}) == 1
    assert sorted(s["OS-EXT-SRV-ATTR:launch_index"] for s in detail) == [0, 1, 2]
    assert resp.json["server"]["id"] in {s["id"] for s in detail}


def test_return_reservation_id(cloud):
    resp = _create(cloud, max_count=2, return_reservation_id=True)
    assert resp.status_int == 202
    assert set(resp.json) == {"reservation_id"}
    rid = resp.json["reservation_id"]
    assert len(_ids(cloud.request("GET", f"/v2.1/servers?reservation_id={rid}"))) == 2
    assert _ids(cloud.request("GET", "/v2.1/servers?reservation_id=r-none")) == []


def test_instance_quota_exceeded_is_403(cloud, conf):
    conf.config(instances=2, group="quota")
    cloud.create_server(name="a")
    cloud.create_server(name="b")
    message = error_message(_create(cloud, name="c"), 403)
    assert "Quota exceeded" in message and "instances" in message
    # Another project has its own quota.
    assert _create(cloud, token=OTHER).status_int == 202
    assert len(_ids(cloud.request("GET", "/v2.1/servers"))) == 2


def test_min_count_beyond_quota_is_403_and_max_count_is_trimmed(cloud, conf):
    conf.config(instances=3, group="quota")
    assert "instances" in error_message(_create(cloud, min_count=4), 403)
    assert _ids(cloud.request("GET", "/v2.1/servers")) == []
    assert _create(cloud, min_count=1, max_count=10).status_int == 202
    assert len(_ids(cloud.request("GET", "/v2.1/servers"))) == 3


def test_cores_and_ram_quota(cloud, conf):
    conf.config(cores=1, ram=200, group="quota")
    message = error_message(_create(cloud, flavorRef="3"), 403)
    assert "cores" in message
    conf.config(cores=10, group="quota")
    assert "ram" in error_message(_create(cloud, flavorRef="84", max_count=2, min_count=2), 403)


def test_spawn_failure_shows_fault_and_leaves_nothing_behind(cloud):
    cloud.driver.inject_failure("spawn")
    sid = cloud.create_server()
    server = cloud.wait_for_status(sid, "ERROR")
    assert server["fault"]["code"] == 500
    assert "Injected failure" in server["fault"]["message"]
    assert server["fault"]["created"]
    assert "details" in server["fault"]                    # admins see details
    member_view = show(cloud, sid, token=DEMO)
    assert "Injected failure" in member_view["fault"]["message"]
    assert "details" not in member_view["fault"]
    assert cloud.driver.list_instances() == []
    stats = cloud.request("GET", "/v2.1/os-hypervisors/statistics", token=ADMIN).json
    assert stats["hypervisor_statistics"]["vcpus_used"] == 0
    assert stats["hypervisor_statistics"]["running_vms"] == 0
    # The failed server can be deleted.
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")


def test_no_valid_host_is_error_with_fault(cloud):
    flavor = {"flavor": {"name": "huge", "id": "huge", "ram": 500_000, "vcpus": 1, "disk": 1}}
    assert cloud.request("POST", "/v2.1/flavors", flavor, token=ADMIN).status_int == 200
    sid = cloud.create_server(flavor="huge")
    server = cloud.wait_for_status(sid, "ERROR")
    assert "No valid host" in server["fault"]["message"]
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert cloud.request("DELETE", f"/v2.1/servers/{sid}").status_int == 204
    cloud.wait_for_status(sid, "DELETED")


def test_active_server_has_no_fault(cloud):
    sid = active_server(cloud)
    assert "fault" not in show(cloud, sid)


def test_create_without_admin_pass_reports_a_generated_one(cloud):
    # As Nova with enable_instance_password (Tempest's create schema then
    # requires adminPass): found by Tempest, see docs/tempest.md.
    first = _create(cloud).json["server"]
    second = _create(cloud).json["server"]
    assert isinstance(first["adminPass"], str) and len(first["adminPass"]) >= 8
    assert first["adminPass"] != second["adminPass"]
    assert _create(cloud, adminPass="").json["server"]["adminPass"] == ""
    for sid in (first["id"], second["id"]):
        cloud.wait_for_status(sid, "ACTIVE")


def test_access_ipv6_is_stored_compressed_as_nova_does(cloud):
    # Found by Tempest (test_verify_server_details), see docs/tempest.md.
    sid = _create(cloud, accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2",
                  accessIPv4="1.1.1.1").json["server"]["id"]
    shown = cloud.wait_for_status(sid, "ACTIVE")
    assert shown["accessIPv6"] == "::babe:dc0c:1602" and shown["accessIPv4"] == "1.1.1.1"
    resp = cloud.request("PUT", f"/v2.1/servers/{sid}",
                         {"server": {"accessIPv6": "2001:0db8:0000:0000:0000:0000:0000:0001"}})
    assert resp.status_int == 200 and resp.json["server"]["accessIPv6"] == "2001:db8::1"
    assert show(cloud, sid)["accessIPv6"] == "2001:db8::1"
