"""Fixtures for the libvirt driver's functional tests (real libvirtd + QEMU).

Each test gets its own state_path (under /tmp, traversable by QEMU), SQLite
database and image store holding the test guest, and a driver on them.
Every instance a test makes is destroyed afterwards, pass or fail; the
session ends by checking that no test domain is left in libvirtd.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Callable

import pytest

from tests.functional.virt.libvirt import environment as lv
from virtstack.objects import Flavor, ImageMeta, Instance
from virtstack.virt.driver import load_driver

#: Domain names of the instances these tests make start with this.
NAME_PREFIX = "vs-functest-"
HOST = "functional-host"


@pytest.fixture
def libvirt_conf(request, conf):
    """``conf`` with a state_path QEMU can reach and [libvirt] for tests."""
    lv.require_libvirt()
    lv.make_state_path(request, conf)
    lv.configure(conf)
    return conf


@pytest.fixture
def make_driver(request, libvirt_conf, database):
    """``make_driver()``: a LibvirtDriver after ``init_host``; every instance
    made with ``make_instance`` is destroyed and the host cleaned up after
    the test."""
    drivers = []

    def make():
        driver = load_driver("libvirt")
        drivers.append(driver)
        driver.init_host(HOST)
        return driver

    yield make
    for driver in drivers:
        driver.cleanup_host(HOST)


@pytest.fixture
def instances(request):
    """Instances made by ``make_instance``; destroyed by ``libvirt_driver``."""
    return []


@pytest.fixture
def libvirt_driver(make_driver, instances, request):
    driver = make_driver()
    yield driver
    errors = []
    for instance in instances:
        try:
            driver.destroy(None, instance)
        except Exception as exc:  # clean up the rest; report after
            errors.append(exc)
    assert not errors, errors


@pytest.fixture
def image_meta(libvirt_conf, database) -> ImageMeta:
    """The test guest in this test's image store (boots its own kernel)."""
    return lv.register_test_image()


@pytest.fixture
def make_instance(instances) -> Callable[..., Instance]:
    def make(flavor: Flavor = lv.FLAVOR, **values) -> Instance:
        uuid = str(uuidlib.uuid4())
        instance = Instance(uuid=uuid, name=f"{NAME_PREFIX}{uuid[:8]}", display_name="functional",
                            project_id="functional", user_id="functional", flavor=flavor,
                            host=HOST, node=HOST, **values)
        instances.append(instance)
        return instance
    return make


@pytest.fixture
def recorder(libvirt_driver) -> lv.EventRecorder:
    """An event listener registered on ``libvirt_driver``."""
    events = lv.EventRecorder()
    libvirt_driver.register_event_listener(events)
    yield events
    libvirt_driver.register_event_listener(None)


@pytest.fixture(scope="session", autouse=True)
def no_test_domains_left():
    yield
    try:
        names = lv.domain_names()
    except Exception:  # libvirt absent: the tests skipped
        return
    left = sorted(n for n in names if n.startswith(NAME_PREFIX))
    assert not left, f"test domains left in libvirtd: {left}"
