"""What tests of the libvirt driver need: libvirtd, the test guest, a state
directory QEMU can reach, and the guest registered in an image store.

Used by the driver contract suite (tests/unit/virt/test_driver_contract.py)
and the functional tests here. Everything runs against the real libvirtd
(``$VIRTSTACK_TEST_LIBVIRT_URI``, default ``qemu:///system``); a test skips,
saying why, only when libvirt-python is missing or libvirtd does not answer.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from typing import Callable

import pytest

from virtstack.objects import Flavor, ImageMeta
from virtstack.virt.driver import wait_for

URI = os.environ.get("VIRTSTACK_TEST_LIBVIRT_URI", "qemu:///system")
#: Seconds for the test guest to boot: ~5 s (uncompressed kernel) under TCG
#: here, much more when the 2 CPUs are shared with other test runs.
BOOT_TIMEOUT = 180.0
BOOT_MARKER = "VIRTSTACK-GUEST-BOOTED"
POWEROFF_MARKER = "VIRTSTACK-POWEROFF"
#: The guest runs busybox from an initramfs; 256 MiB is plenty.
FLAVOR = Flavor(flavorid="lv1", name="libvirt.tiny", vcpus=1, memory_mb=256, root_gb=1)

_reachable: str | None = None  # None: not checked; "": reachable; else why not


def require_libvirt() -> None:
    """Skip the test (with the reason) unless libvirtd answers at ``URI``."""
    global _reachable
    if _reachable is None:
        try:
            import libvirt
        except ImportError as exc:
            _reachable = f"libvirt-python cannot be imported ({exc}); run tools/install-libvirt.sh"
        else:
            try:
                libvirt.open(URI).close()
                _reachable = ""
            except libvirt.libvirtError as exc:
                _reachable = f"libvirtd unreachable at {URI} ({exc}); run tools/install-libvirt.sh"
    if _reachable:
        pytest.skip(_reachable)


def image_dir() -> str:
    return (os.environ.get("VIRTSTACK_TEST_IMAGE_DIR")
            or os.path.expanduser("~/.cache/virtstack/test-image"))


_manifest: dict | None = None


def test_image() -> dict:
    """The test guest's files (built once, cached across runs)."""
    global _manifest
    if _manifest is None:
        from virtstack.image import testimage

        _manifest = testimage.build_test_image(image_dir())
    return _manifest


def make_state_path(request: pytest.FixtureRequest, conf) -> str:
    """A fresh ``state_path`` QEMU (libvirt-qemu) can traverse, set in
    ``conf`` and removed after the test. pytest's tmp_path is under root's
    0700 home on these machines, hence /tmp with mode 0711."""
    path = tempfile.mkdtemp(prefix="virtstack-libvirt-test-", dir="/tmp")
    os.chmod(path, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    conf.config(state_path=path)
    return path


def configure(conf, **libvirt_opts) -> None:
    """[libvirt] for tests: TCG (the probe has its own test), the test URI."""
    conf.config(group="libvirt", **{"virt_type": "qemu", "connection_uri": URI,
                                    **libvirt_opts})
    # A soft reboot or clean stop of a guest still booting waits for acpid
    # to hear the button: press it every second, not every ten.
    conf.config(group="compute", shutdown_retry_interval=1, reboot_timeout=60)


def register_test_image() -> ImageMeta:
    """Put the test guest (built once, cached in ``image_dir()``) in the
    configured image store as kernel, ramdisk and root-disk images; the
    root disk's metadata. Needs the database."""
    from virtstack.db import image as db_image
    from virtstack.image import store

    return db_image.to_meta(store.register_test_image(cache_dir=image_dir()))


def domain_names() -> set[str]:
    """Names of every domain libvirtd has (defined or running)."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        return {dom.name() for dom in conn.listAllDomains(0)}
    finally:
        conn.close()


class Console:
    """A guest's console output through the driver, read from a position on."""

    def __init__(self, read) -> None:
        self._read = read  # () -> bytes
        self.position = 0

    def text(self) -> str:
        return self._read().decode("utf-8", "replace")

    def count(self, line: str) -> int:
        return len(re.findall(rf"^{re.escape(line)}\r?$", self.text(), re.MULTILINE))

    def wait_for(self, line: str | re.Pattern, timeout: float = BOOT_TIMEOUT) -> re.Match:
        """Wait for ``line`` (a whole line: literal text, or a compiled
        pattern) after the last one waited for; the match."""
        body = line.pattern if isinstance(line, re.Pattern) else re.escape(line)
        regex = re.compile(rf"^{body}\r?$", re.MULTILINE)
        found: list[re.Match] = []

        def seen() -> bool:
            match = regex.search(self.text(), self.position)
            if match:
                found.append(match)
            return bool(match)

        started = time.monotonic()
        try:
            wait_for(seen, timeout, interval=0.1, what=f"console line {line!r}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc} ({time.monotonic() - started:.0f}s); console so far:\n"
                                 f"{self.text()[-3000:]}") from None
        self.position = found[0].end()
        return found[0]


class EventRecorder:
    """A driver event listener: records every event, and ``expect`` hands out
    a ``threading.Event`` set when a matching one arrives (any thread)."""

    #: Seconds a test waits for an event that should come: a deadline, not a pause.
    deadline = 15.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list = []
        self._waiters: list[tuple[Callable[[object], bool], threading.Event]] = []

    def __call__(self, event) -> None:
        with self._lock:
            self.events.append(event)
            for matches, arrived in self._waiters:
                if matches(event):
                    arrived.set()

    def expect(self, matches: Callable[[object], bool]) -> threading.Event:
        arrived = threading.Event()
        with self._lock:
            self._waiters.append((matches, arrived))
            if any(matches(e) for e in self.events):
                arrived.set()
        return arrived

    def expect_lifecycle(self, uuid: str, transition: int) -> threading.Event:
        """Set by a LifecycleEvent of ``uuid`` with ``transition`` arriving after this call."""
        from virtstack.virt import event as virtevent

        arrived = threading.Event()
        with self._lock:
            self._waiters.append((lambda e: isinstance(e, virtevent.LifecycleEvent)
                                  and e.uuid == uuid and e.transition == transition, arrived))
        return arrived

    def transitions(self, uuid: str) -> list[int]:
        from virtstack.virt import event as virtevent

        with self._lock:
            return [e.transition for e in self.events
                    if isinstance(e, virtevent.LifecycleEvent) and e.uuid == uuid]
