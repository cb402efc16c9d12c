"""Every value that crosses the HTTP API, as the server sends it and the SDK returns it.

The server builds these from its catalog and storage and sends them as JSON; the SDK
(:mod:`assethub.client`) turns the JSON back into the same frozen dataclasses. Both import them
from here, so this module imports only the standard library and the other stdlib-only modules
(:mod:`assethub.refs`, :mod:`assethub.errors`, :mod:`assethub.lineage`): importing the SDK must
not load the server's dependencies. The modules that used to define these (``storage``,
``service``, ``follows``, ``serving``, ``dataset_formats``, ``client``) re-export them.

- versions and files: :class:`CommitInfo`, :class:`BranchInfo`, :class:`TagInfo`,
  :class:`ObjectInfo`, :class:`DiffEntry`, :class:`DownloadResult`; write operations
  :class:`AddFile` / :class:`DeleteFile`
- identity and sharing: :class:`UserView`, :class:`GroupView`, :class:`TokenView`,
  :class:`CreatedToken`, :class:`FolderView`, :class:`ShareView`, :class:`AuditView`
- assets and datasets: :class:`AssetView`, :class:`DatasetMeta`, :class:`DatasetSummary`,
  :class:`ImportResult`
- jobs: :class:`RunView`, :class:`EvaluationView`, :class:`LineageView` (with
  :class:`~assethub.lineage.Lineage`, whose home is :mod:`assethub.lineage` because it is also the
  commit-metadata format), :class:`FollowView`
- services: :class:`ServiceView`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from assethub.errors import InvalidReferenceError
from assethub.lineage import Lineage
from assethub.refs import AssetPath, FolderPath, validate_object_path

__all__ = [
    "FORMATS",
    "SPLIT_MODES",
    "TASK_TYPES",
    "AddFile",
    "AssetView",
    "AuditView",
    "BranchInfo",
    "CommitInfo",
    "CreatedToken",
    "DatasetMeta",
    "DatasetSummary",
    "DeleteFile",
    "DiffEntry",
    "DownloadResult",
    "EvaluationView",
    "FolderView",
    "FollowView",
    "GitCredentialView",
    "GroupView",
    "ImportResult",
    "Lineage",
    "LineageView",
    "ObjectInfo",
    "Operation",
    "RunView",
    "ServiceView",
    "ShareView",
    "TagInfo",
    "TokenView",
    "UserView",
]

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

# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunView:
    """A job run (train, continue-train, evaluate, merge, retrain) and its results."""

    id: str
    kind: str
    state: str
    model: str
    branch: str
    base_ref: str
    base_commit: str
    dataset_ref: str
    dataset_commit: str
    code_url: str
    code_revision: str
    code_subpath: str
    code_sha: str
    command: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    result_commit: str
    mlflow_run_id: str
    prefect_flow_run_id: str
    error: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    trigger: str = "person"  # what started it: person | schedule | event
    owner: str = ""  # the user the job acts for (its git credentials, its code mirror)


@dataclass(frozen=True, slots=True)
class EvaluationView:
    """How a model version scored on a dataset version."""

    id: str
    model: str
    model_commit: str
    dataset_ref: str
    dataset_commit: str
    metrics: dict[str, Any]
    run_id: str  # the run that produced it ("" when an editor recorded it by hand)
    created_by: str
    created_at: datetime
    #: recorded by a job of the model or an editor of it; merge decisions use only these
    #: (evaluations stored before that rule are not)
    trusted: bool = True

    @property
    def produced_by(self) -> str:
        """Who produced the numbers: ``run <id> (<user>)`` or ``user <name>``."""
        return f"run {self.run_id} ({self.created_by})" if self.run_id else f"user {self.created_by}"


@dataclass(frozen=True, slots=True)
class LineageView:
    """A model version and what produced it: the commit asked about, the commit that holds its
    model files (an evaluation or merge commit points back to it), the job's lineage and the
    evaluations of that model."""

    ref: str
    commit: str
    model_commit: str
    lineage: Lineage | None
    evaluations: tuple[EvaluationView, ...]
    run: RunView | None


@dataclass(frozen=True, slots=True)
class FollowView:
    """A follow: retrain ``model`` when ``dataset``'s main moves, with its settings and triggers."""

    id: int
    model: str
    dataset: str
    settings: dict[str, Any]
    created_by: str
    created_at: datetime
    triggers: dict[str, str]
    #: why the follow no longer retrains ("" while active); its owner resumes it
    paused: str = ""


@dataclass(frozen=True, slots=True)
class GitCredentialView:
    """That a user keeps a Git credential for a host; the credential itself is never sent."""

    host: str
    created_at: datetime
    updated_at: datetime


# -- services -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service as the catalog (and, for a local one, its supervisor) sees it now."""

    name: str
    model: str  # the model reference asked for, e.g. alice/model/digits/cnn:v1
    model_commit: str  # what it resolved to when published: the version served
    target: str  # local | kubernetes
    state: str  # starting | running | stopped | failed
    replicas: int  # how many it runs (or will run again when started)
    ready: int  # replicas answering now
    address: str  # http://host:port, the same across stop and start
    training_run: str  # MLflow run id of the training behind the model
    run_id: str  # Asset Hub run (job) that produced the model
    restarts: int  # replicas restarted after they died
    last_health_at: datetime | None
    last_health_ok: bool
    detail: str  # why it failed, or what to do next
    created_by: str
    created_at: datetime
    updated_at: datetime
