"""The Image API on a listening server (waitress), driven by plain HTTP and
by the real openstacksdk.

openstacksdk under ``noauth``: there is no Identity service to log in to,
so the test gives openstacksdk a keystoneauth session whose plugin is
``token_endpoint.Token`` (what ``auth_type: admin_token`` builds): it sends
the noauth token ``user:project`` as X-Auth-Token as is, and knows one
endpoint. ``image_endpoint_override`` points the image proxy at the
server's root; openstacksdk then discovers v2 from the 300 version document
as it does with Glance. The openstack CLI works the same way, given the
versioned endpoint (it skips discovery with an explicit endpoint):
``openstack --os-auth-type admin_token --os-endpoint http://HOST:PORT/v2
--os-token demo:demo image list``.
"""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
import requests

from tests.functional.api.image.conftest import DEMO
from virtstack.image import store


@pytest.fixture
def server(database):
    from virtstack import service

    api = service.image_api_server(port=0)
    api.start()
    try:
        yield f"http://127.0.0.1:{api.port}"
    finally:
        api.stop()


def _headers(**extra) -> dict:
    return {"X-Auth-Token": DEMO, **extra}


def _create(url: str, **attributes) -> dict:
    resp = requests.post(f"{url}/v2/images", json=attributes, headers=_headers(), timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_chunked_upload_and_streamed_download(server):
    image = _create(server, name="chunked", disk_format="raw", container_format="bare")
    pieces = [os.urandom(256 * 1024) for _ in range(9)]

    def body():
        yield from pieces  # no length known in advance: Transfer-Encoding chunked

    resp = requests.put(f"{server}/v2/images/{image['id']}/file", data=body(), timeout=60,
                        headers=_headers(**{"Content-Type": "application/octet-stream"}))
    assert resp.status_code == 204, resp.text
    data = b"".join(pieces)
    with requests.get(f"{server}/v2/images/{image['id']}/file", headers=_headers(),
                      stream=True, timeout=60) as resp:
        assert resp.status_code == 200
        digest = hashlib.md5()
        for chunk in resp.iter_content(64 * 1024):
            digest.update(chunk)
        assert resp.headers["Content-MD5"] == digest.hexdigest() == hashlib.md5(data).hexdigest()
    assert requests.get(f"{server}/", timeout=30).status_code == 300


def test_a_connection_dropped_mid_upload_leaves_nothing(server):
    image = _create(server, name="dropped", disk_format="raw", container_format="bare")
    host, port = server[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: {host}\r\n"
                      f"X-Auth-Token: {DEMO}\r\nContent-Type: application/octet-stream\r\n"
                      f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode())
        sock.sendall(b"x" * 100_000)
    # The server never hands an incomplete body on: the image is as it was.
    resp = requests.get(f"{server}/v2/images/{image['id']}", headers=_headers(), timeout=30)
    assert resp.json()["status"] == "queued"
    assert [f for f in os.listdir(store.images_dir())] == []


def test_openstacksdk(server):
    import openstack
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint

    session = ks_session.Session(auth=token_endpoint.Token(endpoint=server, token=DEMO))
    conn = openstack.connection.Connection(session=session, image_endpoint_override=server)
    data = os.urandom(100_000)
    image = conn.image.create_image(name="sdk", disk_format="raw", container_format="bare",
                                    data=data, validate_checksum=True, os_distro="debian",
                                    tags=["sdk"], wait=True)
    assert (image.status, image.size, image.checksum) == ("active", len(data),
                                                          hashlib.md5(data).hexdigest())
    fetched = conn.image.get_image(image.id)
    assert fetched.hash_algo == "sha512"
    assert fetched.hash_value == hashlib.sha512(data).hexdigest()
    assert fetched.os_distro == "debian" and fetched.tags == ["sdk"]
    assert [i.id for i in conn.image.images(tag="sdk")] == [image.id]
    assert conn.image.download_image(image.id).content == data
    conn.image.update_image(image.id, name="sdk-renamed", hw_rng_model="virtio")
    renamed = conn.image.find_image("sdk-renamed")
    assert renamed.id == image.id and renamed.hw_rng_model == "virtio"
    conn.image.add_tag(image.id, "extra")
    conn.image.remove_tag(image.id, "sdk")
    assert conn.image.get_image(image.id).tags == ["extra"]
    for n in range(3):
        conn.image.create_image(name=f"page-{n}", disk_format="raw", container_format="bare",
                                allow_duplicates=True)
    # openstacksdk follows the "next" links itself.
    assert len(list(conn.image.images(limit=2))) == 4
    with pytest.raises(openstack.exceptions.ForbiddenException, match="publicize_image"):
        conn.image.update_image(image.id, visibility="public")
    conn.image.delete_image(image.id)
    assert conn.image.find_image(image.id) is None
