"""The ``virtstack`` command: run services, manage the database, try it out.

Progress and errors are printed for people on stdout/stderr; logs for
machines go to ``<state_path>/log/virtstack.log``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

from virtstack import __version__  # noqa: E402


def _say(msg: str) -> None:
    print(f"virtstack: {msg}", flush=True)


def _fail(msg: str, code: int = 1) -> "None":
    print(f"virtstack: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def _load_config(args) -> None:
    from virtstack.conf import CONF

    argv = []
    for path in args.config_file or []:
        argv += ["--config-file", path]
    try:
        CONF(argv, project="virtstack", version=__version__, default_config_files=[])
    except Exception as exc:  # oslo.config's errors say which file/option
        _fail(str(exc))
    from virtstack import exception, service
    try:
        service.validate_config()
    except exception.VirtstackException as exc:
        _fail(exc.format_message())


def _start_service(make):
    """The service ``make()`` builds, started; on a ``VirtstackException``
    fail with its message."""
    from virtstack import exception

    try:
        svc = make()
        svc.start()
    except exception.VirtstackException as exc:
        _fail(exc.format_message())
    return svc


def _start_api_server(make, port: int, started: tuple = ()):
    """The API server ``make()`` builds, started; when it cannot listen,
    stop ``started`` (in that order) and fail naming ``port``."""
    from virtstack.conf import CONF

    try:
        server = make()
    except OSError as exc:
        for svc in started:
            svc.stop()
        _fail(f"cannot listen on {CONF.api.listen}:{port}: {exc}")
    server.start()
    return server


def _wait_forever(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_up(args) -> None:
    """All services in one process."""
    from virtstack import service
    from virtstack.conf import CONF

    t0 = time.monotonic()
    log_file = service.setup_logging(debug=args.debug)
    _say(f"state in {CONF.state_path}; logs in {log_file}")
    _say("preparing the database and the default image "
         "(the first run builds the test guest from Debian packages: ~15 s)")
    try:
        seeded = service.prepare_database()
    except Exception as exc:
        _fail(f"database {CONF.database.connection or 'sqlite (default)'}: {exc}")
    _say(f"database ready ({CONF.database.connection or service.db_api.default_url()}); "
         f"image '{service.DEFAULT_IMAGE_NAME}' is {seeded['image_id']}")
    _first_start_bootstrap()
    # Before compute: a compute service that died mid-attach rolls the attach
    # back at start-up, which asks the volume service to unexport the volume.
    volume_services = _start_volume_services(with_api=True)
    _say(f"starting the compute service with the '{CONF.compute.compute_driver}' driver "
         "(the first start may probe whether KVM works: a few seconds)")
    compute = _start_service(service.ComputeService)
    _say(f"compute service on host '{compute.manager.host}' "
         f"with the '{CONF.compute.compute_driver}' driver")
    api = _start_api_server(service.compute_api_server, CONF.api.compute_port)
    _say(f"Compute API listening at {api.url}/v2.1 (ready in {time.monotonic() - t0:.2f}s)")
    image_api = _start_api_server(service.image_api_server, CONF.api.image_port,
                                  started=(api, compute))
    _say(f"Image API listening at {image_api.url}/v2")
    identity_apis = _start_identity_api()
    if args.demo:
        token = _demo_token(identity_apis)
        server_id = _demo(api.url, seeded["image_id"], token)
        if args.demo_exit:
            _delete_demo(api.url, server_id, token)
            _stop_all(volume_services)
            _stop_all(identity_apis)
            image_api.stop()
            api.stop()
            compute.stop()
            return
    _say("press Ctrl-C to stop")
    _wait_forever(threading.Event())
    _say("stopping")
    _stop_all(volume_services)
    _stop_all(identity_apis)
    image_api.stop()
    api.stop()
    compute.stop()


def _start_volume_services(with_api: bool) -> list:
    """This host's volume service (its backend checked and its capacity
    published) and, with ``with_api``, the Block Storage API; returns what
    to stop, last started first."""
    from virtstack import service
    from virtstack.conf import CONF

    volume = _start_service(service.VolumeService)
    _say(f"volume service on host '{volume.manager.host}' with the "
         f"'{volume.manager.backend.name}' backend (pool {volume.manager.pool})")
    if not with_api:
        return [volume]
    volume_api = _start_api_server(service.volume_api_server, CONF.api.volume_port,
                                   started=(volume,))
    _say(f"Block Storage API listening at {volume_api.url}/v3")
    return [volume_api, volume]


def _stop_all(services: list) -> None:
    for svc in services:
        svc.stop()


def cmd_volume(args) -> None:
    """This host's volume service alone (like ``compute``)."""
    from virtstack import service

    service.setup_logging(debug=args.debug)
    services = _start_volume_services(with_api=False)
    _wait_forever(threading.Event())
    _stop_all(services)


def _first_start_bootstrap() -> None:
    """The first identities and clouds.yaml, on a cloud that has none
    (identities of an external Keystone are its own business)."""
    from virtstack import identity
    from virtstack.identity import bootstrap

    if not identity.embedded():
        _say(f"identity: tokens are validated by the external Keystone at "
             f"{identity.external_keystone_url()} (keystonemiddleware); the embedded "
             "Identity API is not served")
        return
    if not bootstrap.needed():
        return
    result = bootstrap.bootstrap()
    _say(f"identity bootstrapped (projects and users 'admin' and 'demo'); credentials "
         f"in {result.clouds_path}")


def _start_identity_api() -> list:
    """The embedded Identity API (nothing in ``[identity] mode = keystone``);
    returns what to stop."""
    from virtstack import identity, service
    from virtstack.conf import CONF

    if not identity.embedded():
        return []
    server = _start_api_server(service.identity_api_server, CONF.api.identity_port)
    _say(f"Identity API listening at {server.url}/v3")
    return [server]


def _demo_token(identity_apis: list) -> str:
    """A token for the demo: the demo user's (from clouds.yaml) under the
    keystone strategy, the noauth form otherwise."""
    from virtstack.conf import CONF
    from virtstack.identity import bootstrap

    if CONF.api.auth_strategy != "keystone":
        return "demo:demo"
    if not identity_apis:
        _fail("--demo signs in as the embedded identity's demo user; with [identity] "
              "mode = keystone, use the openstack CLI with a clouds.yaml of your Keystone")
    creds = bootstrap.credentials("virtstack-demo")
    if not creds:
        _fail(f"no 'virtstack-demo' credentials in {bootstrap.default_clouds_path()}; "
              "run 'virtstack bootstrap'")
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": creds["username"], "domain": {"name": creds["user_domain_name"]},
        "password": creds["password"]}}},
        "scope": {"project": {"name": creds["project_name"],
                              "domain": {"name": creds["project_domain_name"]}}}}}
    req = urllib.request.Request(
        f"{identity_apis[0].url}/v3/auth/tokens?nocatalog", data=json.dumps(body).encode(),
        method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            token = resp.headers["X-Subject-Token"]
    except urllib.error.HTTPError as err:
        _fail(f"demo: the identity service refused the demo credentials "
              f"({err.code}); run 'virtstack bootstrap' to renew them")
    _say("demo: POST /v3/auth/tokens -> 201, a token for user 'demo' in project 'demo'")
    return token


def _http(method: str, url: str, body=None, token: str = "demo:demo") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "X-Auth-Token": token, "Content-Type": "application/json",
        "OpenStack-API-Version": "compute 2.19"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _delete_demo(base: str, server_id: str, token: str) -> None:
    status, body = _http("DELETE", f"{base}/v2.1/servers/{server_id}", token=token)
    if status != 204:
        _fail(f"deleting the demo server returned {status}: {body}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, _ = _http("GET", f"{base}/v2.1/servers/{server_id}", token=token)
        if status == 404:
            _say(f"demo: server {server_id} deleted")
            return
        threading.Event().wait(0.2)
    _fail("the demo server was not deleted within 120 s")


def _demo(base: str, image_id: str, token: str) -> str:
    """Create a server through the HTTP API, follow it to ACTIVE, then
    follow its console until the guest says it has booted."""
    status, body = _http("POST", f"{base}/v2.1/servers", {"server": {
        "name": "demo", "flavorRef": "1", "imageRef": image_id}}, token=token)
    if status != 202:
        _fail(f"demo server create returned {status}: {body}")
    server_id = body["server"]["id"]
    _say(f"demo: POST /v2.1/servers -> 202, server {server_id}")
    t0 = time.monotonic()
    deadline = t0 + 300
    last = None
    tick = threading.Event()
    while time.monotonic() < deadline:
        _, body = _http("GET", f"{base}/v2.1/servers/{server_id}", token=token)
        server = body.get("server", {})
        state = (server.get("status"), server.get("OS-EXT-STS:task_state"))
        if state != last:
            _say(f"demo: server {server_id} status {state[0]}"
                 + (f" ({state[1]})" if state[1] else "")
                 + f" after {time.monotonic() - t0:.1f}s")
            last = state
        if server.get("status") == "ERROR":
            _fail(f"demo server went to ERROR: {server.get('fault', {}).get('message')}")
        if server.get("status") == "ACTIVE":
            break
        tick.wait(0.2)
    else:
        _fail("demo server did not become ACTIVE within 300 s")
    while time.monotonic() < deadline:
        _, out = _http("POST", f"{base}/v2.1/servers/{server_id}/action",
                       {"os-getConsoleOutput": {"length": 50}}, token=token)
        lines = (out.get("output") or "").splitlines()
        booted = [line for line in lines if "BOOTED" in line.upper()]
        if booted:
            _say(f"demo: guest console after {time.monotonic() - t0:.1f}s: {booted[-1].strip()}")
            from virtstack.identity import bootstrap

            _say(f"demo: try: export OS_CLIENT_CONFIG_FILE={bootstrap.default_clouds_path()}; "
                 "TOKEN=$(openstack --os-cloud virtstack-demo token issue -f value -c id); "
                 f"curl -s -H \"X-Auth-Token: $TOKEN\" {base}/v2.1/servers/{server_id} "
                 "| python3 -m json.tool")
            return server_id
        tick.wait(0.5)
    _fail("the demo guest did not print its boot marker on the console within 300 s")


def cmd_api(args) -> None:
    from virtstack import service

    service.setup_logging(debug=args.debug)
    api = service.compute_api_server()
    api.start()
    _say(f"Compute API listening at {api.url}/v2.1")
    image_api = service.image_api_server()
    image_api.start()
    _say(f"Image API listening at {image_api.url}/v2")
    identity_apis = _start_identity_api()
    volume_api = service.volume_api_server()
    volume_api.start()
    _say(f"Block Storage API listening at {volume_api.url}/v3")
    _wait_forever(threading.Event())
    volume_api.stop()
    image_api.stop()
    api.stop()
    _stop_all(identity_apis)


def cmd_compute(args) -> None:
    from virtstack import service

    service.setup_logging(debug=args.debug)
    compute = _start_service(service.ComputeService)
    _say(f"compute service running on host '{compute.manager.host}'")
    _wait_forever(threading.Event())
    compute.stop()


def cmd_db_upgrade(args) -> None:
    from virtstack import service
    from virtstack.db import api as db_api

    result = service.prepare_database()
    _say(f"database at revision {db_api.current_revision()} "
         f"({result['flavors_seeded']} default flavors added)")


def cmd_bootstrap(args) -> None:
    from virtstack import exception, identity, service
    from virtstack.db import api as db_api
    from virtstack.identity import bootstrap

    if not identity.embedded():
        _fail("[identity] mode is 'keystone': projects, users and roles live in the "
              f"external Keystone at {identity.external_keystone_url()}; create them "
              "there (openstack project create / user create / role add) and write "
              "their clouds.yaml yourself (tools/start-keystone.sh does both for a "
              "development Keystone)")
    service.setup_logging(debug=args.debug)
    db_api.upgrade()
    try:
        result = bootstrap.bootstrap(admin_password=args.admin_password,
                                     demo_password=args.demo_password,
                                     clouds_path=args.clouds_file)
    except exception.VirtstackException as exc:
        _fail(exc.format_message())
    if result.created:
        _say("created: " + ", ".join(result.created))
    else:
        _say("nothing to do: domain, roles, projects and users exist")
    _say(f"credentials in {result.clouds_path} (clouds 'virtstack-admin' and "
         "'virtstack-demo': openstack --os-cloud virtstack-admin ..., with "
         f"OS_CLIENT_CONFIG_FILE={result.clouds_path})")


def cmd_image_build_test(args) -> None:
    from virtstack import service
    from virtstack.image import store

    service.setup_logging(debug=args.debug)
    service.prepare_database()
    _say(f"building the test guest in {store.test_image_cache()} "
         "(first time: downloads Debian's kernel and busybox-static, ~15 s)")
    try:
        row = store.register_test_image(force=args.force)
    except Exception as exc:
        _fail(f"building the test image failed: {exc}")
    props = row.properties or {}
    _say(f"image '{row.name}' {row.id} ({row.disk_format}, {row.size} bytes); "
         f"kernel {props.get('kernel_id')}, ramdisk {props.get('ramdisk_id')}")


def cmd_image_list(args) -> None:
    from virtstack import service
    from virtstack.db import image as db_image

    service.prepare_database()
    rows = db_image.list_()
    print(f"{'ID':36}  {'NAME':28}  {'FORMAT':6}  {'SIZE':>10}  STATUS")
    for row in rows:
        print(f"{row.id:36}  {(row.name or '')[:28]:28}  {row.disk_format or '':6}  "
              f"{row.size or 0:>10}  {row.status}")


def cmd_tempest_config(args) -> None:
    """Accounts and tempest.conf for running Tempest against this cloud."""
    from virtstack import exception, service, tempest_config

    service.setup_logging(debug=args.debug)
    try:
        result = tempest_config.write(args.output_dir, projects=args.projects)
    except exception.VirtstackException as exc:
        _fail(exc.format_message())
    if result.created:
        _say("created: " + ", ".join(result.created))
    _say(f"image_ref {result.image_ref}, image_ref_alt {result.image_ref_alt}; "
         f"{len(result.accounts)} accounts in {result.accounts_path}")
    _say(f"wrote {result.conf_path} (run: tempest run --config-file {result.conf_path})")


def cmd_drivers(args) -> None:
    from virtstack.virt import driver as virt_driver

    for name, target in sorted(virt_driver.available_drivers().items()):
        print(f"{name}\t{target}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virtstack", description="OpenStack-style compute and block storage, all in one.")
    parser.add_argument("--version", action="version", version=f"virtstack {__version__}")
    parser.add_argument("--config-file", action="append", metavar="PATH",
                        help="oslo.config file (repeatable; later files win)")
    parser.add_argument("--debug", action="store_true", help="debug-level logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run every service in one process",
                        description="Run the API and compute services in one process.")
    up.add_argument("--demo", action="store_true",
                    help="once listening, create a server through the API and follow it to ACTIVE")
    up.add_argument("--demo-exit", action="store_true",
                    help="with --demo: stop after the demo instead of serving")
    up.set_defaults(func=cmd_up)
    sub.add_parser("api", help="run the API servers only",
                   description="Run the API servers (they reach compute services over RPC)."
                   ).set_defaults(func=cmd_api)
    sub.add_parser("compute", help="run the compute service of this host only",
                   description="Run this host's compute service (needs a shared database "
                               "and a rabbit:// transport_url to be useful)."
                   ).set_defaults(func=cmd_compute)
    sub.add_parser("volume", help="run the volume service of this host only",
                   description="Run this host's volume service with its [volume] backend "
                               "(needs a shared database and a rabbit:// transport_url to "
                               "be useful)."
                   ).set_defaults(func=cmd_volume)
    boot = sub.add_parser(
        "bootstrap", help="create the first projects, users and roles; write clouds.yaml",
        description="Create (idempotently) the 'default' domain, the roles admin, member "
                    "and reader, the 'admin' project and user (role admin) and the 'demo' "
                    "project and user (role member), and write their credentials to "
                    "clouds.yaml (mode 0600). Passwords not given are kept from an "
                    "existing clouds.yaml or generated.")
    boot.add_argument("--admin-password", metavar="PASSWORD",
                      help="set the admin user's password (default: keep or generate)")
    boot.add_argument("--demo-password", metavar="PASSWORD",
                      help="set the demo user's password (default: keep or generate)")
    boot.add_argument("--clouds-file", metavar="PATH",
                      help="where to write clouds.yaml (default: <state_path>/clouds.yaml)")
    boot.set_defaults(func=cmd_bootstrap)
    db = sub.add_parser("db", help="database management", description="Database management.")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="create or upgrade the schema and seed defaults",
                     description="Create or upgrade the schema; seed default flavors and image."
                     ).set_defaults(func=cmd_db_upgrade)
    image = sub.add_parser("image", help="local image store", description="Local image store.")
    imsub = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    bt = imsub.add_parser("build-test", help="build the offline test guest and register it",
                          description="Build a tiny Linux guest from Debian's kernel and "
                                      "busybox-static (no installation, no image download) and "
                                      "register it as kernel, ramdisk and root-disk images.")
    bt.add_argument("--force", action="store_true", help="rebuild and re-register")
    bt.set_defaults(func=cmd_image_build_test)
    imsub.add_parser("list", help="list registered images",
                     description="List the images in the registry.").set_defaults(func=cmd_image_list)
    tc = sub.add_parser(
        "tempest-config", help="provision Tempest's accounts and write tempest.conf",
        description="For this cloud (the same --config-file as 'virtstack up'): create "
                    "(idempotently) pre-provisioned projects and users for Tempest and a "
                    "second test image, then write accounts.yaml and tempest.conf with "
                    "every feature flag set to what this cloud supports.")
    tc.add_argument("--output-dir", metavar="DIR",
                    help="where to write the files (default: <state_path>/tempest)")
    tc.add_argument("--projects", type=int, default=4, metavar="N",
                    help="member projects to provision (at least 2; default 4, enough "
                         "for two Tempest workers)")
    tc.set_defaults(func=cmd_tempest_config)
    sub.add_parser("drivers", help="list the available compute drivers",
                   description="List the compute drivers this installation knows."
                   ).set_defaults(func=cmd_drivers)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _load_config(args)
    args.func(args)


if __name__ == "__main__":
    main()
