"""service monitoring: events, alert rules, usage

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 20:27:16.738050
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('service_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('service_name', sa.String(length=63), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('model_commit', sa.String(length=64), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['assets.id'],
                            name=op.f('fk_service_usage_model_id_assets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_usage'))
    )
    with op.batch_alter_table('service_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_usage_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_usage_service_id'), ['service_id'], unique=False)

    op.create_table('service_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('window_seconds', sa.Integer(), nullable=False),
    sa.Column('webhook', sa.Text(), nullable=False),
    sa.Column('firing', sa.Boolean(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                            name=op.f('fk_service_alerts_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_alerts')),
    sa.UniqueConstraint('service_id', 'metric', name=op.f('uq_service_alerts_service_id'))
    )
    op.create_table('service_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                            name=op.f('fk_service_events_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_events'))
    )
    with op.batch_alter_table('service_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_events_service_id'), ['service_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('service_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_events_service_id'))

    op.drop_table('service_events')
    op.drop_table('service_alerts')
    with op.batch_alter_table('service_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_usage_service_id'))
        batch_op.drop_index(batch_op.f('ix_service_usage_model_id'))

    op.drop_table('service_usage')

