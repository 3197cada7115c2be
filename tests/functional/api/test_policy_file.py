"""A policy file overrides the defaults: ``[oslo_policy] policy_file``
names it, only the rules it sets change, and a change to the file takes
effect without a restart."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.functional.api.compute.conftest import ADMIN, DEMO, error_message
from virtstack import policy


@pytest.fixture
def policy_file(conf, tmp_path):
    """Write rules to the policy file the config names (returns a writer)."""
    path = tmp_path / "policy.yaml"
    bumped = [0]

    def write(rules: dict[str, str]) -> None:
        path.write_text(yaml.safe_dump(rules))
        # The enforcer reloads a file whose mtime changed: make it change
        # even within the file system's timestamp granularity.
        bumped[0] += 10
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + bumped[0]))

    write({})
    conf.config(policy_file=str(path), group="oslo_policy")
    policy.reset()
    yield write
    policy.reset()


def test_a_member_lists_hypervisors_and_may_not_create_volumes(cloud, policy_file):
    # The defaults first.
    error_message(cloud.request("GET", "/v2.1/os-hypervisors", token=DEMO), 403)
    created = cloud.volume_request("POST", "/v3/demo/volumes", {"volume": {"size": 1}})
    assert created.status_int == 202, created.text

    policy_file({"os_compute_api:os-hypervisors:list": "role:member",
                 "volume:create": "!"})
    resp = cloud.request("GET", "/v2.1/os-hypervisors", token=DEMO)
    assert resp.status_int == 200, resp.text
    assert [h["hypervisor_hostname"] for h in resp.json["hypervisors"]] == ["testhost"]
    # Rules the file does not name keep their defaults.
    assert "os-hypervisors:list-detail" in error_message(
        cloud.request("GET", "/v2.1/os-hypervisors/detail", token=DEMO), 403)
    for token in (DEMO, ADMIN):
        project = token.partition(":")[2]
        resp = cloud.volume_request("POST", f"/v3/{project}/volumes", {"volume": {"size": 1}},
                                    token=token)
        assert error_message(resp, 403) == "Policy doesn't allow volume:create to be performed."
    # Reading volumes is another rule.
    assert cloud.volume_request("GET", "/v3/demo/volumes").status_int == 200

    # The file changes: the new rules apply to the next request.
    policy_file({"os_compute_api:os-hypervisors:list": "role:admin"})
    error_message(cloud.request("GET", "/v2.1/os-hypervisors", token=DEMO), 403)
    created = cloud.volume_request("POST", "/v3/demo/volumes", {"volume": {"size": 1}})
    assert created.status_int == 202, created.text


def test_base_rules_change_every_operation_built_on_them(cloud, policy_file):
    # Members may no longer change anything in their project; reading stays.
    policy_file({"project_member_api": "!"})
    assert "os_compute_api:servers:create" in error_message(
        cloud.request("POST", "/v2.1/servers", {"server": {
            "name": "s", "flavorRef": "42", "imageRef": cloud.image_id}}), 403)
    assert "volume:create" in error_message(
        cloud.volume_request("POST", "/v3/demo/volumes", {"volume": {"size": 1}}), 403)
    assert cloud.request("GET", "/v2.1/servers").status_int == 200
    # Admins are admins through another base rule.
    assert cloud.request("POST", "/v2.1/servers", {"server": {
        "name": "s", "flavorRef": "42", "imageRef": cloud.image_id}},
        token=ADMIN).status_int == 202


def test_project_isolation_is_not_policy(cloud, policy_file):
    """A policy file opens operations to roles; it does not open one
    project's resources to another."""
    server_id = cloud.create_server(name="mine")
    policy_file({"os_compute_api:servers:show": "@",
                 "os_compute_api:servers:index:get_all_tenants": "@"})
    error_message(cloud.request("GET", f"/v2.1/servers/{server_id}", token="other:other"), 404)
    listed = cloud.request("GET", "/v2.1/servers?all_tenants=1", token="other:other")
    assert listed.status_int == 200 and listed.json["servers"] == []
