"""[identity]: who may call the APIs."""

from oslo_config import cfg

identity_group = cfg.OptGroup("identity", title="Identity")

opts = [
    cfg.StrOpt("mode", default="embedded", choices=["embedded", "keystone"],
               help="'embedded' serves Identity v3 itself; 'keystone' validates "
                    "tokens against an external Keystone."),
    cfg.IntOpt("token_expiration", default=3600, min=60, help="Token lifetime in seconds."),
]


def register_opts(conf):
    conf.register_group(identity_group)
    conf.register_opts(opts, group=identity_group)


def list_opts():
    return {identity_group: opts}
