"""[libvirt]: the libvirt/QEMU driver."""

from oslo_config import cfg

libvirt_group = cfg.OptGroup("libvirt", title="libvirt driver")

opts = [
    cfg.StrOpt("virt_type", default="auto", choices=["auto", "kvm", "qemu"],
               help="Guest type. 'auto' uses kvm only when a probe guest boots "
                    "with it, else qemu (TCG)."),
    cfg.StrOpt("connection_uri", default="",
               help="libvirt URI; empty means the default for virt_type (qemu:///system)."),
    cfg.StrOpt("images_type", default="qcow2", choices=["qcow2", "flat"],
               help="Instance disks: qcow2 overlays on a cached base, or flat copies."),
    cfg.HostAddressOpt("vnc_listen", default="127.0.0.1",
                       help="Address guests' VNC servers listen on."),
    cfg.FloatOpt("running_timeout", default=60.0, min=1,
                 help="Seconds a started guest gets to reach 'running' before the "
                      "spawn fails (and is rolled back)."),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: opts}
