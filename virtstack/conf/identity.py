"""[identity]: who may call the APIs, and the embedded Identity v3 service;
[keystone_authtoken]: keystonemiddleware's own options, read in
``[identity] mode = keystone``."""

from keystonemiddleware import auth_token
from oslo_config import cfg

identity_group = cfg.OptGroup("identity", title="Identity")

opts = [
    cfg.StrOpt("mode", default="embedded", choices=["embedded", "keystone"],
               help="'embedded' serves Identity v3 itself (users, projects and roles "
                    "in virtstack's database; 'virtstack bootstrap' makes the first "
                    "ones). 'keystone' validates every token against an external "
                    "Keystone through keystonemiddleware, configured in "
                    "[keystone_authtoken]; the embedded Identity API is then not "
                    "served."),
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


#: keystonemiddleware.auth_token's options, as it lists them for sample
#: configs. The options of the auth plugin it authenticates with (for
#: ``auth_type = password``: auth_url, username, password, user_domain_name,
#: project_name, project_domain_name) depend on ``auth_type``: keystoneauth
#: registers them when the plugin is loaded (``identity.check_config``).
(_authtoken_name, authtoken_opts), = auth_token.list_opts()
authtoken_group = cfg.OptGroup(
    _authtoken_name, title="keystonemiddleware auth_token",
    help="How the APIs validate tokens with an external Keystone ([identity] mode = "
         "keystone). Set www_authenticate_uri (Keystone's public v3 URL, sent to "
         "clients in WWW-Authenticate), auth_type = password and the service "
         "user's auth_url, username, password, user_domain_name, project_name and "
         "project_domain_name (a user with the admin or service role, which may "
         "validate tokens). Validated tokens are cached in memory for "
         "token_cache_time seconds (a revoked token stays valid that long; -1 "
         "checks every request); memcached_servers shares the cache.")


def register_opts(conf):
    conf.register_group(identity_group)
    conf.register_opts(opts, group=identity_group)
    conf.register_group(authtoken_group)
    conf.register_opts(authtoken_opts, group=authtoken_group)


def list_opts():
    return {identity_group: opts, authtoken_group: authtoken_opts}
