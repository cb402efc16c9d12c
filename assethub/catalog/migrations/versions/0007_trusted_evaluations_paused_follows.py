"""evaluations.trusted (who may record one is checked) and follows.paused (why a follow stopped)

Evaluations stored before this revision were accepted from anyone with ``run`` on the model,
so they are kept but marked untrusted: merge decisions ignore them.

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-30 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing rows get false (untrusted); the model's default is true for new rows
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_column('paused')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('trusted')
