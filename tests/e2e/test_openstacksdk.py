"""The CLI test's flow through openstacksdk, in this process:
``openstack.connect(cloud="virtstack-demo")`` with the ``clouds.yaml``
``virtstack up`` wrote (``OS_CLIENT_CONFIG_FILE``), against a real
all-in-one virtstack. One guest, booted from images the SDK uploads, lives
through the whole flow."""

from __future__ import annotations

import os
import urllib.parse

import openstack
import pytest

from tests.e2e.conftest import DEMO_CLOUD, guest_files, md5_of
from tests.functional.virt.libvirt import environment as lv
from tests.waiting import poll

#: Seconds for a state change seen through the API (stop, detach, extend...).
STATE_TIMEOUT = 90
#: How often the SDK's own waits poll (its default is 2 s).
INTERVAL = 0.5


@pytest.fixture(scope="module")
def conn(virtstack_cloud):
    """A connection as the demo user, configured by clouds.yaml alone."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("OS_")]:
            mp.delenv(name)
        mp.setenv("OS_CLIENT_CONFIG_FILE", virtstack_cloud.clouds_yaml)
        connection = openstack.connect(cloud=DEMO_CLOUD)
        try:
            yield connection
        finally:
            connection.close()


def _console(conn, server) -> str:
    return conn.compute.get_server_console_output(server)["output"]


def _wait_console(conn, server, marker: str, count: int = 1) -> None:
    poll(lambda: _console(conn, server).count(marker) >= count, lv.BOOT_TIMEOUT,
         f"{marker!r} x{count} on the console", interval=INTERVAL)


def _upload(conn, name: str, path: str, disk_format: str, container_format: str, **props):
    image = conn.image.create_image(name, filename=path, disk_format=disk_format,
                                    container_format=container_format, wait=True,
                                    timeout=STATE_TIMEOUT, **props)
    image = conn.image.get_image(image)
    assert image.status == "active" and image.size == os.path.getsize(path), image
    return image


def test_the_whole_flow_through_openstacksdk(virtstack_cloud, conn):
    cloud = virtstack_cloud

    # -- identity, images, flavors --------------------------------------------
    assert conn.authorize()
    project_id = conn.current_project_id
    assert project_id and conn.current_project.name == "demo"

    files = guest_files()
    kernel = _upload(conn, "sdk-kernel", files["kernel"], "aki", "aki")
    ramdisk = _upload(conn, "sdk-ramdisk", files["ramdisk"], "ari", "ari")
    root = _upload(conn, "sdk-guest", files["root"], files["root_format"], "bare",
                   kernel_id=kernel.id, ramdisk_id=ramdisk.id,
                   os_command_line=files["cmdline"])
    assert root.checksum == md5_of(files["root"])
    assert (root.kernel_id, root.ramdisk_id) == (kernel.id, ramdisk.id)
    assert root.os_command_line == files["cmdline"]
    listed = {i.name: i for i in conn.image.images()}
    for image in (kernel, ramdisk, root):
        assert listed[image.name].id == image.id and listed[image.name].status == "active"

    micro = conn.compute.find_flavor("m1.micro", ignore_missing=False)
    assert (micro.ram, micro.vcpus) == (192, 1)
    assert "m1.micro" in {f.name for f in conn.compute.flavors()}

    # -- a server from the uploaded image ----------------------------------------
    server = conn.compute.create_server(name="sdk-server", image_id=root.id,
                                        flavor_id=micro.id)
    server = conn.compute.wait_for_server(server, "ACTIVE", interval=INTERVAL,
                                          wait=lv.BOOT_TIMEOUT)
    assert server.image.id == root.id and server.project_id == project_id
    assert [(s.id, s.status) for s in conn.compute.servers()] == [(server.id, "ACTIVE")]
    shown = conn.compute.get_server(server.id)
    assert (shown.name, shown.status, shown.vm_state) == ("sdk-server", "ACTIVE", "active")
    _wait_console(conn, server, cloud.boot_marker)

    # -- power --------------------------------------------------------------------
    conn.compute.stop_server(server)
    stopped = conn.compute.wait_for_server(server, "SHUTOFF", interval=INTERVAL,
                                           wait=STATE_TIMEOUT)
    assert stopped.vm_state == "stopped"
    boots = _console(conn, server).count(cloud.boot_marker)
    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, "ACTIVE", interval=INTERVAL, wait=STATE_TIMEOUT)
    _wait_console(conn, server, cloud.boot_marker, boots + 1)
    conn.compute.reboot_server(server, "SOFT")
    # The API answers after the state changed: REBOOT at once, ACTIVE after.
    assert conn.compute.get_server(server).status in ("REBOOT", "ACTIVE")
    conn.compute.wait_for_server(server, "ACTIVE", interval=INTERVAL, wait=STATE_TIMEOUT)
    _wait_console(conn, server, cloud.boot_marker, boots + 2)

    # -- consoles -------------------------------------------------------------------
    assert cloud.boot_marker in _console(conn, server)
    console = conn.compute.create_console(server, "novnc")
    url = urllib.parse.urlsplit(console["url"])
    assert url.scheme and url.hostname and url.port, console

    # -- a volume attached, detached, extended, snapshotted -------------------------
    volume = conn.block_storage.create_volume(size=1, name="sdk-volume")
    volume = conn.block_storage.wait_for_status(volume, "available", interval=INTERVAL,
                                                wait=STATE_TIMEOUT)
    attachment = conn.compute.create_volume_attachment(server, volume)
    assert (attachment.server_id, attachment.volume_id, attachment.device) == (
        server.id, volume.id, "/dev/vdb")
    volume = conn.block_storage.get_volume(volume)
    assert volume.status == "in-use"
    [att] = volume.attachments
    assert (att["server_id"], att["device"]) == (server.id, "/dev/vdb"), att
    assert [v["id"] for v in conn.compute.get_server(server).attached_volumes] == [volume.id]
    _wait_console(conn, server, "VIRTSTACK-DISK-ADDED vdb")

    conn.compute.delete_volume_attachment(server, volume)
    volume = conn.block_storage.wait_for_status(volume, "available", interval=INTERVAL,
                                                wait=STATE_TIMEOUT)
    assert volume.attachments == []
    _wait_console(conn, server, "VIRTSTACK-DISK-REMOVED vdb")

    conn.block_storage.extend_volume(volume, 2)
    poll(lambda: (v := conn.block_storage.get_volume(volume)).size == 2
         and v.status == "available", STATE_TIMEOUT, "the volume extended", interval=INTERVAL)

    snapshot = conn.block_storage.create_snapshot(volume_id=volume.id, name="sdk-snapshot")
    snapshot = conn.block_storage.wait_for_status(snapshot, "available", interval=INTERVAL,
                                                  wait=STATE_TIMEOUT)
    assert (snapshot.volume_id, snapshot.size) == (volume.id, 2)

    # -- the server's own image -----------------------------------------------------
    image = conn.compute.create_server_image(server, "sdk-server-image", wait=True,
                                             timeout=STATE_TIMEOUT)
    assert image.status == "active" and image.size > 0
    assert image.instance_uuid == server.id and image.kernel_id == kernel.id

    # -- and gone -------------------------------------------------------------------
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=INTERVAL, wait=STATE_TIMEOUT)
    assert list(conn.compute.servers()) == []
    if cloud.real_guests:
        assert not [n for n in lv.domain_names() if n.startswith(cloud.name_prefix)]
    conn.block_storage.delete_snapshot(snapshot)
    conn.block_storage.wait_for_delete(snapshot, interval=INTERVAL, wait=STATE_TIMEOUT)
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, interval=INTERVAL, wait=STATE_TIMEOUT)
    assert list(conn.block_storage.volumes()) == []
