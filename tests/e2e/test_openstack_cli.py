"""The real ``openstack`` CLI against a real all-in-one virtstack: only the
``clouds.yaml`` that ``virtstack up`` wrote says where and who
(``OS_CLIENT_CONFIG_FILE`` and ``--os-cloud``, no other flag). Each command
must exit 0 and show the state it should. One guest, booted from images
uploaded with ``image create --file``, lives through the whole flow.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse

from tests.e2e.conftest import DEMO_CLOUD, OPENSTACK, guest_files, md5_of
from tests.functional.virt.libvirt import environment as lv
from tests.waiting import poll

#: Seconds one CLI command may take (it starts a Python interpreter, signs
#: in, discovers versions: ~1 s idle, several on a busy machine).
COMMAND_TIMEOUT = 120
#: Seconds for a state change seen through the API (stop, detach, extend...).
STATE_TIMEOUT = 90


def openstack(cloud, *args: str, fmt_json: bool = False, cloud_name: str = DEMO_CLOUD):
    """Run ``openstack --os-cloud <cloud_name> ARGS``; assert it exits 0.
    Its JSON output with ``fmt_json`` (``-f json``), else its stdout."""
    cmd = [OPENSTACK, "--os-cloud", cloud_name, *args] + (["-f", "json"] if fmt_json else [])
    proc = subprocess.run(cmd, env=cloud.client_env(), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"openstack {' '.join(args)} exited {proc.returncode}:\n"
                                  f"{proc.stderr}\n{proc.stdout}")
    return json.loads(proc.stdout) if fmt_json else proc.stdout


def _server(cloud, name: str) -> dict:
    return openstack(cloud, "server", "show", name, fmt_json=True)


def _wait_server(cloud, name: str, status: str) -> dict:
    def settled():
        server = _server(cloud, name)
        if server["status"] == "ERROR":
            raise AssertionError(f"server {name} went to ERROR: {server.get('fault')}")
        return server if (server["status"] == status
                          and server["OS-EXT-STS:task_state"] is None) else None
    return poll(settled, STATE_TIMEOUT, f"server {name} {status}", interval=0.5)


def _volume(cloud, name: str) -> dict:
    return openstack(cloud, "volume", "show", name, fmt_json=True)


def _wait_volume(cloud, name: str, status: str, **fields) -> dict:
    def settled():
        volume = _volume(cloud, name)
        if volume["status"].startswith("error"):
            raise AssertionError(f"volume {name} went to {volume['status']}")
        ok = volume["status"] == status and all(volume[k] == v for k, v in fields.items())
        return volume if ok else None
    return poll(settled, STATE_TIMEOUT, f"volume {name} {status} {fields}", interval=0.5)


def _wait_console(cloud, name: str, marker: str, count: int = 1) -> str:
    """``console log show`` (polled) once it holds ``marker`` ``count`` times."""
    def shown():
        log = openstack(cloud, "console", "log", "show", name)
        return log if log.count(marker) >= count else None
    return poll(shown, lv.BOOT_TIMEOUT, f"{marker!r} x{count} on the console of {name}",
                interval=1.0)


def _upload_guest(cloud) -> dict[str, dict]:
    """``image create --file`` of the test guest's kernel, ramdisk and root
    disk (with ``kernel_id``/``ramdisk_id``/``os_command_line``); each view."""
    files = guest_files()
    kernel = openstack(cloud, "image", "create", "--file", files["kernel"], "--disk-format",
                       "aki", "--container-format", "aki", "e2e-kernel", fmt_json=True)
    ramdisk = openstack(cloud, "image", "create", "--file", files["ramdisk"], "--disk-format",
                        "ari", "--container-format", "ari", "e2e-ramdisk", fmt_json=True)
    root = openstack(cloud, "image", "create", "--file", files["root"],
                     "--disk-format", files["root_format"], "--container-format", "bare",
                     "--property", f"kernel_id={kernel['id']}",
                     "--property", f"ramdisk_id={ramdisk['id']}",
                     "--property", f"os_command_line={files['cmdline']}",
                     "--min-ram", "128", "e2e-guest", fmt_json=True)
    for image, path in ((kernel, files["kernel"]), (ramdisk, files["ramdisk"]),
                        (root, files["root"])):
        assert image["status"] == "active", image
        assert image["size"] == os.path.getsize(path), image
    assert root["checksum"] == md5_of(files["root"])
    assert (root["properties"]["kernel_id"], root["properties"]["ramdisk_id"]) == (
        kernel["id"], ramdisk["id"])
    return {"kernel": kernel, "ramdisk": ramdisk, "root": root}


def test_the_whole_flow_through_the_openstack_cli(virtstack_cloud):
    cloud = virtstack_cloud

    # -- identity, images, flavors --------------------------------------------
    token = openstack(cloud, "token", "issue", fmt_json=True)
    assert len(token["id"]) > 100 and token["project_id"] and token["user_id"], token

    images = _upload_guest(cloud)
    listed = {i["Name"]: i for i in openstack(cloud, "image", "list", fmt_json=True)}
    for name in ("e2e-kernel", "e2e-ramdisk", "e2e-guest"):
        assert listed[name]["Status"] == "active", listed
    assert listed["e2e-guest"]["ID"] == images["root"]["id"]

    flavors = {f["Name"]: f for f in openstack(cloud, "flavor", "list", fmt_json=True)}
    assert (flavors["m1.micro"]["RAM"], flavors["m1.micro"]["VCPUs"]) == (192, 1), flavors

    # -- a server from the uploaded image ----------------------------------------
    server = openstack(cloud, "server", "create", "--image", "e2e-guest", "--flavor", "m1.micro",
                       "--wait", "e2e-server", fmt_json=True)
    assert server["status"] == "ACTIVE", server
    sid = server["id"]
    assert images["root"]["id"] in server["image"]
    listed = openstack(cloud, "server", "list", fmt_json=True)
    assert [(s["ID"], s["Name"], s["Status"]) for s in listed] == [
        (sid, "e2e-server", "ACTIVE")]
    assert listed[0]["Image"] == "e2e-guest" and listed[0]["Flavor"] == "m1.micro"
    shown = _server(cloud, "e2e-server")
    assert (shown["id"], shown["status"], shown["OS-EXT-STS:vm_state"]) == (
        sid, "ACTIVE", "active")
    assert shown["flavor"].startswith("m1.micro") and shown["project_id"] == token["project_id"]
    log = _wait_console(cloud, "e2e-server", cloud.boot_marker)
    if cloud.real_guests:
        # The uploaded kernel and ramdisk booted the uploaded root disk.
        assert "VIRTSTACK-ROOT /dev/vda" in log

    # -- power --------------------------------------------------------------------
    assert openstack(cloud, "server", "stop", "e2e-server") == ""
    assert _wait_server(cloud, "e2e-server", "SHUTOFF")["OS-EXT-STS:vm_state"] == "stopped"
    boots = openstack(cloud, "console", "log", "show", "e2e-server").count(cloud.boot_marker)
    assert openstack(cloud, "server", "start", "e2e-server") == ""
    _wait_server(cloud, "e2e-server", "ACTIVE")
    _wait_console(cloud, "e2e-server", cloud.boot_marker, boots + 1)
    openstack(cloud, "server", "reboot", "--wait", "e2e-server")
    assert _server(cloud, "e2e-server")["status"] == "ACTIVE"
    log = _wait_console(cloud, "e2e-server", cloud.boot_marker, boots + 2)

    # -- consoles -------------------------------------------------------------------
    assert cloud.boot_marker in log
    console = openstack(cloud, "console", "url", "show", "e2e-server", fmt_json=True)
    url = urllib.parse.urlsplit(console["url"])
    assert url.scheme and url.hostname and url.port, console
    assert (console["protocol"], console["type"]) == ("vnc", "novnc"), console

    # -- a volume attached, detached, extended, snapshotted -------------------------
    volume = openstack(cloud, "volume", "create", "--size", "1", "e2e-volume", fmt_json=True)
    assert volume["size"] == 1 and volume["status"] in ("creating", "available"), volume
    vid = volume["id"]
    _wait_volume(cloud, "e2e-volume", "available")
    attachment = openstack(cloud, "server", "add", "volume", "e2e-server", "e2e-volume",
                           fmt_json=True)
    assert (attachment["Server ID"], attachment["Volume ID"], attachment["Device"]) == (
        sid, vid, "/dev/vdb"), attachment
    volume = _volume(cloud, "e2e-volume")
    assert volume["status"] == "in-use", volume
    [att] = volume["attachments"]
    assert (att["server_id"], att["device"], att["volume_id"]) == (sid, "/dev/vdb", vid), att
    assert [v["id"] for v in _server(cloud, "e2e-server")["volumes_attached"]] == [vid]
    _wait_console(cloud, "e2e-server", "VIRTSTACK-DISK-ADDED vdb")

    assert openstack(cloud, "server", "remove", "volume", "e2e-server", "e2e-volume") == ""
    assert _wait_volume(cloud, "e2e-volume", "available")["attachments"] == []
    _wait_console(cloud, "e2e-server", "VIRTSTACK-DISK-REMOVED vdb")
    assert _server(cloud, "e2e-server")["volumes_attached"] == []

    assert openstack(cloud, "volume", "set", "--size", "2", "e2e-volume") == ""
    _wait_volume(cloud, "e2e-volume", "available", size=2)

    snapshot = openstack(cloud, "volume", "snapshot", "create", "--volume", "e2e-volume",
                         "e2e-snapshot", fmt_json=True)
    assert (snapshot["volume_id"], snapshot["size"]) == (vid, 2), snapshot
    poll(lambda: openstack(cloud, "volume", "snapshot", "show", "e2e-snapshot",
                           fmt_json=True)["status"] == "available",
         STATE_TIMEOUT, "the snapshot available", interval=0.5)

    # -- the server's own image -----------------------------------------------------
    image = openstack(cloud, "server", "image", "create", "--name", "e2e-server-image",
                      "--wait", "e2e-server", fmt_json=True)
    assert image["status"] == "active" and image["size"] > 0, image
    assert image["properties"]["instance_uuid"] == sid
    assert image["properties"]["kernel_id"] == images["kernel"]["id"]
    shown = openstack(cloud, "image", "show", "e2e-server-image", fmt_json=True)
    assert (shown["id"], shown["status"]) == (image["id"], "active")

    # -- and gone -------------------------------------------------------------------
    openstack(cloud, "server", "delete", "--wait", "e2e-server")
    assert openstack(cloud, "server", "list", fmt_json=True) == []
    if cloud.real_guests:
        assert not [n for n in lv.domain_names() if n.startswith(cloud.name_prefix)]
    openstack(cloud, "volume", "snapshot", "delete", "e2e-snapshot")
    poll(lambda: openstack(cloud, "volume", "snapshot", "list", fmt_json=True) == [],
         STATE_TIMEOUT, "the snapshot deleted", interval=0.5)
    assert openstack(cloud, "volume", "delete", "e2e-volume") == ""
    poll(lambda: openstack(cloud, "volume", "list", fmt_json=True) == [], STATE_TIMEOUT,
         "no volume left", interval=0.5)
