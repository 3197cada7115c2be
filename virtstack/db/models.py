"""SQLAlchemy models of the service database.

Schema changes go through alembic (``virtstack/db/migrations``); a test
checks that the migrations and these models agree.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


#: Timestamps keep microseconds on every backend (MariaDB's plain DATETIME
#: drops them, which breaks ``changes-since`` and ordering by time there).
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(orm.DeclarativeBase):
    type_annotation_map = {dict: sa.JSON, datetime.datetime: DateTime}


class TimestampMixin:
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None, onupdate=utcnow)


class Instance(TimestampMixin, Base):
    """One server. Rows are kept (``deleted`` != 0) after delete, as the API
    lists deleted servers to admins and for ``changes-since``."""

    __tablename__ = "instances"
    __table_args__ = (
        sa.Index("ix_instances_project_deleted_created", "project_id", "deleted", "created_at"),
        sa.Index("ix_instances_host_deleted", "host", "deleted"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), unique=True)
    display_name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    display_description: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    hostname: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    flavorid: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    # The flavor as it was at boot: flavors may change or go away later.
    flavor: orm.Mapped[dict] = orm.mapped_column(sa.JSON)
    vcpus: orm.Mapped[int] = orm.mapped_column(default=0)
    memory_mb: orm.Mapped[int] = orm.mapped_column(default=0)
    root_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    image_ref: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    kernel_id: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    ramdisk_id: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    vm_state: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    task_state: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    power_state: orm.Mapped[int] = orm.mapped_column(default=0)
    metadata_: orm.Mapped[dict] = orm.mapped_column("metadata", sa.JSON, default=dict)
    key_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    user_data: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    access_ip_v4: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    access_ip_v6: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    availability_zone: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    config_drive: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    root_device_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    reservation_id: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    launch_index: orm.Mapped[int] = orm.mapped_column(default=0)
    locked: orm.Mapped[bool] = orm.mapped_column(default=False)
    launched_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    terminated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    # 0 while live; the row id once deleted (keeps unique constraints usable).
    deleted: orm.Mapped[int] = orm.mapped_column(default=0)


class InstanceFault(Base):
    """Why an instance went to ERROR (the newest is shown as ``fault``)."""

    __tablename__ = "instance_faults"
    __table_args__ = (sa.Index("ix_instance_faults_uuid", "instance_uuid"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    code: orm.Mapped[int]
    message: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    details: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class InstanceAction(Base):
    """One user request on an instance (os-instance-actions)."""

    __tablename__ = "instance_actions"
    __table_args__ = (sa.Index("ix_instance_actions_uuid_req", "instance_uuid", "request_id"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    action: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    request_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    start_time: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    finish_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    message: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=utcnow, onupdate=utcnow)


class InstanceActionEvent(Base):
    """One step the compute service took for an action."""

    __tablename__ = "instance_actions_events"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    action_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True)
    event: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    start_time: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    finish_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    result: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    traceback: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))


class Flavor(TimestampMixin, Base):
    __tablename__ = "flavors"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    flavorid: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    vcpus: orm.Mapped[int]
    memory_mb: orm.Mapped[int]
    root_gb: orm.Mapped[int]
    ephemeral_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    swap: orm.Mapped[int] = orm.mapped_column(default=0)
    rxtx_factor: orm.Mapped[float] = orm.mapped_column(default=1.0)
    is_public: orm.Mapped[bool] = orm.mapped_column(default=True)
    disabled: orm.Mapped[bool] = orm.mapped_column(default=False)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    extra_specs: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)


class Image(TimestampMixin, Base):
    """The image registry: what ``imageRef`` may name.

    The image store (bits on disk) and the Image API build on this table.
    """

    __tablename__ = "images"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    status: orm.Mapped[str] = orm.mapped_column(sa.String(30), default="queued")
    disk_format: orm.Mapped[str | None] = orm.mapped_column(sa.String(30))
    container_format: orm.Mapped[str | None] = orm.mapped_column(sa.String(30))
    min_disk: orm.Mapped[int] = orm.mapped_column(default=0)
    min_ram: orm.Mapped[int] = orm.mapped_column(default=0)
    size: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    checksum: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    owner: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    visibility: orm.Mapped[str] = orm.mapped_column(sa.String(20), default="shared")
    protected: orm.Mapped[bool] = orm.mapped_column(default=False)
    location: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    properties: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)
    deleted: orm.Mapped[bool] = orm.mapped_column(default=False)


class Service(TimestampMixin, Base):
    """A running service (compute, volume, ...) and its heartbeat."""

    __tablename__ = "services"
    __table_args__ = (sa.UniqueConstraint("host", "binary", name="uq_services_host_binary"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    binary: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    topic: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    disabled: orm.Mapped[bool] = orm.mapped_column(default=False)
    disabled_reason: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    last_seen_up: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    report_count: orm.Mapped[int] = orm.mapped_column(default=0)


class ComputeNode(TimestampMixin, Base):
    """The resources one hypervisor node offers and uses."""

    __tablename__ = "compute_nodes"
    __table_args__ = (sa.UniqueConstraint("host", "hypervisor_hostname", name="uq_compute_nodes_host_node"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), unique=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_hostname: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_type: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_version: orm.Mapped[int] = orm.mapped_column(default=0)
    host_ip: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    vcpus: orm.Mapped[int] = orm.mapped_column(default=0)
    memory_mb: orm.Mapped[int] = orm.mapped_column(default=0)
    local_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    vcpus_used: orm.Mapped[int] = orm.mapped_column(default=0)
    memory_mb_used: orm.Mapped[int] = orm.mapped_column(default=0)
    local_gb_used: orm.Mapped[int] = orm.mapped_column(default=0)
    running_vms: orm.Mapped[int] = orm.mapped_column(default=0)
    cpu_info: orm.Mapped[str] = orm.mapped_column(sa.Text, default="{}")


# -- block storage ----------------------------------------------------------
# Statuses are the Block Storage API's own words (DESIGN "States"); rows are
# kept after delete (``deleted``) as Cinder keeps them, for audit and so a
# racing reader never finds a half-gone row.


class VolumeType(TimestampMixin, Base):
    """A class of volume (``__DEFAULT__`` is seeded); extra specs are free-form."""

    __tablename__ = "volume_types"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    is_public: orm.Mapped[bool] = orm.mapped_column(default=True)
    extra_specs: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)


class VolumePool(TimestampMixin, Base):
    """Capacity of one backend pool, as its volume service last reported it,
    plus what the scheduler has claimed on it (``allocated_gb``)."""

    __tablename__ = "volume_pools"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    #: "host@backend#pool", the value a volume's ``host`` takes.
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    backend: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    total_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    free_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    allocated_gb: orm.Mapped[int] = orm.mapped_column(default=0)
    disabled: orm.Mapped[bool] = orm.mapped_column(default=False)


class Volume(TimestampMixin, Base):
    __tablename__ = "volumes"
    __table_args__ = (
        sa.Index("ix_volumes_project_deleted_created", "project_id", "deleted", "created_at"),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    #: "host@backend#pool" once scheduled.
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    size: orm.Mapped[int] = orm.mapped_column(default=0)  # GiB
    availability_zone: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="nova")
    status: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    #: Status before an operation that may be rolled back (reset on success).
    previous_status: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    attach_status: orm.Mapped[str] = orm.mapped_column(sa.String(32), default="detached")
    display_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    display_description: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    volume_type_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    snapshot_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    source_volid: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    image_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    #: What the image the volume was made from said (volume_image_metadata).
    image_metadata: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)
    bootable: orm.Mapped[bool] = orm.mapped_column(default=False)
    multiattach: orm.Mapped[bool] = orm.mapped_column(default=False)
    encrypted: orm.Mapped[bool] = orm.mapped_column(default=False)
    metadata_: orm.Mapped[dict] = orm.mapped_column("metadata", sa.JSON, default=dict)
    admin_metadata: orm.Mapped[dict] = orm.mapped_column(sa.JSON, default=dict)
    #: Where the backend keeps it (a path, a target IQN); backend-private.
    provider_location: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    #: Backend credentials (e.g. "CHAP user secret"): never logged or shown.
    provider_auth: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    launched_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    terminated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted: orm.Mapped[bool] = orm.mapped_column(default=False)


class VolumeSnapshot(TimestampMixin, Base):
    __tablename__ = "volume_snapshots"
    __table_args__ = (sa.Index("ix_volume_snapshots_volume", "volume_id"),)

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    volume_id: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    status: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    progress: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    volume_size: orm.Mapped[int] = orm.mapped_column(default=0)
    display_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    display_description: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    metadata_: orm.Mapped[dict] = orm.mapped_column("metadata", sa.JSON, default=dict)
    provider_location: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted: orm.Mapped[bool] = orm.mapped_column(default=False)


class VolumeAttachment(TimestampMixin, Base):
    """One attachment of a volume to a server (the attachments API)."""

    __tablename__ = "volume_attachments"
    __table_args__ = (
        sa.Index("ix_volume_attachments_volume", "volume_id", "deleted"),
        sa.Index("ix_volume_attachments_instance", "instance_uuid", "deleted"),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    volume_id: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    instance_uuid: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    attached_host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    mountpoint: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    attach_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    detach_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    #: reserved, attaching, attached, detaching, detached, error_attaching, error_detaching
    attach_status: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    attach_mode: orm.Mapped[str] = orm.mapped_column(sa.String(4), default="rw")
    connector: orm.Mapped[dict | None] = orm.mapped_column(sa.JSON, default=None)
    #: What initialize_connection returned (may hold CHAP secrets: never logged).
    connection_info: orm.Mapped[dict | None] = orm.mapped_column(sa.JSON, default=None)
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted: orm.Mapped[bool] = orm.mapped_column(default=False)


class BlockDeviceMapping(TimestampMixin, Base):
    """One device of a server (Nova's block_device_mapping). A live row's
    ``deleted`` is 0, a deleted one's is its id, so the unique constraint
    makes reserving a device name atomic per instance on every backend."""

    __tablename__ = "block_device_mappings"
    __table_args__ = (
        sa.UniqueConstraint("instance_uuid", "device_name", "deleted",
                            name="uq_bdm_instance_device_deleted"),
        sa.Index("ix_bdm_volume", "volume_id", "deleted"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), unique=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    device_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    source_type: orm.Mapped[str] = orm.mapped_column(sa.String(32))  # image, volume, snapshot, blank
    destination_type: orm.Mapped[str] = orm.mapped_column(sa.String(32))  # local, volume
    guest_format: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    device_type: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    disk_bus: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    boot_index: orm.Mapped[int | None] = orm.mapped_column(default=None)
    delete_on_termination: orm.Mapped[bool] = orm.mapped_column(default=False)
    image_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    snapshot_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    volume_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    volume_size: orm.Mapped[int | None] = orm.mapped_column(default=None)
    volume_type: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    attachment_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    connection_info: orm.Mapped[dict | None] = orm.mapped_column(sa.JSON, default=None)
    tag: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(default=None)
    deleted: orm.Mapped[int] = orm.mapped_column(default=0)


# -- identity (embedded Identity v3) ------------------------------------------
# Users, projects and roles of the embedded identity service. Ids are
# Keystone's shape (32 hex digits; the domain's is 'default'). Passwords are
# kept only as bcrypt hashes (``identity.passwords``).


class Domain(TimestampMixin, Base):
    __tablename__ = "identity_domains"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)


class Project(TimestampMixin, Base):
    __tablename__ = "identity_projects"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_identity_projects_name"),)

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    domain_id: orm.Mapped[str] = orm.mapped_column(sa.ForeignKey("identity_domains.id"))
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)


class User(TimestampMixin, Base):
    __tablename__ = "identity_users"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_identity_users_name"),)

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    domain_id: orm.Mapped[str] = orm.mapped_column(sa.ForeignKey("identity_domains.id"))
    #: bcrypt hash (None: the user cannot authenticate with a password).
    password_hash: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)
    default_project_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    email: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))


class Role(TimestampMixin, Base):
    __tablename__ = "identity_roles"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)


class ImpliedRole(Base):
    """Holding ``prior_role`` on a project also grants ``implied_role``
    (admin implies member implies reader)."""

    __tablename__ = "identity_implied_roles"

    prior_role_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    implied_role_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)


class RoleAssignment(Base):
    """A role granted to a user on a project."""

    __tablename__ = "identity_role_assignments"
    __table_args__ = (sa.Index("ix_identity_role_assignments_project", "project_id"),
                      sa.Index("ix_identity_role_assignments_role", "role_id"))

    user_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("identity_users.id", ondelete="CASCADE"), primary_key=True)
    project_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("identity_projects.id", ondelete="CASCADE"), primary_key=True)
    role_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class RevokedToken(Base):
    """A revoked token, by audit id: every token carrying that audit id (the
    token itself and those issued from it) fails validation. The row is
    useless once ``expires_at`` has passed and may be pruned."""

    __tablename__ = "identity_revoked_tokens"
    __table_args__ = (sa.Index("ix_identity_revoked_tokens_expires", "expires_at"),)

    audit_id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    revoked_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    expires_at: orm.Mapped[datetime.datetime]
