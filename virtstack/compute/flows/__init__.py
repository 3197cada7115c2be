"""Flows of the compute service, one module per operation (DESIGN rule 5)."""
