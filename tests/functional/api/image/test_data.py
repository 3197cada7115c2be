"""Image data: upload and download round trips, the status machine around
an upload, and uploads that fail, race or are cut short."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading

import pytest
import webob

from tests.functional.api.image.conftest import DEMO, error_message
from tests.waiting import poll
from virtstack import context as vs_context
from virtstack import exception
from virtstack.api.image import data as image_data
from virtstack.image import api as image_api
from virtstack.image import store


def _store_files() -> list[str]:
    return sorted(os.listdir(store.images_dir()))


def _demo():
    return vs_context.RequestContext(user_id="demo", project_id="demo", roles=["member"])


def test_round_trip_with_checksums(images):
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, not a whole number of them
    image = images.create(name="blob", disk_format="raw", container_format="bare")
    resp = images.upload(image["id"], data)
    assert resp.status_int == 204, resp.text
    shown = images.show(image["id"])
    assert (shown["status"], shown["size"], shown["virtual_size"]) == ("active", len(data),
                                                                       len(data))
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    resp = images.download(image["id"])
    assert resp.status_int == 200
    assert resp.content_type == "application/octet-stream"
    assert resp.headers["Content-MD5"] == shown["checksum"]
    assert int(resp.headers["Content-Length"]) == len(data)
    assert resp.body == data
    assert _store_files() == [image["id"]]


def test_qcow2_upload_records_its_virtual_size(images, tmp_path):
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "2G"], check=True)
    image = images.active_image(path.read_bytes(), name="disk", disk_format="qcow2")
    assert image["virtual_size"] == 2 * 1024 ** 3
    assert image["size"] == path.stat().st_size


def test_data_that_is_not_its_disk_format_is_refused(images, tmp_path):
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1M"], check=True)
    raw = images.create(name="liar", disk_format="raw", container_format="bare")
    assert "qcow2" in error_message(images.upload(raw["id"], path.read_bytes()), 400)
    qcow2 = images.create(name="liar2", disk_format="qcow2", container_format="bare")
    assert "not a qcow2" in error_message(images.upload(qcow2["id"], b"x" * 1000), 400)
    for image in (raw, qcow2):
        assert images.show(image["id"])["status"] == "queued"
    assert _store_files() == []


def test_upload_needs_a_queued_image_with_formats(images):
    image = images.create(name="a")
    resp = images.upload(image["id"], b"data")
    assert "disk_format and container_format must be set" in error_message(resp, 400)
    images.patch(image["id"], [{"op": "add", "path": "/disk_format", "value": "raw"},
                               {"op": "add", "path": "/container_format", "value": "bare"}])
    assert images.upload(image["id"], b"data").status_int == 204
    resp = images.upload(image["id"], b"other")
    assert "'active'" in error_message(resp, 409)
    assert images.download(image["id"]).body == b"data"


def test_upload_needs_octet_stream(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    resp = images.request("PUT", f"/v2/images/{image['id']}/file", {"data": "x"})
    assert "application/octet-stream" in error_message(resp, 415)
    assert images.show(image["id"])["status"] == "queued"


def test_download_without_data_is_no_content(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    resp = images.download(image["id"])
    assert (resp.status_int, resp.body) == (204, b"")


def test_an_upload_cut_short_leaves_the_image_queued(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    req = webob.Request.blank(f"/v2/images/{image['id']}/file", method="PUT")
    req.headers["X-Auth-Token"] = DEMO
    req.content_type = "application/octet-stream"
    # The client announced 1 MiB and sent 1000 bytes before its connection died.
    req.environ["wsgi.input"] = io.BytesIO(b"x" * 1000)
    req.environ["CONTENT_LENGTH"] = str(1024 * 1024)
    req.environ["webob.is_body_seekable"] = False
    resp = req.get_response(images.app)
    assert "stopped before its end" in error_message(resp, 400)
    assert images.show(image["id"])["status"] == "queued"
    assert _store_files() == []
    assert images.upload(image["id"], b"y" * 10).status_int == 204  # it can be retried
    assert images.download(image["id"]).body == b"y" * 10


def test_a_failing_upload_leaves_the_image_queued(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")

    def broken():
        yield b"first chunk"
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        image_api.ImageAPI().upload(_demo(), image["id"], broken(), size_cap=1 << 20)
    shown = images.show(image["id"])
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert _store_files() == []


def test_too_large_uploads(images, monkeypatch):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    with pytest.raises(exception.ImageTooLarge):
        image_api.ImageAPI().upload(_demo(), image["id"], iter([b"x" * 64] * 3), size_cap=100)
    monkeypatch.setattr(image_data, "IMAGE_SIZE_CAP", 100)
    assert "too large" in error_message(images.upload(image["id"], b"x" * 101), 413)
    assert images.show(image["id"])["status"] == "queued"
    assert _store_files() == []


class _HeldUpload:
    """An upload through the image service whose data stops after its first
    chunk until ``release()``; ``result`` is what it returned or raised."""

    def __init__(self, image_id: str) -> None:
        self.sending = threading.Event()
        self._go = threading.Event()
        self.result: object = None
        self._thread = threading.Thread(target=self._run, args=(image_id,))
        self._thread.start()

    def _chunks(self):
        yield b"held " * 100
        self.sending.set()
        self._go.wait(30)
        yield b"rest"

    def _run(self, image_id: str) -> None:
        try:
            self.result = image_api.ImageAPI().upload(_demo(), image_id, self._chunks(),
                                                      size_cap=1 << 20)
        except Exception as exc:  # the test looks at it
            self.result = exc

    def release(self) -> object:
        self._go.set()
        self._thread.join(30)
        return self.result


def test_of_two_racing_uploads_one_wins(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    held = _HeldUpload(image["id"])
    poll(held.sending.is_set, 10, "the first upload to be sending")
    assert images.show(image["id"])["status"] == "saving"
    assert "'saving'" in error_message(images.upload(image["id"], b"second"), 409)
    assert getattr(held.release(), "status", None) == "active"
    assert images.download(image["id"]).body == b"held " * 100 + b"rest"


def test_an_image_deleted_during_its_upload_keeps_no_data(images):
    image = images.create(name="a", disk_format="raw", container_format="bare")
    held = _HeldUpload(image["id"])
    poll(held.sending.is_set, 10, "the upload to be sending")
    assert images.request("DELETE", f"/v2/images/{image['id']}").status_int == 204
    assert isinstance(held.release(), exception.ImageGone)
    assert _store_files() == []
    error_message(images.request("GET", f"/v2/images/{image['id']}"), 404)
