"""Versioned asset storage on lakeFS: the only module that talks to lakeFS.

One lakeFS repository per asset. Every write goes through a temporary branch that is
committed and squash-merged into its target only when complete, and deleted otherwise, so a
failed or killed upload leaves every version as it was; ``main`` is protected against direct
writes. Reads resolve a ref to its commit first and then use the content-addressed cache.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import lakefs_sdk
import urllib3
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import ApiException
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from assethub import _repo_names, config
from assethub._transfer import (
    BlobCache,
    RemoteObject,
    S3Gateway,
    copy_local_blockstore,
    place_all,
    run_parallel,
)
from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AssetNotFoundError,
    ChecksumMismatchError,
    ConcurrentUpdateError,
    InvalidReferenceError,
    MergeConflictError,
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
    validate_branch_name,
    validate_object_path,
    validate_tag_name,
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
    "AddFile",
    "AssetInfo",
    "BranchInfo",
    "CommitInfo",
    "DeleteFile",
    "DiffEntry",
    "DownloadResult",
    "ObjectInfo",
    "Storage",
    "TagInfo",
    "Transaction",
]

TX_PREFIX = "_tx-"
META_PATH = "assethub.path"
META_KIND = "assethub.kind"
Strategy = Literal["source-wins", "dest-wins"]
_PAGE = 1000


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


@dataclass(frozen=True, slots=True)
class Transaction:
    """An open write: files go to ``branch`` (hidden, temporary) until finished or aborted.

    Plain strings only, so a server can keep it between the requests of one upload.
    """

    ref: str  # the target, "<asset>:<branch>"
    repo: str
    branch: str
    head: str  # the target's head when the write began
    parent_commit: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"ref": self.ref, "repo": self.repo, "branch": self.branch, "head": self.head,
                "parent_commit": self.parent_commit}

    @classmethod
    def from_dict(cls, d: Mapping[str, str | None]) -> Transaction:
        return cls(str(d["ref"]), str(d["repo"]), str(d["branch"]), str(d["head"]),
                   d.get("parent_commit"))


ACTIONS_PREFIX = "_lakefs_actions/"


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _commit_info(c: lakefs_sdk.Commit) -> CommitInfo:
    return CommitInfo(
        id=c.id, message=c.message, committer=c.committer, created=_ts(c.creation_date),
        parents=tuple(c.parents),
        metadata={k: v for k, v in (c.metadata or {}).items() if not k.startswith(".lakefs.")},
    )


def _commit_from_json(c: Mapping[str, Any]) -> CommitInfo:
    return CommitInfo(
        id=c["id"], message=c["message"], committer=c["committer"],
        created=_ts(c["creation_date"]), parents=tuple(c.get("parents") or ()),
        metadata={k: v for k, v in (c.get("metadata") or {}).items()
                  if not k.startswith(".lakefs.")},
    )


def _sha256_of(meta: Mapping[str, str] | None) -> str | None:
    for k, v in (meta or {}).items():
        if k.lower().replace("x-amz-meta-", "") == "sha256":
            return v
    return None


def _error_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", "")) or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class Storage:
    """Assets on one lakeFS server.

    The constructor only stores connection settings; nothing is contacted until a method is
    called. Methods take their subject first (an asset path or reference, as an object or a
    string) and keyword-only options after it.
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
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._key = access_key_id
        self._secret = secret_access_key
        self.cache = BlobCache(Path(cache_dir) if cache_dir else config.home() / "cache")
        self.namespace_root = namespace_root.rstrip("/")
        self.max_workers = max_workers
        self.progress = progress
        # read a local blockstore's files directly when this process can (embedded stack)
        self.direct_local = direct_local
        self._lock = threading.Lock()
        self._api_client: LakeFSClient | None = None
        self._s3: S3Gateway | None = None
        self._ahttp: httpx.AsyncClient | None = None
        self._http_client: httpx.Client | None = None
        self._repos: dict[AssetPath, str] = {}

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

    # -- clients (created on first use) ---------------------------------------------------------
    @property
    def _api(self) -> LakeFSClient:
        with self._lock:
            if self._api_client is None:
                cfg = lakefs_sdk.Configuration(
                    host=f"{self.endpoint}/api/v1", username=self._key, password=self._secret
                )
                cfg.connection_pool_maxsize = self.max_workers * 2
                self._api_client = LakeFSClient(cfg)
            return self._api_client

    @property
    def _http(self) -> httpx.Client:
        with self._lock:
            if self._http_client is None:
                self._http_client = httpx.Client(
                    base_url=f"{self.endpoint}/api/v1", auth=(self._key, self._secret),
                    timeout=httpx.Timeout(60), limits=httpx.Limits(max_connections=self.max_workers * 2))
            return self._http_client

    @property
    def _gateway(self) -> S3Gateway:
        with self._lock:
            if self._s3 is None:
                self._s3 = S3Gateway(self.endpoint, self._key, self._secret,
                                     max_workers=self.max_workers)
            return self._s3

    @contextmanager
    def _translate(self, *, asset: AssetPath | None = None, ref: str = "",
                   what: str = "") -> Iterator[None]:
        """Turn lakeFS failures into Asset Hub errors (the only place that reads statuses)."""
        try:
            yield
        except ApiException as exc:
            msg = _error_message(exc)
            if exc.status == 404:
                if "repository" in msg.lower() and asset is not None:
                    raise AssetNotFoundError(str(asset)) from None
                if what.startswith("object:"):
                    raise ObjectNotFoundError(ref, what.removeprefix("object:")) from None
                raise RefNotFoundError(ref or what, msg) from None
            if exc.status == 409:
                raise AlreadyExistsError(what or "resource", ref, msg) from None
            if exc.status in (401, 403):
                raise NotAllowedError(f"lakeFS refused {what or 'the request'}: {msg}") from None
            if exc.status == 400:
                raise InvalidReferenceError(f"lakeFS rejected {what}: {msg}",
                                            part=what or "request", value=ref) from None
            raise AssetHubError(f"lakeFS error {exc.status} on {what or 'request'}: {msg}") from None
        except (ConnectionError, OSError, urllib3.exceptions.HTTPError) as exc:
            if isinstance(exc, AssetHubError):
                raise
            # the lakeFS SDK's urllib3 gives up on a refused connection with MaxRetryError
            if "urllib3" in type(exc).__module__ or isinstance(exc, ConnectionError):
                raise StorageUnavailableError(
                    f"cannot reach lakeFS at {self.endpoint}: {type(exc).__name__}"
                ) from None
            raise

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
        """The lakeFS repository that holds ``asset`` (raises AssetNotFoundError)."""
        path = AssetPath.coerce(asset)
        if path in self._repos:
            return self._repos[path]
        name = _repo_names.repository_name(path)
        if not self._repo_exists(name):
            raise AssetNotFoundError(str(path))
        try:
            meta = self._api.repositories_api.get_repository_metadata(name)
        except ApiException as exc:
            if exc.status == 404:
                raise AssetNotFoundError(str(path)) from None
            with self._translate(asset=path):
                raise
        if meta.get(META_PATH) != str(path):
            raise AssetNotFoundError(str(path))
        self._repos[path] = name
        return name

    def bind(self, asset: AssetPath | str, repository: str) -> None:
        """Use ``repository`` for ``asset`` (the catalog keeps this mapping across renames)."""
        self._repos[AssetPath.coerce(asset)] = repository

    def rename_asset(self, asset: AssetPath | str, new: AssetPath | str) -> None:
        """Record a new path for an asset; its repository (and so its history) stays."""
        old_path, new_path = AssetPath.coerce(asset), AssetPath.coerce(new)
        if old_path.kind != new_path.kind:
            raise NotAllowedError(f"cannot turn {old_path.kind.value} {old_path} into a "
                                  f"{new_path.kind.value}")
        name = self.repository(old_path)
        with self._translate(asset=old_path, what="rename asset"):
            self._api.internal_api.set_repository_metadata(
                name, lakefs_sdk.RepositoryMetadataSet(metadata={META_PATH: str(new_path)})
            )
        self._repos.pop(old_path, None)
        self._repos[new_path] = name

    def create_asset(self, asset: AssetPath | str, *, exist_ok: bool = False,
                     repository: str | None = None) -> AssetInfo:
        """Create an empty asset with a protected ``main`` branch.

        ``repository`` names its lakeFS repository when a catalog keeps the mapping;
        otherwise the name is derived from the path.
        """
        path = AssetPath.coerce(asset)
        name = repository or _repo_names.repository_name(path)
        namespace = f"{self.namespace_root}/{name}-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                repo = self._api.repositories_api.create_repository(
                    lakefs_sdk.RepositoryCreation(
                        name=name, storage_namespace=namespace, default_branch=DEFAULT_BRANCH
                    )
                )
                break
            except urllib3.exceptions.HTTPError:  # lakeFS is not there
                with self._translate(asset=path, what="create asset"):
                    raise
            except ApiException as exc:
                if exc.status != 409:
                    with self._translate(asset=path, what="create asset"):
                        raise
                if self._repo_exists(name):
                    if exist_ok:
                        self.repository(path)
                        return self.asset_info(path)
                    raise AlreadyExistsError("asset", str(path)) from None
                # lakeFS is still removing a repository of this name that was just deleted
                if time.monotonic() > deadline:
                    raise AlreadyExistsError(
                        "asset", str(path), "a deleted asset of that name is still being removed"
                    ) from None
                time.sleep(0.2)
        with self._translate(asset=path, what="create asset"):
            self._api.internal_api.set_repository_metadata(
                name,
                lakefs_sdk.RepositoryMetadataSet(
                    metadata={META_PATH: str(path), META_KIND: path.kind.value}
                ),
            )
            self._api.repositories_api.set_branch_protection_rules(
                name, [lakefs_sdk.BranchProtectionRule(pattern=DEFAULT_BRANCH)]
            )
        self._repos[path] = name
        return AssetInfo(path, name, _ts(repo.creation_date))

    def _repo_exists(self, name: str) -> bool:
        # Listing reads lakeFS's store directly; get_repository may answer from a cache for a
        # few seconds after a repository is deleted.
        with self._translate(what="list assets"):
            page = self._api.repositories_api.list_repositories(prefix=name, amount=1)
        return bool(page.results) and page.results[0].id == name

    def asset_info(self, asset: AssetPath | str) -> AssetInfo:
        path = AssetPath.coerce(asset)
        name = self.repository(path)
        with self._translate(asset=path):
            repo = self._api.repositories_api.get_repository(name)
        return AssetInfo(path, name, _ts(repo.creation_date))

    def asset_exists(self, asset: AssetPath | str) -> bool:
        try:
            self.repository(asset)
        except AssetNotFoundError:
            return False
        return True

    def list_assets(self) -> Iterator[AssetInfo]:
        """Every asset on this lakeFS (repositories Asset Hub did not create are skipped)."""
        for repo in self._pages(
            lambda after: self._api.repositories_api.list_repositories(
                prefix=_repo_names.PREFIX, after=after, amount=_PAGE
            )
        ):
            with self._translate(what="list assets"):
                meta = self._api.repositories_api.get_repository_metadata(repo.id)
            if META_PATH in meta:
                path = AssetPath.parse(meta[META_PATH])
                self._repos[path] = repo.id
                yield AssetInfo(path, repo.id, _ts(repo.creation_date))

    def delete_asset(self, asset: AssetPath | str) -> None:
        path = AssetPath.coerce(asset)
        name = self.repository(path)
        with self._translate(asset=path, what="delete asset"):
            self._api.repositories_api.delete_repository(name, force=True)
        self._repos.pop(path, None)

    # -- refs and history ------------------------------------------------------------------
    def _pages(self, fetch: Any) -> Iterator[Any]:
        after = ""
        while True:
            with self._translate(what="listing"):
                page = fetch(after)
            yield from page.results
            if not page.pagination.has_more:
                return
            after = page.pagination.next_offset

    def _get_pages(self, url: str, params: dict[str, Any], *, asset: AssetPath | None = None,
                   ref: str = "", what: str = "listing") -> Iterator[dict[str, Any]]:
        """GET a paginated lakeFS listing as plain JSON.

        The hot read paths skip the generated SDK's model parsing, which costs more than the
        request itself for long listings (measured in bench/api.py).
        """
        after = ""
        while True:
            with self._translate(asset=asset, ref=ref, what=what):
                try:
                    resp = self._http.get(url, params={**params, "after": after})
                except httpx.TransportError as exc:
                    raise StorageUnavailableError(
                        f"cannot reach lakeFS at {self.endpoint}: {type(exc).__name__}") from None
                if resp.status_code >= 400:
                    err = ApiException(status=resp.status_code, reason=resp.reason_phrase)
                    err.body = resp.text
                    raise err
            page = resp.json()
            yield from page["results"]
            if not page["pagination"]["has_more"]:
                return
            after = page["pagination"]["next_offset"]

    def _log(self, r: AssetRef, *, amount: int, prefixes: list[str] | None = None,
             limit: bool = False) -> Iterator[dict[str, Any]]:
        repo = self.repository(r.path)
        params: dict[str, Any] = {"amount": amount}
        if limit:
            params["limit"] = "true"
        if prefixes:
            params["prefixes"] = prefixes
        return self._get_pages(f"/repositories/{repo}/refs/{quote(r.ref, safe='')}/commits",
                               params, asset=r.path, ref=str(r), what="ref")

    def resolve(self, ref: AssetRef | str) -> str:
        """The commit id a reference points at now."""
        return self.get_commit(ref).id

    def get_commit(self, ref: AssetRef | str) -> CommitInfo:
        r = AssetRef.coerce(ref)
        first = next(self._log(r, amount=1, limit=True), None)
        if first is None:
            raise RefNotFoundError(str(r), "it has no commits")
        return _commit_from_json(first)

    def log(self, ref: AssetRef | str, *, limit: int | None = None,
            path: str | None = None) -> Iterator[CommitInfo]:
        """Commits reachable from ``ref``, newest first (only those touching ``path`` if given)."""
        r = AssetRef.coerce(ref)
        pages = self._log(r, amount=min(_PAGE, limit or _PAGE), prefixes=[path] if path else None)
        yield from (_commit_from_json(c) for c in itertools.islice(pages, limit))

    def diff(self, left: AssetRef | str, right: AssetRef | str, *,
             prefix: str = "") -> list[DiffEntry]:
        """What changes from ``left`` to ``right`` (both of one asset), like ``git diff L R``."""
        lr, rr = AssetRef.coerce(left), AssetRef.coerce(right)
        if lr.path != rr.path:
            raise InvalidReferenceError(
                f"diff needs two versions of one asset, got {lr.path} and {rr.path}",
                part="ref", value=str(rr),
            )
        repo = self.repository(lr.path)
        left_id, right_id = self.resolve(lr), self.resolve(rr)  # each names itself if unknown
        params: dict[str, Any] = {"amount": _PAGE, "type": "two_dot"}
        if prefix:
            params["prefix"] = prefix
        return [
            DiffEntry(d["path"], d["type"], d.get("size_bytes"))
            for d in self._get_pages(f"/repositories/{repo}/refs/{left_id}/diff/{right_id}",
                                     params, asset=lr.path, ref=str(rr), what="diff")
        ]

    def list_branches(self, asset: AssetPath | str) -> list[BranchInfo]:
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        return [
            BranchInfo(b.id, b.commit_id)
            for b in self._pages(
                lambda after: self._api.branches_api.list_branches(repo, after=after, amount=_PAGE)
            )
            if not b.id.startswith(TX_PREFIX)
        ]

    def create_branch(self, asset: AssetPath | str, name: str, *,
                      source: str = DEFAULT_BRANCH) -> BranchInfo:
        """Create branch ``name`` at ``source`` (a branch, tag or commit). Models only."""
        path = AssetPath.coerce(asset)
        validate_branch_name(name)
        if path.is_dataset:
            raise NotAllowedError(
                f"datasets have only the '{DEFAULT_BRANCH}' branch; {path} cannot have "
                f"branch {name!r} (tag a version instead)"
            )
        repo = self.repository(path)
        with self._translate(asset=path, ref=name, what="branch"):
            commit = self._api.branches_api.create_branch(
                repo, lakefs_sdk.BranchCreation(name=name, source=source)
            )
        return BranchInfo(name, commit)

    def delete_branch(self, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        validate_branch_name(name)
        if name == DEFAULT_BRANCH:
            raise NotAllowedError(f"the '{DEFAULT_BRANCH}' branch of {path} cannot be deleted")
        repo = self.repository(path)
        with self._translate(asset=path, ref=name, what="branch"):
            self._api.branches_api.delete_branch(repo, name)

    def list_tags(self, asset: AssetPath | str) -> list[TagInfo]:
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        return [
            TagInfo(t.id, t.commit_id)
            for t in self._pages(
                lambda after: self._api.tags_api.list_tags(repo, after=after, amount=_PAGE)
            )
        ]

    def create_tag(self, asset: AssetPath | str, name: str, *,
                   ref: str = DEFAULT_BRANCH) -> TagInfo:
        """Tag the commit ``ref`` points at now. Tags never move: an existing name is an error."""
        path = AssetPath.coerce(asset)
        validate_tag_name(name)
        commit = self.resolve(path.at(ref))
        repo = self.repository(path)
        try:
            self._api.tags_api.create_tag(repo, lakefs_sdk.TagCreation(id=name, ref=commit))
        except ApiException as exc:
            if exc.status == 409:
                raise AlreadyExistsError(
                    "tag", name, f"tags of {path} are immutable; choose a new name"
                ) from None
            with self._translate(asset=path, ref=name, what="tag"):
                raise
        return TagInfo(name, commit)

    def delete_tag(self, asset: AssetPath | str, name: str) -> None:
        """Delete a model's tag; a dataset's tags are published versions and stay."""
        path = AssetPath.coerce(asset)
        validate_tag_name(name)
        if path.is_dataset:
            raise NotAllowedError(
                f"tag {name!r} of dataset {path} is a published version and cannot be deleted"
            )
        repo = self.repository(path)
        with self._translate(asset=path, ref=name, what="tag"):
            self._api.tags_api.delete_tag(repo, name)

    # -- reading files -----------------------------------------------------------------------
    def _objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"amount": _PAGE, "user_metadata": "true"}
        if prefix:
            params["prefix"] = prefix
        pages = self._get_pages(f"/repositories/{repo}/refs/{quote(ref, safe='')}/objects/ls",
                                params, ref=ref)
        # lakeFS actions (the hook of followed datasets) are configuration, not content
        return (o for o in pages if not str(o.get("path", "")).startswith(ACTIONS_PREFIX))

    def _listing(self, repo: str, commit: str) -> list[RemoteObject]:
        cached = self.cache.load_listing(repo, commit)
        if cached is not None:
            return cached
        objects = [
            RemoteObject(o["path"], int(o.get("size_bytes") or 0), o["checksum"],
                         _sha256_of(o.get("metadata")), o.get("physical_address", ""))
            for o in self._objects(repo, commit)
        ]
        self.cache.save_listing(repo, commit, objects)  # a commit never changes
        return objects

    def list_objects(self, ref: AssetRef | str, *, prefix: str = "") -> list[ObjectInfo]:
        """Files in a version (recursively under ``prefix``)."""
        r = AssetRef.coerce(ref)
        repo = self.repository(r.path)
        return [
            ObjectInfo(o["path"], int(o.get("size_bytes") or 0), o["checksum"],
                       _sha256_of(o.get("metadata")), _ts(o["mtime"]), o.get("content_type"))
            for o in self._objects(repo, r.ref, prefix)
        ]

    def stat(self, ref: AssetRef | str, path: str) -> ObjectInfo:
        r = AssetRef.coerce(ref)
        validate_object_path(path)
        repo = self.repository(r.path)
        with self._translate(asset=r.path, ref=str(r), what=f"object:{path}"):
            o = self._api.objects_api.stat_object(repo, r.ref, path, user_metadata=True)
        return ObjectInfo(o.path, int(o.size_bytes or 0), o.checksum, _sha256_of(o.metadata),
                          _ts(o.mtime), o.content_type)

    def read_bytes(self, ref: AssetRef | str, path: str) -> bytes:
        r = AssetRef.coerce(ref)
        validate_object_path(path)
        repo = self.repository(r.path)
        with self._translate(asset=r.path, ref=str(r), what=f"object:{path}"):
            return bytes(self._api.objects_api.get_object(repo, r.ref, path))

    def download(self, ref: AssetRef | str, dest: Path | str, *,
                 prefix: str = "") -> DownloadResult:
        """Download a version (or the files under ``prefix``) into ``dest``.

        Files land at their path relative to ``prefix``. Content already in the local cache is
        not transferred again; files already at ``dest`` from an earlier download are kept.
        """
        r = AssetRef.coerce(ref)
        repo = self.repository(r.path)
        commit = self.resolve(r)
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
        gateway = self._gateway if missing else None
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

            with self._translate(asset=r.path, ref=str(r), what="download"):
                run_parallel((partial(fetch, o) for o in missing.values()), self.max_workers)
        place_all((self.cache.blob_path(o), target) for o, target in plan)
        return DownloadResult(commit, len(plan), sum(o.size for o, _ in plan), total)

    # -- writing -----------------------------------------------------------------------------
    def _target_branch(self, r: AssetRef) -> str:
        validate_branch_name(r.ref)
        if r.path.is_dataset and r.ref != DEFAULT_BRANCH:
            raise NotAllowedError(
                f"datasets have only the '{DEFAULT_BRANCH}' branch; cannot write to {r}"
            )
        return r.ref

    def begin(self, ref: AssetRef | str, *, parent_commit: str | None = None) -> Transaction:
        """Open a write on branch ``ref``: a hidden temporary branch at its current head."""
        r = AssetRef.coerce(ref)
        self._target_branch(r)
        repo = self.repository(r.path)
        tx = f"{TX_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:10]}"
        with self._translate(asset=r.path, ref=str(r), what="branch"):
            # branching from the name returns the head it branched at: one call, no race
            head = str(self._api.branches_api.create_branch(
                repo, lakefs_sdk.BranchCreation(name=tx, source=r.ref, hidden=True)))
        txn = Transaction(str(r), repo, tx, head, parent_commit)
        if parent_commit is not None and not head.startswith(parent_commit):
            self.abort(txn)
            raise ConcurrentUpdateError(str(r), parent_commit, head)
        return txn

    def abort(self, txn: Transaction, *, wait: bool = True) -> None:
        """Drop a write: its temporary branch goes, the target never saw it."""
        def drop() -> None:
            with suppress(ApiException, OSError):  # cleanup_transactions() removes leftovers
                self._api.branches_api.delete_branch(txn.repo, txn.branch, force=True)

        if wait:
            drop()
        else:  # after a merge nothing depends on the branch any more: do not make callers wait
            threading.Thread(target=drop, daemon=True).start()

    def finish(self, txn: Transaction, *, message: str,
               metadata: Mapping[str, str] | None = None,
               deletes: Sequence[str] = ()) -> CommitInfo:
        """Commit what a transaction wrote and squash-merge it into its target, or nothing."""
        r = AssetRef.parse(txn.ref)
        try:
            if not message.strip():
                raise InvalidReferenceError("a commit needs a message", part="message",
                                            value=message)
            for i in range(0, len(deletes), _PAGE):
                with self._translate(ref=txn.ref, what="delete"):
                    self._api.objects_api.delete_objects(
                        txn.repo, txn.branch, lakefs_sdk.PathList(paths=list(deletes[i:i + _PAGE])))
            meta = {k: str(v) for k, v in (metadata or {}).items()}
            try:
                self._api.commits_api.commit(
                    txn.repo, txn.branch, lakefs_sdk.CommitCreation(message=message, metadata=meta)
                )
            except ApiException as exc:
                if exc.status == 400 and "no changes" in _error_message(exc).lower():
                    raise NothingToCommitError(txn.ref) from None
                with self._translate(asset=r.path, ref=txn.ref, what="commit"):
                    raise
            if txn.parent_commit is not None:
                now = self.resolve(r)
                if now != txn.head:
                    raise ConcurrentUpdateError(txn.ref, txn.parent_commit, now)
            result = self._merge(txn.repo, txn.branch, r.ref, message=message, metadata=meta,
                                 squash=True, label=(txn.ref, txn.ref), asset=r.path)
            if txn.parent_commit is not None and result.parents[:1] != (txn.head,):
                # Another writer got in between the check above and the merge: take ours back
                # out (nothing of theirs is lost) and report the race.
                self._revert(txn.repo, r.ref, result.id, asset=r.path)
                raise ConcurrentUpdateError(txn.ref, txn.parent_commit, result.parents[0])
        except BaseException:
            self.abort(txn)
            raise
        self.abort(txn, wait=False)
        return result

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
        self._target_branch(r)
        if not message.strip():
            raise InvalidReferenceError("a commit needs a message", part="message", value=message)
        adds: dict[str, Path] = {}
        deletes: list[str] = []
        for op in operations:
            if isinstance(op, AddFile):
                local = Path(op.local)
                if not local.is_file():
                    raise FileNotFoundError(f"not a file: {local}")
                adds[validate_object_path(op.path)] = local
            elif isinstance(op, DeleteFile):
                deletes.append(validate_object_path(op.path))
            else:  # pragma: no cover - type checkers catch this
                raise TypeError(f"unknown operation {op!r}")
        if not adds and not deletes:
            raise NothingToCommitError(str(r))
        txn = self.begin(r, parent_commit=parent_commit)
        try:
            self._write_objects(txn.repo, txn.branch, adds, label=str(r))
        except BaseException:
            self.abort(txn)
            raise
        return self.finish(txn, message=message, metadata=metadata, deletes=deletes)

    # -- streaming (for the server: bodies pass through without touching its disk) -----------
    @property
    def _async_http(self) -> httpx.AsyncClient:
        with self._lock:
            if self._ahttp is None:
                self._ahttp = httpx.AsyncClient(
                    base_url=f"{self.endpoint}/api/v1", auth=(self._key, self._secret),
                    timeout=httpx.Timeout(60, read=600, write=600),
                    limits=httpx.Limits(max_connections=self.max_workers * 2))
            return self._ahttp

    async def put_stream(self, txn: Transaction, path: str, body: AsyncIterator[bytes], *,
                         sha256: str | None = None, max_bytes: int | None = None) -> ObjectInfo:
        """Stream one file into a transaction; checked against ``sha256`` when given."""
        validate_object_path(path)
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
        try:
            resp = await self._async_http.post(url, params={"path": path}, content=counted(),
                                               headers=headers)
        except httpx.TransportError as exc:
            raise StorageUnavailableError(f"cannot reach lakeFS at {self.endpoint}: "
                                          f"{type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise TransferError(f"lakeFS refused {path}: HTTP {resp.status_code} "
                                f"{resp.text[:200]}", path=path)
        actual = digest.hexdigest()
        if sha256 and actual != sha256.lower():
            await self._async_http.delete(url, params={"path": path})
            raise ChecksumMismatchError(
                f"{path} arrived corrupted: sha256 {actual}, expected {sha256}", path=path)
        if not sha256:
            await self._async_http.put(
                f"/repositories/{txn.repo}/branches/{txn.branch}/objects/stat/user_metadata",
                params={"path": path}, json={"set": {"sha256": actual}})
        o = resp.json()
        return ObjectInfo(path, size, o.get("checksum", ""), actual, _ts(o.get("mtime", 0)),
                          o.get("content_type"))

    async def get_stream(self, ref: AssetRef | str, path: str, *,
                         byte_range: str | None = None) -> StreamedObject:
        """One file (or an HTTP byte range of it) as a stream of bytes: one call to lakeFS."""
        r = AssetRef.coerce(ref)
        validate_object_path(path)
        repo = self.repository(r.path)
        client = self._async_http
        request = client.build_request(
            "GET", f"/repositories/{repo}/refs/{r.ref}/objects", params={"path": path},
            headers={"Range": byte_range} if byte_range else None)
        try:
            resp = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise StorageUnavailableError(f"cannot reach lakeFS at {self.endpoint}: "
                                          f"{type(exc).__name__}") from None
        if resp.status_code >= 400:
            await resp.aread()
            await resp.aclose()
            if resp.status_code == 404:
                raise ObjectNotFoundError(str(r), path)
            if resp.status_code == 416:
                raise RangeNotSatisfiableError(f"byte range {byte_range!r} is outside {path}")
            raise TransferError(f"lakeFS refused {path}: HTTP {resp.status_code}", path=path)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_raw(1 << 20):
                    yield chunk
            finally:
                await resp.aclose()

        return StreamedObject(resp.status_code, int(resp.headers.get("content-length", 0)),
                              resp.headers.get("content-range"), resp.headers.get("etag"),
                              chunks())

    def _revert(self, repo: str, branch: str, commit_id: str, *, asset: AssetPath) -> None:
        """Undo one commit of ``branch`` through a temporary branch (main takes only merges)."""
        tx = f"{TX_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:10]}"
        with self._translate(asset=asset, ref=branch, what="revert"):
            self._api.branches_api.create_branch(
                repo, lakefs_sdk.BranchCreation(name=tx, source=branch, hidden=True))
            try:
                self._api.branches_api.revert_branch(
                    repo, tx, lakefs_sdk.RevertCreation(ref=commit_id, parent_number=0))
                self._api.refs_api.merge_into_branch(
                    repo, tx, branch, merge=lakefs_sdk.Merge(
                        message=f"Revert {commit_id[:12]}: its expected parent had moved",
                        squash_merge=True))
            finally:
                with suppress(ApiException, OSError):
                    self._api.branches_api.delete_branch(repo, tx, force=True)

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
        gateway = self._gateway
        total = sum(p.stat().st_size for p in adds.values())
        with self._progress(f"upload {label}", total) as bar:
            advance = (lambda n: bar.advance(bar.task_ids[0], n)) if bar else None
            with self._translate(ref=label, what="upload"):
                def put(key: str, local: Path) -> None:
                    gateway.put_file(repo, f"{branch}/{key}", local, advance)

                run_parallel((partial(put, k, p) for k, p in adds.items()), self.max_workers)

    def _merge(self, repo: str, source: str, dest: str, *, message: str,
               metadata: Mapping[str, str], squash: bool, label: tuple[str, str],
               asset: AssetPath, strategy: Strategy | None = None) -> CommitInfo:
        body = lakefs_sdk.Merge(message=message, metadata=dict(metadata), strategy=strategy,
                                squash_merge=squash)
        for attempt in range(8):
            try:
                result = self._api.refs_api.merge_into_branch(repo, source, dest, merge=body)
                break
            except ApiException as exc:
                msg = _error_message(exc)
                if exc.status == 409 and "conflict" in msg.lower():
                    raise MergeConflictError(label[0], label[1],
                                             self._conflicting_paths(repo, source, dest)) from None
                if exc.status == 400 and "no changes" in msg.lower():
                    raise NothingToCommitError(label[1]) from None
                if exc.status in (409, 423, 429, 503) and attempt < 7:
                    time.sleep(0.05 * 2 ** attempt)  # another writer holds the branch: retry
                    continue
                with self._translate(asset=asset, ref=label[1], what="merge"):
                    raise
        with self._translate(asset=asset, ref=label[1], what="merge"):
            return _commit_info(self._api.commits_api.get_commit(repo, result.reference))

    def _conflicting_paths(self, repo: str, source: str, dest: str) -> list[str]:
        base = self._api.refs_api.find_merge_base(repo, source, dest).base_commit_id

        def changed(ref: str) -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for d in self._pages(lambda after: self._api.refs_api.diff_refs(
                    repo, base, ref, after=after, amount=_PAGE, type="two_dot")):
                out[d.path] = d.type
            return out

        ours, theirs = changed(source), changed(dest)
        return sorted(p for p in ours.keys() & theirs.keys())

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
        dest = self._target_branch(path.at(into))
        AssetRef(path, source)  # validates the ref's form
        repo = self.repository(path)
        self.resolve(path.at(source))  # a clear RefNotFoundError before merging
        return self._merge(
            repo, source, dest, message=message or f"Merge {source} into {dest}",
            metadata=metadata or {}, squash=False, label=(f"{path}:{source}", f"{path}:{dest}"),
            asset=path, strategy=strategy,
        )

    def cleanup_transactions(self, asset: AssetPath | str, *,
                             older_than: float = 3600.0) -> list[str]:
        """Delete temporary branches left by writers that died; returns their names."""
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        now = time.time()
        removed = []
        for b in self._pages(lambda after: self._api.branches_api.list_branches(
                repo, prefix=TX_PREFIX, after=after, amount=_PAGE, show_hidden=True)):
            try:
                started = int(b.id[len(TX_PREFIX):].split("-")[0])
            except ValueError:
                continue
            if now - started >= older_than:
                with self._translate(asset=path, ref=b.id, what="branch"):
                    self._api.branches_api.delete_branch(repo, b.id, force=True)
                removed.append(b.id)
        return removed

    def transaction_branches(self, asset: AssetPath | str) -> list[str]:
        """Names of the temporary write branches that exist now (for tests and cleanup)."""
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        return [b.id for b in self._pages(lambda after: self._api.branches_api.list_branches(
            repo, prefix=TX_PREFIX, after=after, amount=_PAGE, show_hidden=True))]

    def __repr__(self) -> str:  # never show credentials
        return f"Storage(endpoint={self.endpoint!r})"
