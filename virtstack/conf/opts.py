"""Every option, for oslo-config-generator (entry point ``oslo.config.opts``)."""

from virtstack.conf import (api, compute, database, default, fake, identity,
                            libvirt, powervm, quota, volume)


def list_opts():
    result = []
    for module in (default, api, database, compute, fake, libvirt, powervm,
                   volume, identity, quota):
        for group, options in module.list_opts().items():
            result.append((group, options))
    return result
