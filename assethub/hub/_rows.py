"""Small helpers for catalog rows, shared by the hub's components."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from assethub.catalog import Asset, Evaluation, Run, Service


def aware(dt: datetime | None) -> datetime | None:
    """``dt`` with its zone: SQLite hands datetimes back without one; they were stored as UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def asset_path(asset: Asset | None, recorded: str) -> str:
    """The asset's current path (``owner/kind/folder/name``); ``recorded`` once it is gone."""
    if asset is None:
        return recorded
    f = asset.folder
    return f"{f.owner}/{f.kind}/{f.name}/{asset.name}"


def asset_ref(asset: Asset | None, recorded: str) -> str:
    """``recorded`` (a ``path:ref``, or "") with the asset's current path; as is once it is gone."""
    if asset is None or not recorded:
        return recorded
    return f"{asset_path(asset, '')}:{recorded.rpartition(':')[2]}"


def keep_paths(s: Session, assets: list[Asset]) -> None:
    """Before ``assets`` are deleted: the runs, evaluations and services that refer to them
    record their current paths, shown once the catalog has detached them (ids set NULL)."""
    ids = [a.id for a in assets]
    if not ids:
        return
    for r in s.scalars(select(Run).where(or_(Run.model_id.in_(ids), Run.dataset_id.in_(ids),
                                             Run.base_id.in_(ids)))):
        r.model_path = asset_path(r.model, r.model_path)
        r.dataset_ref, r.base_ref = asset_ref(r.dataset, r.dataset_ref), asset_ref(r.base, r.base_ref)
    for e in s.scalars(select(Evaluation).where(or_(Evaluation.model_id.in_(ids),
                                                    Evaluation.dataset_id.in_(ids)))):
        e.model_path, e.dataset_ref = asset_path(e.model, e.model_path), asset_ref(e.dataset, e.dataset_ref)
    for v in s.scalars(select(Service).where(Service.model_id.in_(ids))):
        v.model_ref = asset_ref(v.model, v.model_ref)
    s.flush()
