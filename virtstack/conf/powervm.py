"""[powervm]: the PowerVM driver (pypowervm)."""

from oslo_config import cfg

powervm_group = cfg.OptGroup("powervm", title="PowerVM driver")

opts = [
    cfg.StrOpt("disk_driver", default="localdisk", choices=["localdisk", "ssp"],
               help="Where instance disks live: VIOS volume group or Shared Storage Pool."),
    cfg.StrOpt("volume_group_name", default="",
               help="Volume group for localdisk (empty: the VIOS rootvg)."),
    cfg.StrOpt("cluster_name", default="", help="SSP cluster for disk_driver=ssp."),
    cfg.FloatOpt("proc_units_factor", default=0.1, min=0.05, max=1.0,
                 help="Physical processor units per vCPU."),
    cfg.StrOpt("fc_attach_strategy", default="vscsi", choices=["vscsi", "npiv"],
               help="How Fibre Channel volumes reach the guest."),
    cfg.IntOpt("ports_per_fabric", default=1, min=1, help="NPIV ports per fabric."),
    cfg.ListOpt("fabrics", default=["A"], help="Fabric names for NPIV."),
    cfg.DictOpt("fabric_port_wwpns", default={},
                help="Physical FC port WWPNs of each NPIV fabric, as fabric:wwpns with the "
                     "WWPNs of one fabric separated by spaces (e.g. 'A:10000090FA1B6302 "
                     "10000090FA1B6303'). A fabric of [powervm] fabrics left out here uses "
                     "every NPIV-capable port of the VIOSes."),
    cfg.IntOpt("vios_active_wait_timeout", default=300, min=1,
               help="Seconds to wait for the VIOS to become active."),
    cfg.StrOpt("vswitch_name", default="ETHERNET0",
               help="PowerVM virtual switch that guests' client network adapters join "
                    "(a VIF's 'vlan' detail is its port VLAN id; 1 without one)."),
    cfg.StrOpt("vnc_listen", default="127.0.0.1",
               help="Address of the management partition that VNC consoles listen on."),
    cfg.BoolOpt("fake_session", default=False,
                help="Talk to the built-in fake PowerVM REST session instead of a "
                     "real NovaLink/HMC (demos and tests)."),
]


def register_opts(conf):
    conf.register_group(powervm_group)
    conf.register_opts(opts, group=powervm_group)


def list_opts():
    return {powervm_group: opts}
