"""Jobs of the fake PowerVM REST server (``.../do/<Operation>``).

A client first GETs the job template (a ``JobRequest``), adds its
parameters and PUTs it back; the answer is a ``JobResponse`` with a job id
that it polls at ``/rest/api/uom/jobs/<id>`` until the status is no longer
``RUNNING``/``NOT_STARTED``, then DELETEs it.

The template shape is the recorded ``job_request_power_off.txt`` with the
operation and group names put in. Operations the fake runs:

- LogicalPartition PowerOn / PowerOff (``operation``, ``immediate``,
  ``restart``): state changes; powering on a running partition fails with
  HSCL3681 and off an off one with HSCL1558, as PowerVM does (pypowervm
  treats both as success).
- VirtualIOServer LUARecovery: the fake SAN presents the LUN of the ITLs to
  the VIOS as an hdisk (``PhysicalVolume``); RemoveDevice removes it;
  RescanVirtualDisk checks that the device exists. Targets of the emulated
  SAN of the ``fake_fc`` volume backend (``World.fabric``) present a LUN
  only when it exists and is masked to the ITL's VIOS port, at the LUN's
  size (rescanned: its new size); other targets are a permissive SAN
  zoned by ``World.san_zones``.
- ManagedSystem GetNextWWPNs: WWPN pairs from the system's prefix.

``polls_before_done`` makes each job answer RUNNING for that many polls.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import time
import uuid as uuidlib
from typing import TYPE_CHECKING, Callable

from lxml import etree

from virtstack.virt.powervm.fake import recorded
from virtstack.virt.powervm.fake.world import (UOM_NS, WEB_NS, Stored, find, findall, set_text,
                                               text)

if TYPE_CHECKING:  # pragma: no cover
    from virtstack.virt.powervm.fake.server import Server

ALREADY_ON = "HSCL3681 The partition is already powered on."
ALREADY_OFF = "HSCL1558 The partition is already powered off."


def _w(tag: str) -> str:
    return "/".join(f"{{{WEB_NS}}}{part}" for part in tag.split("/"))


class JobRunner:
    """Templates, submission, status and cleanup of jobs."""

    OPERATIONS: dict[str, tuple[str, ...]] = {
        "LogicalPartition": ("PowerOn", "PowerOff"),
        "VirtualIOServer": ("PowerOn", "PowerOff", "LUARecovery", "RemoveDevice",
                            "RescanVirtualDisk"),
        "ManagedSystem": ("GetNextWWPNs",),
    }

    def __init__(self, server: "Server"):
        self.server = server
        self.world = server.world
        self.polls_before_done = 0
        self._jobs: dict[str, tuple[etree._Element, list[int]]] = {}
        self._ids = itertools.count(int(time.time() * 1000))
        self._wwpns = itertools.count(0x100)
        self.submitted: list[tuple[str, str, dict[str, str]]] = []

    # -- requests -------------------------------------------------------------------

    def template(self, group: str, operation: str) -> tuple[int, dict[str, str], str]:
        if operation not in self.OPERATIONS.get(group, ()):
            from virtstack.virt.powervm.fake.server import RESTError
            raise RESTError(404, f"no job {operation} for {group}")
        (entry,) = recorded.entries(recorded.load("job_request_power_off.txt"))
        request = recorded.content(entry)
        request.find(_w("RequestedOperation/OperationName")).text = operation
        request.find(_w("RequestedOperation/GroupName")).text = group
        stored = Stored(kind="JobRequest", uuid=str(uuidlib.uuid4()), element=request,
                        service="web", etag="0")
        return 200, {"content-type": "application/atom+xml"}, \
            etree.tostring(self.world.entry(stored), encoding="unicode")

    def submit(self, group: str, target: Stored | None, operation: str,
               request: etree._Element, fail_message: str | None = None
               ) -> tuple[int, dict[str, str], str]:
        """Run ``operation`` now (or fail it with ``fail_message``) and answer
        with its JobResponse."""
        params = {text(p, "ParameterName", ns=WEB_NS): text(p, "ParameterValue", "", ns=WEB_NS)
                  for p in request.iter(_w("JobParameter"))}
        self.submitted.append((group, operation, params))
        results: dict[str, str] = {}
        error = fail_message
        if error is None:
            runner: Callable[..., dict[str, str] | None] | None = getattr(
                self, f"_{group}_{operation}", None)
            if runner is None or operation not in self.OPERATIONS.get(group, ()):
                error = f"the fake PowerVM server has no job {operation} for {group}"
            else:
                try:
                    results = runner(target, params) or {}
                except JobFailed as failed:
                    error, results = str(failed), failed.results
        job_id = str(next(self._ids))
        response = self._response(job_id, group, target, operation, request, results, error)
        self._jobs[job_id] = (response, [self.polls_before_done])
        return self._job_entry(job_id, response, reveal=False)

    def job_request(self, method: str, parts: list[str]) -> tuple[int, dict[str, str], str]:
        from virtstack.virt.powervm.fake.server import RESTError
        if not parts or parts[0] not in self._jobs:
            raise RESTError(404, f"job {'/'.join(parts)} does not exist")
        job_id = parts[0]
        if method == "DELETE":
            del self._jobs[job_id]
            return 204, {}, ""
        if method == "POST" and parts[1:] == ["cancel"]:
            return 204, {}, ""
        response, polls = self._jobs[job_id]
        if polls[0] > 0:
            polls[0] -= 1
            return self._job_entry(job_id, response, reveal=False)
        return self._job_entry(job_id, response, reveal=True)

    # -- responses -------------------------------------------------------------------

    def _response(self, job_id: str, group: str, target: Stored | None, operation: str,
                  request: etree._Element, results: dict[str, str],
                  error: str | None) -> etree._Element:
        response = etree.Element(_w("JobResponse"), nsmap={None: WEB_NS}, schemaVersion="V1_0")
        set_text(response, "Metadata/Atom", "", ns=WEB_NS).text = None
        target_path = f"{group}/{target.uuid}/do/{operation}" if target else f"{group}/do/{operation}"
        etree.SubElement(response, _w("RequestURL"), href=target_path, rel="via")
        set_text(response, "TargetUuid", target.uuid if target else "", ns=WEB_NS)
        set_text(response, "JobID", job_id, ns=WEB_NS)
        now = str(int(time.time() * 1000))
        set_text(response, "TimeStarted", now, ns=WEB_NS)
        set_text(response, "TimeCompleted", now, ns=WEB_NS)
        set_text(response, "Status", "COMPLETED_WITH_ERROR" if error else "COMPLETED_OK",
                 ns=WEB_NS)
        instance = copy.deepcopy(request)
        instance.tag = _w("JobRequestInstance")
        response.append(instance)
        result_el = etree.SubElement(response, _w("Results"))
        if error:
            results = dict(results, result=error)
        for name, value in results.items():
            parm = etree.SubElement(result_el, _w("JobParameter"))
            set_text(parm, "ParameterName", name, ns=WEB_NS)
            set_text(parm, "ParameterValue", value, ns=WEB_NS)
        if error:
            set_text(response, "ResponseException/Message", error, ns=WEB_NS)
        return response

    def _job_entry(self, job_id: str, response: etree._Element, reveal: bool
                   ) -> tuple[int, dict[str, str], str]:
        shown = copy.deepcopy(response)
        if not reveal and self._jobs[job_id][1][0] > 0:
            shown.find(_w("Status")).text = "RUNNING"
        stored = Stored(kind="JobResponse", uuid=job_id, element=shown, service="web", etag="0")
        return 200, {"content-type": "application/atom+xml"}, \
            etree.tostring(self.world.entry(stored), encoding="unicode")

    # -- operations ---------------------------------------------------------------------

    def _power(self, target: Stored, params: dict[str, str], on: bool) -> None:
        state = text(target.element, "PartitionState")
        if on and state != "not activated":
            raise JobFailed(ALREADY_ON)
        if not on and state == "not activated":
            raise JobFailed(ALREADY_OFF)
        if not on and params.get("restart") == "true":
            new_state = "running"
        else:
            new_state = "running" if on else "not activated"
        set_text(target.element, "PartitionState", new_state)
        set_text(target.element, "ResourceMonitoringControlState",
                 "active" if new_state == "running" else "inactive")
        self.world.touch(target)

    def _LogicalPartition_PowerOn(self, target: Stored, params: dict[str, str]) -> None:
        self._power(target, params, on=True)

    def _LogicalPartition_PowerOff(self, target: Stored, params: dict[str, str]) -> None:
        self._power(target, params, on=False)

    _VirtualIOServer_PowerOn = _LogicalPartition_PowerOn
    _VirtualIOServer_PowerOff = _LogicalPartition_PowerOff

    def _VirtualIOServer_LUARecovery(self, target: Stored, params: dict[str, str]
                                     ) -> dict[str, str]:
        lua = etree.fromstring(params.get("inputXML", "").encode("utf-8"))
        vios_wwpns = {text(p, "WWPN", "").upper()
                      for p in target.element.iter(f"{{{UOM_NS}}}PhysicalFibreChannelPort")}
        itls = [(i.findtext("Iwwpn", "").upper(), i.findtext("Twwpn", "").upper(),
                 i.findtext("lua", "")) for i in lua.iter("itl")]
        reachable = [itl for itl in itls if itl[0] in vios_wwpns and self._sees(*itl)]
        if not reachable:
            return {"OutputXML": _lua_output("6", None, None,
                                             "no ITL reaches a LUN from a port of this VIOS")}
        _, target_wwpn, lun = reachable[0]
        key = (target_wwpn, lun)
        pvs = find(target.element, "PhysicalVolumes")
        if pvs is None:
            pvs = etree.SubElement(target.element, f"{{{UOM_NS}}}PhysicalVolumes")
        udid = "01M0lCTU" + hashlib.sha256(f"{target_wwpn}:{lun}".encode()).hexdigest()[:40]
        name = self.world.discovered.get(key)
        if name is None or not any(text(pv, "VolumeName") == name
                                   for pv in findall(pvs, "PhysicalVolume")):
            used = {text(pv, "VolumeName") for pv in findall(pvs, "PhysicalVolume")}
            name = next(f"hdisk{i}" for i in itertools.count(1) if f"hdisk{i}" not in used)
            pv = etree.SubElement(pvs, f"{{{UOM_NS}}}PhysicalVolume", schemaVersion="V1_0")
            set_text(pv, "Description", "virtstack fake SAN FC disk")
            set_text(pv, "UniqueDeviceID", udid)
            set_text(pv, "AvailableForUsage", "true")
            set_text(pv, "VolumeCapacity", self._lun_capacity_mb(target_wwpn, lun) or 1024)
            set_text(pv, "VolumeName", name)
            set_text(pv, "VolumeState", "active")
            set_text(pv, "IsFibreChannelBacked", "true")
            self.world.discovered[key] = name
            self.world.touch(target)
        return {"OutputXML": _lua_output("3", name, udid, "device available")}

    def _fabric_lun(self, target_wwpn: str, lua: str):
        """The emulated SAN's export behind (target, LUA), or None."""
        fabric = self.world.fabric
        if fabric is None:
            return None
        return next((e for e in fabric.exports()
                     if target_wwpn in e.target_wwns and _lua_of(e.lun) == lua), None)

    def _sees(self, initiator: str, target_wwpn: str, lua: str) -> bool:
        """Whether port ``initiator`` reaches LUN ``lua`` of ``target_wwpn``:
        on the emulated SAN only when that LUN exists and is masked to the
        port; elsewhere (a target the fake makes up) per ``san_zones``."""
        fabric = self.world.fabric
        if fabric is not None and fabric.owns_target(target_wwpn):
            export = self._fabric_lun(target_wwpn, lua)
            return export is not None and initiator in export.initiators
        zones = self.world.san_zones
        return target_wwpn not in zones or initiator in zones[target_wwpn]

    def _lun_capacity_mb(self, target_wwpn: str, lua: str) -> int | None:
        export = self._fabric_lun(target_wwpn, lua)
        return export.size_bytes // (1024 * 1024) if export is not None else None

    def _VirtualIOServer_RemoveDevice(self, target: Stored, params: dict[str, str]) -> None:
        name = params.get("devName")
        if name in self.server.kinds.mapped_udids():
            raise JobFailed(f"device {name} is in use by a mapping")
        pvs = find(target.element, "PhysicalVolumes")
        for pv in findall(pvs, "PhysicalVolume") if pvs is not None else []:
            if text(pv, "VolumeName") == name:
                pvs.remove(pv)
                self.world.discovered = {k: v for k, v in self.world.discovered.items()
                                         if v != name}
                self.world.touch(target)
                return
        raise JobFailed(f"device {name} does not exist")

    def _VirtualIOServer_RescanVirtualDisk(self, target: Stored, params: dict[str, str]) -> None:
        """Check that the device exists; an hdisk of the emulated SAN takes
        the LUN's current size (in the VIOS's disk list and its mappings)."""
        udid = params.get("VirtualDiskUDID")
        known = {text(e, "UniqueDeviceID") for e in target.element.iter(
            f"{{{UOM_NS}}}PhysicalVolume", f"{{{UOM_NS}}}VirtualDisk")}
        for vg in self.world.children("VirtualIOServer", target.uuid, "VolumeGroup"):
            known |= {text(e, "UniqueDeviceID") for e in vg.element.iter(
                f"{{{UOM_NS}}}VirtualDisk")}
        if udid not in known:
            raise JobFailed(f"device {udid} not found", {"RETURN_CODE": "-1"})
        for (target_wwpn, lua), name in self.world.discovered.items():
            capacity = self._lun_capacity_mb(target_wwpn, lua)
            if capacity is None:
                continue
            for pv in target.element.iter(f"{{{UOM_NS}}}PhysicalVolume"):
                if text(pv, "UniqueDeviceID") == udid and text(pv, "VolumeName") == name:
                    set_text(pv, "VolumeCapacity", capacity)
                    self.world.touch(target)

    def _ManagedSystem_GetNextWWPNs(self, target: Stored, params: dict[str, str]
                                    ) -> dict[str, str]:
        count = int(params.get("numberPairsRequested", "1"))
        if count > 8:
            raise JobFailed("at most 8 WWPN pairs at a time")
        return {"wwpnList": ",".join(self.free_wwpns(2 * count))}

    def free_wwpns(self, count: int) -> list[str]:
        """WWPNs from the managed system's prefix, never handed out twice."""
        ms = self.world.all("ManagedSystem")[0]
        prefix = (text(ms.element, "AssociatedSystemIOConfiguration/WWPNPrefix")
                  or "C05076065A8B").upper()[:12]
        return [f"{prefix}{next(self._wwpns):04X}" for _ in range(count)]


class JobFailed(Exception):
    """An operation failed: the job completes with an error."""

    def __init__(self, message: str, results: dict[str, str] | None = None):
        super().__init__(message)
        self.results = results or {}


def _lua_of(lun: int) -> str:
    """A LUN number in the form LUARecovery's ITLs carry it (hex, then 12
    zero digits; 8 for an 8-digit LUN): what pypowervm's ``normalize_lun``
    sends."""
    digits = f"{int(lun):x}"
    return digits + ("0" * 8 if len(digits) == 8 else "0" * 12)


def _lua_output(status: str, name: str | None, udid: str | None, message: str) -> str:
    root = etree.Element("XML_LIST")
    device = etree.SubElement(etree.SubElement(root, "deviceList"), "device")
    etree.SubElement(device, "status").text = status
    if name:
        etree.SubElement(device, "pvName").text = name
    if udid:
        etree.SubElement(device, "udid").text = udid
    etree.SubElement(etree.SubElement(device, "msg"), "msgText").text = message
    return etree.tostring(root, encoding="unicode")
