"""Power states of a guest as the hypervisor reports them.

The numeric values are the Compute API's (``OS-EXT-STS:power_state``), so they
can be stored and returned without translation.
"""

NOSTATE = 0x00
RUNNING = 0x01
PAUSED = 0x03
SHUTDOWN = 0x04  # the guest is off (shut down or shut off)
CRASHED = 0x06
SUSPENDED = 0x07

STATE_MAP = {
    NOSTATE: "pending",
    RUNNING: "running",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}

ALL_STATES = tuple(STATE_MAP)

# libvirt's virDomainState values, named here so that this module (and the
# tests of the mapping) do not need libvirt-python installed.
VIR_DOMAIN_NOSTATE = 0
VIR_DOMAIN_RUNNING = 1
VIR_DOMAIN_BLOCKED = 2
VIR_DOMAIN_PAUSED = 3
VIR_DOMAIN_SHUTDOWN = 4
VIR_DOMAIN_SHUTOFF = 5
VIR_DOMAIN_CRASHED = 6
VIR_DOMAIN_PMSUSPENDED = 7

LIBVIRT_POWER_STATE = {
    VIR_DOMAIN_NOSTATE: NOSTATE,
    VIR_DOMAIN_RUNNING: RUNNING,
    # A blocked guest is running but waiting on a resource.
    VIR_DOMAIN_BLOCKED: RUNNING,
    VIR_DOMAIN_PAUSED: PAUSED,
    # SHUTDOWN means "being shut down": the guest is still running until
    # libvirt reports SHUTOFF, but from the API's point of view it is going off.
    VIR_DOMAIN_SHUTDOWN: SHUTDOWN,
    VIR_DOMAIN_SHUTOFF: SHUTDOWN,
    VIR_DOMAIN_CRASHED: CRASHED,
    VIR_DOMAIN_PMSUSPENDED: SUSPENDED,
}


def from_libvirt(state: int) -> int:
    """Map a libvirt ``virDomainState`` to a power state (unknown → NOSTATE)."""
    return LIBVIRT_POWER_STATE.get(state, NOSTATE)


def name(state: int) -> str:
    """The lower-case name of a power state, for logs and messages."""
    return STATE_MAP.get(state, "unknown")
