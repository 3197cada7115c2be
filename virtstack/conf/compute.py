"""[compute]: the compute service and its hypervisor driver."""

from oslo_config import cfg

compute_group = cfg.OptGroup("compute", title="Compute service options")

opts = [
    cfg.StrOpt("compute_driver", default="libvirt",
               help="Hypervisor driver, by registry name (see 'virtstack drivers'): "
                    "'libvirt' (QEMU/KVM guests), 'fake' (in-memory, for tests and "
                    "benchmarks)."),
    cfg.StrOpt("instance_name_template", default="instance-%08x",
               help="Hypervisor-side name of a server, from its database id. Clouds "
                    "sharing one hypervisor need different templates."),
    cfg.IntOpt("sync_power_state_interval", default=60, min=-1,
               help="Seconds between power-state syncs with the hypervisor; -1 disables."),
    cfg.IntOpt("image_cache_manager_interval", default=2400, min=-1,
               help="Seconds between runs of the driver's image cache cleanup; "
                    "-1 disables."),
    cfg.IntOpt("image_cache_min_age", default=86400, min=0,
               help="Seconds a cached base image must go unused before the image "
                    "cache cleanup removes it."),
    cfg.IntOpt("update_resources_interval", default=60, min=1,
               help="Seconds between compute-node resource updates."),
    cfg.IntOpt("shutdown_timeout", default=60, min=0,
               help="Seconds a guest gets to shut down cleanly before power is cut."),
    cfg.IntOpt("shutdown_retry_interval", default=10, min=1,
               help="Seconds between ACPI shutdown requests during a clean stop."),
    cfg.IntOpt("reboot_timeout", default=120, min=1,
               help="Seconds a soft reboot may take before it becomes a hard one."),
    cfg.FloatOpt("cpu_allocation_ratio", default=16.0, min=0.1,
                 help="Virtual CPUs scheduled per physical CPU."),
    cfg.FloatOpt("ram_allocation_ratio", default=1.5, min=0.1,
                 help="Virtual RAM scheduled per physical RAM."),
    cfg.FloatOpt("disk_allocation_ratio", default=1.0, min=0.1,
                 help="Virtual disk scheduled per physical disk."),
    cfg.IntOpt("service_down_time", default=60, min=1,
               help="Seconds without a heartbeat after which a service is 'down'."),
    cfg.IntOpt("block_device_allocate_timeout", default=180, min=1,
               help="Seconds a new server waits for a volume it is booting from (made "
                    "from an image) to become available before the build fails."),
    cfg.IntOpt("volume_attach_timeout", default=120, min=1,
               help="Seconds the API waits for a compute host to attach a volume "
                    "(the RPC call of POST /servers/{id}/os-volume_attachments)."),
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(opts, group=compute_group)


def list_opts():
    return {compute_group: opts}
