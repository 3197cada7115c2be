"""virtstack: OpenStack-style compute and block storage around one driver layer."""

__version__ = "0.1.0"
