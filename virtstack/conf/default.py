"""[DEFAULT]: where state lives and who this host is.

``transport_url`` and ``rpc_response_timeout`` are oslo.messaging's own
options (also in [DEFAULT]); an unset ``transport_url`` means ``inproc://``
(``virtstack/rpc/inproc.py``): every service in this one process.
"""

import os
import socket

from oslo_config import cfg

def _default_state_path() -> str:
    if os.geteuid() == 0:
        return "/var/lib/virtstack"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "virtstack")


opts = [
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="Name of this host: the compute-node and RPC server name."),
    cfg.StrOpt("state_path", default=_default_state_path(),
               sample_default="/var/lib/virtstack (root) or ~/.local/share/virtstack",
               help="Directory for the database, images, instance disks and logs. "
                    "QEMU runs as another user: it must be able to traverse this "
                    "path (root's home is not traversable, hence /var/lib for root)."),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return {"DEFAULT": opts}
