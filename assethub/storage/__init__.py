"""Versioned asset storage on lakeFS: the only code that talks to lakeFS.

One lakeFS repository per asset, found through a *locator* (asset path -> repository id) at
every call: the hub's reads the catalog, which owns that mapping; without one, the name is
derived from the path and checked against the repository's metadata. Every write goes
through :meth:`Storage.transact`: a temporary branch that is committed and squash-merged into
its target only when complete, and deleted otherwise, so a failed or killed upload leaves every
version as it was; ``main`` is protected against direct writes. Reads resolve a ref to its
commit first and then use the content-addressed cache.

The package: ``_lakefs`` (the one connection: clients, pager, error translation),
``_transact`` (atomic writes), ``_policy`` (what datasets and models allow), and here
:class:`Storage`, which puts them together by asset.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import lakefs_sdk
import urllib3
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from assethub import _repo_names, config
from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AssetNotFoundError,
    ChecksumMismatchError,
    InvalidReferenceError,
    NotAllowedError,
    NothingToCommitError,
    ObjectNotFoundError,
    PayloadTooLargeError,
    RangeNotSatisfiableError,
    RefNotFoundError,
    StorageUnavailableError,
    TransferError,
)
from assethub.refs import (
    DEFAULT_BRANCH,
    AssetPath,
    AssetRef,
    validate_object_path,
    validate_tag_name,
)
from assethub.storage import _policy
from assethub.storage._lakefs import (
    PAGE,
    LakeFS,
    Retry,
    commit_from_json,
    raise_for_status,
    sha256_of,
    timestamp,
)
from assethub.storage._policy import user_path
from assethub.storage._presign import PresignedListing, Presigning, UploadLink
from assethub.storage._transact import (
    TX_PREFIX,
    Strategy,
    Transaction,
    Transactions,
    TransactionWriter,
)
from assethub.storage.gateway import (
    BlobCache,
    RemoteObject,
    copy_local_blockstore,
    place_all,
    run_parallel,
)
from assethub.wire import (  # the values on the wire; defined there, re-exported here
    AddFile,
    BranchInfo,
    CommitInfo,
    DeleteFile,
    DiffEntry,
    DownloadResult,
    ObjectInfo,
    Operation,
    TagInfo,
)

__all__ = [
    "ACTIONS_PREFIX",
    "META_KIND",
    "META_PATH",
    "PAGE",
    "TX_PREFIX",
    "AddFile",
    "AssetInfo",
    "BranchInfo",
    "CommitInfo",
    "DeleteFile",
    "DiffEntry",
    "DownloadResult",
    "Listing",
    "Locator",
    "ObjectInfo",
    "PresignedListing",
    "Storage",
    "Strategy",
    "StreamedObject",
    "TagInfo",
    "Transaction",
    "TransactionWriter",
    "UploadLink",
    "user_path",
]

META_PATH = "assethub.path"
META_KIND = "assethub.kind"

Locator = Callable[[AssetPath], str]
"""Finds the lakeFS repository id of an asset path, or raises AssetNotFoundError."""


# -- values returned to callers -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AssetInfo:
    path: AssetPath
    repository: str
    created: datetime


@dataclass(frozen=True, slots=True)
class StreamedObject:
    """A file being read from lakeFS: HTTP status (200, or 206 for a range) and its bytes."""

    status: int
    length: int
    content_range: str | None
    etag: str | None
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] | None = None  # for a stream left unread


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of one directory level of a version: its sub-directories (``a/b/``) and files,
    in path order; ``next_after`` continues the listing (None: this was the last page)."""

    prefix: str
    dirs: tuple[str, ...]
    files: tuple[ObjectInfo, ...]
    next_after: str | None


#: a file (or range) up to this size is read from lakeFS whole before it is answered: one
#: ASGI message instead of a stream, and a broken read is an error, not a short answer
SMALL_READ = 256 * 1024

ACTIONS_PREFIX = _policy.ACTIONS_PREFIX  # reserved: only install_action() writes there


class _Gone(Exception):
    """A repository listed a moment ago has been deleted since."""


_BYTE_RANGE = re.compile(r"bytes=(\d+)-(\d*)|bytes=-(\d+)")


def _span(byte_range: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte of a single HTTP byte range of a file of ``size`` bytes; None
    when the range is not one this reads itself (lakeFS answers it, with its errors)."""
    if byte_range is None:
        return (0, size - 1)
    m = _BYTE_RANGE.fullmatch(byte_range.strip())
    if m is None:
        return None
    if m.group(3) is not None:  # the last N bytes
        n = int(m.group(3))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else None
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start <= end else None


def _open_local(obj: RemoteObject, byte_range: str | None = None) -> StreamedObject | None:
    """A file of a local blockstore (or a single byte range of it) as a stream, when this
    process can read it at its size."""
    span = _span(byte_range, obj.size)
    if span is None:
        return None
    try:
        f = open(obj.physical.removeprefix("local://"), "rb")  # noqa: SIM115 (closed by the stream)
    except OSError:
        return None
    if os.fstat(f.fileno()).st_size != obj.size:
        f.close()
        return None
    start, end = span
    left = max(0, end - start + 1)
    if start:
        f.seek(start)

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal left
        with f:
            while left > 0 and (chunk := f.read(min(left, 1 << 20))):
                left -= len(chunk)
                yield chunk

    async def close() -> None:
        f.close()

    etag = f'"{obj.checksum}"' if obj.checksum else None
    if byte_range is None:
        return StreamedObject(200, obj.size, None, etag, chunks(), close)
    return StreamedObject(206, end - start + 1, f"bytes {start}-{end}/{obj.size}", etag,
                          chunks(), close)


async def _ready(obj: StreamedObject) -> StreamedObject:
    return obj


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


class Storage(Transactions, Presigning):
    """Assets on one lakeFS server.

    The constructor only stores connection settings; nothing is contacted until a method is
    called. Methods take their subject first (an asset path or reference, as an object or a
    string) and keyword-only options after it.

    ``locate`` maps an asset path to its repository id; every method asks it once, when it
    is called (nothing is remembered between calls). The hub passes one that reads the catalog;
    the default derives the name from the path (:meth:`derived_repository`).
    """

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        cache_dir: Path | str | None = None,
        namespace_root: str = "local://assethub",
        max_workers: int = 16,
        progress: bool = False,
        direct_local: bool = True,
        locate: Locator | None = None,
    ) -> None:
        self.lakefs = LakeFS(endpoint, access_key_id, secret_access_key, max_workers=max_workers)
        self.endpoint = self.lakefs.endpoint
        self.cache = BlobCache(Path(cache_dir) if cache_dir else config.home() / "cache")
        self.namespace_root = namespace_root.rstrip("/")
        self.max_workers = max_workers
        self.progress = progress
        # read a local blockstore's files directly when this process can (embedded stack)
        self.direct_local = direct_local
        self._stats: dict[tuple[str, str, str], RemoteObject] = {}  # (repo, commit, path)
        self.locate: Locator = locate or self.derived_repository

    @classmethod
    def from_env(cls, **options: Any) -> Storage:
        """Connect with ``ASSETHUB_LAKEFS_ENDPOINT`` / ``_ACCESS_KEY_ID`` / ``_SECRET_ACCESS_KEY``."""
        try:
            return cls(
                os.environ["ASSETHUB_LAKEFS_ENDPOINT"],
                os.environ["ASSETHUB_LAKEFS_ACCESS_KEY_ID"],
                os.environ["ASSETHUB_LAKEFS_SECRET_ACCESS_KEY"],
                **options,
            )
        except KeyError as missing:
            raise StorageUnavailableError(
                f"{missing.args[0]} is not set: start the stack (make lakefs) and export its "
                "settings, or pass them to Storage(...)"
            ) from None

    def _progress(self, description: str, total: int) -> Any:
        if not self.progress or total == 0:
            return nullcontext(None)
        bar = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
        )
        bar.add_task(description, total=total)
        return bar

    # -- assets ----------------------------------------------------------------------------
    def repository(self, asset: AssetPath | str) -> str:
        """The lakeFS repository that holds ``asset`` now (raises AssetNotFoundError)."""
        return self.locate(AssetPath.coerce(asset))

    def derived_repository(self, path: AssetPath) -> str:
        """The default locator, for Storage used on its own (no catalog).

        The repository named after the path (:func:`assethub._repo_names.repository_name`) if
        its metadata names the path; otherwise one whose metadata names it (an asset renamed
        with :meth:`rename_asset`: this reads every repository's metadata, so only a miss pays).
        """
        name = _repo_names.repository_name(path)
        if self._repo_exists(name) and self._holds(name, path):
            return name
        claims = [a for a in self.list_assets() if a.path == path]
        if not claims:
            raise AssetNotFoundError(str(path))
        return max(claims, key=lambda a: a.created).repository  # newest, if a stale one remains

    def _holds(self, name: str, path: AssetPath) -> bool:
        """Whether repository ``name``'s metadata says it holds ``path``."""
        with self.lakefs.translate(asset=path, on={404: lambda *_: AssetNotFoundError(str(path))}):
            meta = self.lakefs.api.repositories_api.get_repository_metadata(name)
        return bool(meta.get(META_PATH) == str(path))

    def rename_asset(self, asset: AssetPath | str, new: AssetPath | str) -> None:
        """Record a new path for an asset in its repository's metadata; the repository (and so
        its history) stays. A catalog that locates assets changes its own record too."""
        old_path, new_path = AssetPath.coerce(asset), AssetPath.coerce(new)
        if old_path.kind != new_path.kind:
            raise NotAllowedError(f"cannot turn {old_path.kind.value} {old_path} into a "
                                  f"{new_path.kind.value}")
        name = self.repository(old_path)
        with self.lakefs.translate(asset=old_path, what="rename asset"):
            self.lakefs.api.internal_api.set_repository_metadata(
                name, lakefs_sdk.RepositoryMetadataSet(metadata={META_PATH: str(new_path)})
            )

    def create_asset(self, asset: AssetPath | str, *, exist_ok: bool = False,
                     repository: str | None = None) -> AssetInfo:
        """Create an empty asset with a protected ``main`` branch.

        ``repository`` names its lakeFS repository when a catalog keeps the mapping;
        otherwise the name is derived from the path. With ``exist_ok``, a repository of that
        name that already holds this asset is returned.
        """
        path = AssetPath.coerce(asset)
        name = repository or _repo_names.repository_name(path)
        namespace = f"{self.namespace_root}/{name}-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.lakefs.translate(asset=path, what="create asset",
                                           on={409: lambda *_: Retry()}):
                    repo = self.lakefs.api.repositories_api.create_repository(
                        lakefs_sdk.RepositoryCreation(
                            name=name, storage_namespace=namespace, default_branch=DEFAULT_BRANCH
                        )
                    )
                break
            except Retry:  # the name is taken
                if self._repo_exists(name):
                    if exist_ok and self._holds(name, path):
                        return self._asset_info(path, name)
                    raise AlreadyExistsError("asset", str(path)) from None
                # lakeFS is still removing a repository of this name that was just deleted
                if time.monotonic() > deadline:
                    raise AlreadyExistsError(
                        "asset", str(path), "a deleted asset of that name is still being removed"
                    ) from None
                time.sleep(0.2)
        with self.lakefs.translate(asset=path, what="create asset"):
            self.lakefs.api.internal_api.set_repository_metadata(
                name,
                lakefs_sdk.RepositoryMetadataSet(
                    metadata={META_PATH: str(path), META_KIND: path.kind.value}
                ),
            )
            self.lakefs.api.repositories_api.set_branch_protection_rules(
                name, [lakefs_sdk.BranchProtectionRule(pattern=DEFAULT_BRANCH)]
            )
        return AssetInfo(path, name, timestamp(repo.creation_date))

    def _repo_exists(self, name: str) -> bool:
        # Listing reads lakeFS's store directly; get_repository may answer from a cache for a
        # few seconds after a repository is deleted.
        with self.lakefs.translate(what="list assets"):
            page = self.lakefs.api.repositories_api.list_repositories(prefix=name, amount=1)
        return bool(page.results) and page.results[0].id == name

    def asset_info(self, asset: AssetPath | str) -> AssetInfo:
        path = AssetPath.coerce(asset)
        return self._asset_info(path, self.repository(path))

    def _asset_info(self, path: AssetPath, name: str) -> AssetInfo:
        with self.lakefs.translate(asset=path):
            repo = self.lakefs.api.repositories_api.get_repository(name)
        return AssetInfo(path, name, timestamp(repo.creation_date))

    def asset_exists(self, asset: AssetPath | str) -> bool:
        try:
            self.repository(asset)
        except AssetNotFoundError:
            return False
        return True

    def list_assets(self) -> Iterator[AssetInfo]:
        """Every asset on this lakeFS (repositories Asset Hub did not create are skipped)."""
        for repo in self.lakefs.pages(self.lakefs.api.repositories_api.list_repositories,
                                      prefix=_repo_names.PREFIX, what="list assets"):
            try:
                with self.lakefs.translate(what="list assets", on={404: lambda *_: _Gone()}):
                    meta = self.lakefs.api.repositories_api.get_repository_metadata(repo.id)
            except _Gone:  # deleted since it was listed
                continue
            if META_PATH in meta:
                yield AssetInfo(AssetPath.parse(meta[META_PATH]), repo.id,
                                timestamp(repo.creation_date))

    def delete_asset(self, asset: AssetPath | str, *, repository: str | None = None) -> None:
        """Delete an asset's repository; ``repository`` names it when the caller already holds
        its id (undoing a create whose catalog record was never written)."""
        path = AssetPath.coerce(asset)
        name = repository or self.repository(path)
        with self.lakefs.translate(asset=path, what="delete asset"):
            self.lakefs.api.repositories_api.delete_repository(name, force=True)

    # -- refs and history ------------------------------------------------------------------
    def _log(self, repo: str, r: AssetRef, *, amount: int, prefixes: list[str] | None = None,
             limit: bool = False, after: str = "") -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"amount": amount, "start": after}
        if limit:
            params["limit"] = "true"
        if prefixes:
            params["prefixes"] = prefixes
        return self.lakefs.pages(self.lakefs.json_page,
                                 f"/repositories/{repo}/refs/{quote(r.ref, safe='')}/commits",
                                 asset=r.path, ref=str(r), what="ref", **params)

    def resolve(self, ref: AssetRef | str) -> str:
        """The commit id a reference points at now."""
        return self.get_commit(ref).id

    def get_commit(self, ref: AssetRef | str) -> CommitInfo:
        r = AssetRef.coerce(ref)
        return self._get_commit(self.repository(r.path), r)

    def _get_commit(self, repo: str, r: AssetRef) -> CommitInfo:
        first = next(self._log(repo, r, amount=1, limit=True), None)
        if first is None:
            raise RefNotFoundError(str(r), "it has no commits")
        return commit_from_json(first)

    def log(self, ref: AssetRef | str, *, limit: int | None = None,
            path: str | None = None, after: str = "") -> Iterator[CommitInfo]:
        """Commits reachable from ``ref``, newest first (only those touching ``path`` if given;
        only those after the commit ``after`` in that order, to page on)."""
        r = AssetRef.coerce(ref)
        if path:
            _policy.user_path(path, "show the history of")
        pages = self._log(self.repository(r.path), r, amount=min(PAGE, limit or PAGE),
                          prefixes=[path] if path else None, after=after)
        yield from (commit_from_json(c) for c in itertools.islice(pages, limit))

    def diff(self, left: AssetRef | str, right: AssetRef | str, *,
             prefix: str = "") -> list[DiffEntry]:
        """What changes from ``left`` to ``right`` (both of one asset), like ``git diff L R``."""
        lr, rr = AssetRef.coerce(left), AssetRef.coerce(right)
        if lr.path != rr.path:
            raise InvalidReferenceError(
                f"diff needs two versions of one asset, got {lr.path} and {rr.path}",
                part="ref", value=str(rr),
            )
        if prefix:
            _policy.user_path(prefix, "diff")
        repo = self.repository(lr.path)
        # each names itself if unknown
        left_id, right_id = self._get_commit(repo, lr).id, self._get_commit(repo, rr).id
        params: dict[str, Any] = {"type": "two_dot"}
        if prefix:
            params["prefix"] = prefix
        return [
            DiffEntry(d["path"], d["type"], d.get("size_bytes"))
            for d in self.lakefs.pages(self.lakefs.json_page,
                                       f"/repositories/{repo}/refs/{left_id}/diff/{right_id}",
                                       asset=lr.path, ref=str(rr), what="diff", **params)
            if not _policy.is_reserved(str(d["path"]))  # lakeFS actions are not content
        ]

    def list_branches(self, asset: AssetPath | str) -> list[BranchInfo]:
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        return [
            BranchInfo(b.id, b.commit_id)
            for b in self.lakefs.pages(self.lakefs.api.branches_api.list_branches, repo,
                                       asset=path)
            if not b.id.startswith(TX_PREFIX)
        ]

    def create_branch(self, asset: AssetPath | str, name: str, *,
                      source: str = DEFAULT_BRANCH) -> BranchInfo:
        """Create branch ``name`` at ``source`` (a branch, tag or commit). Models only."""
        path = AssetPath.coerce(asset)
        _policy.may_create_branch(path, name)
        repo = self.repository(path)
        with self.lakefs.translate(asset=path, ref=name, what="branch"):
            commit = self.lakefs.call("POST", f"/repositories/{quote(repo)}/branches",
                                      {"name": name, "source": source})
        return BranchInfo(name, commit.decode().strip())  # lakeFS answers the commit id as text

    def delete_branch(self, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        _policy.may_delete_branch(path, name)
        repo = self.repository(path)
        with self.lakefs.translate(asset=path, ref=name, what="branch"):
            self.lakefs.api.branches_api.delete_branch(repo, name)

    def list_tags(self, asset: AssetPath | str) -> list[TagInfo]:
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        return [
            TagInfo(t.id, t.commit_id)
            for t in self.lakefs.pages(self.lakefs.api.tags_api.list_tags, repo, asset=path)
        ]

    def create_tag(self, asset: AssetPath | str, name: str, *,
                   ref: str = DEFAULT_BRANCH) -> TagInfo:
        """Tag the commit ``ref`` points at now. Tags never move: an existing name is an error."""
        path = AssetPath.coerce(asset)
        validate_tag_name(name)
        repo = self.repository(path)
        commit = self._get_commit(repo, path.at(ref)).id

        def taken(status: int, msg: str) -> BaseException:
            return AlreadyExistsError("tag", name, f"tags of {path} are immutable; choose a new name")

        with self.lakefs.translate(asset=path, ref=name, what="tag", on={409: taken}):
            self.lakefs.api.tags_api.create_tag(repo, lakefs_sdk.TagCreation(id=name, ref=commit))
        return TagInfo(name, commit)

    def delete_tag(self, asset: AssetPath | str, name: str) -> None:
        """Delete a model's tag; a dataset's tags are published versions and stay."""
        path = AssetPath.coerce(asset)
        validate_tag_name(name)
        _policy.may_delete_tag(path, name)
        repo = self.repository(path)
        with self.lakefs.translate(asset=path, ref=name, what="tag"):
            self.lakefs.api.tags_api.delete_tag(repo, name)

    # -- reading files -----------------------------------------------------------------------
    def _objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"user_metadata": "true"}
        if prefix:
            params["prefix"] = prefix
        pages = self.lakefs.pages(self.lakefs.json_page,
                                  f"/repositories/{repo}/refs/{quote(ref, safe='')}/objects/ls",
                                  ref=ref, **params)
        # lakeFS actions (the hook of followed datasets) are configuration, not content
        return (o for o in pages if not _policy.is_reserved(str(o.get("path", ""))))

    def _listing(self, repo: str, commit: str) -> list[RemoteObject]:
        cached = self.cache.load_listing(repo, commit)
        if cached is not None:
            return cached
        objects = [
            RemoteObject(o["path"], int(o.get("size_bytes") or 0), o["checksum"],
                         sha256_of(o.get("metadata")), o.get("physical_address", ""))
            for o in self._objects(repo, commit)
        ]
        self.cache.save_listing(repo, commit, objects)  # a commit never changes
        return objects

    def list_objects(self, ref: AssetRef | str, *, prefix: str = "",
                     limit: int | None = None) -> list[ObjectInfo]:
        """Files in a version (recursively under ``prefix``); the first ``limit`` only when
        given (the listing's pages after those are not fetched)."""
        r = AssetRef.coerce(ref)
        if prefix:
            _policy.user_path(prefix, "list")
        repo = self.repository(r.path)
        return [
            ObjectInfo(o["path"], int(o.get("size_bytes") or 0), o["checksum"],
                       sha256_of(o.get("metadata")), timestamp(o["mtime"]), o.get("content_type"))
            for o in itertools.islice(self._objects(repo, r.ref, prefix), limit)
        ]

    def list_directory(self, ref: AssetRef | str, *, prefix: str = "", after: str = "",
                       limit: int = 200) -> Listing:
        """One page of the entries directly under ``prefix`` (``""`` or ending in ``/``):
        one lakeFS call, whatever the size of the version (for browsing)."""
        r = AssetRef.coerce(ref)
        if prefix:
            _policy.user_path(validate_object_path(prefix.rstrip("/")), "list")
            prefix = prefix.rstrip("/") + "/"
        if not 1 <= limit <= PAGE:
            raise InvalidReferenceError(f"a page holds 1 to {PAGE} entries", part="limit",
                                        value=str(limit))
        repo = self.repository(r.path)
        params: dict[str, Any] = {"delimiter": "/", "amount": limit, "after": after,
                                  "user_metadata": "true"}
        if prefix:
            params["prefix"] = prefix
        with self.lakefs.translate(asset=r.path, ref=str(r), what="ref"):
            page = self.lakefs.json_page(
                f"/repositories/{repo}/refs/{quote(r.ref, safe='')}/objects/ls", **params)
        dirs: list[str] = []
        files: list[ObjectInfo] = []
        for o in page.results:
            path = str(o.get("path", ""))
            if _policy.is_reserved(path):  # lakeFS actions are configuration, not content
                continue
            if o.get("path_type") == "common_prefix":
                dirs.append(path)
            else:
                files.append(ObjectInfo(path, int(o.get("size_bytes") or 0), o["checksum"],
                                        sha256_of(o.get("metadata")), timestamp(o["mtime"]),
                                        o.get("content_type")))
        more = page.pagination.next_offset if page.pagination.has_more else None
        return Listing(prefix, tuple(dirs), tuple(files), more or None)

    def stat(self, ref: AssetRef | str, path: str) -> ObjectInfo:
        r = AssetRef.coerce(ref)
        _policy.user_path(validate_object_path(path), "read")
        repo = self.repository(r.path)
        with self.lakefs.translate(asset=r.path, ref=str(r), what=f"object:{path}"):
            o = self.lakefs.api.objects_api.stat_object(repo, r.ref, path, user_metadata=True)
        return ObjectInfo(o.path, int(o.size_bytes or 0), o.checksum, sha256_of(o.metadata),
                          timestamp(o.mtime), o.content_type)

    def read_bytes(self, ref: AssetRef | str, path: str) -> bytes:
        r = AssetRef.coerce(ref)
        _policy.user_path(validate_object_path(path), "read")
        repo = self.repository(r.path)
        with self.lakefs.translate(asset=r.path, ref=str(r), what=f"object:{path}"):
            return bytes(self.lakefs.api.objects_api.get_object(repo, r.ref, path))

    def download(self, ref: AssetRef | str, dest: Path | str, *,
                 prefix: str = "") -> DownloadResult:
        """Download a version (or the files under ``prefix``) into ``dest``.

        Files land at their path relative to ``prefix``. Content already in the local cache is
        not transferred again; files already at ``dest`` from an earlier download are kept.
        """
        r = AssetRef.coerce(ref)
        if prefix:
            _policy.user_path(prefix, "download")
        repo = self.repository(r.path)
        commit = self._get_commit(repo, r).id
        dest = Path(dest)
        base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        wanted = [o for o in self._listing(repo, commit)
                  if not prefix or o.path == prefix or o.path.startswith(base)]
        if prefix and not wanted:
            raise ObjectNotFoundError(str(r), prefix)
        plan: list[tuple[RemoteObject, Path]] = []
        for o in wanted:
            # a single file asked for by its path lands under its own name
            rel = o.path.rsplit("/", 1)[-1] if o.path == prefix else o.path[len(base):]
            validate_object_path(rel)  # refuse '..' and absolute paths coming from the server
            plan.append((o, dest / rel))
        missing = {o.cache_key: o for o, _ in plan if not self.cache.has(o)}
        total = sum(o.size for o in missing.values())
        gateway = self.lakefs.gateway if missing else None
        with self._progress(f"download {r}", total) as bar:
            advance = (lambda n: bar.advance(bar.task_ids[0], n)) if bar else None

            def fetch(o: RemoteObject) -> None:
                assert gateway is not None
                tmp = self.cache.temp_file()
                try:
                    if not (self.direct_local and copy_local_blockstore(o, tmp, advance)):
                        gateway.get_to_file(repo, f"{commit}/{o.path}", o, tmp, advance)
                    self.cache.commit_blob(tmp, o)
                finally:
                    tmp.unlink(missing_ok=True)

            with self.lakefs.translate(asset=r.path, ref=str(r), what="download"):
                run_parallel((partial(fetch, o) for o in missing.values()), self.max_workers)
        place_all((self.cache.blob_path(o), target) for o, target in plan)
        return DownloadResult(commit, len(plan), sum(o.size for o, _ in plan), total)

    # -- writing -----------------------------------------------------------------------------
    def commit(
        self,
        ref: AssetRef | str,
        operations: Sequence[Operation],
        *,
        message: str,
        metadata: Mapping[str, str] | None = None,
        parent_commit: str | None = None,
    ) -> CommitInfo:
        """Apply ``operations`` to branch ``ref`` as one new commit, atomically.

        The files are written to a temporary branch, committed there and squash-merged into
        the target only when all of them arrived; any failure deletes the temporary branch and
        leaves the target as it was. With ``parent_commit`` the commit is refused if the
        branch has moved past it (optimistic concurrency).
        """
        r = AssetRef.coerce(ref)
        _policy.writable_branch(r)
        if not message.strip():
            raise InvalidReferenceError("a commit needs a message", part="message", value=message)
        adds: dict[str, Path] = {}
        deletes: list[str] = []
        for op in operations:
            if isinstance(op, AddFile):
                local = Path(op.local)
                if not local.is_file():
                    raise FileNotFoundError(f"not a file: {local}")
                adds[_policy.user_path(validate_object_path(op.path), "write")] = local
            elif isinstance(op, DeleteFile):
                deletes.append(_policy.user_path(validate_object_path(op.path), "delete"))
            else:  # pragma: no cover - type checkers catch this
                raise TypeError(f"unknown operation {op!r}")
        if not adds and not deletes:
            raise NothingToCommitError(str(r))
        with self.transact(r, message=message, metadata=metadata,
                           parent_commit=parent_commit) as tx:
            tx.upload(adds)
            tx.delete(deletes)
        assert tx.result is not None  # set when the block ends without an error
        return tx.result

    # -- streaming (for the server: bodies pass through without touching its disk) -----------
    def put_bytes(self, txn: Transaction, path: str, data: bytes, *, sha256: str) -> ObjectInfo:
        """A small file held in memory into a transaction (a bundled file of an upload), after
        checking it against the SHA-256 its sender declared, which lakeFS keeps as user
        metadata: one lakeFS API upload on the SDK's raw urllib3 pool, from a worker thread
        (0.6 ms of this process's CPU per file against 0.9 ms for a SigV4-signed PUT through
        the S3 gateway: ``bench/proxied_put.py``). Verified against lakeFS's checksum (the MD5)."""
        _policy.user_path(validate_object_path(path), "upload")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{path} arrived corrupted: sha256 {actual}, expected {sha256}", path=path)

        def refused(status: int, msg: str) -> BaseException:
            return TransferError(f"lakeFS refused {path}: HTTP {status} {msg[:200]}", path=path)

        api = self.lakefs.api._api  # the SDK's ApiClient: its auth and pool, no model objects
        url = (f"{self.lakefs.endpoint}/api/v1/repositories/{quote(txn.repo)}/branches/"
               f"{quote(txn.branch)}/objects?path={quote(path, safe='')}")
        with self.lakefs.translate(ref=txn.ref, what="upload", otherwise=refused):
            resp = api.rest_client.request("POST", url, body=data, _request_timeout=60, headers={
                "Accept": "application/json", "Content-Type": "application/octet-stream",
                "Authorization": api.configuration.get_basic_auth_token(),
                "X-Lakefs-Meta-Sha256": sha256})
        o = json.loads(resp.data)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if o.get("checksum") != md5 or int(o.get("size_bytes", -1)) != len(data):
            raise TransferError(f"upload of {path} was corrupted in transit (md5 {md5}, lakeFS "
                                f"has {o.get('checksum')}, {o.get('size_bytes')} bytes)", path=path)
        return ObjectInfo(path, len(data), md5, sha256, timestamp(int(o.get("mtime") or 0)),
                          o.get("content_type"))

    async def put_stream(self, txn: Transaction, path: str, body: AsyncIterator[bytes], *,
                         sha256: str | None = None, max_bytes: int | None = None) -> ObjectInfo:
        """Stream one file into a transaction; checked against ``sha256`` when given."""
        _policy.user_path(validate_object_path(path), "upload")
        digest = hashlib.sha256()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in body:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLargeError(
                        f"{path} is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                yield chunk

        headers = {"Content-Type": "application/octet-stream"}
        if sha256:
            headers["X-Lakefs-Meta-Sha256"] = sha256
        url = f"/repositories/{txn.repo}/branches/{txn.branch}/objects"
        def refused(status: int, msg: str) -> BaseException:
            return TransferError(f"lakeFS refused {path}: HTTP {status} {msg[:200]}", path=path)

        client = self.lakefs.async_http
        with self.lakefs.translate(ref=txn.ref, what="upload", otherwise=refused):
            resp = await client.post(url, params={"path": path}, content=counted(),
                                     headers=headers)
            raise_for_status(resp)
            actual = digest.hexdigest()
            if sha256 and actual != sha256.lower():
                await client.delete(url, params={"path": path})
                raise ChecksumMismatchError(
                    f"{path} arrived corrupted: sha256 {actual}, expected {sha256}", path=path)
            if not sha256:
                await client.put(
                    f"/repositories/{txn.repo}/branches/{txn.branch}/objects/stat/user_metadata",
                    params={"path": path}, json={"set": {"sha256": actual}})
        o = resp.json()
        return ObjectInfo(path, size, o.get("checksum", ""), actual, timestamp(o.get("mtime", 0)),
                          o.get("content_type"))

    async def get_stream(self, ref: AssetRef | str, path: str, *,
                         byte_range: str | None = None) -> StreamedObject:
        """One file (or an HTTP byte range of it) as a stream of bytes: one call to lakeFS."""
        r = AssetRef.coerce(ref)
        _policy.user_path(validate_object_path(path), "read")
        repo = self.repository(r.path)
        if self.direct_local and r.looks_like_commit:
            found = await self._local_object(repo, r, path)
            opened = _open_local(found, byte_range) if found is not None else None
            if opened is not None:
                return opened
        return await self._get_stream(repo, r, path, byte_range)

    async def _local_object(self, repo: str, r: AssetRef, path: str) -> RemoteObject | None:
        """A commit's file in a local blockstore (its stat, remembered: a commit never changes),
        or None when it is elsewhere or not found (the lakeFS read then answers)."""
        key = (repo, r.ref, path)
        found = self._stats.get(key)
        if found is None:
            client = self.lakefs.async_http
            with self.lakefs.translate(asset=r.path, ref=str(r), what=f"object:{path}"):
                resp = await client.get(f"/repositories/{repo}/refs/{r.ref}/objects/stat",
                                        params={"path": path})
            if resp.status_code != 200:
                return None  # not found, refused...: the read through lakeFS says why
            o = resp.json()
            found = RemoteObject(path, int(o.get("size_bytes") or 0), o.get("checksum", ""),
                                 None, o.get("physical_address", ""))
            if len(self._stats) >= 4096:
                self._stats.pop(next(iter(self._stats)))
            self._stats[key] = found
        return found if found.physical.startswith("local:///") else None

    async def get_streams(self, ref: AssetRef | str, paths: Sequence[str], *,
                          ahead: int = 6) -> AsyncGenerator[tuple[str, StreamedObject | AssetHubError], None]:
        """Many files of one version, in order: each file's stream, or the error reading it.

        The repository is looked up once, and up to ``ahead`` files are requested from lakeFS
        while the caller reads the current one (one at a time, a bundle of a thousand small
        files waited a thousand round trips). Leaving early closes what was opened ahead.
        """
        r = AssetRef.coerce(ref)
        for p in paths:
            _policy.user_path(validate_object_path(p), "read")
        repo = self.repository(r.path)
        # On the machine that holds a local blockstore, a commit's files are read from it (as
        # download() does): its listing, cached per commit, names each file's immutable copy.
        local: dict[str, RemoteObject] = {}
        if self.direct_local and r.looks_like_commit and len(paths) > 1:
            with suppress(AssetHubError):
                listing = await asyncio.to_thread(self._listing, repo, r.ref)
                local = {o.path: o for o in listing if o.physical.startswith("local:///")}
        pending: collections.deque[tuple[str, asyncio.Task[StreamedObject]]] = collections.deque()
        todo = iter(paths)

        def fill() -> None:
            while len(pending) < max(1, ahead):
                p = next(todo, None)
                if p is None:
                    return
                found = local.get(p)
                opened = _open_local(found) if found is not None else None
                get = _ready(opened) if opened is not None else self._get_stream(repo, r, p, None)
                pending.append((p, asyncio.ensure_future(get)))

        try:
            fill()
            while pending:
                p, task = pending.popleft()
                try:
                    obj: StreamedObject | AssetHubError = await task
                except AssetHubError as e:
                    obj = e
                fill()
                yield p, obj
        finally:
            for _, task in pending:
                task.cancel()
            for _, task in pending:
                with suppress(BaseException):
                    obj = await task
                    if obj.close is not None:
                        await obj.close()

    async def _get_stream(self, repo: str, r: AssetRef, path: str,
                          byte_range: str | None) -> StreamedObject:
        lake = self.lakefs
        url = f"/repositories/{quote(repo)}/refs/{quote(r.ref, safe='')}/objects?{urlencode({'path': path})}"

        def outside(status: int, msg: str) -> BaseException:
            return RangeNotSatisfiableError(f"byte range {byte_range!r} is outside {path}")

        def refused(status: int, msg: str) -> BaseException:
            return TransferError(f"lakeFS refused {path}: HTTP {status}", path=path)

        def opened() -> tuple[urllib3.BaseHTTPResponse, bytes | None]:
            resp = lake.open_raw(url, {"Range": byte_range} if byte_range else None)
            length = int(resp.headers.get("content-length", -1))
            if not 0 <= length <= SMALL_READ:
                return resp, None
            try:  # read whole here: a broken read is lakeFS's 503, not a short answer
                body = resp.read()
            finally:
                if resp.length_remaining == 0:
                    resp.release_conn()
                else:
                    resp.close()
            if len(body) != length:
                raise StorageUnavailableError(
                    f"lakeFS sent {len(body)} of the {length} bytes of {path}")
            return resp, body

        with lake.translate(
                asset=r.path, ref=str(r), what=f"object:{path}", otherwise=refused,
                on={404: lambda *_: ObjectNotFoundError(str(r), path), 416: outside}):
            resp, body = await lake.in_reader(opened)
        headers = resp.headers
        if body is not None:
            return StreamedObject(resp.status, len(body), headers.get("content-range"),
                                  headers.get("etag"), _once(body))

        def close() -> None:
            if resp.length_remaining == 0:
                resp.release_conn()  # read to its end: the connection goes back to the pool
            else:
                resp.close()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await lake.in_reader(resp.read, 1 << 20):
                    yield chunk
            finally:
                await lake.in_reader(close)

        async def aclose() -> None:
            await lake.in_reader(close)

        return StreamedObject(resp.status, int(headers.get("content-length", 0)),
                              headers.get("content-range"), headers.get("etag"), chunks(), aclose)

    def upload(
        self,
        ref: AssetRef | str,
        local: Path | str,
        *,
        path: str = "",
        message: str,
        metadata: Mapping[str, str] | None = None,
        parent_commit: str | None = None,
    ) -> CommitInfo:
        """Upload a file or a directory tree to ``path`` on branch ``ref`` as one commit."""
        local = Path(local)
        if not local.exists():
            raise FileNotFoundError(f"nothing to upload: {local} does not exist")
        ops: list[Operation] = []
        if local.is_file():
            ops.append(AddFile(local, path or local.name))
        else:
            base = path.strip("/")
            for f in sorted(local.rglob("*")):
                if f.is_file():
                    rel = f.relative_to(local).as_posix()
                    ops.append(AddFile(f, f"{base}/{rel}" if base else rel))
            if not ops:
                raise NothingToCommitError(f"{ref} (directory {local} holds no files)")
        return self.commit(ref, ops, message=message, metadata=metadata,
                           parent_commit=parent_commit)

    def _write_objects(self, repo: str, branch: str, adds: Mapping[str, Path], *,
                       label: str) -> None:
        gateway = self.lakefs.gateway
        total = sum(p.stat().st_size for p in adds.values())
        with self._progress(f"upload {label}", total) as bar:
            advance = (lambda n: bar.advance(bar.task_ids[0], n)) if bar else None
            with self.lakefs.translate(ref=label, what="upload"):
                def put(key: str, local: Path) -> None:
                    gateway.put_file(repo, f"{branch}/{key}", local, advance)

                run_parallel((partial(put, k, p) for k, p in adds.items()), self.max_workers)

    def merge(
        self,
        asset: AssetPath | str,
        source: str,
        *,
        into: str = DEFAULT_BRANCH,
        strategy: Strategy | None = None,
        message: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CommitInfo:
        """Three-way merge branch/ref ``source`` into branch ``into``.

        Conflicts raise :class:`MergeConflictError` naming the paths, and change nothing,
        unless ``strategy`` says which side wins.
        """
        path = AssetPath.coerce(asset)
        if strategy not in (None, "source-wins", "dest-wins"):
            raise InvalidReferenceError(
                f"unknown merge strategy {strategy!r}: use 'source-wins' or 'dest-wins'",
                part="strategy", value=str(strategy),
            )
        dest = _policy.writable_branch(path.at(into))
        AssetRef(path, source)  # validates the ref's form
        repo = self.repository(path)
        self._get_commit(repo, path.at(source))  # a clear RefNotFoundError before merging
        self._refuse_actions(repo, path, source, dest)
        return self._merge(
            repo, source, dest, message=message or f"Merge {source} into {dest}",
            metadata=metadata or {}, squash=False, label=(f"{path}:{source}", f"{path}:{dest}"),
            asset=path, strategy=strategy,
        )

    def _refuse_actions(self, repo: str, path: AssetPath, source: str, dest: str) -> None:
        """Refuse a merge that would bring changes under the reserved prefix (what ``source``
        changed since the merge base: nothing of Asset Hub's own puts an action there)."""
        changed = next(iter(self.lakefs.pages(
            self.lakefs.json_page, f"/repositories/{repo}/refs/{quote(dest, safe='')}/diff/"
            f"{quote(source, safe='')}", asset=path, ref=f"{path}:{source}", what="merge",
            type="three_dot", prefix=ACTIONS_PREFIX, amount=1)), None)
        if changed is not None:
            _policy.user_path(str(changed["path"]), f"merge {source} into {dest}, which changes")

    # -- lakeFS actions: Asset Hub's own, never a caller's -----------------------------------
    def read_action(self, ref: AssetRef | str, name: str) -> str | None:
        """The text of the action file ``_lakefs_actions/<name>`` at ``ref``, or None. For the
        hub's own use: no caller's request reaches this."""
        r = AssetRef.coerce(ref)
        path = ACTIONS_PREFIX + validate_object_path(name)
        repo = self.repository(r.path)
        try:
            with self.lakefs.translate(asset=r.path, ref=str(r), what=f"object:{path}",
                                       on={404: lambda *_: ObjectNotFoundError(str(r), path)}):
                return bytes(self.lakefs.api.objects_api.get_object(repo, r.ref, path)).decode()
        except ObjectNotFoundError:
            return None

    def install_action(self, ref: AssetRef | str, name: str, text: str, *, message: str,
                       metadata: Mapping[str, str] | None = None) -> str:
        """Write the action file ``_lakefs_actions/<name>`` on branch ``ref`` as one commit,
        unless it holds ``text`` already: "present" or "installed". The one way anything is
        written under the reserved prefix."""
        r = AssetRef.coerce(ref)
        if self.read_action(r, name) == text:
            return "present"
        path = ACTIONS_PREFIX + validate_object_path(name)
        with tempfile.TemporaryDirectory() as d:
            local = Path(d) / "action.yaml"
            local.write_text(text)
            with self.transact(r, message=message, metadata=metadata) as tx:
                txn = tx.transaction
                self._write_objects(txn.repo, txn.branch, {path: local}, label=txn.ref)
        return "installed"

    def __repr__(self) -> str:  # never show credentials
        return f"Storage(endpoint={self.endpoint!r})"
