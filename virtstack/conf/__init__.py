"""virtstack's configuration: oslo.config options, one module per group.

Import ``CONF`` from here; importing this package registers every option.
"""

from oslo_config import cfg

from virtstack.conf import (api, compute, database, default, fake, identity,
                            libvirt, powervm, quota, volume)

CONF = cfg.CONF

_MODULES = (default, api, database, compute, fake, libvirt, powervm, volume,
            identity, quota)

for _module in _MODULES:
    _module.register_opts(CONF)
