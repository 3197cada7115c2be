"""[quota]: per-project limits (the Compute API's absolute limits)."""

from oslo_config import cfg

quota_group = cfg.OptGroup("quota", title="Quotas")

opts = [
    cfg.IntOpt("instances", default=1000, min=-1, help="Servers per project (-1: unlimited)."),
    cfg.IntOpt("cores", default=4000, min=-1, help="vCPUs per project (-1: unlimited)."),
    cfg.IntOpt("ram", default=4096000, min=-1, help="MiB of RAM per project (-1: unlimited)."),
    cfg.IntOpt("metadata_items", default=128, min=-1, help="Metadata items per server."),
    cfg.IntOpt("key_pairs", default=100, min=-1, help="Key pairs per user."),
    cfg.IntOpt("server_groups", default=10, min=-1, help="Server groups per project."),
    cfg.IntOpt("server_group_members", default=10, min=-1, help="Servers per server group."),
    cfg.IntOpt("volumes", default=10, min=-1, help="Volumes per project (-1: unlimited)."),
    cfg.IntOpt("snapshots", default=10, min=-1,
               help="Volume snapshots per project (-1: unlimited)."),
    cfg.IntOpt("gigabytes", default=1000, min=-1,
               help="GiB of volumes and snapshots per project (-1: unlimited)."),
]


def register_opts(conf):
    conf.register_group(quota_group)
    conf.register_opts(opts, group=quota_group)


def list_opts():
    return {quota_group: opts}
