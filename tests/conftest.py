"""Fixtures every test can use: configuration, a database on each backend,
and a whole cloud (API + compute on the fake driver) in this process.

Database backends: SQLite always; PostgreSQL and MariaDB on this machine's
loopback (``VIRTSTACK_TEST_PG_URL`` / ``VIRTSTACK_TEST_MYSQL_URL`` override
the server URLs). Each test run makes its own databases on those servers and
drops them afterwards. When a server is unreachable the tests for it fail
(they skip only if ``VIRTSTACK_TEST_ALLOW_SKIP_DB=1``), so CI cannot go green
without them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import warnings

import pytest
import sqlalchemy as sa
from oslo_config import fixture as config_fixture

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

from virtstack.conf import CONF  # noqa: E402

PG_SERVER = os.environ.get("VIRTSTACK_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("VIRTSTACK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
BACKENDS = ("sqlite", "postgresql", "mysql")

_created: dict[str, str] = {}
_created_lock = threading.Lock()


def _server_db(backend: str) -> str:
    """A fresh database for this test run on the backend's server (made once)."""
    with _created_lock:
        if backend in _created:
            return _created[backend]
        name = f"virtstack_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        if backend == "postgresql":
            admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            url = f"{PG_SERVER}/{name}"
        else:
            admin = sa.create_engine(f"{MYSQL_SERVER}/test")
            url = f"{MYSQL_SERVER}/{name}?charset=utf8mb4"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
                if backend == "mysql":
                    conn.commit()
        except sa.exc.OperationalError as exc:
            if os.environ.get("VIRTSTACK_TEST_ALLOW_SKIP_DB") == "1":
                pytest.skip(f"{backend} unreachable: {exc}")
            raise
        finally:
            admin.dispose()
        _created[backend] = url
        return url


def _drop_server_dbs() -> None:
    for backend, url in _created.items():
        name = url.rsplit("/", 1)[1].split("?")[0]
        if backend == "postgresql":
            admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            stmt = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        else:
            admin = sa.create_engine(f"{MYSQL_SERVER}/test")
            stmt = f"DROP DATABASE IF EXISTS {name}"
        with admin.connect() as conn:
            conn.execute(sa.text(stmt))
            if backend == "mysql":
                conn.commit()
        admin.dispose()


def pytest_sessionfinish(session, exitstatus):
    _drop_server_dbs()


@pytest.fixture
def conf(tmp_path):
    """oslo.config with a private state directory; reset after the test."""
    fixture = config_fixture.Config(CONF)
    fixture.setUp()
    CONF([], project="virtstack", default_config_files=[])
    fixture.config(state_path=str(tmp_path))
    fixture.config(connection=f"sqlite:///{tmp_path}/virtstack.sqlite", group="database")
    fixture.config(sync_power_state_interval=-1, group="compute")
    # The in-memory driver unless a test asks for another (the product's
    # default is libvirt).
    fixture.config(compute_driver="fake", group="compute")
    # The product authenticates with Identity v3 tokens ('keystone'); tests
    # use 'noauth' tokens ('user:project') unless they ask for real ones.
    fixture.config(auth_strategy="noauth", group="api")
    # The policy enforcer reads [oslo_policy] when it is made: one per test.
    from virtstack import policy

    policy.reset()
    yield fixture
    fixture.cleanUp()
    policy.reset()


def _empty_database() -> None:
    from virtstack.db import api as db_api
    from virtstack.db import models

    engine = db_api.get_engine()
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(table.delete())
        for name in ("atomdetails", "flowdetails", "logbooks"):
            conn.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture
def database(conf):
    """SQLite database, upgraded to head."""
    from virtstack.db import api as db_api

    db_api.dispose()
    db_api.upgrade()
    yield db_api
    db_api.dispose()


@pytest.fixture(params=BACKENDS)
def any_database(request, conf):
    """The same test on SQLite, PostgreSQL and MariaDB (upgraded, emptied)."""
    from virtstack.db import api as db_api

    if request.param != "sqlite":
        conf.config(connection=_server_db(request.param), group="database")
    db_api.dispose()
    db_api.upgrade()
    _empty_database()
    yield request.param
    _empty_database()
    db_api.dispose()


def _call(app, service_type: str, method: str, path: str, body, token: str | None,
          version: str | None, headers: dict | None, raw: bytes | None):
    """``app``'s response to a request built from ``Cloud.request``'s
    arguments; ``version`` is sent as ``OpenStack-API-Version: <service_type>
    <version>``."""
    import json as _json

    import webob

    req = webob.Request.blank(path, method=method)
    if token is not None:
        req.headers["X-Auth-Token"] = token
    if version is not None:
        req.headers["OpenStack-API-Version"] = f"{service_type} {version}"
    if raw is not None:
        req.body = raw
        req.content_type = "application/json"
    elif body is not None:
        req.body = _json.dumps(body).encode()
        req.content_type = "application/json"
    for k, v in (headers or {}).items():
        req.headers[k] = v
    return req.get_response(app)


class Cloud:
    """A running all-in-one virtstack (fake driver) plus an in-process
    WSGI client. ``request(method, path, body, token, version)`` returns a
    webob Response."""

    def __init__(self, compute, app, image_id: str, volume=None, volume_app=None):
        self.compute = compute
        self.app = app
        self.image_id = image_id
        self.driver = compute.manager.driver
        #: The volume service (``service.VolumeService``) and its backend.
        self.volume = volume
        self.volume_backend = volume.manager.backend if volume is not None else None
        #: The Block Storage API v3 app (``cloud.volume_request``).
        self.volume_app = volume_app

    def volume_request(self, method: str, path: str, body=None, token: str | None = "demo:demo",
                       version: str | None = None, headers: dict | None = None,
                       raw: bytes | None = None):
        """Like ``request``, against the Block Storage API v3 app (paths
        start with /v3; ``version`` is a volume microversion such as "3.44")."""
        return _call(self.volume_app, "volume", method, path, body, token, version, headers, raw)

    def request(self, method: str, path: str, body=None, token: str | None = "demo:demo",
                version: str | None = None, headers: dict | None = None, raw: bytes | None = None):
        return _call(self.app, "compute", method, path, body, token, version, headers, raw)

    def create_server(self, name="srv", token="demo:demo", flavor="42", **extra):
        body = {"server": {"name": name, "flavorRef": flavor, "imageRef": self.image_id, **extra}}
        resp = self.request("POST", "/v2.1/servers", body, token=token)
        assert resp.status_int == 202, resp.text
        return resp.json["server"]["id"]

    def wait_for_status(self, server_id: str, status: str, token: str = "admin:admin",
                        timeout: float = 30.0) -> dict:
        """Poll the API (with a deadline) until the server shows ``status``."""
        import time

        deadline = time.monotonic() + timeout
        waiter = threading.Event()
        last = None
        while time.monotonic() < deadline:
            resp = self.request("GET", f"/v2.1/servers/{server_id}", token=token)
            if resp.status_int == 200:
                last = resp.json["server"]
                if last["status"] == status and last["OS-EXT-STS:task_state"] is None:
                    return last
            elif status == "DELETED" and resp.status_int == 404:
                return {}
            waiter.wait(0.02)
        raise AssertionError(f"server {server_id} not {status} within {timeout}s; last: {last}")


@pytest.fixture
def cloud(database, conf, monkeypatch, request):
    """API + compute + volume services on the fake driver, RPC over the
    default in-process transport (inproc://)."""
    import futurist._thread

    from virtstack import rpc, service
    from virtstack.api.compute import ComputeApp

    # oslo.messaging's worker pool notices a stop only after an idle poll of
    # 1 s; poll faster so each test's teardown does not wait it out.
    monkeypatch.setattr(futurist._thread.ThreadWorker, "MAX_IDLE_FOR", 0.02)

    conf.config(host="testhost")
    # Volumes are files in a directory of the test's own, which QEMU (user
    # libvirt-qemu) can reach, as the file backend demands (pytest's
    # tmp_path is private to root).
    volumes_dir = tempfile.mkdtemp(prefix="virtstack-volumes-", dir="/tmp")
    os.chmod(volumes_dir, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(volumes_dir, ignore_errors=True))
    # The backend is [volume] backend: 'file' unless the test chose another
    # before asking for this fixture.
    conf.config(volumes_dir=volumes_dir, group="volume")
    rpc.cleanup()
    seeded = service.prepare_database()
    compute = service.ComputeService()
    compute.start(periodic=False)
    volume = service.VolumeService()
    volume.start(periodic=False)
    try:
        from virtstack.api.volume import VolumeApp

        yield Cloud(compute, ComputeApp(), seeded["image_id"], volume=volume,
                    volume_app=VolumeApp())
    finally:
        volume.stop()
        compute.stop()
        rpc.cleanup()
