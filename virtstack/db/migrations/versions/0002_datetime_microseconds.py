"""timestamps keep microseconds on MariaDB/MySQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:00:00

MariaDB's DATETIME has whole seconds; ``changes-since`` and ordering by time
need the microseconds SQLite and PostgreSQL keep. Nothing to do elsewhere.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# (table, column, nullable) of every timestamp in 0001.
COLUMNS = (
    ('compute_nodes', 'created_at', False), ('compute_nodes', 'updated_at', True),
    ('flavors', 'created_at', False), ('flavors', 'updated_at', True),
    ('images', 'created_at', False), ('images', 'updated_at', True),
    ('instance_actions', 'start_time', False), ('instance_actions', 'finish_time', True),
    ('instance_actions', 'updated_at', True),
    ('instance_faults', 'created_at', False),
    ('instances', 'launched_at', True), ('instances', 'terminated_at', True),
    ('instances', 'deleted_at', True), ('instances', 'created_at', False),
    ('instances', 'updated_at', True),
    ('services', 'last_seen_up', True), ('services', 'created_at', False),
    ('services', 'updated_at', True),
    ('instance_actions_events', 'start_time', False),
    ('instance_actions_events', 'finish_time', True),
)


def _alter(type_, existing) -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=type_, existing_type=existing,
                        existing_nullable=nullable)


def upgrade() -> None:
    _alter(mysql.DATETIME(fsp=6), sa.DateTime())


def downgrade() -> None:
    _alter(sa.DateTime(), mysql.DATETIME(fsp=6))
