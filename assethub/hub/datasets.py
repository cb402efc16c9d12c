"""Datasets as versions and samples: the version graph, restoring an old version as the new
``main``, and previews of a version's files read in ranges, never downloaded whole.

Every method checks the caller's role (view to read, edit to restore) before it touches
storage. Built on :class:`~assethub.hub.versions.Versions`' storage and permissions.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from assethub.dataset_formats import SPLITS
from assethub.errors import InvalidReferenceError, NotAllowedError
from assethub.hub.identity import Principal
from assethub.hub.versions import Versions
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef, validate_object_path
from assethub.storage import CommitInfo, Storage
from assethub.storage._transact import BASED_ON, BASED_ON_COMMIT, EMPTY
from assethub.wire import (
    DatasetHead,
    FilePreview,
    PublishedVersion,
    VersionGraph,
    VersionNode,
)

RESTORED = "assethub.restored"  # commit metadata: the version a restore brought back
MAX_ROWS = 1000  # the most rows or lines one preview returns
MAX_FILES = 100  # the most files a version's summary previews
_FIRST_READ = 64 * 1024  # the first range read of a table or text
_MAX_READ = 4 * 2**20  # the most read of a table or text to find its first rows
_TABLES = (".csv", ".tsv")
_JSON_LINES = (".jsonl", ".ndjson")
_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_TEXTS = (".txt", ".md", ".ann", ".conf", ".yaml", ".yml", ".py", ".json", ".toml", ".ini",
          ".xml", ".html", ".rst", ".log")


def _dataset(path: AssetPath, what: str) -> None:
    if not path.is_dataset:
        raise NotAllowedError(f"{what} is for datasets; {path} is a model")


class Datasets:
    """The version graph, restore and previews of datasets, for callers with the role each needs."""

    def __init__(self, versions: Versions) -> None:
        self.versions = versions
        self.storage: Storage = versions.storage
        self.permissions = versions.permissions
        self.audit = versions.audit

    # -- the version graph -------------------------------------------------------------------
    def version_graph(self, who: Principal, dataset: AssetPath | str, *,
                      limit: int = 100) -> VersionGraph:
        """``main``'s commits (newest first, up to ``limit``), each with what it was based on,
        and the published versions; ``view`` on the dataset."""
        path = AssetPath.coerce(dataset)
        self.permissions.check(who, path, "view")
        _dataset(path, "the version graph")
        if not 1 <= limit <= 10_000:
            raise InvalidReferenceError("limit must be 1 to 10000", part="limit", value=str(limit))
        head = self.storage.get_commit(path.at(DEFAULT_BRANCH))
        commits = list(self.storage.log(path.at(DEFAULT_BRANCH), limit=limit + 1))
        more = len(commits) > limit
        commits = commits[:limit]
        tags = self.storage.list_tags(path)
        by_commit: dict[str, list[str]] = {}
        for t in tags:
            by_commit.setdefault(t.commit_id, []).append(t.name)
        known = {c.id: c for c in commits}
        for t in tags:  # a published version older than the commits shown
            if t.commit_id not in known:
                known[t.commit_id] = self.storage.get_commit(path.at(t.commit_id))
        nodes = tuple(_node(c, by_commit, head.id) for c in commits)
        published = []
        for t in sorted(tags, key=lambda t: known[t.commit_id].created):
            n = _node(known[t.commit_id], by_commit, head.id)
            published.append(PublishedVersion(t.name, t.commit_id, n.based_on, n.based_on_commit))
        return VersionGraph(str(path), head.id, tuple(published), nodes, more)

    def restore(self, who: Principal, dataset: AssetPath | str, version: str, *,
                message: str = "") -> CommitInfo:
        """Make ``version`` (a published version or a commit) the content of ``main`` in one new
        commit; the history and every published version stay. ``edit`` on the dataset."""
        path = AssetPath.coerce(dataset)
        with self.audit.audited(who, "dataset.restore", f"{path}:{version}"):
            self.permissions.check(who, path, "edit")
            _dataset(path, "restore")
            if version in (EMPTY, DEFAULT_BRANCH):
                raise InvalidReferenceError(
                    f"restore takes a published version or a commit, not {version!r} (to start "
                    "from nothing, import with --mode replace)", part="version", value=version)
            AssetRef(path, version)  # checks its form
            with self.storage.transact(
                    path.at(DEFAULT_BRANCH), message=message or f"Restore {version}",
                    metadata={"author": who.name or "", RESTORED: version}, base=version) as tx:
                pass
            assert tx.result is not None
            return tx.result

    # -- previews ----------------------------------------------------------------------------
    async def head(self, who: Principal, ref: AssetRef | str, path: str | None = None, *,
                   n: int = 10) -> DatasetHead:
        """The first ``n`` rows or lines of the file ``path`` of a version, or, without a path,
        the first ``n`` files each with its first rows; read in ranges. ``view``."""
        r = self.permissions.ref(who, ref, "view")
        if not 1 <= n <= MAX_ROWS:
            raise InvalidReferenceError(f"n must be 1 to {MAX_ROWS}", part="n", value=str(n))
        commit = await asyncio.to_thread(self.storage.resolve, r)
        at = r.path.at(commit)  # one version throughout
        if path:
            info = await asyncio.to_thread(self.storage.stat, at, validate_object_path(path))
            return DatasetHead(commit, (await self._preview(at, info.path, info.size, n),))
        files = await asyncio.to_thread(self.storage.list_objects, at, limit=min(n, MAX_FILES) + 1)
        shown = files[:min(n, MAX_FILES)]
        previews = [await self._preview(at, o.path, o.size, 3) for o in shown]
        return DatasetHead(commit, tuple(previews), len(files) > len(shown))

    async def _read(self, at: AssetRef, path: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive) of a file."""
        obj = await self.storage.get_stream(at, path, byte_range=f"bytes={start}-{end}")
        chunks = [c async for c in obj.chunks]
        return b"".join(chunks)

    async def _preview(self, at: AssetRef, path: str, size: int, n: int) -> FilePreview:
        suffix = PurePosixPath(path).suffix.lower()
        label, split = _class_of(path)
        common: dict[str, Any] = {"path": path, "size": size, "label": label, "split": split}
        if size == 0:
            return FilePreview(kind="text", bytes_read=0, **common)
        if suffix == ".parquet":
            return await self._parquet(at, path, size, n, common)
        if suffix in _IMAGES:
            return await self._image(at, path, size, common)
        data, whole = await self._lines(at, path, size, n + (1 if suffix in _TABLES else 0))
        if b"\x00" in data[:8000]:
            return FilePreview(kind="binary", bytes_read=len(data), **common)
        text = data.decode("utf-8", errors="replace")
        lines = text.splitlines()
        if not whole and lines and not text.endswith("\n"):
            lines = lines[:-1]  # the last line was cut by the range
        if suffix in _TABLES:
            rows = list(csv.reader(lines, delimiter="\t" if suffix == ".tsv" else ","))
            columns, body = (rows[0], rows[1:]) if rows else ([], [])
            return FilePreview(kind="table", bytes_read=len(data), columns=tuple(columns),
                               rows=tuple(tuple(r) for r in body[:n]),
                               truncated=len(body) > n or not whole, **common)
        if suffix in _JSON_LINES:
            table = _json_table([ln for ln in lines if ln.strip()][:n])
            if table is not None:
                cols, rows_ = table
                return FilePreview(kind="table", bytes_read=len(data), columns=cols, rows=rows_,
                                   truncated=len(lines) > n or not whole, **common)
        return FilePreview(kind="text", bytes_read=len(data), lines=tuple(lines[:n]),
                           truncated=len(lines) > n or not whole, **common)

    async def _lines(self, at: AssetRef, path: str, size: int, n: int) -> tuple[bytes, bool]:
        """The start of a file holding at least ``n`` lines (or all of it, or ``_MAX_READ``
        bytes); and whether that is the whole file. Each range read doubles the last."""
        data = b""
        step = _FIRST_READ
        while len(data) < size:
            end = min(size, len(data) + step, _MAX_READ) - 1
            if end < len(data):
                break
            data += await self._read(at, path, len(data), end)
            if data.count(b"\n") >= n:
                break
            step *= 2
        return data, len(data) >= size

    async def _image(self, at: AssetRef, path: str, size: int,
                     common: dict[str, Any]) -> FilePreview:
        from PIL import Image, UnidentifiedImageError

        data = await self._read(at, path, 0, min(size, _FIRST_READ) - 1)
        try:
            with Image.open(io.BytesIO(data)) as im:  # reads the header only
                return FilePreview(kind="image", bytes_read=len(data), width=im.width,
                                   height=im.height, image_format=im.format or "",
                                   mode=im.mode, **common)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return FilePreview(kind="binary", bytes_read=len(data), **common)

    async def _parquet(self, at: AssetRef, path: str, size: int, n: int,
                       common: dict[str, Any]) -> FilePreview:
        loop = asyncio.get_running_loop()

        def read(start: int, end: int) -> bytes:  # on a worker thread: the range on the loop
            return asyncio.run_coroutine_threadsafe(self._read(at, path, start, end), loop).result()

        ranged = _RangedFile(size, read)

        def first_rows() -> FilePreview:
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(ranged, pre_buffer=False)  # reads only the groups used
                batch = next(pf.iter_batches(batch_size=n), None)
            except Exception:  # not Parquet after all: say what it is, not why pyarrow failed
                return FilePreview(kind="binary", bytes_read=ranged.bytes_read, **common)
            columns = tuple(pf.schema_arrow.names)
            rows: tuple[tuple[str, ...], ...] = ()
            if batch is not None:
                data = batch.to_pydict()
                rows = tuple(tuple(_cell(data[c][i]) for c in columns)
                             for i in range(min(n, batch.num_rows)))
            total = pf.metadata.num_rows
            return FilePreview(kind="table", bytes_read=ranged.bytes_read, columns=columns,
                               rows=rows, total_rows=total, truncated=total > len(rows), **common)

        return await asyncio.to_thread(first_rows)


class _RangedFile(io.RawIOBase):
    """A read-only, seekable file whose reads are byte ranges of a stored file (for pyarrow,
    which reads a Parquet file's footer and then only the column chunks it needs)."""

    def __init__(self, size: int, read: Callable[[int, int], bytes]) -> None:
        super().__init__()
        self.size = size
        self._read_range = read
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        if want <= 0:
            return 0
        data = self._read_range(self._pos, self._pos + want - 1)
        view[:len(data)] = data
        self._pos += len(data)
        self.bytes_read += len(data)
        return len(data)


def _node(c: CommitInfo, tags: dict[str, list[str]], head: str) -> VersionNode:
    meta = c.metadata or {}
    if BASED_ON in meta:
        based_on, based_on_commit = meta[BASED_ON], meta.get(BASED_ON_COMMIT, "")
    else:  # written before the graph was recorded (or by lakeFS itself): its parent
        based_on = based_on_commit = c.parents[0] if c.parents else ""
    return VersionNode(c.id, c.message, meta.get("author") or c.committer, c.created, c.parents,
                       based_on, based_on_commit, tuple(sorted(tags.get(c.id, ()))), c.id == head,
                       meta.get(RESTORED, ""))


def _class_of(path: str) -> tuple[str, str]:
    """(class, split) of a file of a dir dataset: ``<class>/<file>`` or
    ``<split>/<class>/<file>``; empty where the path says nothing."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0].lower() in SPLITS:
        return parts[1], parts[0].lower()
    if len(parts) == 2 and parts[0].lower() not in SPLITS:
        return parts[0], ""
    if len(parts) == 2:
        return "", parts[0].lower()
    return "", ""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value[:64].hex()
    return json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)


def _json_table(lines: list[str]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None:
    """JSON lines of objects as a table (columns in order of appearance), or None."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        records.append(record)
    columns = list(dict.fromkeys(k for r in records for k in r))
    return tuple(columns), tuple(tuple(_cell(r.get(c)) for c in columns) for r in records)

