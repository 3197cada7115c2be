"""``FakeSession``: a ``pypowervm.adapter.Session`` whose ``request`` is
answered by the in-process fake REST server instead of NovaLink/HMC.

Everything above ``Session.request`` is the real pypowervm: the Adapter,
the wrappers, the tasks, FeedTask and its etag retries. The session logs on
through the ordinary code path (the fake answers ``web/Logon`` as a NovaLink
would: ``X-MC-Type: PVM``).

Test hooks (they are part of the product so that demos can use them too):

- ``inject_failure(pattern, nth=1, status=500, times=1, job_error=False)``:
  the ``nth`` request whose ``"<METHOD> <path>"`` matches the regular
  expression ``pattern`` (counted from now) fails — with an HTTP error of
  ``status``, or, for a job submission with ``job_error=True``, as a job
  that completes with an error (nothing changed on the server).
- ``gate(pattern, parties)``: requests matching ``pattern`` wait until
  ``parties`` of them arrived, then all proceed (makes races reproducible).
- ``requests``: the (method, path, status) of the requests answered, in
  order (the last ``MAX_RECORDED``); ``count(pattern, status)`` counts them.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
from typing import Any, Iterator

from lxml import etree
from pypowervm import adapter as pvm_adapter
from pypowervm import exceptions as pvm_exc

from virtstack.virt.powervm.fake import server as fake_server
from virtstack.virt.powervm.fake import world as fake_world

FAKE_HOST = "fake-novalink.invalid"


@dataclasses.dataclass
class _Failure:
    pattern: re.Pattern[str]
    nth: int
    status: int
    times: int
    job_error: bool
    seen: int = 0


@dataclasses.dataclass
class _Gate:
    pattern: re.Pattern[str]
    barrier: threading.Barrier


class FakeSession(pvm_adapter.Session):
    """A logged-on pypowervm Session backed by a fake PowerVM REST server."""

    MAX_RECORDED = 20000

    def __init__(self, world: fake_world.World | None = None, fabric: Any = None) -> None:
        """``fabric``: the emulated SAN (``volume.backends.fake_fc.Fabric``)
        the VIOS's FC ports are cabled to; None: only the permissive SAN."""
        base_url = f"https://{FAKE_HOST}:12443"
        self.world = world or fake_world.seed(base_url)
        if fabric is not None:
            self.world.fabric = fabric
        self.server = fake_server.Server(self.world)
        self._hooks_lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._gates: list[_Gate] = []
        #: the last ``MAX_RECORDED`` requests answered: (method, path, status)
        self.requests: collections.deque[tuple[str, str, int]] = collections.deque(
            maxlen=self.MAX_RECORDED)
        # The fake has no secret to protect; pypowervm wants a password for
        # password (not file) authentication, which needs no local token file.
        super().__init__(host=FAKE_HOST, username="virtstack", password="fake",
                         protocol="https", certpath=None)

    # -- test hooks ---------------------------------------------------------------------

    def inject_failure(self, pattern: str, nth: int = 1, status: int = 500, times: int = 1,
                       job_error: bool = False) -> None:
        with self._hooks_lock:
            self._failures.append(_Failure(re.compile(pattern), nth, status, times, job_error))

    def clear_failures(self) -> None:
        with self._hooks_lock:
            self._failures.clear()

    def gate(self, pattern: str, parties: int, timeout: float = 10.0) -> None:
        with self._hooks_lock:
            self._gates.append(_Gate(re.compile(pattern), threading.Barrier(parties,
                                                                              timeout=timeout)))

    def count(self, pattern: str, status: int | None = None) -> int:
        """How many answered requests matched ``pattern`` (and ``status``)."""
        regex = re.compile(pattern)
        return sum(1 for method, path, code in list(self.requests)
                   if regex.search(f"{method} {path}") and (status is None or code == status))

    def _failure_for(self, call: str) -> _Failure | None:
        with self._hooks_lock:
            is_job = call.startswith("PUT ") and "/do/" in call
            for failure in self._failures:
                if failure.job_error and not is_job:
                    continue  # a job error is injected into job submissions only
                if failure.times > 0 and failure.pattern.search(call):
                    failure.seen += 1
                    if failure.seen >= failure.nth:
                        failure.times -= 1
                        return failure
        return None

    def _wait_at_gate(self, call: str) -> None:
        with self._hooks_lock:
            gates = [g for g in self._gates if g.pattern.search(call)]
        for gate in gates:
            try:
                gate.barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other party never came: go on alone
            with self._hooks_lock:
                if gate in self._gates:
                    self._gates.remove(gate)

    # -- pypowervm.adapter.Session ---------------------------------------------------------

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: Any = "", sensitive: bool = False, verify: bool = False,
                timeout: int = -1, auditmemento: str | None = None, relogin: bool = True,
                login: bool = False, filehandle: Any = None, chunksize: int = 65536
                ) -> pvm_adapter.Response:
        headers = dict(headers or {})
        clean = path.split("?", 1)[0]
        call = f"{method} {clean}"
        self._wait_at_gate(call)
        failure = self._failure_for(call)
        try:
            if failure is not None and not failure.job_error:
                raise fake_server.RESTError(failure.status, f"injected failure of {call}")
            if failure is not None and "/do/" in clean and method == "PUT":
                status, resp_headers, text = self._submit_failed_job(clean, body)
            else:
                status, resp_headers, text = self.server.handle(method, path, headers, body,
                                                                filehandle)
        except fake_server.RESTError as error:
            self.requests.append((method, clean, error.status))
            resp = pvm_adapter.Response(method, path, error.status, error.reason, {},
                                        reqheaders=headers, reqbody=body,
                                        body=_error_body(error, clean))
            raise self._get_httperror(resp)
        self.requests.append((method, clean, status))
        if method == "GET" and filehandle is not None:
            filehandle.write(text.encode("utf-8") if isinstance(text, str) else text)
            text = ""
        return pvm_adapter.Response(method, path, status, "OK", resp_headers,
                                    reqheaders=headers, reqbody=body, body=text)

    def _submit_failed_job(self, path: str, body: Any) -> tuple[int, dict[str, str], str]:
        parts = path[len(fake_world.API_BASE) + len("uom/"):].split("/")
        index = parts.index("do")
        group = parts[index - 2] if index >= 2 else parts[0]
        target = self.world.get(group, parts[index - 1]) if index >= 2 else None
        with self.world.lock:
            return self.server.jobs.submit(group, target, parts[index + 1],
                                           fake_server.parse_body(body),
                                           fail_message=f"injected failure of PUT {path}")

    def open_vnc(self, lpar_uuid: str) -> int:
        """What ``mkvterm --vnc`` answers on NovaLink, without the terminal:
        the VNC port of the LPAR's virtual terminal (5900 + partition id).
        Raises like pypowervm's vterm does for a partition that is not there."""
        with self.world.lock:
            lpar = self.world.get("LogicalPartition", lpar_uuid)
            if lpar is None:
                raise pvm_exc.VNCBasedTerminalFailedToOpen(err=f"no partition {lpar_uuid}")
            return 5900 + int(fake_world.text(lpar.element, "PartitionID", "0"))

    def read_disk(self, udid: str) -> Iterator[bytes]:
        """The data of a virtual disk or LU, as the management partition reads
        it once the disk is mapped to it (NovaLink: ``/dev/sdX``). A disk never
        written reads as zeros of its size; the fake cannot return data it
        kept only as a digest (uploads over ``KEEP_CONTENT_BYTES``)."""
        with self.world.lock:
            data = self.world.device_data.get(udid)
            size = self._capacity_bytes(udid)
        if data is None:
            if size is None:
                raise pvm_exc.Error(f"no virtual disk or LU with UDID {udid}")
            data = fake_world.DeviceData(size=0, sha256="", content=b"")
        if data.content is None:
            raise pvm_exc.Error(f"the fake keeps only the digest of the {data.size} bytes "
                                f"of {udid}")
        yield data.content

    def _capacity_bytes(self, udid: str) -> int | None:
        for stored in self.world:
            for el in stored.element.iter(fake_world.q("VirtualDisk"),
                                          fake_world.q("LogicalUnit")):
                if fake_world.text(el, "UniqueDeviceID") == udid:
                    gb = fake_world.text(el, "DiskCapacity") or fake_world.text(
                        el, "UnitCapacity") or "0"
                    return int(float(gb) * 1024 ** 3)
        return None

    def _logoff(self) -> None:
        self._logged_in = False  # nothing to log off from

    # The event listener of a real session long-polls the server for events;
    # the fake has none (the driver does not declare lifecycle events).
    def get_event_listener(self):  # pragma: no cover - never used by the driver
        raise pvm_exc.Error("the fake PowerVM session has no event feed")


def _error_body(error: fake_server.RESTError, path: str) -> str:
    ns = fake_world.WEB_NS
    entry = etree.Element(f"{{{fake_world.ATOM_NS}}}entry", nsmap={None: fake_world.ATOM_NS})
    etree.SubElement(entry, f"{{{fake_world.ATOM_NS}}}id").text = "error"
    content = etree.SubElement(entry, f"{{{fake_world.ATOM_NS}}}content",
                               type="application/vnd.ibm.powervm.web+xml; type=HttpErrorResponse")
    her = etree.SubElement(content, f"{{{ns}}}HttpErrorResponse", nsmap={None: ns},
                           schemaVersion="V1_0")
    etree.SubElement(her, f"{{{ns}}}HTTPStatus").text = str(error.status)
    etree.SubElement(her, f"{{{ns}}}RequestURI").text = path
    etree.SubElement(her, f"{{{ns}}}ReasonCode").text = error.reason
    etree.SubElement(her, f"{{{ns}}}Message").text = error.message
    return etree.tostring(entry, encoding="unicode")
