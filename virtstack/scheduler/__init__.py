"""Picks a compute node for a new server: filters, then weighers, then an
atomic claim on the chosen node (the next one is tried if the claim loses a race)."""
