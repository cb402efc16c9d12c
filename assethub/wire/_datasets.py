"""Datasets: the version graph and previews of a version's files. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PREVIEW_KINDS = ("table", "text", "image", "binary")


@dataclass(frozen=True, slots=True)
class VersionNode:
    """A commit of a dataset's ``main``: what it was based on (a published version, a commit,
    ``"empty"``; for a commit made before the graph was recorded, its parent) and the
    published versions that name it."""

    commit_id: str
    message: str
    author: str
    created: datetime
    parents: tuple[str, ...]
    based_on: str
    based_on_commit: str
    tags: tuple[str, ...] = ()
    main: bool = False  # the head of main
    restored: str = ""  # the version a restore made the new main


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """A published version (immutable tag), its commit and what that commit was based on."""

    tag: str
    commit_id: str
    based_on: str
    based_on_commit: str


@dataclass(frozen=True, slots=True)
class VersionGraph:
    """A dataset's versions: ``main``'s head, the published versions, and ``main``'s commits
    newest first (``more``: older ones were left out)."""

    dataset: str
    main: str
    published: tuple[PublishedVersion, ...]
    commits: tuple[VersionNode, ...]
    more: bool = False


@dataclass(frozen=True, slots=True)
class FilePreview:
    """The start of one file, read without downloading it: the first rows of a table
    (``columns``, ``rows``), the first lines of a text, an image's size; ``bytes_read`` is what
    the server read of its ``size`` bytes."""

    path: str
    size: int
    kind: str  # one of PREVIEW_KINDS
    bytes_read: int
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    lines: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    image_format: str = ""
    mode: str = ""
    label: str = ""  # the class folder the file is in (dir datasets)
    split: str = ""  # train / test / ... when the file is in a split folder
    total_rows: int | None = None  # when the file says (Parquet)
    truncated: bool = False  # more rows or lines follow


@dataclass(frozen=True, slots=True)
class DatasetHead:
    """The first files of a version, each previewed; ``more``: the version holds more."""

    commit_id: str
    files: tuple[FilePreview, ...]
    more: bool = False
