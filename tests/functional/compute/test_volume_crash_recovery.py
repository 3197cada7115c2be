"""Kill -9 the all-in-one service in the middle of a volume attach, start it
again: the interrupted (persisted) attach flow is rolled back (its caller's
request died with the service), so the volume is available again with no
BDM, no attachment and no flow state left, and the server still ACTIVE.

Runs ``virtstack up`` as a real separate process and talks to it over HTTP.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

import pytest
import requests
import sqlalchemy as sa

from tests.functional.compute.test_crash_recovery import HEADERS, Service, _free_port
from tests.waiting import poll


def _count(state: str, query: str) -> int:
    engine = sa.create_engine(f"sqlite:///{state}/virtstack.sqlite")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


class VolumeCloud:
    """``virtstack up`` with its Block Storage API on a port of its own."""

    def __init__(self, state: str, volumes_dir: str, port: int, volume_port: int,
                 extra: str = ""):
        self.service = Service(state, port, extra + (
            f"[volume]\nvolumes_dir = {volumes_dir}\n[api]\nvolume_port = {volume_port}\n"
            f"auth_strategy = noauth\nimage_port = {_free_port()}\n"
            f"identity_port = {_free_port()}\n"))
        self.base = self.service.base
        self.volumes = f"http://127.0.0.1:{volume_port}/v3/demo/volumes"

    def volume_status(self, vid: str) -> str:
        """The volume's status ("" while the Block Storage API is not up yet:
        the service waits only for the Compute API)."""
        try:
            return requests.get(f"{self.volumes}/{vid}", headers=HEADERS,
                                timeout=10).json()["volume"]["status"]
        except requests.ConnectionError:
            return ""


@pytest.fixture
def dirs(request):
    state = tempfile.mkdtemp(prefix="virtstack-attach-crash-", dir="/tmp")
    volumes_dir = os.path.join(state, "volumes")
    os.makedirs(volumes_dir)
    for path in (state, volumes_dir):
        os.chmod(path, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(state, ignore_errors=True))
    return state, volumes_dir


def test_kill_9_mid_attach_then_restart_rolls_the_attach_back(dirs):
    state, volumes_dir = dirs
    port, volume_port = _free_port(), _free_port()
    # The driver's attach takes 30 s: the service dies while it runs.
    first = VolumeCloud(state, volumes_dir, port, volume_port,
                        "[fake_driver]\nlatency = attach_volume:30\n")
    try:
        from tests.functional.compute.test_crash_recovery import _default_image

        resp = requests.post(f"{first.base}/v2.1/servers", headers=HEADERS, json={"server": {
            "name": "victim", "flavorRef": "42", "imageRef": _default_image(state)}},
            timeout=10)
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        poll(lambda: first.service.server(sid)["status"] == "ACTIVE", 30, "ACTIVE")
        resp = requests.post(first.volumes, headers=HEADERS, json={"volume": {"size": 1}},
                             timeout=10)
        assert resp.status_code == 202, resp.text
        vid = resp.json()["volume"]["id"]
        poll(lambda: first.volume_status(vid) == "available", 30, "the volume")

        def attach():
            try:
                requests.post(f"{first.base}/v2.1/servers/{sid}/os-volume_attachments",
                              headers=HEADERS, json={"volumeAttachment": {"volumeId": vid}},
                              timeout=60)
            except requests.RequestException:
                pass  # the service is killed under it

        caller = threading.Thread(target=attach, daemon=True)
        caller.start()
        poll(lambda: first.volume_status(vid) == "attaching", 30,
             "the attach to reach the driver")
        assert _count(state, "SELECT count(*) FROM logbooks WHERE name LIKE 'compute:%'") == 1
        assert _count(state, "SELECT count(*) FROM block_device_mappings WHERE deleted = 0") == 1
    finally:
        first.service.kill9()
    caller.join(timeout=30)

    second = VolumeCloud(state, volumes_dir, port, volume_port)
    try:
        poll(lambda: second.volume_status(vid) == "available", 60,
             "the attach to be rolled back")
        assert _count(state, "SELECT count(*) FROM block_device_mappings WHERE deleted = 0") == 0
        assert _count(state, "SELECT count(*) FROM volume_attachments WHERE deleted = 0") == 0
        assert _count(state, "SELECT count(*) FROM logbooks WHERE name LIKE 'compute:%'") == 0
        server = second.service.server(sid)
        assert server["status"] == "ACTIVE" and server["os-extended-volumes:volumes_attached"] == []
        # Nothing holds the volume any more: it can be deleted. (Attaching it
        # again would not prove more here: the fake hypervisor forgot its
        # guests when the process died.)
        resp = requests.delete(f"{second.volumes}/{vid}", headers=HEADERS, timeout=10)
        assert resp.status_code == 202, resp.text
    finally:
        second.service.stop()
