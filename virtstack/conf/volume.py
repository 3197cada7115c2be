"""[volume]: the block-storage service."""

from oslo_config import cfg

volume_group = cfg.OptGroup("volume", title="Block storage service")

opts = [
    cfg.StrOpt("backend", default="file", help="Volume backend, by registry name."),
    cfg.StrOpt("volumes_dir", default=None,
               help="Directory of file-backed volumes (default: state_path/volumes)."),
    cfg.IntOpt("capacity_gb", default=100, min=1, help="Pool size reported for scheduling."),
]


def register_opts(conf):
    conf.register_group(volume_group)
    conf.register_opts(opts, group=volume_group)


def list_opts():
    return {volume_group: opts}
