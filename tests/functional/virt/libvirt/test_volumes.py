"""Volumes on real guests: the libvirt driver's attach, extend and detach,
seen from inside the guest (its console lines) and from libvirt (live and
persistent XML, secrets).

Two guests serve the whole module (booting one takes seconds to minutes
under TCG on a loaded machine): ``running`` is booted once and takes file
and iSCSI volumes; ``cold`` is defined shut off, takes a volume
persistently, and is then started. iSCSI volumes are LUNs of this host's
tgt target (``tools/install-tgt.sh``) with CHAP and an initiator ACL, made
by ``TgtTarget`` with tgtadm; QEMU's own iSCSI client logs in to them.

The test guest prints ``VIRTSTACK-DISK-INFO <dev> serial=<serial>
head=<hex>`` for every new disk: the tests write a pattern into a volume on
the host and see the guest read it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import uuid as uuidlib

import pytest
from oslo_config import fixture as config_fixture

from tests.functional.virt.libvirt import environment as lv
from tests.functional.virt.libvirt.conftest import NAME_PREFIX
from virtstack import exception
from virtstack.conf import CONF
from virtstack.objects import Instance
from virtstack.virt import event as virtevent
from virtstack.virt import power_state
from virtstack.virt.driver import load_driver
from virtstack.virt.libvirt import designer

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(900)]

HOST = "volume-host"
MiB, GiB = 1024 ** 2, 1024 ** 3
SECTOR = 512
DEVICE_TIMEOUT = 60.0  # hot-plug, resize and unplug show up in about a second
PATTERN = b"VIRTSTACK-VOLUME"  # 16 bytes, what the guest prints of a disk's head


# -- module set-up: configuration, database, driver, two guests ------------------

@pytest.fixture(scope="module")
def module_conf(request):
    """[DEFAULT]/[libvirt] for the module (the ``conf`` fixture is per test)."""
    lv.require_libvirt()
    fixture = config_fixture.Config(CONF)
    fixture.setUp()
    request.addfinalizer(fixture.cleanUp)
    CONF([], project="virtstack", default_config_files=[])
    state = lv.make_state_path(request, fixture)
    fixture.config(connection=f"sqlite:///{state}/virtstack.sqlite", group="database")
    fixture.config(sync_power_state_interval=-1, group="compute")
    lv.configure(fixture)
    return fixture


@pytest.fixture(scope="module")
def driver(module_conf):
    from virtstack.db import api as db_api

    db_api.dispose()
    db_api.upgrade()
    drv = load_driver("libvirt")
    drv.init_host(HOST)
    yield drv
    drv.cleanup_host(HOST)
    db_api.dispose()


@pytest.fixture(scope="module")
def image_meta(driver):
    return lv.register_test_image()


@pytest.fixture(scope="module")
def make_guest(driver, image_meta):
    """``make_guest(power_on)``: a guest destroyed at the end of the module."""
    made: list[Instance] = []

    def make(power_on: bool = True) -> Instance:
        uuid = str(uuidlib.uuid4())
        instance = Instance(uuid=uuid, name=f"{NAME_PREFIX}vol-{uuid[:8]}",
                            display_name="volumes", project_id="functional",
                            user_id="functional", flavor=lv.FLAVOR, host=HOST, node=HOST)
        made.append(instance)
        driver.spawn(None, instance, image_meta, power_on=power_on)
        return instance

    yield make
    for instance in made:
        driver.destroy(None, instance)
        assert secrets_of(instance) == []


@pytest.fixture(scope="module")
def running(driver, make_guest):
    instance = make_guest()
    console(driver, instance).wait_for(lv.BOOT_MARKER)
    return instance


@pytest.fixture(scope="module")
def volume_dir(module_conf):
    path = os.path.join(CONF.state_path, "volumes")
    os.makedirs(path, mode=0o711, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def tgt():
    if shutil.which("tgtadm") is None or subprocess.run(
            ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
            capture_output=True).returncode != 0:
        pytest.skip("tgtd is not running; run tools/install-tgt.sh")
    targets: list[TgtTarget] = []
    yield targets
    for target in targets:
        target.delete()


# -- helpers --------------------------------------------------------------------------

def console(driver, instance) -> lv.Console:
    """The guest's console, read from now on (earlier lines do not match)."""
    out = lv.Console(lambda: driver.get_console_output(None, instance))
    out.position = len(out.text())
    return out


def make_file_volume(volume_dir: str, size: int = GiB, fmt: str = "raw",
                     access_mode: str = "rw") -> dict:
    """A file volume holding PATTERN at its start, and its connection_info."""
    volume_id = str(uuidlib.uuid4())
    path = os.path.join(volume_dir, f"volume-{volume_id}")
    with open(path, "wb") as f:
        f.write(PATTERN)
        f.truncate(size)
    return {"driver_volume_type": "file",
            "data": {"volume_id": volume_id, "device_path": path, "format": fmt,
                     "access_mode": access_mode}}


def disk_of(driver, instance, dev: str, inactive: bool = False):
    return driver.host.get_guest(instance).find_disk(dev, inactive=inactive)


def secrets_of(instance) -> list[str]:
    """Usage ids of libvirt's secrets for ``instance``, as ``virsh secret-list`` shows."""
    out = subprocess.run(["virsh", "-c", lv.URI, "secret-list"], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(rf"iscsi\s+({re.escape(designer.secret_usage(instance.uuid, ''))}\S*)",
                      out)


def head_hex(data: bytes = PATTERN) -> str:
    return data.hex()


def wait_disk(out: lv.Console, size: int, volume_id: str, word: str = "ADDED",
              timeout: float = DEVICE_TIMEOUT) -> str:
    """Wait until the guest reports the volume ``volume_id`` (its serial)
    ``ADDED`` (or ``PRESENT`` at boot) with ``size`` bytes and PATTERN at
    its start; the guest's name for it. The guest names disks in the order
    it finds them: the libvirt target (``vdc``) is only a hint."""
    match = out.wait_for(re.compile(
        rf"VIRTSTACK-DISK-{word} (vd[a-z]+) {size // SECTOR}\r?\n"
        rf"VIRTSTACK-DISK-INFO \1 serial={re.escape(volume_id[:20])} head={head_hex()}"),
        timeout=timeout)
    return match.group(1)


class TgtTarget:
    """One tgt target with one LUN backed by a file, CHAP, and an ACL for
    one initiator name."""

    _next_tid = 900 + os.getpid() % 5000  # away from the volume service's

    def __init__(self, path: str, initiator: str) -> None:
        self.path = path
        self.volume_id = str(uuidlib.uuid4())
        self.iqn = f"iqn.2010-10.org.virtstack.test:volume-{self.volume_id}"
        self.user, self.password = f"u{secrets.token_hex(4)}", secrets.token_hex(12)
        self.tid = self._free_tid()
        self.tgtadm("--op", "new", "--mode", "target", "--tid", str(self.tid), "-T", self.iqn)
        self.tgtadm("--op", "new", "--mode", "logicalunit", "--tid", str(self.tid), "--lun", "1",
                    "-b", path)
        self.tgtadm("--op", "bind", "--mode", "target", "--tid", str(self.tid),
                    "--initiator-name", initiator)
        self.tgtadm("--op", "new", "--mode", "account", "--user", self.user,
                    "--password", self.password)
        self.tgtadm("--op", "bind", "--mode", "account", "--tid", str(self.tid),
                    "--user", self.user)

    @classmethod
    def _free_tid(cls) -> int:
        shown = subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                               capture_output=True, text=True, check=True).stdout
        used = {int(t) for t in re.findall(r"^Target (\d+):", shown, re.MULTILINE)}
        while cls._next_tid in used:
            cls._next_tid += 1
        cls._next_tid += 1
        return cls._next_tid - 1

    @staticmethod
    def tgtadm(*args: str) -> None:
        subprocess.run(["tgtadm", "--lld", "iscsi", *args], capture_output=True, check=True)

    def connection_info(self, **changes) -> dict:
        data = {"volume_id": self.volume_id, "target_portal": "127.0.0.1:3260",
                "target_iqn": self.iqn, "target_lun": 1, "target_discovered": False,
                "auth_method": "CHAP", "auth_username": self.user,
                "auth_password": self.password, "access_mode": "rw", "encrypted": False}
        data.update(changes)
        return {"driver_volume_type": "iscsi", "data": data}

    def grow(self, size: int) -> None:
        """Grow the backing file and have tgt report the new size (it reads
        the size when a LUN is made: the LUN is made again)."""
        with open(self.path, "r+b") as f:
            f.truncate(size)
        self.tgtadm("--op", "delete", "--mode", "logicalunit", "--tid", str(self.tid),
                    "--lun", "1")
        self.tgtadm("--op", "new", "--mode", "logicalunit", "--tid", str(self.tid),
                    "--lun", "1", "-b", self.path)

    def delete(self) -> None:
        subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "target",
                        "--tid", str(self.tid), "--force"], capture_output=True)
        subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "account",
                        "--user", self.user], capture_output=True)


@pytest.fixture
def iscsi_volume(driver, tgt, volume_dir):
    """A 1 GiB LUN holding PATTERN, exported to this host's initiator with CHAP."""
    path = os.path.join(volume_dir, f"lun-{uuidlib.uuid4()}")
    with open(path, "wb") as f:
        f.write(PATTERN)
        f.truncate(GiB)
    initiator = driver.get_volume_connector(None)["initiator"]
    target = TgtTarget(path, initiator)
    tgt.append(target)
    return target


# -- file volumes -----------------------------------------------------------------------

def test_file_volume_attach_extend_detach_seen_by_the_guest(driver, running, volume_dir,
                                                            recorder):
    connection_info = make_file_volume(volume_dir)
    volume_id = connection_info["data"]["volume_id"]
    out = console(driver, running)

    driver.attach_volume(None, connection_info, running, "/dev/vdb")
    name = wait_disk(out, GiB, volume_id)
    for inactive in (False, True):
        disk = disk_of(driver, running, "vdb", inactive)
        assert (disk.source_file, disk.serial) == (connection_info["data"]["device_path"],
                                                   volume_id)

    driver.extend_volume(None, connection_info, running, 2 * GiB)
    out.wait_for(f"VIRTSTACK-DISK-RESIZED {name} {2 * GiB // SECTOR}", timeout=DEVICE_TIMEOUT)
    assert os.path.getsize(connection_info["data"]["device_path"]) == 2 * GiB

    removed = recorder.expect(lambda e: isinstance(e, virtevent.DeviceRemovedEvent)
                              and (e.uuid, e.dev) == (running.uuid, "vdb"))
    driver.detach_volume(None, connection_info, running, "/dev/vdb")
    assert disk_of(driver, running, "vdb") is None
    assert disk_of(driver, running, "vdb", inactive=True) is None
    assert removed.wait(recorder.deadline), recorder.events
    out.wait_for(f"VIRTSTACK-DISK-REMOVED {name}", timeout=DEVICE_TIMEOUT)
    with pytest.raises(exception.DeviceNotFound):
        driver.detach_volume(None, connection_info, running, "/dev/vdb")


def test_read_only_volume_is_read_only_in_the_guest(driver, running, volume_dir):
    connection_info = make_file_volume(volume_dir, size=64 * MiB, access_mode="ro")
    out = console(driver, running)
    driver.attach_volume(None, connection_info, running, "/dev/vdc")
    try:
        wait_disk(out, 64 * MiB, connection_info["data"]["volume_id"])
        assert disk_of(driver, running, "vdc").readonly is True
    finally:
        driver.detach_volume(None, connection_info, running, "/dev/vdc")


def test_attach_to_a_taken_device_changes_nothing(driver, running, volume_dir):
    first, second = make_file_volume(volume_dir), make_file_volume(volume_dir)
    driver.attach_volume(None, first, running, "/dev/vdd")
    try:
        with pytest.raises(exception.DeviceInUse):
            driver.attach_volume(None, second, running, "/dev/vdd")
        with pytest.raises(exception.Conflict, match="already attached"):
            driver.attach_volume(None, first, running, "/dev/vde")
        assert disk_of(driver, running, "vdd").source_file == first["data"]["device_path"]
        assert disk_of(driver, running, "vde") is None
        assert disk_of(driver, running, "vde", inactive=True) is None
    finally:
        driver.detach_volume(None, first, running, "/dev/vdd")


def test_attach_of_a_missing_file_leaves_nothing(driver, running, volume_dir):
    connection_info = make_file_volume(volume_dir)
    os.unlink(connection_info["data"]["device_path"])
    with pytest.raises(exception.Invalid, match="is not a file"):
        driver.attach_volume(None, connection_info, running, "/dev/vdf")
    assert disk_of(driver, running, "vdf") is None
    assert disk_of(driver, running, "vdf", inactive=True) is None


def test_unknown_volume_type_names_the_known_ones(driver, running):
    with pytest.raises(exception.VolumeDriverNotFound, match="known: file, iscsi, local"):
        driver.attach_volume(None, {"driver_volume_type": "rbd", "data": {"volume_id": "v"}},
                             running, "/dev/vdf")


# -- iSCSI volumes through QEMU's client ----------------------------------------------------

def test_iscsi_volume_with_chap_attach_extend_detach(driver, running, iscsi_volume, caplog):
    caplog.set_level(logging.DEBUG)
    connection_info = iscsi_volume.connection_info()
    out = console(driver, running)

    driver.attach_volume(None, connection_info, running, "/dev/vdg")
    name = wait_disk(out, GiB, iscsi_volume.volume_id)
    disk = disk_of(driver, running, "vdg", inactive=True)
    assert (disk.source_type, disk.source_protocol, disk.source_name) == (
        "network", "iscsi", f"{iscsi_volume.iqn}/1")
    assert disk.source_initiator_iqn == driver.get_volume_connector(None)["initiator"]
    assert disk.auth_username == iscsi_volume.user
    assert secrets_of(running) == [designer.secret_usage(running.uuid, iscsi_volume.volume_id)]
    assert iscsi_volume.password not in disk.to_xml()

    iscsi_volume.grow(2 * GiB)
    driver.extend_volume(None, connection_info, running, 2 * GiB)
    out.wait_for(f"VIRTSTACK-DISK-RESIZED {name} {2 * GiB // SECTOR}", timeout=DEVICE_TIMEOUT)

    driver.detach_volume(None, connection_info, running, "/dev/vdg")
    out.wait_for(f"VIRTSTACK-DISK-REMOVED {name}", timeout=DEVICE_TIMEOUT)
    assert disk_of(driver, running, "vdg") is None
    assert disk_of(driver, running, "vdg", inactive=True) is None
    assert secrets_of(running) == []
    assert iscsi_volume.password not in caplog.text


def test_iscsi_login_refused_leaves_no_disk_and_no_secret(driver, running, iscsi_volume):
    # A wrong password: the secret is defined, then QEMU's login (inside
    # attachDeviceFlags) fails; the revert removes the secret again.
    bad = iscsi_volume.connection_info(auth_password="not-" + iscsi_volume.password)
    with pytest.raises(Exception) as raised:
        driver.attach_volume(None, bad, running, "/dev/vdh")
    assert not isinstance(raised.value, exception.DeviceInUse)
    assert disk_of(driver, running, "vdh") is None
    assert disk_of(driver, running, "vdh", inactive=True) is None
    assert secrets_of(running) == []


def test_secret_define_refused_leaves_nothing(driver, running, iscsi_volume):
    # Another secret already claims this usage id with another uuid, so
    # libvirt refuses ours: nothing is attached and that secret is not ours
    # to remove.
    import libvirt

    usage = designer.secret_usage(running.uuid, iscsi_volume.volume_id)
    squatter = libvirt.open(lv.URI)
    try:
        handle = squatter.secretDefineXML(
            f"<secret ephemeral='yes' private='yes'><usage type='iscsi'><target>{usage}"
            "</target></usage></secret>", 0)
        try:
            with pytest.raises(libvirt.libvirtError):
                driver.attach_volume(None, iscsi_volume.connection_info(), running, "/dev/vdh")
            assert disk_of(driver, running, "vdh") is None
            assert disk_of(driver, running, "vdh", inactive=True) is None
            assert secrets_of(running) == [usage]  # the other one, untouched
        finally:
            handle.undefine()
    finally:
        squatter.close()
    assert secrets_of(running) == []


# -- a shut-off guest, and one that does not let go ----------------------------------

@pytest.fixture(scope="module")
def cold(make_guest):
    return make_guest(power_on=False)


def test_attach_to_a_shut_off_guest_is_seen_at_boot(driver, cold, volume_dir, iscsi_volume):
    file_volume = make_file_volume(volume_dir)
    driver.attach_volume(None, file_volume, cold, "/dev/vdb")
    driver.attach_volume(None, iscsi_volume.connection_info(), cold, "/dev/vdc")
    assert disk_of(driver, cold, "vdb", inactive=True).source_file == \
        file_volume["data"]["device_path"]
    assert driver.get_info(cold).state == power_state.SHUTDOWN

    out = console(driver, cold)
    driver.power_on(None, cold)
    # At boot the guest names disks in target order: vda, vdb, vdc.
    assert wait_disk(out, GiB, file_volume["data"]["volume_id"], "PRESENT",
                     lv.BOOT_TIMEOUT) == "vdb"
    out.position = 0
    assert wait_disk(out, GiB, iscsi_volume.volume_id, "PRESENT", lv.BOOT_TIMEOUT) == "vdc"
    out.wait_for(lv.BOOT_MARKER)

    driver.detach_volume(None, iscsi_volume.connection_info(), cold, "/dev/vdc")
    assert secrets_of(cold) == []


def test_detach_the_guest_never_acknowledges_fails_and_keeps_the_disk(driver, cold, volume_dir,
                                                                      module_conf):
    # A paused guest cannot answer the unplug request.
    module_conf.config(group="libvirt", device_detach_timeout=0.5, device_detach_attempts=2)
    try:
        connection_info = make_file_volume(volume_dir)
        out = console(driver, cold)
        driver.attach_volume(None, connection_info, cold, "/dev/vdd")
        name = wait_disk(out, GiB, connection_info["data"]["volume_id"])
        driver.pause(cold)
        with pytest.raises(exception.DeviceDetachFailed, match="after 2 requests"):
            driver.detach_volume(None, connection_info, cold, "/dev/vdd")
        assert disk_of(driver, cold, "vdd") is not None
        assert disk_of(driver, cold, "vdd", inactive=True) is not None
    finally:
        module_conf.config(group="libvirt", device_detach_timeout=10.0, device_detach_attempts=3)
    # Running again, the guest handles the pending unplug; asking again
    # finishes the detach (persistent copy included).
    driver.unpause(cold)
    driver.detach_volume(None, connection_info, cold, "/dev/vdd")
    out.wait_for(f"VIRTSTACK-DISK-REMOVED {name}", timeout=DEVICE_TIMEOUT)
    assert disk_of(driver, cold, "vdd") is None
    assert disk_of(driver, cold, "vdd", inactive=True) is None


# -- boot from volume -----------------------------------------------------------------------

def test_boot_from_a_file_volume(driver, image_meta, volume_dir):
    """The image's root disk copied into a volume, booted as /dev/vda with
    the image's kernel; a second volume attached at boot."""
    root = make_file_volume(volume_dir, size=0)
    shutil.copyfile(lv.test_image()["root_disk"], root["data"]["device_path"])
    data = make_file_volume(volume_dir, size=64 * MiB)
    uuid = str(uuidlib.uuid4())
    instance = Instance(uuid=uuid, name=f"{NAME_PREFIX}bfv-{uuid[:8]}", display_name="bfv",
                        project_id="functional", user_id="functional", flavor=lv.FLAVOR,
                        host=HOST, node=HOST)
    bdi = {"root_device_name": "/dev/vda", "block_device_mapping": [
        {"connection_info": root, "mount_device": "/dev/vda", "boot_index": 0,
         "disk_bus": "virtio", "device_type": "disk", "delete_on_termination": False},
        {"connection_info": data, "mount_device": "/dev/vdb", "boot_index": None,
         "disk_bus": "virtio", "device_type": "disk", "delete_on_termination": False}]}
    try:
        driver.spawn(None, instance, image_meta, block_device_info=bdi)
        out = lv.Console(lambda: driver.get_console_output(None, instance))
        out.wait_for("VIRTSTACK-ROOT /dev/vda")
        assert wait_disk(out, 64 * MiB, data["data"]["volume_id"], "PRESENT") == "vdb"
        out.wait_for(lv.BOOT_MARKER)
        disks = driver.host.get_guest(instance).get_disks(inactive=True)
        assert [(d.target_dev, d.source_file, d.serial) for d in disks] == [
            ("vda", root["data"]["device_path"], root["data"]["volume_id"]),
            ("vdb", data["data"]["device_path"], data["data"]["volume_id"])]
        assert not os.path.exists(driver.backend.disk_path(uuid))  # no image disk made
    finally:
        driver.destroy(None, instance, block_device_info=bdi)
    assert os.path.exists(root["data"]["device_path"])  # volumes are the volume service's


@pytest.fixture
def recorder(driver):
    """An event listener on the module's driver for one test."""
    events = lv.EventRecorder()
    driver.register_event_listener(events)
    yield events
    driver.register_event_listener(None)


# -- spawn with an iSCSI volume failing half-way ------------------------------------------

class InjectedFailure(Exception):
    pass


@pytest.mark.parametrize("task_name", ["ConnectVolumes", "DefineGuest", "WaitRunning"])
def test_spawn_with_a_volume_failing_after_a_step_leaves_no_secret(driver, image_meta,
                                                                   iscsi_volume, task_name):
    from unittest import mock

    from virtstack.virt.libvirt import flows

    task = getattr(flows, task_name)
    real_execute = task.execute

    def fail(self, *args, **kwargs):
        real_execute(self, *args, **kwargs)
        raise InjectedFailure(f"{task_name} failed after its work")

    uuid = str(uuidlib.uuid4())
    instance = Instance(uuid=uuid, name=f"{NAME_PREFIX}vfail-{uuid[:8]}", display_name="vfail",
                        project_id="functional", user_id="functional", flavor=lv.FLAVOR,
                        host=HOST, node=HOST)
    bdi = {"root_device_name": None, "block_device_mapping": [
        {"connection_info": iscsi_volume.connection_info(), "mount_device": "/dev/vdb",
         "boot_index": None, "disk_bus": "virtio", "device_type": "disk",
         "delete_on_termination": False}]}
    try:
        with mock.patch.object(task, "execute", autospec=True, side_effect=fail):
            with pytest.raises(InjectedFailure):
                driver.spawn(None, instance, image_meta, block_device_info=bdi)
        assert driver.host.find_guest(uuid) is None
        assert secrets_of(instance) == []
        assert not os.path.exists(driver.backend.instance_dir(uuid))
    finally:
        driver.destroy(None, instance, block_device_info=bdi)
