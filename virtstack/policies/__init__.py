"""The default access rules of every virtstack API, one module per API
(entry point ``oslo.policy.policies``: ``oslopolicy-sample-generator
--namespace virtstack`` lists them)."""

from __future__ import annotations

import itertools

from virtstack.policies import (attachments, base, flavors, hypervisors, identity, images,
                                servers, snapshots, volume_actions, volume_resources, volumes)

_MODULES = (base, servers, flavors, hypervisors, volumes, volume_actions, snapshots,
            attachments, volume_resources, images, identity)


def list_rules():
    """Every rule default (``oslo_policy.policy.RuleDefault``), base rules first."""
    return list(itertools.chain.from_iterable(m.list_rules() for m in _MODULES))
