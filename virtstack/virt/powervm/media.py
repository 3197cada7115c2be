"""Virtual optical media: an ISO (the config drive) uploaded into the VIOS
media repository and mapped to an LPAR over virtual SCSI.

The medium is named after the instance (``cfg_<13 hex of the uuid>.iso``),
so attaching again finds it and detaching knows what to remove. The spawn
flow attaches the instance's config drive with ``attach_iso`` (its revert
and the destroy flow call ``detach_iso``); ``configdrive`` builds the ISO.
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

from virtstack import exception
from virtstack.objects import Instance
from virtstack.virt.powervm import vm

LOG = logging.getLogger(__name__)


def media_name(instance: Instance) -> str:
    return "cfg_" + instance.uuid.replace("-", "")[:13] + ".iso"


def _repository(adapter) -> tuple[pvm_vios.VIOS, pvm_stor.VG] | None:
    """The first active VIOS with a media repository, and the volume group
    holding it; None when no VIOS has one."""
    for vios_w in pvm_tpar.get_active_vioses(adapter):
        for vg in pvm_stor.VG.get(adapter, parent=vios_w):
            if vg.vmedia_repos:
                return vios_w, vg
    return None


def _medium(vg: pvm_stor.VG, name: str) -> pvm_stor.VOptMedia | None:
    return next((m for m in vg.vmedia_repos[0].optical_media if m.name == name), None)


def _mapping_feed_task(adapter, name: str, vios_uuid: str) -> pvm_tx.FeedTask:
    return pvm_tx.FeedTask(name, [pvm_vios.VIOS.get(adapter, uuid=vios_uuid,
                                                    xag=[pvm_const.XAG.VIO_SMAP])])


def attach_iso(adapter, instance: Instance, iso_path: str) -> str:
    """Upload ``iso_path`` as the instance's medium (unless it is there
    already) and map it to its LPAR (unless mapped); the medium's name.
    ``ConfigError`` when no VIOS has a media repository."""
    found = _repository(adapter)
    if found is None:
        raise exception.ConfigError(reason=(
            "no active Virtual I/O Server has a virtual media repository, which config "
            "drives need (create one on the VIOS with mkrep)"))
    vios_w, vg = found
    name = media_name(instance)
    vopt = _medium(vg, name)
    if vopt is None:
        with open(iso_path, "rb") as stream:
            vopt, _ = pvm_stg.upload_vopt(adapter, vios_w.uuid, stream, name,
                                          f_size=os.path.getsize(iso_path))
    lpar_uuid = vm.pvm_uuid(instance)

    def add(vios_w):
        return pvm_smap.add_map(vios_w, pvm_smap.build_vscsi_mapping(None, vios_w, lpar_uuid,
                                                                      vopt))

    ftsk = _mapping_feed_task(adapter, "attach_media", vios_w.uuid)
    ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(add)
    ftsk.execute()
    LOG.info("Mapped optical medium %s to %s", name, instance.uuid)
    return name


def detach_iso(adapter, instance: Instance) -> bool:
    """Remove every mapping of the instance's medium (whatever the client:
    the medium is this instance's alone, and a mapping left by a deleted
    LPAR has none), then the medium. Idempotent; whether there was a medium."""
    found = _repository(adapter)
    if found is None:
        return False
    vios_w, _ = found
    name = media_name(instance)

    def remove(vios_w):
        return pvm_smap.remove_maps(vios_w, None, include_orphans=True,
                                    match_func=pvm_smap.gen_match_func(
                                        pvm_stor.VOptMedia, name_prop="media_name",
                                        names=[name]))

    ftsk = _mapping_feed_task(adapter, "detach_media", vios_w.uuid)
    ftsk.wrapper_tasks[vios_w.uuid].add_functor_subtask(remove)
    ftsk.execute()
    # Read again: the repository may have changed since the first look.
    _, vg = _repository(adapter) or (None, None)
    medium = _medium(vg, name) if vg is not None else None
    if medium is None:
        return False
    pvm_stg.rm_vg_storage(vg, vopts=[medium])
    LOG.info("Deleted optical medium %s of %s", name, instance.uuid)
    return True
