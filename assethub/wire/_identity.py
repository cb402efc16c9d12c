"""Identity, folders, sharing and audit. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from assethub.refs import FolderPath

# -- identity, folders, sharing, audit ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserView:
    """A user, with the groups they belong to."""

    name: str
    display_name: str
    email: str
    is_admin: bool
    disabled: bool
    groups: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group and its members."""

    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenView:
    """An API token's record (never its secret)."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new API token: its record, and its secret (shown only this once, never in repr)."""

    token: TokenView
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class FolderView:
    """A folder, with the caller's role on it and how many assets it holds."""

    path: FolderPath
    description: str
    created_at: datetime
    created_by: str
    your_role: str
    assets: int
    public: bool = False  # shared with everyone


@dataclass(frozen=True, slots=True)
class ShareView:
    """A share of a folder with a user, a group or everyone."""

    folder: FolderPath
    subject_type: str
    subject_name: str
    role: str
    created_by: str


@dataclass(frozen=True, slots=True)
class AuditView:
    """One event of the audit log: who did what to which target, and the outcome."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    detail: str
