"""[identity]: who may call the APIs, and the embedded Identity v3 service."""

from oslo_config import cfg

identity_group = cfg.OptGroup("identity", title="Identity")

opts = [
    cfg.StrOpt("mode", default="embedded", choices=["embedded", "keystone"],
               help="'embedded' serves Identity v3 itself; 'keystone' validates "
                    "tokens against an external Keystone (not implemented yet: "
                    "start-up refuses it)."),
    cfg.IntOpt("token_expiration", default=3600, min=60, help="Token lifetime in seconds."),
    cfg.StrOpt("key_repository", default=None,
               help="Directory of the Fernet keys that sign tokens (created on first "
                    "use, mode 0700). Default: 'fernet-keys' in state_path. Every "
                    "API host must hold the same keys."),
    cfg.IntOpt("max_active_keys", default=3, min=2,
               help="Fernet keys kept by a rotation (primary, staged and older "
                    "ones): tokens signed with a key rotated out stop validating."),
    cfg.IntOpt("password_hash_rounds", default=12, min=4, max=31,
               help="bcrypt cost factor (log2 of the rounds) of new password hashes."),
    cfg.StrOpt("region_name", default="RegionOne",
               help="Region of every endpoint in the service catalog."),
]


def register_opts(conf):
    conf.register_group(identity_group)
    conf.register_opts(opts, group=identity_group)


def list_opts():
    return {identity_group: opts}
