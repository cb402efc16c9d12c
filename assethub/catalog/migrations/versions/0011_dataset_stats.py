"""dataset_stats: each dataset version's statistics, computed once per commit

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dataset_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=63), nullable=False),
    sa.Column('commit_id', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=1100), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_stats')),
    sa.UniqueConstraint('repository', 'commit_id', name=op.f('uq_dataset_stats_repository'))
    )


def downgrade() -> None:
    op.drop_table('dataset_stats')
