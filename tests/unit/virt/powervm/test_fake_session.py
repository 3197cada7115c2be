"""The fake PowerVM REST session, driven through the real pypowervm Adapter
and wrappers: recorded seed, feeds and entries, etags, jobs, failure
injection."""

from __future__ import annotations

import json

import pytest
from pypowervm import adapter as pvm_adapter
from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import power as pvm_power
from pypowervm.utils import lpar_builder as pvm_bldr
from pypowervm.wrappers import cluster as pvm_clust
from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import managed_system as pvm_ms
from pypowervm.wrappers import storage as pvm_stor
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack.virt.powervm.fake import recorded
from virtstack.virt.powervm.fake import world as fw
from virtstack.virt.powervm.fake.session import FakeSession


@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def adapter(session) -> pvm_adapter.Adapter:
    return pvm_adapter.Adapter(session)


def _lpar(adapter, name="lpar-1"):
    host = pvm_ms.System.get(adapter)[0]
    stdz = pvm_bldr.DefaultStandardize(host, proc_units_factor=0.1)
    built = pvm_bldr.LPARBuilder(adapter, {pvm_bldr.NAME: name, pvm_bldr.MEM: 1024,
                                           pvm_bldr.VCPU: 1}, stdz).build()
    return built.create(parent=host)


# -- recorded data ----------------------------------------------------------------

def test_recordings_parse_into_sections():
    text = ("####\n# comment\nINFO{\n{'comment': None, 'path': 'Tier', 'reason': 'OK', "
            "'status': 200}\nEND OF SECTION}\nHEADERS{\n{'etag': '1'}\nEND OF SECTION}\n"
            "BODY{\n<feed xmlns=\"http://www.w3.org/2005/Atom\"/>\nEND OF SECTION}\n")
    parsed = recorded.parse("x.txt", text)
    assert (parsed.path, parsed.status, parsed.headers) == ("Tier", 200, {"etag": "1"})
    assert parsed.body == '<feed xmlns="http://www.w3.org/2005/Atom"/>'


def test_a_malformed_recording_says_where():
    with pytest.raises(ValueError, match="bad.txt: section BODY"):
        recorded.parse("bad.txt", "BODY{\n<x/>\n")


def test_recordings_are_read_from_the_installed_pypowervm():
    assert (recorded.data_dir() / "managedsystem.txt").is_file()


def test_the_seed_is_one_consistent_system(adapter):
    (host,) = pvm_ms.System.get(adapter)
    assert host.mtms.mtms_str == "8246-L1C*0604CAA"
    (vios,) = pvm_vios.VIOS.get(adapter)
    assert vios.uuid == fw.SEED_VIOS
    assert vios.is_mgmt_partition is False and vios.rmc_state == "active"
    assert vios.scsi_mappings == [] and vios.vfc_mappings == []  # no guests yet
    assert {vg.name for vg in pvm_stor.VG.get(adapter, parent=vios)} == {"rootvg", "image_pool"}
    (cluster,) = pvm_clust.Cluster.get(adapter)
    assert cluster.nodes[0].vios_uuid == vios.uuid
    assert cluster.nodes[0].mtms.mtms_str == host.mtms.mtms_str
    ssp = pvm_stor.SSP.get(adapter, uuid=cluster.ssp_uuid)
    tier = pvm_stor.Tier.get(adapter, parent=ssp)[0]
    lus = pvm_stor.LUEnt.get(adapter, parent=tier)
    assert {lu.udid for lu in ssp.logical_units} == {lu.udid for lu in lus}
    assert pvm_lpar.LPAR.get(adapter) == []


# -- feeds, entries, etags ------------------------------------------------------------

def test_create_assigns_what_the_server_owns(adapter):
    lpar = _lpar(adapter)
    assert lpar.state == "not activated" and lpar.id == 2  # the VIOS is 1
    assert pvm_lpar.LPAR.get(adapter, uuid=lpar.uuid).name == "lpar-1"
    assert [w.uuid for w in pvm_lpar.LPAR.search(adapter, name="lpar-1")] == [lpar.uuid]
    assert pvm_lpar.LPAR.search(adapter, name="nobody") == []


def test_a_duplicate_partition_name_is_refused(adapter):
    _lpar(adapter)
    with pytest.raises(pvm_exc.HttpError, match="already exists"):
        _lpar(adapter)


def test_an_update_with_a_stale_etag_gets_412_and_changes_nothing(adapter):
    lpar = _lpar(adapter)
    first, second = lpar.refresh(use_etag=False), lpar.refresh(use_etag=False)
    first.mem_config.desired = 2048
    first = first.update()
    second.mem_config.desired = 4096
    with pytest.raises(pvm_exc.HttpError) as raised:
        second.update()
    assert raised.value.response.status == 412
    assert pvm_lpar.LPAR.get(adapter, uuid=lpar.uuid).mem_config.desired == 2048
    assert first.refresh() is first  # If-None-Match on the current etag: 304


def test_children_live_under_their_parent_only(adapter, session):
    vios = pvm_vios.VIOS.get(adapter)[0]
    vg = pvm_stor.VG.get(adapter, parent=vios)[0]
    with pytest.raises(pvm_exc.HttpNotFound):
        adapter.read("LogicalPartition", fw.SEED_VIOS, "VolumeGroup", vg.uuid)
    with pytest.raises(pvm_exc.HttpNotFound):
        adapter.read("VolumeGroup", vg.uuid)  # a CHILD, not a ROOT


def test_quick_properties_are_json(adapter):
    lpar = _lpar(adapter)
    resp = adapter.read("LogicalPartition", lpar.uuid, suffix_type="quick",
                        suffix_parm="PartitionID")
    assert json.loads(resp.body) == 2


# -- jobs ---------------------------------------------------------------------------

def test_power_jobs_are_polled_to_completion(adapter, session):
    lpar = _lpar(adapter)
    session.server.jobs.polls_before_done = 1  # RUNNING once, then COMPLETED_OK
    pvm_power.PowerOp.start(lpar)
    assert lpar.refresh().state == "running"
    assert session.count(r"GET /rest/api/uom/jobs/") == 1
    assert session.count(r"DELETE /rest/api/uom/jobs/") == 1  # cleaned up


def test_powering_on_a_running_partition_is_what_pypowervm_calls_success(adapter):
    lpar = _lpar(adapter)
    pvm_power.PowerOp.start(lpar)
    pvm_power.PowerOp.start(lpar.refresh())  # HSCL3681: already on
    assert lpar.refresh().state == "running"


def test_a_failed_job_changes_nothing(adapter, session):
    lpar = _lpar(adapter)
    session.inject_failure(r"/do/PowerOn", job_error=True)
    with pytest.raises(pvm_exc.VMPowerOnFailure, match="injected failure"):
        pvm_power.PowerOp.start(lpar)
    assert lpar.refresh().state == "not activated"


def test_a_running_partition_cannot_be_deleted(adapter):
    lpar = _lpar(adapter)
    pvm_power.PowerOp.start(lpar)
    with pytest.raises(pvm_exc.HttpError, match="powered off"):
        lpar.refresh().delete()


# -- failure injection --------------------------------------------------------------------

def test_the_nth_matching_request_fails(adapter, session):
    session.inject_failure(r"GET /rest/api/uom/ManagedSystem$", nth=2, status=503)
    pvm_ms.System.get(adapter)
    with pytest.raises(pvm_exc.HttpError) as raised:
        pvm_ms.System.get(adapter)
    assert raised.value.response.status == 503
    pvm_ms.System.get(adapter)  # times=1: once only
    assert session.count(r"GET /rest/api/uom/ManagedSystem$", status=503) == 1


def test_an_injected_failure_reads_like_a_powervm_error(adapter, session):
    session.inject_failure(r"GET /rest/api/uom/VirtualIOServer$", status=500)
    with pytest.raises(pvm_exc.HttpError) as raised:
        pvm_vios.VIOS.get(adapter)
    assert raised.value.her_wrap is not None
    assert "injected failure" in raised.value.her_wrap.message
