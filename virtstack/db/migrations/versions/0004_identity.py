"""identity: domains, projects, users, roles, assignments, revoked tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

#: Timestamps keep microseconds on MariaDB too (as 0002 made them).
DT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _timestamps():
    return [sa.Column('created_at', DT, nullable=False),
            sa.Column('updated_at', DT, nullable=True)]


def upgrade() -> None:
    op.create_table('identity_domains',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    *_timestamps(),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('identity_roles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    *_timestamps(),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('identity_projects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_projects_name')
    )
    op.create_table('identity_users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    *_timestamps(),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_users_name')
    )
    op.create_table('identity_implied_roles',
    sa.Column('prior_role_id', sa.String(length=64), nullable=False),
    sa.Column('implied_role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['implied_role_id'], ['identity_roles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prior_role_id'], ['identity_roles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prior_role_id', 'implied_role_id')
    )
    op.create_table('identity_role_assignments',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['identity_projects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['identity_roles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'project_id', 'role_id')
    )
    op.create_index('ix_identity_role_assignments_project', 'identity_role_assignments',
                    ['project_id'], unique=False)
    op.create_index('ix_identity_role_assignments_role', 'identity_role_assignments',
                    ['role_id'], unique=False)
    op.create_table('identity_revoked_tokens',
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', DT, nullable=False),
    sa.Column('expires_at', DT, nullable=False),
    sa.PrimaryKeyConstraint('audit_id')
    )
    op.create_index('ix_identity_revoked_tokens_expires', 'identity_revoked_tokens',
                    ['expires_at'], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index
    # a foreign key needs while the key exists).
    for table in ('identity_revoked_tokens', 'identity_role_assignments',
                  'identity_implied_roles', 'identity_users', 'identity_projects',
                  'identity_roles', 'identity_domains'):
        op.drop_table(table)
