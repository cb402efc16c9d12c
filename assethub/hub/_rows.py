"""Small helpers for catalog rows, shared by the hub's components."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(dt: datetime | None) -> datetime | None:
    """``dt`` with its zone: SQLite hands datetimes back without one; they were stored as UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt
