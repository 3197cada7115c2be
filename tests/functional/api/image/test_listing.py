"""GET /v2/images: pagination, sorting and filters as the Image API has them."""

from __future__ import annotations

import datetime
import urllib.parse

import pytest

from tests.functional.api.image.conftest import ADMIN, error_message


def _names(page: dict) -> list[str]:
    return [i["name"] for i in page["images"]]


def test_pages_follow_next_links_over_every_image(images):
    created = [images.create(name=f"img-{n}")["id"] for n in range(7)]
    seen, pages = [], 0
    page = images.list("limit=3")
    while True:
        pages += 1
        assert len(page["images"]) <= 3
        seen += [i["id"] for i in page["images"]]
        assert page["first"] == "/v2/images?limit=3"
        if "next" not in page:
            break
        assert page["next"].startswith("/v2/images?")
        page = images.list(page["next"].split("?", 1)[1])
    assert pages == 3
    assert seen == list(reversed(created))  # newest first


def test_default_and_maximum_page_size(images, conf):
    for n in range(27):
        images.create(name=f"img-{n}")
    page = images.list()
    assert len(page["images"]) == 25 and "next" in page
    conf.config(max_limit=5, group="api")
    assert len(images.list("limit=100")["images"]) == 5
    assert images.list("limit=0")["images"] == []


def test_next_link_keeps_the_query(images):
    for n in range(3):
        images.create(name=f"img-{n}", tags=["a", "b"])
    page = images.list("tag=a&tag=b&limit=1&sort=name:asc")
    query = urllib.parse.parse_qs(page["next"].split("?", 1)[1])
    assert query["tag"] == ["a", "b"] and query["sort"] == ["name:asc"]
    assert query["marker"] == [page["images"][0]["id"]]
    names = _names(page)
    while "next" in page:
        page = images.list(page["next"].split("?", 1)[1])
        names += _names(page)
    assert names == ["img-0", "img-1", "img-2"]


@pytest.mark.parametrize("query, text", [
    ("limit=x", "limit param must be an integer"),
    ("limit=-1", "limit param must be positive"),
    ("marker=00000000-0000-0000-0000-000000000000", "marker"),
    ("sort_key=colour", "Invalid sort key"),
    ("sort_dir=up", "Invalid sort direction"),
    ("sort=name:up", "Invalid sort direction"),
    ("sort=colour:asc", "Invalid sort key"),
    ("sort=name&sort_key=size", "cannot be combined"),
    ("sort_key=name&sort_key=size&sort_key=id&sort_dir=asc&sort_dir=desc", "does not match"),
    ("visibility=everyone", "Invalid visibility value"),
    ("os_hidden=maybe", "os_hidden"),
    ("protected=perhaps", "protected"),
    ("size_min=big", "non-numeric"),
    ("created_at=gt:yesterday", "ISO 8601"),
    ("changes-since=2020-01-01T00:00:00Z", "changes-since"),
    ("member_status=friends", "Invalid status"),
])
def test_bad_list_parameters(images, query, text):
    assert text in error_message(images.request("GET", f"/v2/images?{query}"), 400)


def test_sorting(images):
    for name, data in (("b", b"22"), ("a", b"333"), ("c", b"1")):
        images.active_image(data, name=name)
    assert _names(images.list("sort_key=name&sort_dir=asc")) == ["a", "b", "c"]
    assert _names(images.list("sort=size:desc")) == ["a", "b", "c"]
    assert _names(images.list("sort=size")) == ["a", "b", "c"]  # desc by default
    assert _names(images.list("sort_key=size&sort_key=name&sort_dir=asc")) == ["c", "b", "a"]
    assert _names(images.list("sort=name:desc,size:asc")) == ["c", "b", "a"]


def test_filters(images):
    k = images.active_image(b"k" * 10, name="kernel", disk_format="aki",
                            container_format="aki", tags=["boot", "x86"], arch="x86_64")
    r = images.active_image(b"r" * 100, name="root", disk_format="raw", tags=["x86"],
                            protected=True, arch="aarch64")
    q = images.create(name="queued one", disk_format="qcow2", container_format="bare")
    images.create(name="hidden", os_hidden=True)

    def names(query: str) -> set[str]:
        return set(_names(images.list(query)))

    assert names("") == {"kernel", "root", "queued one"}
    assert names("os_hidden=true") == {"hidden"}
    assert names("os_hidden=False") == {"kernel", "root", "queued one"}
    assert names("name=root") == {"root"}
    assert names("name=in:root,%22queued%20one%22") == {"root", "queued one"}
    assert names("name=eq:kernel") == {"kernel"}
    assert names(f"id=in:{k['id']},{q['id']}") == {"kernel", "queued one"}
    assert names("status=queued") == {"queued one"}
    assert names("status=in:active,queued") == {"kernel", "root", "queued one"}
    assert names("disk_format=aki") == {"kernel"}
    assert names("container_format=bare") == {"root", "queued one"}
    assert names("tag=x86") == {"kernel", "root"}
    assert names("tag=x86&tag=boot") == {"kernel"}
    assert names("tag=none") == set()
    assert names("size_min=11") == {"root"}
    assert names("size_max=10") == {"kernel"}
    assert names("size_min=10&size_max=100") == {"kernel", "root"}
    assert names("protected=true") == {"root"}
    assert names("protected=false") == {"kernel", "queued one"}
    assert names("arch=x86_64") == {"kernel"}
    assert names(f"checksum={r['checksum']}") == {"root"}
    assert names(f"os_hash_value={k['os_hash_value']}") == {"kernel"}
    assert names("owner=demo") == {"kernel", "root", "queued one"}
    assert names("owner=nobody") == set()
    future = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert names(f"created_at=lt:{future}") == {"kernel", "root", "queued one"}
    assert names(f"updated_at=gte:{future}") == set()
    assert names("visibility=shared") == {"kernel", "root", "queued one"}
    assert names("visibility=public") == set()


def test_filters_on_tags_page_correctly(images):
    for n in range(9):
        images.create(name=f"img-{n}", tags=["even"] if n % 2 == 0 else ["odd"])
    names, page = [], images.list("tag=even&limit=2&sort=name:asc")
    names += _names(page)
    while "next" in page:
        page = images.list(page["next"].split("?", 1)[1])
        names += _names(page)
    assert names == ["img-0", "img-2", "img-4", "img-6", "img-8"]


def test_admin_lists_every_project(images):
    images.create(name="mine", visibility="private")
    images.create(name="theirs", token="other:other", visibility="private")
    assert set(_names(images.list(token=ADMIN))) == {"mine", "theirs"}
    assert set(_names(images.list())) == {"mine"}
