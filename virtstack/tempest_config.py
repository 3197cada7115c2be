"""``virtstack tempest-config``: Tempest's configuration for this cloud.

Writes two files into one directory (default ``<state_path>/tempest``):

- ``accounts.yaml`` (mode 0600): pre-provisioned credentials. Tempest runs
  with ``use_dynamic_credentials = False``, so it never creates projects or
  users; it locks accounts from this file instead. Each of
  ``PROJECTS`` projects gets a member user (Tempest's ``primary`` and
  ``alt``: two projects at least, so cross-project tests see another
  tenant) and a reader user (``project_reader``, looked up in the same
  project as the member), and one admin user in its own project.
- ``tempest.conf``: endpoints, those accounts, the test images and
  flavors, the microversion ranges the APIs serve, and every feature flag
  set to what this cloud really does, each with the reason in a comment.

The identities are created through the embedded identity's database layer,
idempotently: a re-run keeps the users and the passwords in an existing
``accounts.yaml`` when they still work, and sets new ones otherwise (like
``virtstack bootstrap``). ``image_ref`` is the cloud's test image;
``image_ref_alt`` is a second copy of it, registered once.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import uuid
from typing import Any, Callable, Mapping

import yaml

from virtstack import exception, identity
from virtstack.conf import CONF
from virtstack.db import identity as db_identity
from virtstack.db import image as db_image
from virtstack.identity import bootstrap, catalog, passwords

#: How many member projects Tempest may use at once: a test class locks a
#: primary and an alt account, so two workers need four (and two admins).
PROJECTS = 4
#: Names of what this command creates (prefix: easy to find and remove).
PREFIX = "tempest"
ADMIN_NAME = f"{PREFIX}-admin"
ALT_IMAGE_SUFFIX = "-alt"
#: Flavors: m1.nano (128 MiB, 1 GiB disk) fits the test guest; m1.micro is
#: the other one Tempest needs (resize is off, so only its existence matters).
FLAVOR_REF = "42"
FLAVOR_REF_ALT = "84"


@dataclasses.dataclass
class TempestAccount:
    username: str
    project_name: str
    role: str
    password: str = dataclasses.field(repr=False)

    def entry(self) -> dict[str, Any]:
        """One item of Tempest's accounts.yaml."""
        entry: dict[str, Any] = {
            "username": self.username, "project_name": self.project_name,
            "password": self.password, "user_domain_name": identity.DEFAULT_DOMAIN_NAME,
            "project_domain_name": identity.DEFAULT_DOMAIN_NAME}
        if self.role == "admin":
            entry["types"] = ["admin"]
        entry["roles"] = [self.role]
        return entry


@dataclasses.dataclass
class Result:
    conf_path: str
    accounts_path: str
    accounts: list[TempestAccount]
    image_ref: str
    image_ref_alt: str
    created: list[str]


def default_output_dir() -> str:
    return os.path.join(os.path.expanduser(CONF.state_path), "tempest")


def account_plan(projects: int = PROJECTS) -> list[tuple[str, str, str]]:
    """(username, project name, role) of every account, in the order of the
    file: members first, so that Tempest's ``alt`` (the first free
    non-admin account) is another project's member, never a reader of the
    primary's project; then one reader per project and one admin per two
    projects."""
    if projects < 2:
        raise exception.Invalid(reason="Tempest needs at least two projects (primary and alt)")
    members = [(f"{PREFIX}-member-{i}", f"{PREFIX}-project-{i}", "member")
               for i in range(1, projects + 1)]
    readers = [(f"{PREFIX}-reader-{i}", f"{PREFIX}-project-{i}", "reader")
               for i in range(1, projects + 1)]
    # One admin per worker too (tests lock one beside their primary).
    admins = [(ADMIN_NAME, ADMIN_NAME, "admin")] + [
        (f"{ADMIN_NAME}-{i}", f"{ADMIN_NAME}-{i}", "admin") for i in range(2, projects // 2 + 1)]
    return members + readers + admins


def ensure_accounts(plan: list[tuple[str, str, str]], known: Mapping[str, str],
                    created: list[str]) -> list[TempestAccount]:
    """Create the projects, users and grants of ``plan`` that are missing.
    ``known``: passwords from an earlier accounts.yaml (kept if they work)."""
    if bootstrap.needed():
        bootstrap.bootstrap()  # domain and roles (and the cloud's first users)
    roles = {}
    for name in {role for _, _, role in plan}:
        try:
            roles[name] = db_identity.find_role(name)
        except exception.NotFound:
            raise exception.ConfigError(
                reason=f"role '{name}' is missing: run 'virtstack bootstrap'") from None
    domain = identity.DEFAULT_DOMAIN_ID
    accounts = []
    for username, project_name, role in plan:
        project = _ensure(
            lambda n=project_name: db_identity.find_project(n, domain),
            lambda n=project_name: db_identity.create_project(
                {"id": uuid.uuid4().hex, "name": n, "domain_id": domain,
                 "description": "Tempest pre-provisioned project", "enabled": True}),
            f"project {project_name}", created)
        password = known.get(username) or secrets.token_urlsafe(18)
        user = _ensure(
            lambda n=username: db_identity.find_user(n, domain),
            lambda n=username, p=password, pid=project.id: db_identity.create_user(
                {"id": uuid.uuid4().hex, "name": n, "domain_id": domain,
                 "password_hash": passwords.hash_password(p), "enabled": True,
                 "default_project_id": pid}),
            f"user {username}", created)
        if not passwords.verify_password(password, user.password_hash):
            password = secrets.token_urlsafe(18)
            db_identity.update_user(user.id, {"password_hash": passwords.hash_password(password)})
            created.append(f"password of user {username}")
        if db_identity.grant(user.id, project.id, roles[role].id):
            created.append(f"role {role} for {username} on {project_name}")
        accounts.append(TempestAccount(username, project_name, role, password))
    return accounts


def _ensure(find: Callable[[], Any], create: Callable[[], Any], what: str,
            created: list[str]):
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


def ensure_images(created: list[str]) -> tuple[str, str]:
    """(image_ref, image_ref_alt): the test image and a second copy of it
    (same bits and boot properties, so it boots the same guest).

    The image has its bits whatever the driver: with the fake driver (whose
    default image is a registry entry only) Tempest still creates volumes
    from it, and those copy the bits."""
    from virtstack import service
    from virtstack.image import store

    service.prepare_database()
    before = {i.id for i in db_image.list_()}
    row = store.register_test_image()
    if row.id not in before:
        created.append(f"image {row.name} (the test guest's bits)")
    alt_name = f"{row.name}{ALT_IMAGE_SUFFIX}"
    for other in db_image.list_():
        if other.name == alt_name and other.status == "active" and other.location \
                and os.path.exists(other.location):
            return row.id, other.id
    alt = store.add_file(row.location, alt_name, row.disk_format, row.container_format,
                         properties=db_image.extra_properties(row))
    created.append(f"image {alt_name}")
    return row.id, alt.id


# -- tempest.conf ---------------------------------------------------------------

#: One option: (name, value, why). A value of None leaves the option out.
Option = tuple[str, Any, str]


def _caps() -> Mapping[str, bool]:
    from virtstack.virt import driver as virt_driver

    return virt_driver.driver_class(CONF.compute.compute_driver).capabilities


def compute_features(caps: Mapping[str, bool]) -> list[Option]:
    """[compute-feature-enabled]: on only where the Compute API has the
    call and the configured driver declares the operation."""
    def driver(op: str) -> bool:
        return bool(caps.get(f"supports_{op}"))

    driver_name = CONF.compute.compute_driver
    return [
        ("console_output", driver("console_output"),
         f"os-getConsoleOutput; the '{driver_name}' driver declares console_output"),
        ("pause", driver("pause"), "pause/unpause actions; driver capability pause"),
        ("suspend", driver("suspend"), "suspend/resume actions; driver capability suspend"),
        ("snapshot", driver("snapshot"), "createImage; driver capability snapshot"),
        ("vnc_console", False,
         "os-getVNCConsole answers a direct vnc:// address; Tempest wants a noVNC "
         "proxy's http(s) URL and its websocket, which virtstack does not serve"),
        ("resize", False, "no resize/confirmResize/revertResize action"),
        ("cold_migration", False, "no migrate action (one host all-in-one)"),
        ("live_migration", False, "no os-migrateLive action"),
        ("shelve", False, "no shelve/unshelve actions"),
        ("shelve_migrate", False, "no shelve"),
        ("rescue", False, "no rescue/unrescue actions in the API"),
        ("stable_rescue", False, "no rescue"),
        ("change_password", False, "no changePassword action"),
        ("enable_instance_password", True,
         "create returns adminPass (the one given, else a generated one), as Nova does"),
        ("interface_attach", False, "no networking (no Neutron, no os-interface)"),
        ("serial_console", False, "no serial console proxy"),
        ("spice_console", False, "no SPICE"),
        ("personality", False, "file injection (personality) is refused by the API"),
        ("metadata_service", False, "no metadata service"),
        ("config_drive", False, "config drives are accepted but not built"),
        ("disk_config", False, "OS-DCF:diskConfig is always MANUAL; its tests need "
                               "rebuild and resize, which virtstack lacks"),
        ("swap_volume", False, "no volume swap (PUT os-volume_attachments is refused)"),
        ("volume_multiattach", False, "no multi-attach volumes"),
        ("attach_encrypted_volume", False, "no encrypted volume types"),
        ("ide_bus", False, "virtio disks only (disk_bus must be virtio)"),
        ("hostname_fqdn_sanitization", False, "microversion 2.90+ hostnames not served"),
        ("unified_limits", False, "quota is the legacy per-project kind"),
        ("scheduler_enabled_filters", "", "no scheduler hints are accepted"),
        ("block_migration_for_live_migration", False, "no live migration"),
        ("volume_backed_live_migration", False, "no live migration"),
    ]


def _versions() -> dict[str, tuple[str, str]]:
    from virtstack.api import compute as compute_app
    from virtstack.api import volume as volume_app

    return {"compute": (compute_app.MIN_VERSION, compute_app.MAX_VERSION),
            "volume": (volume_app.MIN_VERSION, volume_app.MAX_VERSION)}


def build_sections(accounts_path: str, lock_path: str, admin: TempestAccount,
                   image_ref: str, image_ref_alt: str) -> list[tuple[str, list[Option]]]:
    caps = _caps()
    versions = _versions()
    region = CONF.identity.region_name
    libvirt = CONF.compute.compute_driver == "libvirt"
    # Real guests boot in seconds under QEMU TCG but share two cores with
    # everything else; the fake driver answers at once.
    build_timeout = 300 if libvirt else 120
    return [
        ("DEFAULT", [
            ("use_stderr", False, "logs go to stestr's captured details, not the console"),
        ]),
        ("oslo_concurrency", [
            ("lock_path", lock_path, "where Tempest locks pre-provisioned accounts"),
        ]),
        ("auth", [
            ("use_dynamic_credentials", False,
             "Tempest uses the accounts in test_accounts_file, never creates identities"),
            ("test_accounts_file", accounts_path, "written by virtstack tempest-config"),
            ("default_credentials_domain_name", identity.DEFAULT_DOMAIN_NAME,
             "the embedded identity has one domain"),
            ("create_isolated_networks", False, "no Neutron"),
            ("admin_username", admin.username, "the admin account of accounts.yaml"),
            ("admin_project_name", admin.project_name, "its project"),
            ("admin_password", admin.password, "its password"),
            ("admin_domain_name", identity.DEFAULT_DOMAIN_NAME, "the one domain"),
        ]),
        ("identity", [
            ("uri_v3", catalog.identity_url(), "the embedded Identity v3 API"),
            ("auth_version", "v3", "only Identity v3 is served"),
            ("region", region, "[identity] region_name of every catalog endpoint"),
            ("admin_role", "admin", "the role virtstack bootstrap creates"),
            ("default_domain_id", identity.DEFAULT_DOMAIN_ID, "the one domain"),
        ]),
        ("identity-feature-enabled", [
            ("api_v2", False, "Identity v2 is not served"),
            ("api_v2_admin", False, "Identity v2 is not served"),
            ("api_v3", True, "Identity v3 is served"),
            ("trust", False, "no OS-TRUST"),
            ("security_compliance", False, "no password-policy lockout features"),
            ("access_rules", False, "no application credentials"),
        ]),
        ("compute", [
            ("image_ref", image_ref, "the cloud's test image (boots in seconds)"),
            ("image_ref_alt", image_ref_alt, "a second copy of it"),
            ("flavor_ref", FLAVOR_REF, "m1.nano: the smallest flavor the test guest fits"),
            ("flavor_ref_alt", FLAVOR_REF_ALT, "m1.micro: another small flavor"),
            ("min_microversion", versions["compute"][0], "the Compute API's minimum"),
            ("max_microversion", versions["compute"][1], "the Compute API's maximum"),
            ("region", region, "catalog region"),
            ("build_timeout", build_timeout, "seconds to wait for a server state"),
            ("build_interval", 1, "poll interval"),
            ("min_compute_nodes", 1, "all-in-one: one compute host"),
            ("fixed_network_name", None, "unset: servers have no network"),
        ]),
        ("compute-feature-enabled", compute_features(caps)),
        ("placement", []),
        ("image", [
            ("region", region, "catalog region"),
            ("container_formats", "bare,ovf,ova,aki,ari,ami,docker,compressed",
             "the container formats the Image API accepts"),
            ("disk_formats", "raw,qcow2,aki,ari,ami,vhd,vhdx,vmdk,vdi,iso,ploop",
             "the disk formats the Image API accepts"),
            ("image_caching_enabled", False, "no Glance image cache API"),
            ("build_timeout", 120, "seconds to wait for an image state"),
        ]),
        ("image-feature-enabled", [
            ("api_v2", True, "Image API v2 is served"),
            ("import_image", False, "no interoperable image import (/import): upload only"),
            ("os_glance_reserved", True, "os_glance_* properties are refused"),
            ("manage_locations", False, "no image locations API"),
            ("image_conversion", False, "no conversion on import"),
            ("image_format_enforcement", True,
             "uploads are checked against disk_format (qcow2 header)"),
            ("do_secure_hash", True, "uploads record os_hash_algo sha512 and os_hash_value"),
            ("http_store_enabled", False, "one local file store"),
            ("store_weight_enabled", False, "one store"),
        ]),
        ("volume", [
            ("catalog_type", "block-storage", "the catalog lists block-storage (and volumev3)"),
            ("region", region, "catalog region"),
            ("min_microversion", versions["volume"][0], "the Block Storage API's minimum"),
            ("max_microversion", versions["volume"][1], "the Block Storage API's maximum"),
            ("build_timeout", 120, "seconds to wait for a volume state"),
            ("volume_size", 1, "smallest volume (GiB)"),
            ("storage_protocol", "iSCSI" if CONF.volume.backend == "iscsi" else "file",
             "what the backend reports"),
        ]),
        ("volume-feature-enabled", [
            ("backup", False, "no backups API (404)"),
            ("snapshot", True, "snapshots API"),
            ("clone", True, "create from a volume (source_volid)"),
            ("manage_volume", False, "no manageable volumes API"),
            ("manage_snapshot", False, "no manageable snapshots API"),
            ("multi_backend", False, "one backend per volume service"),
            ("replication", False, "no replication"),
            ("extend_attached_volume", bool(caps.get("supports_extend_volume")),
             "os-extend of an in-use volume tells the compute driver (capability "
             "extend_volume)"),
            ("extend_attached_encrypted_volume", False, "no encryption"),
            ("extend_volume_with_snapshot", True, "a volume with snapshots can grow"),
            ("enable_volume_image_dep_tests", False,
             "no upload-to-image (os-volume_upload_image) nor volume-backed snapshots"),
        ]),
        ("service_available", [
            ("nova", True, "Compute API v2.1"),
            ("cinder", True, "Block Storage API v3"),
            ("glance", True, "Image API v2"),
            ("neutron", False, "no networking"),
            ("swift", False, "no object storage"),
            ("horizon", False, "no dashboard"),
        ]),
        ("validation", [
            ("run_validation", False, "guests have no network: nothing to SSH into"),
            ("security_group", False, "no security groups"),
            ("security_group_rules", False, "no security groups"),
        ]),
        ("network-feature-enabled", [
            ("ipv6", False, "no networking"),
            ("api_extensions", "", "no networking"),
            ("floating_ips", False, "no networking"),
            ("port_security", False, "no networking"),
            ("port_admin_state_change", False, "no networking"),
        ]),
    ]


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def render(sections: list[tuple[str, list[Option]]]) -> str:
    """tempest.conf text: each option preceded by the reason for its value."""
    lines = ["# Written by 'virtstack tempest-config' for this cloud; regenerate rather",
             "# than edit. Each value's reason is in the comment above it; the results",
             "# and the reason for each skip are in docs/tempest.md.", ""]
    for section, options in sections:
        if not options:
            continue
        lines.append(f"[{section}]")
        for name, value, why in options:
            lines.append(f"# {why}")
            if value is None:
                lines.append(f"# {name} =")
            else:
                lines.append(f"{name} = {_format_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _read_known_passwords(path: str) -> dict[str, str]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise exception.ConfigError(reason=f"cannot read {path}: {exc}") from None
    known = {}
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("password"), str):
            known[str(item.get("username"))] = item["password"]
    return known


def _write_private(path: str, text: str) -> None:
    """Write ``text`` atomically, readable by the owner only."""
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    os.chmod(path, 0o600)


def write(output_dir: str | None = None, projects: int = PROJECTS) -> Result:
    """Create what Tempest needs in this cloud and write its two files.
    The database must be reachable ([database] connection); the cloud's
    APIs need not be running for this, only for Tempest."""
    if not identity.embedded():
        raise exception.ConfigError(
            reason="tempest-config provisions accounts in the embedded identity; with "
                   "[identity] mode = keystone, create them in Keystone and write "
                   "accounts.yaml yourself")
    plan = account_plan(projects)  # bad input fails before anything is created
    output_dir = os.path.abspath(output_dir or default_output_dir())
    os.makedirs(output_dir, exist_ok=True)
    accounts_path = os.path.join(output_dir, "accounts.yaml")
    conf_path = os.path.join(output_dir, "tempest.conf")
    lock_path = os.path.join(output_dir, "locks")
    os.makedirs(lock_path, exist_ok=True)
    known = _read_known_passwords(accounts_path)
    created: list[str] = []
    image_ref, image_ref_alt = ensure_images(created)
    accounts = ensure_accounts(plan, known, created)
    admin = next(a for a in accounts if a.role == "admin")
    _write_private(accounts_path, yaml.safe_dump([a.entry() for a in accounts],
                                                 default_flow_style=False, sort_keys=False))
    sections = build_sections(accounts_path, lock_path, admin, image_ref, image_ref_alt)
    _write_private(conf_path, render(sections))
    return Result(conf_path, accounts_path, accounts, image_ref, image_ref_alt, created)
