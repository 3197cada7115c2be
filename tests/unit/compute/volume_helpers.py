"""What the volume tests of the compute side share: making volumes through
the Block Storage API and reading what the database says of attachments."""

from __future__ import annotations

import sqlalchemy as sa

from tests.waiting import poll
from virtstack.db import api as db_api
from virtstack.db import block_device as db_bd
from virtstack.db import volume as db_volume

TOKEN = "demo:demo"


def volume_status(cloud, volume_id: str, token: str = TOKEN) -> str:
    resp = cloud.volume_request("GET", f"/v3/{token.split(':')[1]}/volumes/{volume_id}",
                                token=token)
    assert resp.status_int == 200, resp.text
    return resp.json["volume"]["status"]


def wait_volume(cloud, volume_id: str, status: str, timeout: float = 30.0,
                token: str = TOKEN) -> None:
    poll(lambda: volume_status(cloud, volume_id, token) == status, timeout,
         f"volume {volume_id} to be {status}")


def make_volume(cloud, size: int = 1, token: str = TOKEN, **extra) -> str:
    """An available volume of ``size`` GiB (made through /v3)."""
    project = token.split(":")[1]
    resp = cloud.volume_request("POST", f"/v3/{project}/volumes",
                                {"volume": {"size": size, **extra}}, token=token)
    assert resp.status_int == 202, resp.text
    volume_id = resp.json["volume"]["id"]
    wait_volume(cloud, volume_id, "available", token=token)
    return volume_id


def active_server(cloud, name: str = "srv", token: str = TOKEN) -> str:
    sid = cloud.create_server(name=name, token=token)
    cloud.wait_for_status(sid, "ACTIVE")
    return sid


def attach(cloud, server_id: str, volume_id: str, token: str = TOKEN, version=None, **extra):
    return cloud.request("POST", f"/v2.1/servers/{server_id}/os-volume_attachments",
                         {"volumeAttachment": {"volumeId": volume_id, **extra}}, token=token,
                         version=version)


def detach(cloud, server_id: str, volume_id: str, token: str = TOKEN):
    return cloud.request("DELETE", f"/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}",
                         token=token)


def live_bdms(server_id: str) -> list:
    return [b for b in db_bd.list_for_instance(server_id) if b.volume_id]


def live_attachments(volume_id: str) -> list:
    return db_volume.attachment_list({"volume_id": volume_id})


def flow_logbooks() -> int:
    """Flow state the compute service left behind (the volume service's
    flows, which may still run, are not counted)."""
    with db_api.get_engine().connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM logbooks WHERE name LIKE "
                                    "'compute:%'")).scalar_one()


def assert_not_attached(cloud, server_id: str, volume_id: str) -> None:
    """The volume is available and nothing anywhere says it is attached."""
    assert volume_status(cloud, volume_id) == "available"
    assert live_bdms(server_id) == []
    assert live_attachments(volume_id) == []
    if server_id in cloud.driver.list_instance_uuids():
        assert cloud.driver.get_guest(server_id).volumes == {}
    assert flow_logbooks() == 0


def assert_attached(cloud, server_id: str, volume_id: str, device: str) -> None:
    """The volume is in-use at ``device`` and every record agrees."""
    assert volume_status(cloud, volume_id) == "in-use"
    [bdm] = [b for b in live_bdms(server_id) if b.volume_id == volume_id]
    assert bdm.device_name == device and bdm.connection_info and bdm.attachment_id
    [attachment] = live_attachments(volume_id)
    assert attachment.id == bdm.attachment_id and attachment.attach_status == "attached"
    assert device in cloud.driver.get_guest(server_id).volumes
    assert flow_logbooks() == 0
