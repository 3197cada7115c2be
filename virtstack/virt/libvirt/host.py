"""This host's libvirt: the connection, its events, its guests and its facts.

``Host`` owns one connection to libvirtd. It connects lazily (first use,
under a lock), and when libvirtd goes away (restart, crash: libvirt calls the
connection's close callback) it drops the connection and reconnects in the
background until libvirtd answers again, registering its event callbacks
anew. Callers never hold a ``virConnect``: they ask the Host for guests
(``Guest`` objects wrapping one domain each) or facts.

Events: libvirt delivers them on one thread per process running
``virEventRunDefaultImpl`` (started by the first Host). The callbacks only
translate and queue; a dispatcher thread per Host hands the events to the
Host's ``event_handler`` (which may call back into libvirt, which the libvirt
event thread itself must not) and wakes whoever waits in ``wait_for``.

A domain's UUID is its instance's uuid and its name the instance's
``name`` (``instance-%08x``): events carry the instance uuid as is.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import time
from typing import Any, Callable

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt import event as virtevent
from virtstack.virt.libvirt import config
from virtstack.virt.libvirt import probe
from virtstack.virt.libvirt.guest import Guest

try:
    import libvirt
except ImportError:  # the driver reports it when it is used; see require_libvirt
    libvirt = None

LOG = logging.getLogger(__name__)

MiB = 1024 ** 2
GiB = 1024 ** 3

#: libvirtd's keepalive: ping every 5 s, give up after 3 unanswered pings,
#: so a daemon that hangs (rather than closing the socket) is noticed too.
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
#: Seconds between reconnection attempts after libvirtd went away (doubling).
RECONNECT_FIRST_DELAY = 0.2
RECONNECT_MAX_DELAY = 5.0
#: Where libvirtd hands guests' console output to virtlogd (qemu.conf's
#: default ``stdio_handler = "logd"`` uses it when it is there).
VIRTLOGD_SOCKET = "/run/libvirt/virtlogd-sock"


class HypervisorUnavailable(exception.VirtstackException):
    msg_fmt = "Cannot reach the hypervisor at %(uri)s: %(reason)s"
    code = 503


def require_libvirt() -> Any:
    """The ``libvirt`` module; ``ConfigError`` saying how to get it if absent."""
    if libvirt is None:
        raise exception.ConfigError(
            reason="compute_driver = libvirt needs libvirt-python; run tools/install-libvirt.sh")
    return libvirt


# -- the process-wide event loop ---------------------------------------------

_event_loop_lock = threading.Lock()
_event_loop_thread: threading.Thread | None = None


def start_event_loop() -> None:
    """Register libvirt's default event implementation and run it on a
    daemon thread, once per process. Must happen before the connections
    that want events are opened."""
    global _event_loop_thread
    lv = require_libvirt()
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        # libvirt prints every error to stderr unless someone handles them;
        # ours arrive as libvirtError exceptions anyway.
        lv.registerErrorHandler(lambda _ctx, _error: None, None)
        lv.virEventRegisterDefaultImpl()
        _event_loop_thread = threading.Thread(target=_run_event_loop, daemon=True,
                                              name="libvirt-event-loop")
        _event_loop_thread.start()


def _run_event_loop() -> None:
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            LOG.error("libvirt event loop iteration failed")


# -- translating libvirt's events --------------------------------------------

def lifecycle_transition(event: int, detail: int) -> int | None:
    """The virtstack EVENT_LIFECYCLE_* for a libvirt lifecycle event, or None
    for the ones that change no power state (defined, undefined, the
    "shutting down" notice that precedes STOPPED).

    A managed save ends with STOPPED/SAVED: that is SUSPENDED here; its
    restore starts with STARTED/RESTORED: RESUMED. libvirt's SUSPENDED is a
    pause (vCPUs stopped), PMSUSPENDED a guest-initiated S3/S4 sleep.
    """
    lv = require_libvirt()
    if event == lv.VIR_DOMAIN_EVENT_STOPPED:
        if detail == lv.VIR_DOMAIN_EVENT_STOPPED_SAVED:
            return virtevent.EVENT_LIFECYCLE_SUSPENDED
        if detail == lv.VIR_DOMAIN_EVENT_STOPPED_CRASHED:
            return virtevent.EVENT_LIFECYCLE_CRASHED
        return virtevent.EVENT_LIFECYCLE_STOPPED
    if event == lv.VIR_DOMAIN_EVENT_STARTED:
        if detail == lv.VIR_DOMAIN_EVENT_STARTED_RESTORED:
            return virtevent.EVENT_LIFECYCLE_RESUMED
        return virtevent.EVENT_LIFECYCLE_STARTED
    if event == lv.VIR_DOMAIN_EVENT_SUSPENDED:
        return virtevent.EVENT_LIFECYCLE_PAUSED
    if event == lv.VIR_DOMAIN_EVENT_RESUMED:
        return virtevent.EVENT_LIFECYCLE_RESUMED
    if event == lv.VIR_DOMAIN_EVENT_PMSUSPENDED:
        return virtevent.EVENT_LIFECYCLE_SUSPENDED
    if event == lv.VIR_DOMAIN_EVENT_CRASHED:
        return virtevent.EVENT_LIFECYCLE_CRASHED
    return None


def format_uptime(uptime_seconds: float, loadavg: tuple[float, float, float],
                  now: time.struct_time, users: int = 0) -> str:
    """An ``uptime(1)`` line: `` 10:01:02 up 3 days,  4:05,  0 users,  load average: ...``."""
    days, rest = divmod(int(uptime_seconds), 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    if days:
        up = f"{days} day{'s' if days != 1 else ''}, {up}"
    load = ", ".join(f"{value:.2f}" for value in loadavg)
    return (f" {time.strftime('%H:%M:%S', now)} up {up},  {users} user"
            f"{'s' if users != 1 else ''},  load average: {load}")


# -- the Host ----------------------------------------------------------------

class Host:
    """One libvirt connection and what hangs off it.

    ``event_handler`` receives every ``virtstack.virt.event.Event`` (from the
    dispatcher thread, one at a time). Nothing connects before the first
    call that needs libvirt; ``initialize()`` starts the event machinery and
    connects at once.
    """

    def __init__(self, uri: str,
                 event_handler: Callable[[virtevent.Event], None] | None = None) -> None:
        self.uri = uri
        self._event_handler = event_handler
        self._lock = threading.RLock()
        self._conn: Any = None
        self._callback_ids: list[int] = []
        self._generation = 0
        self._caps: tuple[int, config.Capabilities] | None = None
        self._queue: queue.Queue = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._stopping = threading.Event()
        # Bumped and notified for every lifecycle event and (re)connection.
        self._changed = threading.Condition()
        self._changes = 0
        # (uuid, alias) -> (target dev, set when removed): detaches in progress.
        self._removals: dict[tuple[str, str], tuple[str, threading.Event]] = {}

    # -- connection ------------------------------------------------------

    def initialize(self) -> None:
        """Start the event machinery and connect now rather than at first
        use. Raises ``HypervisorUnavailable`` if libvirtd does not answer."""
        self.get_connection()

    @property
    def generation(self) -> int:
        """How many connections this Host has opened (a reconnect adds one)."""
        return self._generation

    def get_connection(self) -> Any:
        """The live ``virConnect``, (re)connecting if there is none.

        ``HypervisorUnavailable`` if libvirtd cannot be reached.
        """
        conn = self._conn
        if conn is not None and self._alive(conn):
            return conn
        with self._lock:
            self._start_dispatcher()
            return self._connection_locked()

    def _connection_locked(self) -> Any:
        # Caller holds self._lock.
        if self._conn is not None:
            if self._alive(self._conn):
                return self._conn
            LOG.warning("Connection to libvirt at %s is dead; reconnecting", self.uri)
            self._conn = None
        self._conn = self._connect()
        self._generation += 1
        self._caps = None
        self._notify_change()
        return self._conn

    @staticmethod
    def _alive(conn: Any) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _start_dispatcher(self) -> None:
        # Caller holds self._lock. Events need libvirt's loop registered
        # before the connection opens, and someone to hand them on.
        start_event_loop()
        if self._dispatcher is None:
            self._stopping.clear()
            self._dispatcher = threading.Thread(target=self._dispatch, daemon=True,
                                                name=f"libvirt-events-{self.uri}")
            self._dispatcher.start()

    def _connect(self) -> Any:
        lv = require_libvirt()
        try:
            conn = lv.open(self.uri)
        except lv.libvirtError as exc:
            raise HypervisorUnavailable(uri=self.uri, reason=exc.get_error_message()) from exc
        try:
            conn.registerCloseCallback(self._on_close, None)
            try:
                conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
            except lv.libvirtError as exc:  # a local (non-daemon) driver has none
                LOG.debug("No keepalive on %s: %s", self.uri, exc)
            self._callback_ids = [
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            self._on_lifecycle, None),
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                            self._on_device_removed, None),
            ]
        except lv.libvirtError as exc:
            conn.close()
            raise HypervisorUnavailable(uri=self.uri, reason=exc.get_error_message()) from exc
        LOG.info("Connected to libvirt at %s (libvirt %s, %s %s)", self.uri,
                 _version(conn.getLibVersion()), conn.getType(), _version(conn.getVersion()))
        return conn

    def close(self) -> None:
        """Stop the dispatcher and close the connection (idempotent)."""
        self._stopping.set()
        with self._lock:
            dispatcher, self._dispatcher = self._dispatcher, None
            conn, self._conn = self._conn, None
        if dispatcher is not None:
            self._queue.put(None)
            dispatcher.join(timeout=10)
        if conn is None:
            return
        try:
            for callback_id in self._callback_ids:
                conn.domainEventDeregisterAny(callback_id)
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass  # the connection died meanwhile
        try:
            conn.close()
        except libvirt.libvirtError:
            pass

    # -- events ----------------------------------------------------------

    # The three callbacks below run on libvirt's event thread: they must not
    # call libvirt (dom.UUIDString() is local) nor block.

    def _on_close(self, conn: Any, reason: int, opaque: Any) -> None:
        self._queue.put(("closed", conn, reason))

    def _on_lifecycle(self, conn: Any, dom: Any, event: int, detail: int, opaque: Any) -> None:
        transition = lifecycle_transition(event, detail)
        if transition is not None:
            self._queue.put(("event", virtevent.LifecycleEvent(uuid=dom.UUIDString(),
                                                               transition=transition)))

    def _on_device_removed(self, conn: Any, dom: Any, alias: str, opaque: Any) -> None:
        self._queue.put(("removed", dom.UUIDString(), alias))

    def _dispatch(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                kind = item[0]
                if kind == "event":
                    self._notify_change()
                    self._deliver(item[1])
                elif kind == "removed":
                    self._device_removed(item[1], item[2])
                elif kind == "closed":
                    self._connection_closed(item[1], item[2])
            except Exception:  # the dispatcher must survive anything
                LOG.exception("Error dispatching libvirt event %s", item)

    def _deliver(self, event: virtevent.Event) -> None:
        LOG.debug("libvirt event: %s", event)
        if self._event_handler is not None:
            self._event_handler(event)

    def _device_removed(self, uuid: str, alias: str) -> None:
        with self._lock:
            waiter = self._removals.get((uuid, alias))
        dev = alias
        if waiter is not None:
            dev = waiter[0]
            waiter[1].set()
        elif alias.startswith("ua-"):
            dev = alias[3:]
        self._deliver(virtevent.DeviceRemovedEvent(uuid=uuid, dev=dev))

    def _connection_closed(self, conn: Any, reason: int) -> None:
        reasons = {libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "error",
                   libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "end of file",
                   libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "keepalive timeout",
                   libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "closed by client"}
        with self._lock:
            if self._conn is not conn:
                return  # an old connection, or ours closed on purpose
            self._conn = None
        LOG.warning("Connection to libvirt at %s lost (%s); reconnecting", self.uri,
                    reasons.get(reason, f"reason {reason}"))
        self._notify_change()
        delay = RECONNECT_FIRST_DELAY
        while True:
            with self._lock:
                # A closed Host (or one that has a new dispatcher since) stays closed.
                if self._stopping.is_set() or self._dispatcher is not threading.current_thread():
                    return
                try:
                    self._connection_locked()
                    LOG.info("Reconnected to libvirt at %s", self.uri)
                    return
                except HypervisorUnavailable as exc:
                    LOG.debug("libvirt still unreachable: %s", exc)
            self._stopping.wait(delay)  # backoff between attempts, not synchronisation
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def _notify_change(self) -> None:
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float,
                 poll_interval: float = 1.0, what: str = "condition") -> None:
        """Wait until ``predicate()`` is true, re-checking it after every
        lifecycle event and connection change (and every ``poll_interval``
        seconds, in case an event was lost with a connection). Raises
        ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._changes
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            with self._changed:
                if self._changes == seen:
                    self._changed.wait(min(poll_interval, remaining))

    def expect_device_removal(self, uuid: str, alias: str, dev: str) -> threading.Event:
        """An Event set when libvirt reports device ``alias`` of domain ``uuid``
        removed (reported to the handler as target ``dev``); call
        ``forget_device_removal`` when done with it."""
        removed = threading.Event()
        with self._lock:
            self._removals[(uuid, alias)] = (dev, removed)
        return removed

    def forget_device_removal(self, uuid: str, alias: str) -> None:
        with self._lock:
            self._removals.pop((uuid, alias), None)

    # -- guests ----------------------------------------------------------

    def _guest(self, dom: Any) -> Guest:
        return Guest(dom, self)

    def find_guest(self, uuid: str) -> Guest | None:
        """The guest whose domain UUID is ``uuid``, or None."""
        try:
            return self._guest(self.get_connection().lookupByUUIDString(uuid))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def find_guest_by_name(self, name: str) -> Guest | None:
        """The guest whose domain is named ``name``, or None."""
        try:
            return self._guest(self.get_connection().lookupByName(name))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def get_guest(self, instance: Instance) -> Guest:
        """The guest of ``instance``; ``InstanceNotFound`` if there is none."""
        guest = self.find_guest(instance.uuid)
        if guest is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return guest

    def list_guests(self, only_running: bool = False) -> list[Guest]:
        """Every guest libvirt knows (defined or running), or only running ones."""
        flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE if only_running else 0
        return [self._guest(dom) for dom in self.get_connection().listAllDomains(flags)]

    def define_guest(self, xml: str) -> Guest:
        """Define (not start) a persistent domain from ``xml``."""
        return self._guest(self.get_connection().defineXML(xml))

    def create_transient_guest(self, xml: str) -> Guest:
        """Start a transient domain from ``xml``; it vanishes when it stops."""
        return self._guest(self.get_connection().createXML(xml, 0))

    # -- secrets ---------------------------------------------------------

    def define_secret(self, secret: config.Secret, value: bytes) -> None:
        """Define (or redefine: same uuid) ``secret`` and set its value. The
        value is never logged. If setting the value fails the secret is
        undefined again, so there is no secret without its value."""
        handle = self.get_connection().secretDefineXML(secret.to_xml(pretty=False), 0)
        try:
            handle.setValue(value, 0)
        except libvirt.libvirtError:
            handle.undefine()
            raise

    def list_secrets(self) -> list[config.Secret]:
        """Every secret libvirtd holds (their definitions, not values)."""
        secrets = []
        for handle in self.get_connection().listAllSecrets(0):
            try:
                secrets.append(config.Secret.from_xml(handle.XMLDesc(0)))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                    raise  # else undefined while we listed
        return secrets

    def delete_secret(self, uuid: str) -> bool:
        """Undefine the secret ``uuid``; whether there was one."""
        try:
            self.get_connection().secretLookupByUUIDString(uuid).undefine()
            return True
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return False
            raise

    # -- facts -----------------------------------------------------------

    def get_capabilities(self) -> config.Capabilities:
        """libvirt's host capabilities (cached per connection)."""
        conn = self.get_connection()
        cached = self._caps
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        caps = config.Capabilities.from_xml(conn.getCapabilities())
        self._caps = (self._generation, caps)
        return caps

    def get_arch(self) -> str:
        cpu = self.get_capabilities().host_cpu
        return (cpu.arch if cpu is not None and cpu.arch else None) or os.uname().machine

    def get_cpu_count(self) -> int:
        """Logical CPUs of the host."""
        return int(self.get_connection().getInfo()[2])

    def get_memory_mb_total(self) -> int:
        return int(self.get_connection().getInfo()[1])

    def get_memory_mb_used(self) -> int:
        """Host memory in use: total less free, buffers and page cache."""
        stats = self.get_connection().getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
        free = sum(stats.get(key, 0) for key in ("free", "buffers", "cached"))
        return max(0, int(stats["total"] - free) // 1024)

    def get_vcpus_used(self) -> int:
        """vCPUs of the running guests."""
        used = 0
        for guest in self.list_guests(only_running=True):
            try:
                used += guest.get_vcpu_count()
            except exception.InstanceNotFound:
                continue  # stopped and gone while we counted
        return used

    def get_hypervisor_type(self) -> str:
        return str(self.get_connection().getType())

    def get_hypervisor_version(self) -> int:
        return int(self.get_connection().getVersion())

    def get_hostname(self) -> str:
        return str(self.get_connection().getHostname())

    def get_cpu_info(self) -> str:
        """The host CPU as JSON: arch, model, vendor, topology, features."""
        cpu = self.get_capabilities().host_cpu or config.CapsHostCPU()
        return json.dumps({
            "arch": cpu.arch or self.get_arch(), "model": cpu.model, "vendor": cpu.vendor,
            "topology": {"sockets": cpu.sockets, "cores": cpu.cores, "threads": cpu.threads},
            "features": sorted(cpu.features)}, sort_keys=True)

    @staticmethod
    def get_disk_stats(path: str) -> dict[str, int]:
        """``total``, ``free`` and ``used`` GiB of the filesystem holding ``path``."""
        st = os.statvfs(path)
        total = st.f_blocks * st.f_frsize // GiB
        free = st.f_bavail * st.f_frsize // GiB
        return {"total": total, "free": free, "used": max(0, total - free)}

    @staticmethod
    def get_uptime() -> str:
        """This host's ``uptime`` line (the connection is local: qemu:///system)."""
        try:
            out = subprocess.run(["uptime"], capture_output=True, text=True, check=True,
                                 env={**os.environ, "LANG": "C", "LC_ALL": "C"}).stdout
            if " up " in out:
                return out.rstrip("\n")
        except (OSError, subprocess.CalledProcessError):
            pass  # no procps: work it out from /proc
        with open("/proc/uptime", encoding="ascii") as f:
            seconds = float(f.read().split()[0])
        return format_uptime(seconds, os.getloadavg(), time.localtime())

    def console_via_virtlogd(self) -> bool:
        """Whether libvirtd hands guest consoles to virtlogd on this host."""
        return self.uri.startswith("qemu:///") and os.path.exists(VIRTLOGD_SOCKET)

    def choose_virt_type(self, requested: str, work_dir: str) -> str:
        """``requested`` unless it is ``auto``; then the probe's choice,
        logged with its reason and kept for this process (per URI)."""
        if requested != "auto":
            return requested
        with _choices_lock:
            choice = _choices.get(self.uri)
            if choice is None:
                choice = self._remembered_choice(work_dir)
            if choice is None:
                choice = probe.choose_virt_type(self, work_dir, self.get_arch())
                self._remember_choice(work_dir, choice)
            _choices[self.uri] = choice
            LOG.info("[libvirt] virt_type = auto: using %s: %s", choice.virt_type,
                     choice.reason)
        return choice.virt_type

    # The probe boots a guest (seconds under TCG, longer where KVM is slow):
    # its answer is kept on disk and reused until something it depends on
    # changes: the host kernel, libvirt or QEMU version, or /dev/kvm.
    _CHOICE_FILE = ".virt_type_probe.json"

    def _probe_key(self) -> str:
        conn = self.get_connection()
        return "|".join([os.uname().release, str(conn.getLibVersion()),
                         str(conn.getVersion()), str(os.path.exists("/dev/kvm")), self.uri])

    def _remembered_choice(self, work_dir: str) -> probe.VirtTypeChoice | None:
        try:
            with open(os.path.join(work_dir, self._CHOICE_FILE), encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return None
        if saved.get("key") != self._probe_key():
            return None
        return probe.VirtTypeChoice(saved["virt_type"], saved["reason"] + " (probed earlier)")

    def _remember_choice(self, work_dir: str, choice: probe.VirtTypeChoice) -> None:
        path = os.path.join(work_dir, self._CHOICE_FILE)
        try:
            record = {"key": self._probe_key(), "virt_type": choice.virt_type,
                      "reason": choice.reason}
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(path + ".tmp", path)
        except Exception as exc:  # only a lost shortcut: probe again next time
            LOG.warning("Could not keep the virt_type probe result in %s: %s", path, exc)


_choices_lock = threading.Lock()
_choices: dict[str, probe.VirtTypeChoice] = {}


def _version(number: int) -> str:
    return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"
