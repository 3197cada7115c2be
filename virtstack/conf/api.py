"""[api]: the HTTP front: where it listens, how it authenticates."""

from oslo_config import cfg

api_group = cfg.OptGroup("api", title="API options")

opts = [
    cfg.HostAddressOpt("listen", default="127.0.0.1",
                       help="Address the API servers listen on."),
    cfg.PortOpt("compute_port", default=8774, help="Port of the Compute API (v2.1)."),
    cfg.PortOpt("volume_port", default=8776, help="Port of the Block Storage API (v3)."),
    cfg.PortOpt("image_port", default=9292, help="Port of the Image API (v2)."),
    cfg.PortOpt("identity_port", default=5000, help="Port of the Identity API (v3)."),
    cfg.StrOpt("public_host", default=None,
               help="Host name clients use to reach the APIs (links, catalog). "
                    "Defaults to the listen address."),
    cfg.IntOpt("workers", default=8, min=1, max=256,
               help="Threads serving requests per API."),
    cfg.StrOpt("auth_strategy", default="keystone",
               help="How requests are authenticated: 'keystone' (Identity v3 tokens "
                    "from the identity service, see [identity] mode) or 'noauth' "
                    "(development only: X-Auth-Token 'user:project', 'admin' user "
                    "is admin)."),
    cfg.IntOpt("max_limit", default=1000, min=1,
               help="Most items one list request returns."),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(opts, group=api_group)


def list_opts():
    return {api_group: opts}
