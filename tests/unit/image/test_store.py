"""The image store's streamed writes: all or nothing, measured as written."""

from __future__ import annotations

import hashlib
import os

import pytest

from virtstack import exception
from virtstack.image import store


def _files() -> list[str]:
    return sorted(os.listdir(store.images_dir()))


def test_write_streams_chunks_into_place_with_digests(conf):
    chunks = [os.urandom(1000), os.urandom(3000), b"", os.urandom(7)]
    data = b"".join(chunks)
    stored = store.write("img-1", iter(chunks), "raw", size_cap=1 << 20)
    assert stored.location == store.new_path("img-1")
    with open(stored.location, "rb") as f:
        assert f.read() == data
    assert stored.size == len(data) == stored.virtual_size
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.os_hash_value == hashlib.sha512(data).hexdigest()
    assert oct(os.stat(stored.location).st_mode & 0o777) == "0o644"
    assert _files() == ["img-1"]


def _failing_source():
    yield b"a" * 100
    raise OSError("client went away")


def test_a_failing_source_leaves_no_file(conf):
    with pytest.raises(OSError, match="client went away"):
        store.write("img-2", _failing_source(), "raw", size_cap=1 << 20)
    assert _files() == []


def test_past_the_size_cap_is_too_large_and_leaves_no_file(conf):
    with pytest.raises(exception.ImageTooLarge):
        store.write("img-3", iter([b"a" * 60, b"b" * 60]), "raw", size_cap=100)
    assert _files() == []


def test_bits_not_of_the_declared_format_leave_no_file(conf):
    with pytest.raises(exception.Invalid):
        store.write("img-4", iter([b"plain bytes" * 10]), "qcow2", size_cap=1 << 20)
    assert _files() == []


def test_a_failed_rewrite_keeps_the_previous_file(conf):
    store.write("img-5", iter([b"first"]), "raw", size_cap=1 << 20)
    with pytest.raises(OSError):
        store.write("img-5", _failing_source(), "raw", size_cap=1 << 20)
    with open(store.new_path("img-5"), "rb") as f:
        assert f.read() == b"first"
    assert _files() == ["img-5"]


def test_add_file_records_hashes_and_virtual_size(database, tmp_path):
    src = tmp_path / "kernel"
    src.write_bytes(b"k" * 4096)
    row = store.add_file(str(src), "k", "raw", properties={"os_distro": "x"})
    assert row.status == "active" and row.size == 4096
    assert row.checksum == hashlib.md5(b"k" * 4096).hexdigest()
    assert row.properties == {"os_distro": "x", "os_hash_algo": "sha512",
                              "os_hash_value": hashlib.sha512(b"k" * 4096).hexdigest(),
                              "virtual_size": 4096}


def test_finish_snapshot_of_a_deleted_image_removes_the_file(database, tmp_path):
    from virtstack.db import image as db_image

    db_image.create({"id": "snap", "name": "s", "status": "saving", "properties": {"a": "b"}})
    path = store.new_path("snap")
    with open(path, "wb") as f:
        f.write(b"data")
    store.finish_snapshot("snap", path, "raw")
    row = db_image.get("snap")
    assert (row.status, row.size, row.properties["a"]) == ("active", 4, "b")
    store.delete("snap")
    assert not os.path.exists(path)
    with open(path, "wb") as f:
        f.write(b"data")
    with pytest.raises(exception.ImageNotFound):
        store.finish_snapshot("snap", path, "raw")
    assert not os.path.exists(path)
