"""The compute service: one manager per host, its state machine and flows."""
