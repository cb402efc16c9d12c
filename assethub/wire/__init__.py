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
- services: :class:`ServiceView` (:class:`ServiceEventView`, :class:`ServiceAlertView`),
  :class:`ServiceStats` (:class:`ReplicaStats`), :class:`ServiceUsageView`
- dataset statistics and sample diffs: :class:`DatasetStats` (with :class:`NumberSummary`,
  :class:`TableStats`, :class:`ColumnStats`), :class:`SampleDiff` (with :class:`SampleChanges`,
  :class:`MovedSample`, :class:`TableRowDiff`)
- datasets: :class:`VersionGraph` (:class:`VersionNode`, :class:`PublishedVersion`),
  :class:`DatasetHead` (:class:`FilePreview`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assethub.lineage import Lineage as Lineage
    from assethub.wire._algorithms import JOB_SETTINGS_FIELDS as JOB_SETTINGS_FIELDS
    from assethub.wire._algorithms import AlgorithmShareView as AlgorithmShareView
    from assethub.wire._algorithms import AlgorithmVersionView as AlgorithmVersionView
    from assethub.wire._algorithms import AlgorithmView as AlgorithmView
    from assethub.wire._algorithms import JobSettingsView as JobSettingsView
    from assethub.wire._assets import FORMATS as FORMATS
    from assethub.wire._assets import SPLIT_MODES as SPLIT_MODES
    from assethub.wire._assets import TASK_TYPES as TASK_TYPES
    from assethub.wire._assets import AssetView as AssetView
    from assethub.wire._assets import DatasetMeta as DatasetMeta
    from assethub.wire._assets import DatasetSummary as DatasetSummary
    from assethub.wire._assets import ImportResult as ImportResult
    from assethub.wire._datasets import PREVIEW_KINDS as PREVIEW_KINDS
    from assethub.wire._datasets import DatasetHead as DatasetHead
    from assethub.wire._datasets import FilePreview as FilePreview
    from assethub.wire._datasets import PublishedVersion as PublishedVersion
    from assethub.wire._datasets import VersionGraph as VersionGraph
    from assethub.wire._datasets import VersionNode as VersionNode
    from assethub.wire._export import ExportJob as ExportJob
    from assethub.wire._identity import AuditView as AuditView
    from assethub.wire._identity import CreatedToken as CreatedToken
    from assethub.wire._identity import FolderView as FolderView
    from assethub.wire._identity import GroupView as GroupView
    from assethub.wire._identity import ShareView as ShareView
    from assethub.wire._identity import TokenView as TokenView
    from assethub.wire._identity import UserView as UserView
    from assethub.wire._jobs import EvaluationView as EvaluationView
    from assethub.wire._jobs import FollowView as FollowView
    from assethub.wire._jobs import GitCredentialView as GitCredentialView
    from assethub.wire._jobs import LineageView as LineageView
    from assethub.wire._jobs import RunView as RunView
    from assethub.wire._services import ReplicaStats as ReplicaStats
    from assethub.wire._services import ServiceAlertView as ServiceAlertView
    from assethub.wire._services import ServiceEventView as ServiceEventView
    from assethub.wire._services import ServiceStats as ServiceStats
    from assethub.wire._services import ServiceUsageView as ServiceUsageView
    from assethub.wire._services import ServiceView as ServiceView
    from assethub.wire._stats import MAX_MOVES as MAX_MOVES
    from assethub.wire._stats import ColumnStats as ColumnStats
    from assethub.wire._stats import DatasetStats as DatasetStats
    from assethub.wire._stats import MovedSample as MovedSample
    from assethub.wire._stats import NumberSummary as NumberSummary
    from assethub.wire._stats import SampleChanges as SampleChanges
    from assethub.wire._stats import SampleDiff as SampleDiff
    from assethub.wire._stats import TableRowDiff as TableRowDiff
    from assethub.wire._stats import TableStats as TableStats
    from assethub.wire._versions import AddFile as AddFile
    from assethub.wire._versions import BranchInfo as BranchInfo
    from assethub.wire._versions import CommitInfo as CommitInfo
    from assethub.wire._versions import DeleteFile as DeleteFile
    from assethub.wire._versions import DiffEntry as DiffEntry
    from assethub.wire._versions import DownloadResult as DownloadResult
    from assethub.wire._versions import ObjectInfo as ObjectInfo
    from assethub.wire._versions import Operation as Operation
    from assethub.wire._versions import PresignedObject as PresignedObject
    from assethub.wire._versions import PresignedPage as PresignedPage
    from assethub.wire._versions import PresignedPut as PresignedPut
    from assethub.wire._versions import TagInfo as TagInfo

__all__ = [
    "FORMATS",
    "JOB_SETTINGS_FIELDS",
    "MAX_MOVES",
    "PREVIEW_KINDS",
    "SPLIT_MODES",
    "TASK_TYPES",
    "AddFile",
    "AlgorithmShareView",
    "AlgorithmVersionView",
    "AlgorithmView",
    "AssetView",
    "AuditView",
    "BranchInfo",
    "ColumnStats",
    "CommitInfo",
    "CreatedToken",
    "DatasetHead",
    "DatasetMeta",
    "DatasetStats",
    "DatasetSummary",
    "DeleteFile",
    "DiffEntry",
    "DownloadResult",
    "EvaluationView",
    "ExportJob",
    "FilePreview",
    "FolderView",
    "FollowView",
    "GitCredentialView",
    "GroupView",
    "ImportResult",
    "JobSettingsView",
    "Lineage",
    "LineageView",
    "MovedSample",
    "NumberSummary",
    "ObjectInfo",
    "Operation",
    "PresignedObject",
    "PresignedPage",
    "PresignedPut",
    "PublishedVersion",
    "ReplicaStats",
    "RunView",
    "SampleChanges",
    "SampleDiff",
    "ServiceAlertView",
    "ServiceEventView",
    "ServiceStats",
    "ServiceUsageView",
    "ServiceView",
    "ShareView",
    "TableRowDiff",
    "TableStats",
    "TagInfo",
    "TokenView",
    "UserView",
    "VersionGraph",
    "VersionNode",
]

# Each section is a module of its own, loaded with the first of its names that is used: making
# the 25 frozen dataclasses took 20 ms, and a command needs one or two sections.
_SECTION = {
    "CommitInfo": "_versions",
    "BranchInfo": "_versions",
    "TagInfo": "_versions",
    "ObjectInfo": "_versions",
    "DiffEntry": "_versions",
    "DownloadResult": "_versions",
    "AddFile": "_versions",
    "DeleteFile": "_versions",
    "Operation": "_versions",
    "PresignedObject": "_versions",
    "PresignedPage": "_versions",
    "PresignedPut": "_versions",
    "UserView": "_identity",
    "GroupView": "_identity",
    "TokenView": "_identity",
    "CreatedToken": "_identity",
    "FolderView": "_identity",
    "ShareView": "_identity",
    "AuditView": "_identity",
    "DatasetMeta": "_assets",
    "AssetView": "_assets",
    "DatasetSummary": "_assets",
    "ImportResult": "_assets",
    "FORMATS": "_assets",
    "TASK_TYPES": "_assets",
    "SPLIT_MODES": "_assets",
    "RunView": "_jobs",
    "EvaluationView": "_jobs",
    "LineageView": "_jobs",
    "FollowView": "_jobs",
    "GitCredentialView": "_jobs",
    "ReplicaStats": "_services",
    "ServiceAlertView": "_services",
    "ServiceEventView": "_services",
    "ServiceStats": "_services",
    "ServiceUsageView": "_services",
    "ServiceView": "_services",
    "JobSettingsView": "_algorithms",
    "AlgorithmView": "_algorithms",
    "AlgorithmVersionView": "_algorithms",
    "AlgorithmShareView": "_algorithms",
    "JOB_SETTINGS_FIELDS": "_algorithms",
    "ColumnStats": "_stats",
    "DatasetStats": "_stats",
    "MovedSample": "_stats",
    "NumberSummary": "_stats",
    "SampleChanges": "_stats",
    "SampleDiff": "_stats",
    "TableRowDiff": "_stats",
    "TableStats": "_stats",
    "MAX_MOVES": "_stats",
    "VersionGraph": "_datasets",
    "VersionNode": "_datasets",
    "PublishedVersion": "_datasets",
    "DatasetHead": "_datasets",
    "FilePreview": "_datasets",
    "PREVIEW_KINDS": "_datasets",
    "ExportJob": "_export",
}


def __getattr__(name: str) -> Any:
    if name == "Lineage":
        from assethub.lineage import Lineage

        return Lineage
    section = _SECTION.get(name)
    if section is None:
        raise AttributeError(f"module 'assethub.wire' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"assethub.wire.{section}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
