"""Versions and files: commits, branches, tags, objects, diffs, downloads, write operations.

See :mod:`assethub.wire`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

# -- versions and files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit of an asset: id, message, who committed, when, parents and metadata."""

    id: str
    message: str
    committer: str
    created: datetime
    parents: tuple[str, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BranchInfo:
    """A branch and the commit it points at."""

    name: str
    commit_id: str


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A tag and the commit it names."""

    name: str
    commit_id: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A file of a version: path, size, lakeFS checksum, SHA-256, last change."""

    path: str
    size: int
    checksum: str
    sha256: str | None
    modified: datetime
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One path that differs between two versions."""

    path: str
    change: Literal["added", "removed", "changed", "conflict", "prefix_changed"]
    size: int | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What a download placed: the commit, files and bytes (and how many were transferred)."""

    commit_id: str
    files: int
    bytes_total: int
    bytes_transferred: int  # fetched from the server or lakeFS; the rest came from the local cache


@dataclass(frozen=True, slots=True)
class AddFile:
    """Upload ``local`` (a file) to ``path`` in the asset."""

    local: Path | str
    path: str


@dataclass(frozen=True, slots=True)
class DeleteFile:
    """Remove ``path`` (a file) from the asset."""

    path: str


Operation = AddFile | DeleteFile


# -- direct transfer (presigned URLs of the object store) ---------------------------------------


@dataclass(frozen=True, slots=True)
class PresignedObject:
    """A file of a version with a URL that reads it straight from the object store (a GET,
    ranged or whole, until ``expires``); ``sha256`` is what every download checks."""

    path: str
    size: int
    checksum: str
    sha256: str | None
    url: str
    expires: int | None = None  # unix time, when the object store says


@dataclass(frozen=True, slots=True)
class PresignedPage:
    """One page of a version's files with presigned URLs; ``next_after`` continues it (None:
    this was the last page). ``commit_id`` is the commit every page reads."""

    commit_id: str
    objects: tuple[PresignedObject, ...]
    next_after: str | None


@dataclass(frozen=True, slots=True)
class PresignedPut:
    """Where one file of an upload goes: a PUT of its bytes to ``url``, then a link of
    ``physical_address`` (with the size, the object store's ETag and the SHA-256)."""

    path: str
    url: str
    physical_address: str
    expires: int | None = None
