"""git_credentials (per user and host, encrypted) and runs.owner (the user a job acts for)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('git_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=63), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_git_credentials')),
    sa.UniqueConstraint('user_name', 'host', name=op.f('uq_git_credentials_user_name'))
    )
    with op.batch_alter_table('git_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_git_credentials_user_name'), ['user_name'], unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=63), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('owner')
    with op.batch_alter_table('git_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_git_credentials_user_name'))
    op.drop_table('git_credentials')
