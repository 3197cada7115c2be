"""The libvirt/QEMU driver, split by concern (DESIGN rule 3).

``config`` holds the domain XML objects, ``designer`` the policy that fills
them. The driver itself, ``host`` (connection, events) and ``guest`` (one
domain's operations) come next.
"""
