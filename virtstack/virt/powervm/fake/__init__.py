"""A fake PowerVM REST server behind a real pypowervm Session (DESIGN rule 7).

``FakeSession`` (``session.py``) answers ``Session.request``; the state is a
``World`` (``world.py``) seeded from responses recorded on real systems that
ship in the pypowervm wheel (``recorded.py``); ``server.py`` routes URIs,
``kinds.py`` holds each object kind's server-side rules and ``jobs.py`` the
jobs. ``[powervm] fake_session = true`` makes the driver use it.
"""
