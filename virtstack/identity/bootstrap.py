"""The first identities of a cloud, created idempotently, and the
``clouds.yaml`` that lets the openstack CLI and SDKs use them.

Creates the ``default`` domain, the roles ``admin``, ``member`` and
``reader`` (admin implies member implies reader), the ``admin`` project and
user (role admin) and the ``demo`` project and user (role member). Running
it again changes nothing, except that an explicitly given password replaces
the user's password.

Passwords: the one given; else the one in the existing ``clouds.yaml`` if it
still matches; else a new random one (also for an existing user whose
password is unknown: the file must hold working credentials). They are
written only to ``clouds.yaml`` (mode 0600), never logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import uuid
from typing import Any, Callable

import yaml

from virtstack import exception, identity
from virtstack.conf import CONF
from virtstack.db import identity as db_identity
from virtstack.identity import catalog, passwords

LOG = logging.getLogger(__name__)

ROLES = ("admin", "member", "reader")
#: (prior, implied): holding the first grants the second.
IMPLIED_ROLES = (("admin", "member"), ("member", "reader"))
#: (cloud name in clouds.yaml, user and project name, role).
ACCOUNTS = (("virtstack-admin", "admin", "admin"), ("virtstack-demo", "demo", "member"))


@dataclasses.dataclass
class Account:
    cloud: str
    username: str
    project_name: str
    password: str = dataclasses.field(repr=False)


@dataclasses.dataclass
class BootstrapResult:
    """What bootstrap did: ``created`` names each new thing (empty on a
    re-run); ``accounts`` hold the working credentials."""

    created: list[str]
    accounts: dict[str, Account]
    clouds_path: str


def default_clouds_path() -> str:
    return os.path.join(os.path.expanduser(CONF.state_path), "clouds.yaml")


def needed() -> bool:
    """Whether the cloud has no admin user yet (a first start)."""
    return not db_identity.list_users(name="admin", domain_id=identity.DEFAULT_DOMAIN_ID)


def bootstrap(admin_password: str | None = None, demo_password: str | None = None,
              clouds_path: str | None = None) -> BootstrapResult:
    """Create what is missing and write ``clouds.yaml``. The database must
    be at the current schema."""
    clouds_path = clouds_path or default_clouds_path()
    for value, field in ((admin_password, "admin password"), (demo_password, "demo password")):
        if value is not None:
            passwords.check_policy(value, field)
    created: list[str] = []
    if db_identity.ensure_domain(identity.DEFAULT_DOMAIN_ID, identity.DEFAULT_DOMAIN_NAME,
                                 "The default domain"):
        created.append(f"domain {identity.DEFAULT_DOMAIN_NAME}")
    roles = {name: _ensure(lambda n=name: db_identity.find_role(n),
                           lambda n=name: db_identity.create_role(
                               {"id": uuid.uuid4().hex, "name": n}),
                           f"role {name}", created)
             for name in ROLES}
    for prior, implied in IMPLIED_ROLES:
        if db_identity.add_implied_role(roles[prior].id, roles[implied].id):
            created.append(f"implied role {prior} -> {implied}")
    existing = _read_clouds(clouds_path)
    given = {"admin": admin_password, "demo": demo_password}
    accounts = {}
    for cloud, name, role in ACCOUNTS:
        project = _ensure(
            lambda n=name: db_identity.find_project(n, identity.DEFAULT_DOMAIN_ID),
            lambda n=name: db_identity.create_project(
                {"id": uuid.uuid4().hex, "name": n, "domain_id": identity.DEFAULT_DOMAIN_ID,
                 "description": f"Bootstrap project '{n}'", "enabled": True}),
            f"project {name}", created)
        password = given[name] or _password_in(existing, cloud) or secrets.token_urlsafe(18)
        user = _ensure(
            lambda n=name: db_identity.find_user(n, identity.DEFAULT_DOMAIN_ID),
            lambda n=name, p=password, pid=project.id: db_identity.create_user(
                {"id": uuid.uuid4().hex, "name": n, "domain_id": identity.DEFAULT_DOMAIN_ID,
                 "password_hash": passwords.hash_password(p), "enabled": True,
                 "default_project_id": pid}),
            f"user {name}", created)
        if not passwords.verify_password(password, user.password_hash):
            # Given explicitly: set it. Otherwise the file's password is
            # stale (or there was none): a new one makes the file work again.
            if given[name] is None:
                password = secrets.token_urlsafe(18)
            db_identity.update_user(user.id, {"password_hash": passwords.hash_password(password)})
            created.append(f"password of user {name}")
        if db_identity.grant(user.id, project.id, roles[role].id):
            created.append(f"role {role} for user {name} on project {name}")
        accounts[name] = Account(cloud, name, name, password)
    _write_clouds(clouds_path, existing, accounts.values())
    if created:
        LOG.info("Bootstrap created: %s", ", ".join(created))
    return BootstrapResult(created, accounts, clouds_path)


def _ensure(find: Callable[[], Any], create: Callable[[], Any], what: str,
            created: list[str]):
    """The row ``find`` returns; created first if missing (a concurrent
    bootstrap creating it too is not an error)."""
    try:
        return find()
    except exception.NotFound:
        pass
    try:
        row = create()
    except exception.IdentityConflict:
        return find()
    created.append(what)
    return row


def _read_clouds(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise exception.ConfigError(reason=f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _password_in(clouds: dict[str, Any], cloud: str) -> str | None:
    entry = (clouds.get("clouds") or {}).get(cloud) or {}
    password = (entry.get("auth") or {}).get("password")
    return password if isinstance(password, str) and password else None


def cloud_entry(account: Account) -> dict[str, Any]:
    return {"auth": {"auth_url": catalog.identity_url(), "username": account.username,
                     "password": account.password, "project_name": account.project_name,
                     "user_domain_name": identity.DEFAULT_DOMAIN_NAME,
                     "project_domain_name": identity.DEFAULT_DOMAIN_NAME},
            "region_name": CONF.identity.region_name,
            "identity_api_version": 3}


def _write_clouds(path: str, existing: dict[str, Any], accounts) -> None:
    """Write our clouds into the file (other clouds in it are kept),
    atomically and readable by the owner only."""
    data = dict(existing)
    clouds = dict(data.get("clouds") or {})
    for account in accounts:
        clouds[account.cloud] = cloud_entry(account)
    data["clouds"] = clouds
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    os.chmod(path, 0o600)


def credentials(cloud: str, clouds_path: str | None = None) -> dict[str, Any] | None:
    """The ``auth`` section of ``cloud`` in clouds.yaml (None if absent)."""
    entry = (_read_clouds(clouds_path or default_clouds_path()).get("clouds") or {}).get(cloud)
    return (entry or {}).get("auth")
