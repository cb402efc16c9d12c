"""Assets and datasets. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from assethub.errors import InvalidReferenceError
from assethub.refs import AssetPath, validate_object_path
from assethub.wire._versions import CommitInfo

# -- assets and datasets ------------------------------------------------------------------------


FORMATS = ("dir", "json", "single_text", "brat_ann")
TASK_TYPES = ("image_classification", "text_classification", "object_detection", "image_segmentation",
              "text_generation", "tabular", "other")
SPLIT_MODES = ("ratio", "test_set")


@dataclass
class DatasetMeta:
    """A dataset's settings: task type, format and split rule."""

    task_type: str | None = None
    data_format: str | None = None
    split_mode: str | None = None
    split_ratio: float | None = None
    test_set_path: str | None = None

    def validate(self) -> None:
        if self.task_type is not None and self.task_type not in TASK_TYPES:
            raise InvalidReferenceError(
                f"unknown task type {self.task_type!r}; use one of "
                f"{', '.join(TASK_TYPES)}", part="task_type", value=self.task_type)
        if self.data_format is not None and self.data_format not in FORMATS:
            raise InvalidReferenceError(
                f"unknown dataset format {self.data_format!r}; use one of "
                f"{', '.join(FORMATS)}", part="format", value=self.data_format)
        if self.split_mode is not None and self.split_mode not in SPLIT_MODES:
            raise InvalidReferenceError(
                f"unknown split mode {self.split_mode!r}; use 'ratio' (with split_ratio) or "
                "'test_set' (with test_set_path)", part="split_mode", value=self.split_mode)
        if self.split_mode == "ratio" and not (
                self.split_ratio is not None and 0 < self.split_ratio < 1):
            raise InvalidReferenceError(
                "split mode 'ratio' needs split_ratio between 0 and 1 (e.g. 0.9)",
                part="split_ratio", value=str(self.split_ratio))
        if self.split_mode == "test_set":
            if not self.test_set_path:
                raise InvalidReferenceError("split mode 'test_set' needs test_set_path",
                                            part="test_set_path", value="")
            validate_object_path(self.test_set_path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class AssetView:
    """A model or dataset, with the caller's role and its published versions."""

    path: AssetPath
    repository: str
    description: str
    labels: tuple[str, ...]
    readme: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    your_role: str
    dataset: DatasetMeta | None
    preset: bool
    published: tuple[tuple[str, str], ...]  # (tag, commit)


@dataclass(frozen=True)
class DatasetSummary:
    """What a dataset archive or layout holds: format, files, bytes, classes, splits."""

    format: str
    files: int
    total_bytes: int
    classes: tuple[str, ...] = ()  # dir only
    splits: tuple[str, ...] = ()  # dir only
    examples_per_split: dict[str, int] = field(default_factory=dict)  # "all" when not split


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The commit an imported archive became, and what it holds."""

    commit: CommitInfo
    summary: DatasetSummary
