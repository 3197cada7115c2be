"""[fake_driver]: the in-memory driver's simulated host and injected behaviour."""

from oslo_config import cfg

fake_group = cfg.OptGroup("fake_driver", title="Fake (in-memory) driver")

opts = [
    cfg.IntOpt("vcpus", default=64, min=1, help="vCPUs of the simulated host."),
    cfg.IntOpt("memory_mb", default=262144, min=1, help="RAM of the simulated host (MiB)."),
    cfg.IntOpt("local_gb", default=4096, min=1, help="Disk of the simulated host (GiB)."),
    cfg.DictOpt("latency", default={},
                help="Seconds each driver method sleeps, e.g. 'spawn:0.5,reboot:0.1'."),
    cfg.ListOpt("fail", default=[],
                help="Driver methods that always fail (for fault-injection demos)."),
]


def register_opts(conf):
    conf.register_group(fake_group)
    conf.register_opts(opts, group=fake_group)


def list_opts():
    return {fake_group: opts}
