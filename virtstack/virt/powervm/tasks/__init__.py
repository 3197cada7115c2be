"""Thin TaskFlow tasks of the PowerVM driver (``vm``, ``network``,
``storage``) and the flows built from them (``flows``)."""
