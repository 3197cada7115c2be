"""Projects see public and community images and their own; they change only
their own (404 for what they cannot see, 403 for what they see); admins
deactivate and reactivate."""

from __future__ import annotations

import pytest

from tests.functional.api.image.conftest import ADMIN, DEMO, OTHER, PATCH_V21, error_message


def _requests(image_id: str):
    rename = [{"op": "replace", "path": "/name", "value": "stolen"}]
    return [
        ("PATCH", f"/v2/images/{image_id}", rename, PATCH_V21),
        ("DELETE", f"/v2/images/{image_id}", None, None),
        ("PUT", f"/v2/images/{image_id}/tags/t", None, None),
        ("DELETE", f"/v2/images/{image_id}/tags/t", None, None),
        ("PUT", f"/v2/images/{image_id}/file", None, "application/octet-stream"),
    ]


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_other_projects_images_are_not_found(images, visibility):
    image = images.create(name="mine", visibility=visibility, disk_format="raw",
                          container_format="bare", tags=["t"])
    assert error_message(images.request("GET", f"/v2/images/{image['id']}", token=OTHER), 404)
    error_message(images.download(image["id"], token=OTHER), 404)
    for method, path, body, ctype in _requests(image["id"]):
        raw = b"data" if ctype == "application/octet-stream" else None
        resp = images.request(method, path, None if raw else body, token=OTHER, raw=raw,
                              content_type=ctype)
        error_message(resp, 404)
    assert images.list(token=OTHER)["images"] == []
    assert images.list("visibility=all", token=OTHER)["images"] == []
    assert images.show(image["id"]) == image


@pytest.mark.parametrize("visibility", ["public", "community"])
def test_visible_images_of_others_cannot_be_changed(images, visibility):
    image = images.create(token=ADMIN, name="theirs", visibility=visibility,
                          disk_format="raw", container_format="bare", tags=["t"])
    assert images.show(image["id"], token=DEMO) == image
    for method, path, body, ctype in _requests(image["id"]):
        raw = b"data" if ctype == "application/octet-stream" else None
        resp = images.request(method, path, None if raw else body, token=DEMO, raw=raw,
                              content_type=ctype)
        assert "another project" in error_message(resp, 403), (method, path)
    assert images.show(image["id"], token=ADMIN) == image


def test_community_images_are_listed_only_when_asked_for(images):
    image = images.create(token=OTHER, name="community", visibility="community")
    assert images.list()["images"] == []
    assert [i["id"] for i in images.list("visibility=community")["images"]] == [image["id"]]
    assert [i["id"] for i in images.list("visibility=all")["images"]] == [image["id"]]
    assert [i["id"] for i in images.list(token=OTHER)["images"]] == [image["id"]]


def test_admin_changes_any_image(images):
    image = images.create(name="mine", visibility="private")
    resp = images.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                        token=ADMIN)
    assert resp.json["name"] == "x"
    assert images.request("DELETE", f"/v2/images/{image['id']}", token=ADMIN).status_int == 204


def test_deactivate_and_reactivate(images):
    image = images.active_image(b"secret", token=ADMIN, visibility="public")
    actions = f"/v2/images/{image['id']}/actions"
    error_message(images.request("POST", f"{actions}/deactivate", token=DEMO), 403)
    assert images.request("POST", f"{actions}/deactivate", token=ADMIN).status_int == 204
    assert images.request("POST", f"{actions}/deactivate", token=ADMIN).status_int == 204
    assert images.show(image["id"])["status"] == "deactivated"
    assert "deactivated" in error_message(images.download(image["id"], token=DEMO), 403)
    assert images.download(image["id"], token=ADMIN).body == b"secret"
    error_message(images.request("POST", f"{actions}/reactivate", token=DEMO), 403)
    assert images.request("POST", f"{actions}/reactivate", token=ADMIN).status_int == 204
    assert images.show(image["id"])["status"] == "active"
    assert images.download(image["id"], token=DEMO).body == b"secret"


def test_only_active_images_are_deactivated(images):
    image = images.create(token=ADMIN, name="queued")
    resp = images.request("POST", f"/v2/images/{image['id']}/actions/deactivate", token=ADMIN)
    assert "status 'queued'" in error_message(resp, 403)
    resp = images.request("POST", f"/v2/images/{image['id']}/actions/reactivate", token=ADMIN)
    assert "status 'queued'" in error_message(resp, 403)
    mine = images.create(name="private")
    # Another project's private image is not there for a member.
    resp = images.request("POST", f"/v2/images/{mine['id']}/actions/deactivate", token=OTHER)
    error_message(resp, 404)


def test_a_member_deactivates_and_reactivates_its_own_image(images):
    """As in Glance (and Tempest's image tests): the owning project's member
    may; the image's data is then refused to it, as to everyone but admins."""
    image = images.active_image(b"mine")
    actions = f"/v2/images/{image['id']}/actions"
    assert images.request("POST", f"{actions}/deactivate", token=DEMO).status_int == 204
    assert images.show(image["id"])["status"] == "deactivated"
    assert "deactivated" in error_message(images.download(image["id"], token=DEMO), 403)
    assert images.request("POST", f"{actions}/reactivate", token=DEMO).status_int == 204
    assert images.download(image["id"], token=DEMO).body == b"mine"
