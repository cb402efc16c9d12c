"""records keyed by identity: runs, evaluations, follows and services name assets by id, shares
name users and groups by id

Backfills the ids from the recorded paths and names. A row whose asset (or user, group) is gone,
or was created after the row (so a later one of the same name), is not attached to it: runs,
evaluations and services stay orphaned (id NULL, their recorded path kept for display); follows
and shares without their asset or subject are deleted (they would act for a stranger).

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the asset path of a row of assets a joined with folders f, as AssetPath prints it
_PATH = "f.owner || '/' || f.kind || '/' || f.name || '/' || a.name"


def _asset_of(table: str, path_column: str, *, ref: bool = False) -> str:
    """A scalar subquery: the id of the asset ``table.path_column`` names (a path, or with
    ``ref`` a ``path:ref``), if it existed when the row was made."""
    match = (f"substr({table}.{path_column}, 1, length({_PATH}) + 1) = {_PATH} || ':'" if ref
             else f"{table}.{path_column} = {_PATH}")
    return (f"(SELECT a.id FROM assets a JOIN folders f ON a.folder_id = f.id "
            f"WHERE {match} AND a.created_at <= {table}.created_at)")


def _asset_fk(batch_op: object, table: str, column: str, ondelete: str) -> None:
    batch_op.create_foreign_key(  # type: ignore[attr-defined]
        op.f(f'fk_{table}_{column}_assets'), 'assets', [column], ['id'], ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        for column in ('model_id', 'dataset_id', 'base_id'):
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
            _asset_fk(batch_op, 'runs', column, 'SET NULL')
            batch_op.create_index(batch_op.f(f'ix_runs_{column}'), [column], unique=False)
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        for column in ('model_id', 'dataset_id'):
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
            _asset_fk(batch_op, 'evaluations', column, 'SET NULL')
        batch_op.create_index('ix_evaluations_model_id_commit', ['model_id', 'model_commit'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_dataset_id'), ['dataset_id'], unique=False)
    with op.batch_alter_table('follows', schema=None) as batch_op:
        for column in ('model_id', 'dataset_id'):
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_id', sa.Integer(), nullable=True))
        _asset_fk(batch_op, 'services', 'model_id', 'SET NULL')
        batch_op.create_index(batch_op.f('ix_services_model_id'), ['model_id'], unique=False)
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_shares_user_id_users'), 'users', ['user_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_foreign_key(op.f('fk_shares_group_id_groups'), 'groups', ['group_id'],
                                    ['id'], ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_shares_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shares_group_id'), ['group_id'], unique=False)

    # -- backfill: ids from the recorded paths and names -----------------------------------------
    execute = op.execute
    execute(f"UPDATE runs SET model_id = {_asset_of('runs', 'model_path')}, "
            f"dataset_id = {_asset_of('runs', 'dataset_ref', ref=True)}, "
            f"base_id = {_asset_of('runs', 'base_ref', ref=True)}")
    execute(f"UPDATE evaluations SET model_id = {_asset_of('evaluations', 'model_path')}, "
            f"dataset_id = {_asset_of('evaluations', 'dataset_ref', ref=True)}")
    execute(f"UPDATE follows SET model_id = {_asset_of('follows', 'model_path')}, "
            f"dataset_id = {_asset_of('follows', 'dataset_path')}")
    execute("DELETE FROM follows WHERE model_id IS NULL OR dataset_id IS NULL")
    execute(f"UPDATE services SET model_id = {_asset_of('services', 'model_ref', ref=True)}")
    execute("UPDATE shares SET user_id = (SELECT u.id FROM users u WHERE u.name = shares.subject_name "
            "AND u.created_at <= shares.created_at) WHERE subject_type = 'user'")
    execute("UPDATE shares SET group_id = (SELECT g.id FROM groups g WHERE g.name = shares.subject_name "
            "AND g.created_at <= shares.created_at) WHERE subject_type = 'group'")
    execute("DELETE FROM shares WHERE (subject_type = 'user' AND user_id IS NULL) "
            "OR (subject_type = 'group' AND group_id IS NULL)")

    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.alter_column('model_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('dataset_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint('uq_follows_model_path', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_follows_model_id'), ['model_id', 'dataset_id'])
        _asset_fk(batch_op, 'follows', 'model_id', 'CASCADE')
        _asset_fk(batch_op, 'follows', 'dataset_id', 'CASCADE')
        batch_op.create_index(batch_op.f('ix_follows_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_follows_dataset_id'), ['dataset_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follows_dataset_id'))
        batch_op.drop_index(batch_op.f('ix_follows_model_id'))
        batch_op.drop_constraint(batch_op.f('fk_follows_dataset_id_assets'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_follows_model_id_assets'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_follows_model_id'), type_='unique')
        batch_op.create_unique_constraint('uq_follows_model_path', ['model_path', 'dataset_path'])
        batch_op.drop_column('dataset_id')
        batch_op.drop_column('model_id')
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shares_group_id'))
        batch_op.drop_index(batch_op.f('ix_shares_user_id'))
        batch_op.drop_constraint(batch_op.f('fk_shares_group_id_groups'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_shares_user_id_users'), type_='foreignkey')
        batch_op.drop_column('group_id')
        batch_op.drop_column('user_id')
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_services_model_id'))
        batch_op.drop_constraint(batch_op.f('fk_services_model_id_assets'), type_='foreignkey')
        batch_op.drop_column('model_id')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_dataset_id'))
        batch_op.drop_index('ix_evaluations_model_id_commit')
        for column in ('dataset_id', 'model_id'):
            batch_op.drop_constraint(batch_op.f(f'fk_evaluations_{column}_assets'), type_='foreignkey')
            batch_op.drop_column(column)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        for column in ('base_id', 'dataset_id', 'model_id'):
            batch_op.drop_index(batch_op.f(f'ix_runs_{column}'))
            batch_op.drop_constraint(batch_op.f(f'fk_runs_{column}_assets'), type_='foreignkey')
            batch_op.drop_column(column)
