"""Starting and stopping services: the compute service (RPC server + manager)
and the API servers (WSGI on waitress), alone or all in one process."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from typing import Any

import waitress.server
from waitress import wasyncore

from virtstack import exception, rpc
from virtstack.conf import CONF
from virtstack.db import api as db_api
from virtstack.db import flavor as db_flavor
from virtstack.db import image as db_image

LOG = logging.getLogger(__name__)

#: The image every new database has, so a server can be created at once.
DEFAULT_IMAGE_NAME = "virtstack-test"


def validate_config() -> None:
    """Read every option once so a bad value fails now, naming the option."""
    from virtstack.conf import opts
    from virtstack.virt import driver as virt_driver

    for group, options in opts.list_opts():
        group_name = getattr(group, "name", group)
        section = CONF if group_name == "DEFAULT" else CONF[group_name]
        for opt in options:
            try:
                getattr(section, opt.dest)
            except Exception as exc:  # oslo.config's value errors vary by type
                raise exception.ConfigError(
                    reason=f"invalid value for [{group_name}] {opt.name}{_why(exc)}") from None
    virt_driver.driver_class(CONF.compute.compute_driver)  # DriverNotFound names the choices
    from virtstack import identity
    identity.check_config()


def _why(exc: Exception) -> str:
    """' in FILE: REASON' from oslo.config's 'Value for option X from
    LocationInfo(..., detail='FILE') is not valid: REASON'."""
    text = str(exc)
    match = re.search(r"detail='([^']*)'\) is not valid: (.*)$", text, re.S)
    if match:
        return f" in {match.group(1)}: {match.group(2).strip()}"
    return f": {text}"


def prepare_database() -> dict[str, Any]:
    """Upgrade the schema and seed defaults: flavors, and the default image.

    When the configured driver boots real images (``boots_images``), the
    default image is the offline test guest, built and registered on first
    use; otherwise a registry entry without bits is enough.
    """
    from virtstack.image import store
    from virtstack.virt import driver as virt_driver

    db_api.upgrade()
    seeded = db_flavor.seed_defaults()
    from virtstack.db import volume as db_volume
    db_volume.type_seed_default()  # the Block Storage API's __DEFAULT__ volume type
    if virt_driver.driver_class(CONF.compute.compute_driver).boots_images:
        return {"flavors_seeded": seeded, "image_id": store.register_test_image().id}
    existing = [i for i in db_image.list_() if i.name == DEFAULT_IMAGE_NAME]
    if existing:
        image_id = existing[0].id
    else:
        image_id = str(uuid.uuid4())
        db_image.create({"id": image_id, "name": DEFAULT_IMAGE_NAME, "status": "active",
                         "disk_format": "qcow2", "container_format": "bare", "size": 0,
                         "visibility": "public", "owner": None, "min_disk": 0, "min_ram": 0})
    return {"flavors_seeded": seeded, "image_id": image_id}


class ManagerService:
    """A host's manager behind its RPC server on ``topic``. ``start``
    prepares the host, then serves RPC, then (unless told not to) runs the
    manager's periodic tasks; ``stop`` stops serving, then the manager."""

    def __init__(self, manager, topic: str):
        self.manager = manager
        self.server = rpc.get_server(topic, manager.host, [manager])

    def start(self, periodic: bool = True) -> None:
        self.manager.init_host()
        self.server.start()
        if periodic:
            self.manager.start_periodic_tasks()

    def stop(self) -> None:
        self.server.stop()
        self.server.wait()
        self.manager.stop()


class ComputeService(ManagerService):
    """The compute manager of this host behind its RPC server."""

    def __init__(self, host: str | None = None, driver=None):
        from virtstack.compute import manager, rpcapi

        super().__init__(manager.ComputeManager(host=host, driver=driver), rpcapi.TOPIC)


class VolumeService(ManagerService):
    """The volume manager of this host (its backend) behind its RPC server."""

    def __init__(self, host: str | None = None, backend=None):
        from virtstack.volume import manager, rpcapi

        super().__init__(manager.VolumeManager(host=host, backend=backend), rpcapi.TOPIC)


class APIServer:
    """One WSGI app on one port, served by waitress threads."""

    def __init__(self, name: str, app, host: str, port: int, threads: int,
                 max_request_body_size: int | None = None):
        self.name = name
        # waitress spools request bodies to disk and refuses those past
        # max_request_body_size (1 GiB unless told): the Image API takes more.
        limits = ({"max_request_body_size": max_request_body_size}
                  if max_request_body_size is not None else {})
        self.server = waitress.server.create_server(
            app, host=host, port=port, threads=threads, ident="virtstack",
            clear_untrusted_proxy_headers=True, **limits)
        self.port = self.server.effective_port
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"api-{name}", daemon=True)

    def _serve(self) -> None:
        # waitress's run() loops until its sockets are closed under it, which
        # from another thread kills the loop with EBADF. Loop here instead and
        # close from this thread once asked to stop (within 0.2 s).
        server = self.server
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.2, map=server._map, use_poll=server.adj.asyncore_use_poll,
                           count=1)
        server.task_dispatcher.shutdown()
        server.close()

    @property
    def url(self) -> str:
        host = CONF.api.public_host or CONF.api.listen
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)


def volume_api_server(port: int | None = None) -> APIServer:
    from virtstack.api.volume import VolumeApp

    return APIServer("volume", VolumeApp(), CONF.api.listen,
                     CONF.api.volume_port if port is None else port, CONF.api.workers)


def compute_api_server(port: int | None = None) -> APIServer:
    from virtstack.api.compute import ComputeApp

    return APIServer("compute", ComputeApp(), CONF.api.listen,
                     CONF.api.compute_port if port is None else port, CONF.api.workers)


def image_api_server(port: int | None = None) -> APIServer:
    from virtstack.api.image import ImageApp
    from virtstack.api.image import data as image_data

    return APIServer("image", ImageApp(), CONF.api.listen,
                     CONF.api.image_port if port is None else port, CONF.api.workers,
                     max_request_body_size=image_data.IMAGE_SIZE_CAP)


def identity_api_server(port: int | None = None) -> APIServer:
    """The Identity v3 API of the embedded identity service."""
    from virtstack.api.identity import IdentityApp

    return APIServer("identity", IdentityApp(), CONF.api.listen,
                     CONF.api.identity_port if port is None else port, CONF.api.workers)


def setup_logging(log_file: str | None = None, debug: bool = False) -> str:
    """Logs for machines go to a file (one record per line); people see
    warnings and errors on stderr. Returns the log file's path."""
    if log_file is None:
        log_dir = os.path.join(os.path.expanduser(CONF.state_path), "log")
        os.makedirs(log_dir, exist_ok=True)
        log_file = os.path.join(log_dir, "virtstack.log")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    fh = logging.FileHandler(log_file)
    fh.setFormatter(logging.Formatter(
        "%(asctime)s %(process)d %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root.addHandler(fh)
    sh = logging.StreamHandler()
    sh.setLevel(logging.WARNING)
    sh.setFormatter(logging.Formatter("virtstack: %(levelname)s: %(message)s"))
    root.addHandler(sh)
    for noisy in ("oslo_messaging", "taskflow", "stevedore", "waitress.queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file

