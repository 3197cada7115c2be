"""Version discovery, schemas, authentication and unknown URLs."""

from __future__ import annotations

import jsonschema

from tests.functional.api.image.conftest import ADMIN, error_message


def test_root_lists_the_versions_with_300(images):
    resp = images.request("GET", "/", token=None)
    assert resp.status_int == 300
    versions = resp.json["versions"]
    ids = [v["id"] for v in versions]
    assert "v2.0" in ids and [v["status"] for v in versions].count("CURRENT") == 1
    current = next(v for v in versions if v["status"] == "CURRENT")
    assert current["links"] == [{"rel": "self", "href": "http://localhost/v2/"}]
    assert images.request("GET", "/versions", token=None).json == resp.json
    assert images.request("GET", "/versions", token=None).status_int == 200


def test_version_documents_are_read_only(images):
    resp = images.request("POST", "/", body={}, token=None)
    assert "not allowed" in error_message(resp, 405)
    assert resp.headers["Allow"] == "GET, HEAD"


def test_the_api_needs_a_token(images):
    resp = images.request("GET", "/v2/images", token=None)
    assert resp.status_int == 401


def test_unknown_urls_and_methods(images):
    assert "could not be found" in error_message(images.request("GET", "/v2/nothing"), 404)
    resp = images.request("PUT", "/v2/images")
    error_message(resp, 405)
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_schemas_describe_what_the_api_returns(images):
    schema = images.request("GET", "/v2/schemas/image").json
    assert schema["name"] == "image"
    assert schema["additionalProperties"] == {"type": "string"}
    props = schema["properties"]
    for name in ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
                 "os_hash_algo", "os_hash_value", "size", "virtual_size", "tags",
                 "kernel_id", "ramdisk_id", "min_ram", "min_disk", "self", "file", "schema"):
        assert name in props, name
    assert props["status"]["readOnly"] is True
    assert "ploop" in props["disk_format"]["enum"] and None in props["disk_format"]["enum"]
    assert "compressed" in props["container_format"]["enum"]
    collection = images.request("GET", "/v2/schemas/images").json
    assert collection["properties"]["images"]["items"] == schema

    # What glanceclient does with them: validate images it receives.
    queued = images.create(name="q", disk_format="qcow2", container_format="bare",
                           kernel_id="6f1d3d9e-5f1c-4a54-9e0e-1b3c2ad1a6a1", os_distro="x",
                           tags=["a"])
    active = images.active_image(name=None, token=ADMIN, visibility="public")
    for image in (queued, active):
        jsonschema.Draft4Validator(schema).validate(image)
    page = images.list(token=ADMIN)
    jsonschema.Draft4Validator(collection).validate(page)
    assert {i["id"] for i in page["images"]} == {queued["id"], active["id"]}


def test_import_info_offers_no_method(images):
    resp = images.request("GET", "/v2/info/import")
    assert resp.json["import-methods"]["value"] == []
