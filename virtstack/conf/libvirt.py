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
    cfg.FloatOpt("device_detach_timeout", default=10.0, min=0.1,
                 help="Seconds one live detach request waits for the guest to release "
                      "the device (libvirt's device-removed event) before asking again."),
    cfg.IntOpt("device_detach_attempts", default=3, min=1,
               help="How many live detach requests are made before a detach fails and "
                    "the device stays attached (a guest still booting ignores the first)."),
    cfg.StrOpt("iscsi_initiator", default="auto", choices=["auto", "qemu", "host"],
               help="Who logs in to iSCSI volumes: 'qemu' (QEMU's own iSCSI client; "
                    "no host initiator needed), 'host' (the host's open-iscsi through "
                    "os-brick; the guest gets a block device), or 'auto' (host when "
                    "iscsiadm is installed and answers, else qemu)."),
    cfg.StrOpt("iscsi_initiator_iqn", default="",
               help="The iSCSI initiator name this host presents to volume targets. "
                    "Empty: the host's /etc/iscsi/initiatorname.iscsi, else a name "
                    "generated once and kept in state_path/iscsi_initiator_iqn."),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: opts}
