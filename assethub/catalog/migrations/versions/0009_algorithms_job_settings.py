"""the algorithm library (algorithms, their versions and shares) and what a run's settings came
from (runs.settings_commit, algorithm, algorithm_version, resources)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('algorithms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=63), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('preset', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_algorithms')),
    sa.UniqueConstraint('name', name=op.f('uq_algorithms_name'))
    )
    op.create_index(op.f('ix_algorithms_owner'), 'algorithms', ['owner'], unique=False)
    op.create_table('algorithm_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('algorithm_id', sa.Integer(), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_name', sa.String(length=63), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['algorithm_id'], ['algorithms.id'],
                            name=op.f('fk_algorithm_shares_algorithm_id_algorithms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                            name=op.f('fk_algorithm_shares_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_algorithm_shares_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_algorithm_shares')),
    sa.UniqueConstraint('algorithm_id', 'subject_type', 'subject_name',
                            name=op.f('uq_algorithm_shares_algorithm_id'))
    )
    op.create_index(op.f('ix_algorithm_shares_group_id'), 'algorithm_shares', ['group_id'], unique=False)
    op.create_index(op.f('ix_algorithm_shares_user_id'), 'algorithm_shares', ['user_id'], unique=False)
    op.create_table('algorithm_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('algorithm_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('code_url', sa.String(length=2048), nullable=False),
    sa.Column('code_revision', sa.String(length=256), nullable=False),
    sa.Column('code_subpath', sa.String(length=1024), nullable=False),
    sa.Column('task_type', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('train_command', sa.Text(), nullable=False),
    sa.Column('evaluate_command', sa.Text(), nullable=False),
    sa.Column('predict_command', sa.Text(), nullable=False),
    sa.Column('resources', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['algorithm_id'], ['algorithms.id'],
                            name=op.f('fk_algorithm_versions_algorithm_id_algorithms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_algorithm_versions')),
    sa.UniqueConstraint('algorithm_id', 'version', name=op.f('uq_algorithm_versions_algorithm_id'))
    )
    op.add_column('runs', sa.Column('settings_commit', sa.String(length=64),
                                    server_default='', nullable=False))
    op.add_column('runs', sa.Column('algorithm', sa.String(length=200), server_default='', nullable=False))
    op.add_column('runs', sa.Column('algorithm_version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('runs', sa.Column('resources', sa.JSON(), server_default='{}', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('resources')
        batch_op.drop_column('algorithm_version')
        batch_op.drop_column('algorithm')
        batch_op.drop_column('settings_commit')
    op.drop_table('algorithm_versions')
    op.drop_index(op.f('ix_algorithm_shares_user_id'), table_name='algorithm_shares')
    op.drop_index(op.f('ix_algorithm_shares_group_id'), table_name='algorithm_shares')
    op.drop_table('algorithm_shares')
    op.drop_index(op.f('ix_algorithms_owner'), table_name='algorithms')
    op.drop_table('algorithms')
