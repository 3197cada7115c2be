"""[volume]: the block-storage service."""

from oslo_config import cfg

volume_group = cfg.OptGroup("volume", title="Block storage service")

opts = [
    cfg.StrOpt("backend", default="file", help="Volume backend, by registry name."),
    cfg.StrOpt("volumes_dir", default=None,
               help="Directory of file-backed volumes (default: state_path/volumes)."),
    cfg.IntOpt("capacity_gb", default=100, min=1, help="Pool size reported for scheduling."),
    cfg.IntOpt("report_interval", default=60, min=1,
               help="Seconds between the volume service's capacity reports (and "
                    "heartbeats every 10 s)."),
    cfg.StrOpt("availability_zone", default="nova",
               help="Availability zone of this host's volumes."),
    cfg.IntOpt("rpc_call_timeout", default=120, min=1,
               help="Seconds the API waits for the volume service to export or "
                    "unexport a volume (initialize/terminate connection)."),
    # Backends 'file' and 'iscsi' (virtstack/volume/backends/).
    cfg.StrOpt("file_format", default="raw", choices=["raw", "qcow2"],
               help="Format of new volumes of the 'file' backend (sparse files either way). "
                    "raw volumes can be extended while attached; qcow2 ones only when "
                    "detached. The 'iscsi' backend always uses raw."),
    cfg.StrOpt("iscsi_target_prefix", default="iqn.2010-10.org.virtstack:",
               help="The 'iscsi' backend names each volume's target this prefix + "
                    "'volume-<id>'."),
    cfg.HostAddressOpt("iscsi_ip_address", default="127.0.0.1",
                       help="Address of the tgt portal compute hosts log in to."),
    cfg.PortOpt("iscsi_port", default=3260, help="Port of the tgt portal."),
]


def register_opts(conf):
    conf.register_group(volume_group)
    conf.register_opts(opts, group=volume_group)


def list_opts():
    return {volume_group: opts}
