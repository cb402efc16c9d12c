"""Small helpers for catalog rows, shared by the hub's components."""

from __future__ import annotations

from datetime import UTC, datetime

from assethub.catalog import Asset


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
