"""block storage: volumes, snapshots, attachments, BDMs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:12:25.604058
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

#: Timestamps keep microseconds on MariaDB too (as 0002 made them).
DT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table('block_device_mappings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('device_name', sa.String(length=255), nullable=True),
    sa.Column('source_type', sa.String(length=32), nullable=False),
    sa.Column('destination_type', sa.String(length=32), nullable=False),
    sa.Column('guest_format', sa.String(length=32), nullable=True),
    sa.Column('device_type', sa.String(length=32), nullable=True),
    sa.Column('disk_bus', sa.String(length=32), nullable=True),
    sa.Column('boot_index', sa.Integer(), nullable=True),
    sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
    sa.Column('image_id', sa.String(length=36), nullable=True),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('volume_id', sa.String(length=36), nullable=True),
    sa.Column('volume_size', sa.Integer(), nullable=True),
    sa.Column('volume_type', sa.String(length=255), nullable=True),
    sa.Column('attachment_id', sa.String(length=36), nullable=True),
    sa.Column('connection_info', sa.JSON(), nullable=True),
    sa.Column('tag', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', DT, nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_uuid', 'device_name', 'deleted', name='uq_bdm_instance_device_deleted'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('block_device_mappings', schema=None) as batch_op:
        batch_op.create_index('ix_bdm_volume', ['volume_id', 'deleted'], unique=False)

    op.create_table('volume_attachments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.Column('attached_host', sa.String(length=255), nullable=True),
    sa.Column('mountpoint', sa.String(length=255), nullable=True),
    sa.Column('attach_time', DT, nullable=True),
    sa.Column('detach_time', DT, nullable=True),
    sa.Column('attach_status', sa.String(length=32), nullable=False),
    sa.Column('attach_mode', sa.String(length=4), nullable=False),
    sa.Column('connector', sa.JSON(), nullable=True),
    sa.Column('connection_info', sa.JSON(), nullable=True),
    sa.Column('deleted_at', DT, nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_volume_attachments_instance', ['instance_uuid', 'deleted'], unique=False)
        batch_op.create_index('ix_volume_attachments_volume', ['volume_id', 'deleted'], unique=False)

    op.create_table('volume_pools',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('backend', sa.String(length=64), nullable=False),
    sa.Column('total_gb', sa.Integer(), nullable=False),
    sa.Column('free_gb', sa.Integer(), nullable=False),
    sa.Column('allocated_gb', sa.Integer(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('volume_snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.String(length=255), nullable=True),
    sa.Column('volume_size', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('display_description', sa.String(length=255), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', DT, nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_volume_snapshots_volume', ['volume_id'], unique=False)

    op.create_table('volume_types',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('extra_specs', sa.JSON(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('volumes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('previous_status', sa.String(length=32), nullable=True),
    sa.Column('attach_status', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('display_description', sa.String(length=255), nullable=True),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('source_volid', sa.String(length=36), nullable=True),
    sa.Column('image_id', sa.String(length=36), nullable=True),
    sa.Column('image_metadata', sa.JSON(), nullable=False),
    sa.Column('bootable', sa.Boolean(), nullable=False),
    sa.Column('multiattach', sa.Boolean(), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('admin_metadata', sa.JSON(), nullable=False),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('provider_auth', sa.String(length=255), nullable=True),
    sa.Column('launched_at', DT, nullable=True),
    sa.Column('terminated_at', DT, nullable=True),
    sa.Column('deleted_at', DT, nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('updated_at', DT, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.create_index('ix_volumes_project_deleted_created', ['project_id', 'deleted', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_index('ix_volumes_project_deleted_created')

    op.drop_table('volumes')
    op.drop_table('volume_types')
    with op.batch_alter_table('volume_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_volume_snapshots_volume')

    op.drop_table('volume_snapshots')
    op.drop_table('volume_pools')
    with op.batch_alter_table('volume_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_volume_attachments_volume')
        batch_op.drop_index('ix_volume_attachments_instance')

    op.drop_table('volume_attachments')
    with op.batch_alter_table('block_device_mappings', schema=None) as batch_op:
        batch_op.drop_index('ix_bdm_volume')

    op.drop_table('block_device_mappings')
