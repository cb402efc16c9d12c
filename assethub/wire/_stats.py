"""Dataset statistics of one version and the sample-level diff of two. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# -- statistics of one version ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberSummary:
    """Count, total, smallest, largest and mean of some numbers (file sizes, text lengths ...)."""

    count: int
    total: float
    min: float | None
    max: float | None
    mean: float | None


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """One column of a table: its type, missing values, most frequent values (and for numbers
    their range and mean). ``top_exact`` is False when the column had too many distinct values
    to count them all (the counts shown are then lower bounds of the most frequent)."""

    name: str
    dtype: str
    missing: int
    distinct: int | None  # None: over the counting limit
    top: tuple[tuple[str, int], ...]
    top_exact: bool = True
    min: float | None = None
    max: float | None = None
    mean: float | None = None


@dataclass(frozen=True, slots=True)
class TableStats:
    """A table file (CSV, TSV, JSON lines, Parquet): rows and each column."""

    path: str
    rows: int
    columns: tuple[ColumnStats, ...]


@dataclass(frozen=True, slots=True)
class DatasetStats:
    """What a dataset version holds, computed once per commit (and dataset settings) and cached.

    ``per_split_class`` is split -> class -> samples; splits are ``train``/``test`` by the
    dataset's split rule (``split_rule``), or the version's own split folders (``val`` ...).
    A sample is a file in a class folder (``dir``), a record (``json``), a line or table row
    (``single_text``) or a document (``brat_ann``)."""

    asset: str
    commit_id: str
    format: str
    split_rule: str
    samples: int
    per_class: dict[str, int]
    per_split: dict[str, int]
    per_split_class: dict[str, dict[str, int]]
    files: int
    file_sizes: NumberSummary
    extensions: dict[str, int]
    image_sizes: dict[str, int]  # "<width>x<height>" -> images
    image_width: NumberSummary | None
    image_height: NumberSummary | None
    text_lengths: NumberSummary | None  # in characters
    annotations: dict[str, dict[str, int]]  # brat: entity/relation/event/attribute/... -> type -> n
    tables: tuple[TableStats, ...]
    computed_at: datetime
    seconds: float  # how long computing them took
    cached: bool = False  # True: read from the catalog, not computed for this request


# -- sample-level diff ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampleChanges:
    """What changed in one class of one split: samples added, removed, changed (same path,
    other content), moved in from and out to another class (same content)."""

    split: str
    label: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    moved_in: int = 0
    moved_out: int = 0


@dataclass(frozen=True, slots=True)
class MovedSample:
    """A sample whose content is now in another class."""

    old_path: str
    new_path: str
    old_class: str
    new_class: str


@dataclass(frozen=True, slots=True)
class TableRowDiff:
    """Rows of one table file added, removed and changed: by the ``key`` column, or by content
    hash without one (then a changed row is one removed and one added: ``rows_changed`` None)."""

    path: str
    key: str | None
    left_rows: int
    right_rows: int
    rows_added: int
    rows_removed: int
    rows_changed: int | None


@dataclass(frozen=True, slots=True)
class SampleDiff:
    """Samples of two versions of one dataset compared, per split and class, and table rows."""

    left_commit: str
    right_commit: str
    format: str
    added: int
    removed: int
    changed: int
    moved: int
    renamed: int  # same content and class under another path
    groups: tuple[SampleChanges, ...]
    moves: tuple[MovedSample, ...] = ()  # the first MAX_MOVES moves
    tables: tuple[TableRowDiff, ...] = field(default_factory=tuple)


MAX_MOVES = 1000
