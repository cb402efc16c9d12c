"""Versions of an asset: history, branches, tags, merges, dataset publication, files and
bundles read as streams, uploads streamed into a lakeFS transaction and committed atomically,
and dataset import from archives.

Every method checks the caller's role (:class:`~assethub.hub.permissions.Permissions`) before it
touches storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import tempfile
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update

from assethub import dataset_formats
from assethub.catalog import Asset, Catalog, Publication, Upload
from assethub.errors import (
    AssetHubError,
    ConcurrentUpdateError,
    InvalidDatasetError,
    InvalidReferenceError,
    NotAllowedError,
    NotFoundError,
    to_wire,
)
from assethub.hub.audit import AuditLog
from assethub.hub.identity import Principal
from assethub.hub.permissions import Permissions
from assethub.refs import (
    DEFAULT_BRANCH,
    AssetKind,
    AssetPath,
    AssetRef,
    validate_object_path,
    validate_tag_name,
)
from assethub.storage import (
    BranchInfo,
    CommitInfo,
    DiffEntry,
    Listing,
    ObjectInfo,
    PresignedListing,
    Storage,
    Strategy,
    StreamedObject,
    TagInfo,
    Transaction,
    UploadLink,
    user_path,
)
from assethub.storage._transact import EMPTY
from assethub.wire import PresignedPut

BUNDLE_MAX_FILES = 5000
BUNDLE_UPLOAD_FILE_MAX = 4 * 2**20  # one file of an upload bundle, held in memory while it is sent on
BUNDLE_UPLOAD_MAX_BYTES = 256 * 2**20  # one upload bundle's whole body
BUNDLE_UPLOAD_PARALLEL = 8  # files of one upload bundle written to lakeFS at once
_SHA256 = re.compile(r"[0-9a-f]{64}")
IMPORT_MODES = ("add", "replace")


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int = 64 * 2**30  # one file
    max_archive_bytes: int = 16 * 2**30  # uncompressed content of an imported zip
    max_archive_files: int = 1_000_000


@dataclass(frozen=True, slots=True)
class LinkedFile:
    """A file a client PUT to a presigned URL: where, how large, its ETag and SHA-256."""

    path: str
    physical_address: str
    size: int
    sha256: str
    etag: str


class _Meter:
    """Bytes counted by direction ("up", "down"), across threads and tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, int] = {"up": 0, "down": 0}

    def add(self, direction: str, n: int) -> None:
        with self._lock:
            self.totals[direction] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.totals)

    async def counted(self, direction: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                self.add(direction, len(chunk))
                yield chunk
        finally:  # a reader that stops early closes what it read (a bundle's open streams)
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()


class Versions:
    """Reads and writes of asset versions, for callers holding the role each needs."""

    def __init__(self, catalog: Catalog, storage: Storage, audit: AuditLog,
                 permissions: Permissions, *, limits: Limits, uploads_dir: Path,
                 tmp_dir: Path) -> None:
        self.catalog = catalog
        self.storage = storage
        self.audit = audit
        self.permissions = permissions
        self.limits = limits
        self.uploads_dir = uploads_dir  # no longer used: uploads are catalog rows (table uploads)
        self.tmp_dir = tmp_dir
        # file bytes this process streamed to and from clients (the proxied path); a
        # presigned transfer adds nothing here: its bytes never pass through the server
        self.proxied_bytes = _Meter()

    # -- history, branches, tags ----------------------------------------------------------------------------
    def get_commit(self, who: Principal, ref: AssetRef | str) -> CommitInfo:
        return self.storage.get_commit(self.permissions.ref(who, ref, "view"))

    def log(self, who: Principal, ref: AssetRef | str, *, limit: int | None = 100,
            path: str | None = None, after: str = "") -> list[CommitInfo]:
        """Commits reachable from ``ref``, newest first; ``after`` (a commit id of this log)
        pages on from that commit."""
        if path:
            validate_object_path(path.rstrip("/"))  # a file or a directory prefix
        if after and not (len(after) <= 64 and after.isalnum()):
            raise InvalidReferenceError("after must be a commit id", part="after", value=after[:20])
        return list(self.storage.log(self.permissions.ref(who, ref, "view"), limit=limit, path=path,
                                     after=after))

    def diff(self, who: Principal, left: AssetRef | str, right: AssetRef | str, *,
             prefix: str = "") -> list[DiffEntry]:
        # one permission check: storage refuses two refs of different assets before any read
        return self.storage.diff(self.permissions.ref(who, left, "view"), AssetRef.coerce(right),
                                 prefix=prefix)

    def list_branches(self, who: Principal, asset: AssetPath | str) -> list[BranchInfo]:
        r = self.permissions.ref(who, AssetPath.coerce(asset).at(), "view")
        return self.storage.list_branches(r.path)

    def create_branch(self, who: Principal, asset: AssetPath | str, name: str, *,
                      source: str = DEFAULT_BRANCH) -> BranchInfo:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "branch.create", f"{path}:{name}"):
            r = self.permissions.ref(who, path.at(), "edit")
            return self.storage.create_branch(r.path, name, source=source)

    def delete_branch(self, who: Principal, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "branch.delete", f"{path}:{name}"):
            self.storage.delete_branch(self.permissions.ref(who, path.at(), "edit").path, name)

    def list_tags(self, who: Principal, asset: AssetPath | str) -> list[TagInfo]:
        return self.storage.list_tags(self.permissions.ref(who, AssetPath.coerce(asset).at(), "view").path)

    def create_tag(self, who: Principal, asset: AssetPath | str, name: str, *,
                   ref: str = DEFAULT_BRANCH) -> TagInfo:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "tag.create", f"{path}:{name}"):
            return self.storage.create_tag(self.permissions.ref(who, path.at(), "edit").path, name, ref=ref)

    def delete_tag(self, who: Principal, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "tag.delete", f"{path}:{name}"):
            self.storage.delete_tag(self.permissions.ref(who, path.at(), "edit").path, name)

    def merge(self, who: Principal, asset: AssetPath | str, source: str, *,
              into: str = DEFAULT_BRANCH, strategy: Strategy | None = None,
              message: str | None = None, metadata: dict[str, str] | None = None) -> CommitInfo:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "merge", f"{path}:{source}->{into}"):
            return self.storage.merge(
                self.permissions.ref(who, path.at(), "edit").path, source, into=into, strategy=strategy,
                message=message, metadata={**(metadata or {}), "author": who.name or ""})

    def publish(self, who: Principal, asset: AssetPath | str, tag: str, *,
                ref: str = DEFAULT_BRANCH) -> TagInfo:
        """Publish a dataset version: an immutable tag, recorded as published."""
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "dataset.publish", f"{path}:{tag}"):
            validate_tag_name(tag)
            if tag == EMPTY:  # names a new version's start: nothing (see import_archive)
                raise InvalidReferenceError(f"{EMPTY!r} means a version with no files; publish "
                                            "under another name", part="tag", value=tag)
            with self.catalog.session() as s:
                a = self.permissions.asset(s, who, path, "edit")
                if not path.is_dataset:
                    raise NotAllowedError(f"only datasets are published; tag model {path} instead")
                info = self.storage.create_tag(path, tag, ref=ref)
                a.publications.append(Publication(tag=tag, commit_id=info.commit_id,
                                                  published_by=who.name or ""))
                return info

    def list_objects(self, who: Principal, ref: AssetRef | str, *,
                     prefix: str = "", limit: int | None = None) -> list[ObjectInfo]:
        return self.storage.list_objects(self.permissions.ref(who, ref, "view"), prefix=prefix,
                                         limit=limit)

    def list_directory(self, who: Principal, ref: AssetRef | str, *, prefix: str = "",
                       after: str = "", limit: int = 200) -> Listing:
        """One page of one directory level of a version (sub-directories and files), for
        browsing a version of any size; ``after`` is the previous page's ``next_after``."""
        if len(after) > 1024:
            raise InvalidReferenceError("after is over 1024 characters", part="after",
                                        value=after[:20])
        return self.storage.list_directory(self.permissions.ref(who, ref, "view"), prefix=prefix,
                                           after=after, limit=limit)

    def stat(self, who: Principal, ref: AssetRef | str, path: str) -> ObjectInfo:
        return self.storage.stat(self.permissions.ref(who, ref, "view"), path)

    async def open_file(self, who: Principal, ref: AssetRef | str, path: str, *,
                        byte_range: str | None = None) -> StreamedObject:
        """A file of a version (or a byte range of it) as a stream straight from lakeFS."""
        r = self.permissions.ref(who, ref, "view")
        obj = await self.storage.get_stream(r, path, byte_range=byte_range)
        return dataclasses.replace(obj, chunks=self.proxied_bytes.counted("down", obj.chunks))

    async def open_bundle(self, who: Principal, ref: AssetRef | str,
                          paths: list[str]) -> AsyncIterator[bytes]:
        """Many files of one version as one stream: for each, a 4-byte big-endian length, a JSON
        header ``{"path", "size"}``, then the bytes. One permission check for all of them, one
        request from the client: what makes datasets of many small files fast to fetch."""
        r = self.permissions.ref(who, ref, "view")
        if len(paths) > BUNDLE_MAX_FILES:
            raise InvalidReferenceError(f"a bundle holds at most {BUNDLE_MAX_FILES} files, not {len(paths)}",
                                        part="paths", value=str(len(paths)))
        for p in paths:  # every path refused before the first byte is sent
            user_path(validate_object_path(p), "bundle")
        if not r.looks_like_commit:  # one version throughout, even if the branch moves
            r = r.path.at(self.storage.resolve(r))
        streams = self.storage.get_streams(r, paths)
        first = await anext(streams, None)
        if first is not None and isinstance(first[1], AssetHubError):
            await streams.aclose()
            raise first[1]  # before the response begins: a missing first file is a 404

        async def frames() -> AsyncGenerator[bytes, None]:
            async with aclosing(streams):
                if first is not None:
                    async for frame in _frame(*first):
                        yield frame
                async for p, obj in streams:
                    async for frame in _frame(p, obj):
                        yield frame
                    if isinstance(obj, AssetHubError):
                        return

        return self.proxied_bytes.counted("down", _coalesced(frames()))

    # -- uploads (streamed into a lakeFS transaction, committed atomically) ---------------------
    # An upload's record is a catalog row (table ``uploads``), not server memory or a file in
    # one server's home: a file PUT or the commit of an upload started on one server replica
    # works on any other on the same catalog.
    def start_upload(self, who: Principal, ref: AssetRef | str, *,
                     parent_commit: str | None = None, base: str | None = None) -> str:
        """Open an upload to a branch: files stream in one by one, then commit together. With
        ``base`` (a dataset's published version, a commit or "empty") the commit starts from
        that version's files instead of the branch's."""
        with self.audit.audited(who, "upload.start", str(ref)):
            r = self.permissions.ref(who, ref, "edit")
            if base is not None and not r.path.is_dataset:
                raise NotAllowedError(f"a model's version starts from its branch; {r.path} has "
                                      "branches for that (create one --from the version)")
            txn = self.storage.begin(r, parent_commit=parent_commit, base=base)
            upload_id = uuid.uuid4().hex
            with self.catalog.session() as s:
                s.add(Upload(id=upload_id, user_name=who.name or "", job_run_id=who.job_run_id,
                             txn=txn.to_dict()))
            return upload_id

    def _upload(self, who: Principal, upload_id: str) -> tuple[Transaction, str | None]:
        """The upload's transaction and, once committed, its commit id."""
        if not (upload_id.isalnum() and len(upload_id) <= 32):
            raise NotFoundError("upload", upload_id[:40])
        with self.catalog.session() as s:
            row = s.get(Upload, upload_id)
            if row is None or row.user_name != who.name or row.job_run_id != who.job_run_id:
                raise NotFoundError("upload", upload_id)  # a job's uploads are its own, and only its
            return Transaction.from_dict(row.txn), row.commit_id

    def _open_upload(self, who: Principal, upload_id: str) -> Transaction:
        """The transaction of an upload not committed yet."""
        txn, committed = self._upload(who, upload_id)
        if committed is not None:
            raise NotAllowedError(f"upload {upload_id} is already committed ({committed[:12]})")
        return txn

    def _forget_upload(self, upload_id: str) -> None:
        with self.catalog.session() as s:
            s.execute(sql_delete(Upload).where(Upload.id == upload_id))

    async def put_upload_file(self, who: Principal, upload_id: str, path: str,
                              body: AsyncIterator[bytes], *,
                              sha256: str | None = None) -> ObjectInfo:
        """Stream one file of an upload into lakeFS; memory stays flat whatever its size.
        Sending a file again (a client retrying on another replica) replaces it whole."""
        validate_object_path(path)
        # a catalog read: off the event loop, which streams other uploads meanwhile
        txn = await asyncio.to_thread(self._open_upload, who, upload_id)
        return await self.storage.put_stream(txn, path, self.proxied_bytes.counted("up", body),
                                             sha256=sha256, max_bytes=self.limits.max_upload_bytes)

    async def put_upload_bundle(self, who: Principal, upload_id: str,
                                body: AsyncIterator[bytes]) -> list[ObjectInfo]:
        """Many small files of an upload in one request, each written to lakeFS as it arrives
        (up to ``BUNDLE_UPLOAD_PARALLEL`` at once). The body is the download bundle's framing:
        for each file a 4-byte big-endian length, a JSON header ``{"path", "size", "sha256"}``,
        then its bytes. Every file is checked against its SHA-256 as with a single PUT; any
        failure fails the request (nothing is committed until the upload's commit)."""
        # a catalog read: off the event loop, which streams other uploads meanwhile
        txn = await asyncio.to_thread(self._open_upload, who, upload_id)
        frames = _AsyncFrames(self.proxied_bytes.counted("up", body))
        slots = asyncio.Semaphore(BUNDLE_UPLOAD_PARALLEL)
        tasks: list[asyncio.Task[ObjectInfo]] = []
        seen: set[str] = set()

        # lakeFS's API upload on a raw urllib3 pool from threads of their own (not httpx on the
        # event loop): a third less CPU per file than a signed PUT through the S3 gateway
        loop = asyncio.get_running_loop()

        async def put(path: str, data: bytes, sha256: str) -> ObjectInfo:
            try:
                return await loop.run_in_executor(
                    _bundle_writers(), partial(self.storage.put_bytes, txn, path, data,
                                               sha256=sha256))
            finally:
                slots.release()

        try:
            while (header := await frames.header()) is not None:
                path, size, sha256 = _bundle_entry(header)
                if path in seen:
                    raise InvalidReferenceError(f"{path} is twice in one upload bundle",
                                                part="bundle", value=path)
                if len(seen) >= BUNDLE_MAX_FILES:
                    raise InvalidReferenceError(f"an upload bundle holds at most {BUNDLE_MAX_FILES}"
                                                " files", part="bundle", value=path)
                seen.add(path)
                data = await frames.read(size)
                await slots.acquire()
                tasks.append(asyncio.create_task(put(path, data, sha256)))
                if any(t.done() and t.exception() for t in tasks[-BUNDLE_UPLOAD_PARALLEL:]):
                    break  # a write failed: gather() below raises it, without reading the rest
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def commit_upload(self, who: Principal, upload_id: str, *, message: str,
                      metadata: dict[str, str] | None = None, delete: Iterable[str] = (),
                      parent_commit: str | None = None) -> CommitInfo:
        """Commit an upload's files as one commit. Committing it again (a client retrying on
        another replica after the first answer was lost) answers with the same commit."""
        txn, committed = self._upload(who, upload_id)
        if committed is not None:
            return self.storage.get_commit(AssetRef.coerce(txn.ref).path.at(committed))
        with self.audit.audited(who, "commit", txn.ref):
            try:
                self.permissions.ref(who, txn.ref, "edit")  # the role may have changed since the start
                deletes = [validate_object_path(x) for x in delete]
                if parent_commit is not None:
                    if not txn.head.startswith(parent_commit):
                        raise ConcurrentUpdateError(txn.ref, parent_commit, txn.head)
                    txn = dataclasses.replace(txn, parent_commit=parent_commit)
                result = self.storage.finish(
                    txn, message=message, deletes=deletes,
                    metadata={**(metadata or {}), "author": who.name or ""})
            except BaseException:
                self.storage.abort(txn)  # finish() aborts too; this covers the checks before it
                self._forget_upload(upload_id)
                raise
            with self.catalog.session() as s:  # kept (as committed) until the sweep removes it
                s.execute(update(Upload).where(Upload.id == upload_id).values(commit_id=result.id))
            return result

    def abort_upload(self, who: Principal, upload_id: str) -> None:
        txn, committed = self._upload(who, upload_id)
        if committed is None:
            self.storage.abort(txn)
        self._forget_upload(upload_id)

    # -- direct transfer: presigned URLs of the object store (when lakeFS's blockstore presigns) --
    def presign_supported(self) -> bool:
        return self.storage.presign_supported()

    def presigned_objects(self, who: Principal, ref: AssetRef | str, *, prefix: str = "",
                          after: str = "", limit: int = 1000) -> PresignedListing:
        """One page of a version's files, each with a URL that reads it straight from the
        object store; ``view`` on the asset. Bytes never pass through the server."""
        if prefix:
            validate_object_path(prefix.rstrip("/"))
        r = self.permissions.ref(who, ref, "view")
        return self.storage.presigned_objects(r, prefix=prefix, after=after, limit=limit)

    def presign_upload_files(self, who: Principal, upload_id: str,
                             paths: list[str]) -> list[PresignedPut]:
        """Presigned PUTs for files of an open upload (the upload's owner, who still holds
        ``edit``): the client sends each file's bytes straight to the object store."""
        txn = self._open_upload(who, upload_id)
        self.permissions.ref(who, txn.ref, "edit")  # the role may have changed since the start
        for p in paths:
            validate_object_path(p)
        return self.storage.presign_uploads(txn, paths)

    def link_upload_files(self, who: Principal, upload_id: str,
                          files: list[LinkedFile]) -> list[ObjectInfo]:
        """Record files PUT to presigned URLs in an open upload, each once the object store
        shows it there at its size and ETag; the commit stays the upload's one atomic step."""
        txn = self._open_upload(who, upload_id)
        self.permissions.ref(who, txn.ref, "edit")
        for f in files:
            validate_object_path(f.path)
        return self.storage.link_uploads(
            txn, [UploadLink(f.path, f.physical_address, f.size, f.sha256, f.etag) for f in files],
            max_bytes=self.limits.max_upload_bytes)

    # -- dataset import ----------------------------------------------------------------------
    def check_import(self, who: Principal, asset: AssetPath | str) -> None:
        """Refuse an import before its (possibly large) archive is read; refusals are audited."""
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "dataset.import", str(path)):
            self.permissions.check(who, path, "edit")
            if not path.is_dataset:
                raise NotAllowedError(f"only datasets are imported from archives; {path} is a model")

    def import_archive(self, who: Principal, asset: AssetPath | str, archive: Path, *,
                       message: str = "", base: str | None = None, mode: str = "add",
                       split: str | None = None) -> tuple[CommitInfo, Any]:
        """Import a zip archive into a dataset's ``main`` after checking it and its layout, as
        one commit.

        ``mode`` "add" puts the archive's files on top of the version the import starts from
        (``main``, or ``base``: a published version, a commit or "empty"); "replace" makes a
        clean version of only the archive's files. ``split="test"`` imports a separate test
        set (``<class>/<file>``) into the test split (``test/<class>/<file>``, or the
        dataset's test set path), replacing the test split there; its classes must be classes
        of the training data."""
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "dataset.import", str(path)):
            if not path.is_dataset:
                raise NotAllowedError(f"only datasets are imported from archives; {path} is a model")
            if mode not in IMPORT_MODES:
                raise InvalidReferenceError(f"unknown import mode {mode!r}: use 'add' or 'replace'",
                                            part="mode", value=mode[:40])
            if mode == "replace":
                if base not in (None, EMPTY):
                    raise InvalidReferenceError(
                        f"--mode replace makes a version of only the archive's files; it does not "
                        f"start from {base!r} (use --mode add --from {base})", part="from",
                        value=base[:40])
                base = EMPTY
            if split not in (None, "test"):
                raise InvalidReferenceError(f"unknown split {split!r}: only 'test' is imported "
                                            "on its own", part="split", value=split[:40])
            if base is not None and base != EMPTY:
                AssetRef(path, base)  # checks its form
            with self.catalog.session() as s:
                a = self.permissions.asset(s, who, path, "edit")
                data_format = a.data_format or "dir"
                test_prefix = ((a.test_set_path or "").strip("/")
                               if a.split_mode == "test_set" else "") or "test"
            with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
                root = Path(tmp) / "data"
                written = dataset_formats.safe_extract(
                    archive, root, max_total_bytes=self.limits.max_archive_bytes,
                    max_files=self.limits.max_archive_files)
                prefix = f"{test_prefix}/" if split else ""
                for rel in written:  # where each file would land, after a top folder is stripped
                    user_path(validate_object_path(prefix + rel), "import")
                summary = dataset_formats.validate_layout(root, "dir" if split else data_format)
                if split and data_format != "dir":
                    raise InvalidDatasetError(f"a separate test set is imported into datasets of "
                                              f"format dir (class folders), not {data_format}")
                if split and summary.splits:
                    raise InvalidDatasetError("a test set archive holds <class>/<file> folders, "
                                              "not split folders", path=", ".join(summary.splits))
                what = f"a test set of {summary.files} files" if split else \
                    f"an archive of {summary.files} files"
                with self.storage.transact(
                        path.at(DEFAULT_BRANCH), base=base,
                        message=message or f"Import {what}" + (f" (from {base})" if base else ""),
                        metadata={"author": who.name or "", "format": data_format,
                                  "assethub.import_mode": mode,
                                  **({"assethub.split": split} if split else {})}) as tx:
                    if split:
                        start = tx.transaction.base_commit if base else tx.transaction.head
                        present = [o.path for o in self.storage.list_objects(path.at(start))] \
                            if start else []
                        _check_test_classes(summary.classes, present, test_prefix)
                        tx.delete([p for p in present if p.startswith(prefix)])
                    tx.upload({prefix + f.relative_to(root).as_posix(): f
                               for f in sorted(root.rglob("*")) if f.is_file()})
                assert tx.result is not None
                return tx.result, summary

    def cleanup_stale_writes(self, *, older_than: float = 6 * 3600) -> int:
        """Drop temporary write branches of every asset left by writers that died."""
        with self.catalog.session() as s:
            assets = [AssetPath(a.folder.owner, AssetKind(a.folder.kind), a.folder.name, a.name)
                      for a in s.scalars(select(Asset))]
        # upload records: committed ones (kept to answer a retried commit) and abandoned ones
        # (their transaction branches are swept below) older than the same age
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        with self.catalog.session() as s:
            s.execute(sql_delete(Upload).where(Upload.created_at < cutoff))
        removed = 0
        for path in assets:
            try:
                removed += len(self.storage.cleanup_transactions(path, older_than=older_than))
            except AssetHubError:
                continue  # one unreachable asset does not stop the sweep
        return removed


class _AsyncFrames:
    """Exact-length reads over a request body (an upload bundle)."""

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._buffer = bytearray()

    async def _fill(self, n: int) -> bool:
        while len(self._buffer) < n:
            chunk = await anext(self._body, None)
            if chunk is None:
                return False
            self._buffer += chunk
        return True

    async def read(self, n: int) -> bytes:
        if not await self._fill(n):
            raise InvalidReferenceError(f"the upload bundle ended early ({len(self._buffer)} of "
                                        f"{n} bytes)", part="bundle", value=str(n))
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def header(self) -> Any:
        """The next file's JSON header, or None at the end of the body."""
        if not await self._fill(1):
            return None
        length = int.from_bytes(await self.read(4), "big")
        if length > 8192:
            raise InvalidReferenceError(f"an upload bundle's file header of {length} bytes is "
                                        "over 8192", part="bundle", value=str(length))
        try:
            return json.loads(await self.read(length))
        except ValueError:
            raise InvalidReferenceError("an upload bundle's file header is not JSON",
                                        part="bundle", value="") from None


def _check_test_classes(classes: Iterable[str], present: list[str], test_prefix: str) -> None:
    """Refuse a test set with a class the training data of the version (``present``: its
    paths) does not have, naming it."""
    train: set[str] = set()
    for p in present:
        parts = p.split("/")
        if len(parts) == 3 and parts[0] == "train":
            train.add(parts[1])
        elif len(parts) == 2 and parts[0] not in dataset_formats.SPLITS \
                and not p.startswith(test_prefix + "/"):
            train.add(parts[0])
    if not train:
        raise InvalidDatasetError("the dataset has no training classes yet: import the "
                                  "training data (<class>/<file>) before a test set")
    unknown = sorted(set(classes) - train)
    if unknown:
        raise InvalidDatasetError(
            f"class(es) of the test set not in the training data: {', '.join(unknown)} (the "
            f"training data has {', '.join(sorted(train))})", path=", ".join(unknown))


def _bundle_entry(header: Any) -> tuple[str, int, str]:
    """(path, size, sha256) of an upload bundle's file header, each checked."""
    if not isinstance(header, dict):
        raise InvalidReferenceError("an upload bundle's file header is not a JSON object",
                                    part="bundle", value=str(header)[:40])
    path, size, sha256 = header.get("path"), header.get("size"), header.get("sha256")
    if not isinstance(path, str):
        raise InvalidReferenceError("an upload bundle's file header has no path", part="bundle",
                                    value=str(header)[:40])
    validate_object_path(path)
    user_path(path, "upload")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= BUNDLE_UPLOAD_FILE_MAX:
        raise InvalidReferenceError(f"{path}: a bundled file's size must be 0 to "
                                    f"{BUNDLE_UPLOAD_FILE_MAX} bytes, not {size!r}",
                                    part="size", value=str(size)[:40])
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidReferenceError(f"{path}: a bundled file needs its SHA-256 (64 lowercase "
                                    "hex digits)", part="sha256", value=str(sha256)[:70])
    return path, size, sha256


_COALESCE = 256 * 1024


async def _coalesced(frames: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """Small frames joined into writes of about ``_COALESCE`` bytes: a bundle of small files is
    two frames per file, and each frame sent on its own costs the server an ASGI message and a
    socket write."""
    batch: list[bytes] = []
    size = 0
    async with aclosing(frames):
        async for frame in frames:
            if size and size + len(frame) > _COALESCE:
                yield b"".join(batch)
                batch, size = [], 0
            batch.append(frame)
            size += len(frame)
    if batch:
        yield b"".join(batch)


_writers: ThreadPoolExecutor | None = None
_writers_lock = threading.Lock()


def _bundle_writers() -> ThreadPoolExecutor:
    """The threads that write bundled files to lakeFS (the event loop's default pool is small
    and shared)."""
    global _writers
    with _writers_lock:
        if _writers is None:
            _writers = ThreadPoolExecutor(max_workers=2 * BUNDLE_UPLOAD_PARALLEL,
                                          thread_name_prefix="bundle-put")
        return _writers


async def _frame(path: str, obj: StreamedObject | AssetHubError) -> AsyncIterator[bytes]:
    """One file of a bundle: a 4-byte big-endian length, a JSON header, then its bytes; for a
    file that could not be read (the response has begun), a last header saying why."""
    if isinstance(obj, AssetHubError):
        body = to_wire(obj)[1]  # the error protocol's body; "error" as before
        header = json.dumps({**body, "path": path, "error": body["type"]}).encode()
        yield len(header).to_bytes(4, "big") + header
        return
    header = json.dumps({"path": path, "size": obj.length}).encode()
    yield len(header).to_bytes(4, "big") + header
    async for chunk in obj.chunks:
        yield chunk
