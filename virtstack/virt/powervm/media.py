"""Virtual optical media: an ISO (a config drive) uploaded into the VIOS
media repository and mapped to an LPAR over virtual SCSI.

The medium is named after the instance (``cfg_<13 hex of the uuid>.iso``),
so attaching again finds it and detaching knows what to remove. Nothing in
the spawn flow calls this yet: the compute API does not hand drivers a
config drive to build (see tasks.flows).
"""

from __future__ import annotations

import logging
import os

from pypowervm import const as pvm_const
from pypowervm.tasks import partition as pvm_tpar
from pypowervm.tasks import scsi_mapper as pvm_smap
from pypowervm.tasks import storage as pvm_stg
from pypowervm.utils import transaction as pvm_tx
from pypowervm.wrappers import storage as pvm_stor
from pypowervm.wrappers import virtual_io_server as pvm_vios

from virtstack.objects import Instance
from virtstack.virt.powervm import vm

LOG = logging.getLogger(__name__)


def media_name(instance: Instance) -> str:
    return "cfg_" + instance.uuid.replace("-", "")[:13] + ".iso"


def _repository_vios(adapter) -> pvm_vios.VIOS:
    """The first active VIOS with a media repository."""
    for vios_w in pvm_tpar.get_active_vioses(adapter):
        for vg in pvm_stor.VG.get(adapter, parent=vios_w):
            if vg.vmedia_repos:
                return vios_w
    raise LookupError("no active VIOS has a virtual media repository")


def attach_iso(adapter, instance: Instance, iso_path: str) -> str:
    """Upload ``iso_path`` as the instance's medium and map it to its LPAR;
    the medium's name."""
    vios_w = _repository_vios(adapter)
    name = media_name(instance)
    with open(iso_path, "rb") as stream:
        vopt, _ = pvm_stg.upload_vopt(adapter, vios_w.uuid, stream, name,
                                      f_size=os.path.getsize(iso_path))
    lpar_uuid = vm.pvm_uuid(instance)

    def add(vios_w):
        return pvm_smap.add_map(vios_w, pvm_smap.build_vscsi_mapping(None, vios_w, lpar_uuid,
                                                                      vopt))

    ftsk = pvm_tx.FeedTask("attach_media", [pvm_vios.VIOS.get(
        adapter, uuid=vios_w.uuid, xag=[pvm_const.XAG.VIO_SMAP])])
    ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(add)
    ftsk.execute()
    LOG.info("Mapped optical medium %s to %s", name, instance.uuid)
    return name


def detach_iso(adapter, instance: Instance) -> None:
    """Unmap the instance's medium and delete it from the repository
    (idempotent)."""
    vios_w = _repository_vios(adapter)
    name = media_name(instance)
    pvm_smap.remove_vopt_mapping(adapter, vios_w.uuid, vm.pvm_uuid(instance), media_name=name)
    for vg in pvm_stor.VG.get(adapter, parent=vios_w):
        if vg.vmedia_repos and any(m.name == name for m in vg.vmedia_repos[0].optical_media):
            media = [m for m in vg.vmedia_repos[0].optical_media if m.name == name]
            pvm_stg.rm_vg_storage(vg, vopts=media)
