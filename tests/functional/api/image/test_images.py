"""Create, show, PATCH, delete and tags, with good and bad input."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.functional.api.image.conftest import ADMIN, DEMO, error_message
from virtstack.image import store


def test_create_with_defaults(images):
    resp = images.request("POST", "/v2/images", {"name": "cirros"})
    assert resp.status_int == 201, resp.text
    image = resp.json
    assert resp.headers["Location"] == f"http://localhost/v2/images/{image['id']}"
    uuid.UUID(image["id"])
    assert {k: image[k] for k in ("name", "status", "visibility", "protected", "os_hidden",
                                  "owner", "size", "virtual_size", "checksum", "min_ram",
                                  "min_disk", "tags", "disk_format", "container_format",
                                  "os_hash_algo", "os_hash_value")} == {
        "name": "cirros", "status": "queued", "visibility": "shared", "protected": False,
        "os_hidden": False, "owner": "demo", "size": None, "virtual_size": None,
        "checksum": None, "min_ram": 0, "min_disk": 0, "tags": [], "disk_format": None,
        "container_format": None, "os_hash_algo": None, "os_hash_value": None}
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z") and image["updated_at"] == image["created_at"]
    assert images.show(image["id"]) == image


def test_create_with_id_properties_and_tags(images):
    image_id = str(uuid.uuid4())
    image = images.create(id=image_id, name="k", disk_format="aki", container_format="aki",
                          min_ram=64, min_disk=1, protected=True, os_hidden=True,
                          tags=["b", "a", "b"], os_distro="debian", hw_rng="yes",
                          visibility="private")
    assert image["id"] == image_id
    assert (image["os_distro"], image["hw_rng"]) == ("debian", "yes")
    assert image["tags"] == ["b", "a"]
    assert (image["min_ram"], image["min_disk"], image["protected"], image["os_hidden"],
            image["visibility"]) == (64, 1, True, True, "private")
    resp = images.request("POST", "/v2/images", {"id": image_id})
    assert "already exists" in error_message(resp, 409)


@pytest.mark.parametrize("name", ["status", "checksum", "size", "virtual_size", "created_at",
                                  "updated_at", "os_hash_value", "self", "file", "schema",
                                  "direct_url", "locations"])
def test_create_refuses_read_only_attributes(images, name):
    resp = images.request("POST", "/v2/images", {"name": "x", name: "v"})
    assert f"Attribute '{name}' is read-only." in error_message(resp, 403)


@pytest.mark.parametrize("name", ["location", "deleted", "deleted_at", "os_glance_secret"])
def test_create_refuses_reserved_attributes(images, name):
    resp = images.request("POST", "/v2/images", {"name": "x", name: "v"})
    assert f"Attribute '{name}' is reserved." in error_message(resp, 403)


@pytest.mark.parametrize("body, field", [
    ({"disk_format": "floppy"}, "disk_format"),
    ({"container_format": "zip"}, "container_format"),
    ({"visibility": "everyone"}, "visibility"),
    ({"min_ram": "lots"}, "min_ram"),
    ({"min_disk": 1.5}, "min_disk"),
    ({"protected": "yes"}, "protected"),
    ({"name": "n" * 256}, "name"),
    ({"tags": "a,b"}, "tags"),
    ({"tags": ["t" * 256]}, "tags"),
    ({"id": "not-a-uuid"}, "id"),
    ({"kernel_id": "not-a-uuid"}, "kernel_id"),
    ({"my_property": 42}, "my_property"),
    ({"my_property": None}, "my_property"),
])
def test_create_refuses_bad_values(images, body, field):
    assert field in error_message(images.request("POST", "/v2/images", body), 400)


def test_create_refuses_bad_bodies(images):
    assert "JSON object" in error_message(images.request("POST", "/v2/images", ["x"]), 400)
    resp = images.request("POST", "/v2/images", raw=b"{nope", content_type="application/json")
    assert "Malformed" in error_message(resp, 400)
    resp = images.request("POST", "/v2/images", {"min_ram": -1})
    assert "negative" in error_message(resp, 400)
    resp = images.request("POST", "/v2/images", {"p" * 256: "v"})
    assert "255" in error_message(resp, 400)


def test_only_admins_publish_or_give_away_images(images):
    resp = images.request("POST", "/v2/images", {"visibility": "public"})
    assert "publicize_image" in error_message(resp, 403)
    resp = images.request("POST", "/v2/images", {"owner": "someone-else"})
    error_message(resp, 403)
    assert images.create(token=ADMIN, visibility="public", owner="p9")["owner"] == "p9"
    assert images.create(visibility="community")["visibility"] == "community"


def test_show_unknown_image(images):
    resp = images.request("GET", f"/v2/images/{uuid.uuid4()}")
    assert "could not be found" in error_message(resp, 404)


def test_patch_attributes_and_properties(images):
    image = images.create(name="a", os_distro="debian", old="x")
    resp = images.patch(image["id"], [
        {"op": "replace", "path": "/name", "value": "b"},
        {"op": "add", "path": "/min_ram", "value": 512},
        {"op": "add", "path": "/new_prop", "value": "n"},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "remove", "path": "/old"},
        {"op": "replace", "path": "/tags", "value": ["t1", "t2", "t1"]},
        {"op": "replace", "path": "/os_hidden", "value": True},
        {"op": "add", "path": "/disk_format", "value": "qcow2"},
        {"op": "add", "path": "/kernel_id", "value": image["id"]},
        {"op": "add", "path": "/a~1b", "value": "slash"},
    ])
    assert resp.status_int == 200, resp.text
    updated = resp.json
    assert (updated["name"], updated["min_ram"], updated["new_prop"], updated["os_distro"],
            updated["tags"], updated["os_hidden"], updated["disk_format"],
            updated["kernel_id"], updated["a/b"]) == (
        "b", 512, "n", "ubuntu", ["t1", "t2"], True, "qcow2", image["id"], "slash")
    assert "old" not in updated
    assert images.show(image["id"]) == updated


def test_patch_with_the_older_media_type(images):
    image = images.create(name="a", prop="x")
    resp = images.patch(image["id"], [{"replace": "/name", "value": "b"},
                                      {"add": "/other", "value": "y"}],
                        media_type="application/openstack-images-v2.0-json-patch")
    assert (resp.json["name"], resp.json["other"]) == ("b", "y"), resp.text
    resp = images.patch(image["id"], [{"add": "/prop", "value": "z"}],
                        media_type="application/openstack-images-v2.0-json-patch")
    assert "already present" in error_message(resp, 409)
    resp = images.patch(image["id"], [{"add": "/prop", "remove": "/prop", "value": "z"}],
                        media_type="application/openstack-images-v2.0-json-patch")
    assert "exactly one member" in error_message(resp, 400)


@pytest.mark.parametrize("ops, status, text", [
    ({"op": "replace"}, 400, "JSON array"),
    (["replace"], 400, "JSON objects"),
    ([{"op": "move", "path": "/name", "value": "x"}], 400, "Invalid operation"),
    ([{"path": "/name", "value": "x"}], 400, "Invalid operation"),
    ([{"op": "replace", "value": "x"}], 400, "'path'"),
    ([{"op": "replace", "path": "name", "value": "x"}], 400, "does not start with"),
    ([{"op": "replace", "path": "/a/b", "value": "x"}], 400, "Invalid JSON pointer"),
    ([{"op": "replace", "path": "/", "value": "x"}], 400, "Invalid JSON pointer"),
    ([{"op": "replace", "path": "/a~2", "value": "x"}], 400, "escape sequence"),
    ([{"op": "replace", "path": "/name"}], 400, 'requires a member named "value"'),
    ([{"op": "replace", "path": "/min_ram", "value": "x"}], 400, "min_ram"),
    ([{"op": "replace", "path": "/min_disk", "value": -2}], 400, "negative"),
    ([{"op": "replace", "path": "/visibility", "value": "x"}], 400, "visibility"),
    ([{"op": "add", "path": "/prop", "value": 1}], 400, "prop"),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
    ([{"op": "replace", "path": "/id", "value": "x"}], 403, "read-only"),
    ([{"op": "replace", "path": "/checksum", "value": "x"}], 403, "read-only"),
    ([{"op": "add", "path": "/deleted", "value": "x"}], 403, "reserved"),
    ([{"op": "add", "path": "/os_glance_x", "value": "x"}], 403, "reserved"),
    ([{"op": "add", "path": "/locations/0", "value": {}}], 403, "locations"),
    ([{"op": "remove", "path": "/name"}], 403, "may not be removed"),
    ([{"op": "replace", "path": "/visibility", "value": "public"}], 403, "publicize_image"),
    ([{"op": "replace", "path": "/owner", "value": "other"}], 403, "another project"),
    ([{"op": "replace", "path": "/missing", "value": "x"}], 409, "does not exist"),
    ([{"op": "remove", "path": "/missing"}], 409, "does not exist"),
])
def test_patch_refuses_bad_changes(images, ops, status, text):
    image = images.create(name="a")
    assert text in error_message(images.patch(image["id"], ops), status)
    assert images.show(image["id"]) == image


def test_patch_is_all_or_nothing(images):
    image = images.create(name="a")
    resp = images.patch(image["id"], [{"op": "replace", "path": "/name", "value": "b"},
                                      {"op": "remove", "path": "/missing"}])
    error_message(resp, 409)
    assert images.show(image["id"])["name"] == "a"


def test_patch_needs_the_patch_media_type(images):
    image = images.create(name="a")
    resp = images.patch(image["id"], [], media_type="application/json")
    assert "application/openstack-images-v2.1-json-patch" in error_message(resp, 415)
    assert "application/openstack-images-v2.1-json-patch" in resp.headers["Accept-Patch"]


def test_formats_change_only_while_queued(images):
    image = images.active_image(name="a")
    resp = images.patch(image["id"], [{"op": "replace", "path": "/disk_format",
                                       "value": "qcow2"}])
    assert "queued" in error_message(resp, 403)
    resp = images.patch(image["id"], [{"op": "replace", "path": "/container_format",
                                       "value": "bare"}])
    assert resp.status_int == 200, resp.text  # unchanged is fine


def test_admin_publishes_and_reassigns(images):
    image = images.create(name="a")
    resp = images.patch(image["id"], [{"op": "replace", "path": "/visibility",
                                       "value": "public"},
                                      {"op": "replace", "path": "/owner", "value": "p2"}],
                        token=ADMIN)
    assert (resp.json["visibility"], resp.json["owner"]) == ("public", "p2"), resp.text


def test_delete_removes_the_image_and_its_data(images):
    image = images.active_image(name="a")
    assert os.path.exists(store.new_path(image["id"]))
    assert images.request("DELETE", f"/v2/images/{image['id']}").status_int == 204
    error_message(images.request("GET", f"/v2/images/{image['id']}"), 404)
    error_message(images.request("DELETE", f"/v2/images/{image['id']}"), 404)
    assert not os.path.exists(store.new_path(image["id"]))
    assert image["id"] not in {i["id"] for i in images.list()["images"]}


def test_protected_images_cannot_be_deleted(images):
    image = images.create(name="a", protected=True)
    resp = images.request("DELETE", f"/v2/images/{image['id']}")
    assert "protected" in error_message(resp, 403)
    images.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert images.request("DELETE", f"/v2/images/{image['id']}").status_int == 204


def test_tags(images):
    image = images.create(name="a", tags=["x"])
    path = f"/v2/images/{image['id']}/tags"
    assert images.request("PUT", f"{path}/y").status_int == 204
    assert images.request("PUT", f"{path}/y").status_int == 204  # again: no change
    assert images.request("PUT", f"{path}/with%20space").status_int == 204
    assert images.show(image["id"])["tags"] == ["x", "y", "with space"]
    assert images.request("DELETE", f"{path}/x").status_int == 204
    assert images.show(image["id"])["tags"] == ["y", "with space"]
    assert "not on image" in error_message(images.request("DELETE", f"{path}/x"), 404)
    assert "255" in error_message(images.request("PUT", f"{path}/{'t' * 256}"), 400)
    error_message(images.request("PUT", f"/v2/images/{uuid.uuid4()}/tags/x"), 404)


def test_too_many_tags(images):
    image = images.create(name="a", tags=[f"t{i}" for i in range(128)])
    resp = images.request("PUT", f"/v2/images/{image['id']}/tags/one-more")
    assert "128" in error_message(resp, 413)
    resp = images.request("POST", "/v2/images", {"tags": [f"t{i}" for i in range(129)]})
    error_message(resp, 413)


def test_nul_characters_are_refused(images):
    error_message(images.request("POST", "/v2/images", {"name": "a\x00b"}), 400)
    error_message(images.request("GET", "/v2/images?name=a%00"), 400)
    assert images.list(token=DEMO)["images"] == []
