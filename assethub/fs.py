"""``assethub://``: asset versions as an fsspec filesystem, for pandas, Arrow, torch and MLflow.

    import pandas as pd
    df = pd.read_csv("assethub://alice/dataset/tables/iris@v1/iris.csv")
    pq.read_table("assethub://alice/dataset/tables/big@main/part.parquet", filters=[("k", "=", 3)])

A path is ``<owner>/<model|dataset>/<folder>/<name>@<ref>/<path in the version>`` (``:<ref>``
works too; no ref is ``main``). Everything goes through the Asset Hub server with the SDK's
client, so the server checks each caller's role exactly as for the API; a version you may not
see is a ``FileNotFoundError``, a change you may not make a ``PermissionError``.

- **Pinned.** A filesystem object resolves each ref to a commit once and reads that commit for
  the rest of its life (a branch that moves meanwhile is not seen); its own writes move its pin
  to the commit they made. ``invalidate_cache()`` forgets the pins. Objects are not cached by
  fsspec (``cachable = False``): each ``pandas.read_*(url)`` call makes a new one and sees the
  branch as it is then.
- **Reads.** Files up to ``whole_file_max`` bytes (16 MiB), and any file the local content cache
  already holds, are read from the cache (fetched whole and checked once, shared with
  ``Client.download``); larger files are read by byte range through the server's file GET, so
  pyarrow reads only the footer and the row groups and columns it needs.
- **Writes.** ``open(path, "wb")``, ``put`` and ``rm`` on a branch are one atomic commit each;
  inside ``with fs.transaction:`` everything written is one commit per branch at the end (none
  if the block fails).

Connection settings come from the SDK's usual configuration (``ASSETHUB_URL`` /
``ASSETHUB_TOKEN``, ``assethub login``) or from storage options ``server`` (the server's URL:
fsspec keeps ``url`` for the file's), ``token``, ``cache_dir``. Only the SDK is imported here,
never the server stack.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from fsspec.transaction import Transaction

from assethub import errors
from assethub._cache import RemoteObject, run_parallel
from assethub.client import Client
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef, validate_object_path

__all__ = ["AssetHubFileSystem", "HubPath", "parse_url"]

PROTOCOL = "assethub"
_MiB = 1024 * 1024
#: files up to this size are fetched whole into the content cache on first read
WHOLE_FILE_MAX = 16 * _MiB
#: a read larger than this goes as parallel ranges of _PART bytes
_PARALLEL_FROM = 16 * _MiB
_PART = 8 * _MiB
_AHEAD_MIN, _AHEAD_MAX = 256 * 1024, 32 * _MiB  # read-ahead of sequential ranged reads


@dataclass(frozen=True, slots=True)
class HubPath:
    """``<asset>@<ref>`` and a path inside the version (``""``: its root)."""

    ref: AssetRef
    path: str = ""

    @property
    def root(self) -> str:
        """The version's root as fsspec names it (no protocol)."""
        return f"{self.ref.path}@{self.ref.ref}"

    def name(self, inner: str) -> str:
        return f"{self.root}/{inner}" if inner else self.root


def parse_url(url: str) -> HubPath:
    """``[assethub://]<owner>/<kind>/<folder>/<name>[@<ref>|:<ref>][/<path>]`` as a
    :class:`HubPath`; an :class:`~assethub.errors.InvalidReferenceError` (a ValueError) saying
    the expected form otherwise."""
    text = AssetHubFileSystem._strip_protocol(url)
    parts = text.split("/", 4)
    if len(parts) < 4 or not all(parts[:4]):
        raise errors.InvalidReferenceError(
            f"invalid assethub URL {url!r}: expected assethub://<owner>/<model|dataset>/<folder>/"
            "<name>@<ref>/<path>", part="assethub URL", value=url[:300])
    owner, kind, folder, named = parts[:4]
    if ":" in named:  # names hold no ':' at all
        name, _, ref = named.partition(":")
    else:  # a name may hold '@'; a ref never does
        name, sep, ref = named.rpartition("@")
        if not sep:
            name, ref = named, DEFAULT_BRANCH
    inner = parts[4].strip("/") if len(parts) == 5 else ""
    if inner:
        validate_object_path(inner)
    return HubPath(AssetRef(AssetPath.parse(f"{owner}/{kind}/{folder}/{name}"), ref), inner)


@contextmanager
def _as_fs_errors(url: str) -> Iterator[None]:
    """The hub's errors as fsspec users expect them: a missing (or hidden) asset or ref is a
    FileNotFoundError; refusals already are PermissionErrors, bad names ValueErrors."""
    try:
        yield
    except (errors.NotFoundError, errors.RefNotFoundError) as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc), url) from exc


def _entry(name: str, obj: RemoteObject | None) -> dict[str, Any]:
    if obj is None:
        return {"name": name, "size": 0, "type": "directory"}
    return {"name": name, "size": obj.size, "type": "file", "sha256": obj.sha256,
            "checksum": obj.checksum}


class AssetHubFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Asset versions on an Asset Hub server as a filesystem (see the module's docstring)."""

    protocol = PROTOCOL
    root_marker = ""
    cachable = False  # each object pins its refs: a new pandas call must see a branch move

    def __init__(self, server: str | None = None, token: str | None = None, *,
                 cache_dir: str | None = None, whole_file_max: int = WHOLE_FILE_MAX,
                 commit_message: str = "Written through assethub:// (fsspec)",
                 client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client or Client(server, token, cache_dir=cache_dir)
        self._pid = os.getpid()
        self.whole_file_max = whole_file_max
        self.commit_message = commit_message
        self._pins: dict[AssetRef, str] = {}
        self._files: dict[tuple[AssetPath, str], dict[str, RemoteObject]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The SDK client this filesystem reads and writes with; a forked process (a DataLoader
        worker) gets one of its own, never its parent's connections."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._client, self._pid = self._client.fresh(), os.getpid()
        return self._client

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        text = os.fspath(path) if not isinstance(path, str) else path
        if text.startswith(f"{PROTOCOL}://"):
            text = text[len(PROTOCOL) + 3:]
        elif text.startswith(f"{PROTOCOL}::"):
            text = text[len(PROTOCOL) + 2:]
        return text.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{self._strip_protocol(name)}"

    # -- pins and listings -------------------------------------------------------------------
    def commit_of(self, ref: AssetRef) -> str:
        """The commit ``ref`` is pinned to in this filesystem (resolved, and so permission
        checked by the server, on first use)."""
        with self._lock:
            pinned = self._pins.get(ref)
        if pinned is None:
            with _as_fs_errors(str(ref)):
                pinned = self.client.resolve(ref)
            with self._lock:
                pinned = self._pins.setdefault(ref, pinned)
        return pinned

    def _pinned(self, hp: HubPath) -> AssetRef:
        return hp.ref.path.at(self.commit_of(hp.ref))

    def _objects(self, hp: HubPath) -> dict[str, RemoteObject]:
        at = self._pinned(hp)
        key = (at.path, at.ref)
        with self._lock:
            found = self._files.get(key)
        if found is None:
            with _as_fs_errors(hp.root):
                found = {o.path: o for o in self.client.commit_files(at)}
            with self._lock:
                self._files[key] = found
        return found

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget every pin (the next use resolves each ref again); a path alone changes
        nothing: this filesystem's own writes move its pins themselves."""
        if path is None:
            with self._lock:
                self._pins.clear()
                self._files.clear()
        super().invalidate_cache(path)

    # -- reading -----------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        hp = parse_url(path)
        files = self._objects(hp)
        if hp.path in files:
            out = [_entry(hp.name(hp.path), files[hp.path])]
        else:
            base = f"{hp.path}/" if hp.path else ""
            children: dict[str, RemoteObject | None] = {}
            for p, obj in files.items():
                if p.startswith(base):
                    head, sep, _ = p[len(base):].partition("/")
                    children[head] = None if sep else obj
            if not children and hp.path:
                raise FileNotFoundError(errno.ENOENT, f"no file or directory {hp.path!r} in "
                                        f"{hp.ref}", self.unstrip_protocol(path))
            out = [_entry(hp.name(base + c), children[c]) for c in sorted(children)]
        return out if detail else [e["name"] for e in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        hp = parse_url(path)
        files = self._objects(hp)
        if hp.path in files:
            return _entry(hp.name(hp.path), files[hp.path])
        base = f"{hp.path}/" if hp.path else ""
        if not hp.path or any(p.startswith(base) for p in files):
            return _entry(hp.name(hp.path), None)
        raise FileNotFoundError(errno.ENOENT, f"no file or directory {hp.path!r} in {hp.ref}",
                                self.unstrip_protocol(path))

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        """Every file under ``path`` from the commit's one listing (no walk of directories)."""
        hp = parse_url(path)
        files = self._objects(hp)
        if hp.path in files:
            found = {hp.name(hp.path): _entry(hp.name(hp.path), files[hp.path])}
            return found if detail else list(found)
        base = f"{hp.path}/" if hp.path else ""
        out: dict[str, dict[str, Any]] = {}
        for p in sorted(files):
            if not p.startswith(base):
                continue
            rel = p[len(base):].split("/")
            if maxdepth is not None and len(rel) > maxdepth:
                continue
            if withdirs:
                for i in range(1, len(rel)):
                    d = hp.name(base + "/".join(rel[:i]))
                    out.setdefault(d, _entry(d, None))
            out[hp.name(p)] = _entry(hp.name(p), files[p])
        if withdirs and out:
            out.setdefault(hp.name(hp.path), _entry(hp.name(hp.path), None))
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def _file(self, path: str) -> tuple[HubPath, AssetRef, RemoteObject]:
        hp = parse_url(path)
        obj = self._objects(hp).get(hp.path)
        if obj is None:
            raise FileNotFoundError(errno.ENOENT, f"no file {hp.path!r} in {hp.ref}",
                                    self.unstrip_protocol(path))
        return hp, self._pinned(hp), obj

    def local_file(self, path: str) -> Path | None:
        """The content-cache file of ``path`` when it is read whole (small, or already cached);
        None for a large file read by ranges."""
        _, at, obj = self._file(path)
        if obj.size > self.whole_file_max and not self.client.cache.has(obj):
            return None
        with _as_fs_errors(self.unstrip_protocol(path)):
            return self.client.cached_blob(at, obj)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of a file of the pinned commit: one ranged
        request, or several in parallel for a large span."""
        _, at, obj = self._file(path)
        end = min(end, obj.size)
        if end - start <= _PARALLEL_FROM:
            with _as_fs_errors(self.unstrip_protocol(path)):
                return self.client.read_range(at, obj.path, start, end)
        out = bytearray(end - start)

        def part(lo: int) -> None:
            hi = min(lo + _PART, end)
            out[lo - start:hi - start] = self.client.read_range(at, obj.path, lo, hi)

        with _as_fs_errors(self.unstrip_protocol(path)):
            run_parallel([functools.partial(part, lo) for lo in range(start, end, _PART)],
                         self.client.max_workers)
        return bytes(out)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> Any:
        if mode == "rb":
            local = self.local_file(path)
            if local is not None:
                return open(local, "rb")  # the caller closes it
            _, _, obj = self._file(path)
            # no fsspec cache: _RangedFile keeps its own adaptive read-ahead buffer
            return _RangedFile(self, path, mode, block_size=block_size or _AHEAD_MIN,
                               cache_type="none", size=obj.size)
        if mode not in ("wb", "xb"):
            raise NotImplementedError(f"assethub:// opens files with 'rb' or 'wb', not {mode!r}")
        hp = parse_url(path)
        if not hp.path:
            raise IsADirectoryError(errno.EISDIR, "a version's root is not a file", path)
        if mode == "xb" and self.exists(path):
            raise FileExistsError(errno.EEXIST, "the file exists", path)
        return _WriteFile(self, path, "wb", block_size=block_size, autocommit=autocommit)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        _, _, obj = self._file(path)
        lo = 0 if start is None else (start if start >= 0 else max(0, obj.size + start))
        hi = obj.size if end is None else (end if end >= 0 else obj.size + end)
        hi = min(hi, obj.size)
        if hi <= lo:
            return b""
        local = self.local_file(path)
        if local is not None:
            with open(local, "rb") as f:
                f.seek(lo)
                return f.read(hi - lo)
        return self.read_range(path, lo, hi)

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None,
                 **kwargs: Any) -> None:
        """A file into ``lpath`` (a copy of the checked cache file; whole files only)."""
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        _, at, obj = self._file(rpath)
        with _as_fs_errors(self.unstrip_protocol(rpath)):
            blob = self.client.cached_blob(at, obj)
        if outfile is not None:
            with open(blob, "rb") as f:
                shutil.copyfileobj(f, outfile)
            return
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
        shutil.copyfile(blob, lpath)

    def checksum(self, path: str) -> int:
        return int(self.info(path)["checksum"][:15] or "0", 16) if self.isfile(path) else 0

    def ukey(self, path: str) -> str:
        info = self.info(path)
        return str(info.get("sha256") or info.get("checksum") or info["name"])

    # -- writing: one atomic commit per branch ----------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Directories exist by holding files: nothing to do."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Directories exist by holding files: nothing to do."""

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite",
                 **kwargs: Any) -> None:
        if os.path.isdir(lpath):
            return
        hp = parse_url(rpath)
        if not hp.path:
            raise IsADirectoryError(errno.EISDIR, "a version's root is not a file", rpath)
        self._change(_Pending(hp, Path(lpath), owned=False))

    def put(self, lpath: Any, rpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Local files into a version: one commit for all of them (or the transaction's)."""
        if self._intrans:
            super().put(lpath, rpath, recursive=recursive, **kwargs)
            return
        with self.transaction:
            super().put(lpath, rpath, recursive=recursive, **kwargs)

    def rm_file(self, path: str) -> None:
        hp, _, _ = self._file(path)
        self._change(_Pending(hp, None, owned=False))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Files (a directory's with ``recursive``) out of a version in one commit."""
        if self._intrans:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        with self.transaction:
            for p in self.expand_path(path, recursive=recursive, maxdepth=maxdepth):
                if self.isfile(p):
                    self.rm_file(p)

    def _change(self, change: _Pending) -> None:
        if self._intrans:
            self.transaction.files.append(change)
        else:
            self.commit_changes([change])

    def commit_changes(self, changes: list[_Pending]) -> None:
        """One commit per branch for ``changes``; each branch's pin moves to its commit. A
        branch this filesystem has read from must not have moved since (the commit is made on
        the pinned commit: :class:`~assethub.errors.ConcurrentUpdateError` otherwise)."""
        from assethub import wire

        by_ref: dict[AssetRef, dict[str, _Pending]] = {}
        for c in changes:
            by_ref.setdefault(c.hp.ref, {})[c.hp.path] = c  # the last write of a path wins
        for ref, todo in by_ref.items():
            with self._lock:
                parent = self._pins.get(ref)
            ops: list[wire.AddFile | wire.DeleteFile] = [
                wire.AddFile(c.local, p) if c.local is not None else wire.DeleteFile(p)
                for p, c in todo.items()]
            with _as_fs_errors(str(ref)):
                made = self.client.create_commit(ref, ops, message=self.commit_message,
                                                 parent_commit=parent)
            with self._lock:
                self._pins[ref] = made.id


@dataclass
class _Pending:
    """One change of a transaction: a local file to add at ``hp`` (None: delete ``hp``)."""

    hp: HubPath
    local: Path | None
    owned: bool  # a temporary file of ours, removed once committed or discarded

    def commit(self) -> None:  # the transaction commits everything at once
        pass

    def discard(self) -> None:
        if self.owned and self.local is not None:
            self.local.unlink(missing_ok=True)


class _HubTransaction(Transaction):  # type: ignore[misc]
    """Everything written inside ``with fs.transaction:``, committed at its end: one commit
    per branch, or nothing when the block raised."""

    def complete(self, commit: bool = True) -> None:
        fs = cast(AssetHubFileSystem, self.__dict__["fs"])
        files = list(self.files)
        self.files.clear()
        # fsspec queues the files opened for writing; put_file and rm_file queue _Pending
        changes = [c for c in (f if isinstance(f, _Pending) else getattr(f, "_change", None)
                               for f in files) if c is not None]
        try:
            if commit and changes:
                fs.commit_changes(changes)
        finally:
            for f in files:
                f.discard()
            fs._intrans = False
            fs._transaction = None
            self.fs = None


class _RangedFile(AbstractBufferedFile):  # type: ignore[misc]
    """A large file read by byte ranges through the server, with an adaptive read-ahead: a
    read that continues where the last one ended doubles how much more is fetched (256 KiB up
    to 32 MiB), any other read fetches exactly what it asks for. Sequential readers (a whole
    table, small buffered reads) make few requests; a filtered Parquet read, which jumps from
    the footer to the column chunks it needs, fetches no more than those."""

    def _fetch_range(self, start: int, end: int) -> bytes:
        buf: bytes = getattr(self, "_buf", b"")
        at: int = getattr(self, "_buf_at", 0)
        ahead: int = getattr(self, "_ahead", 0)
        head = b""
        lo = start
        if at <= start < at + len(buf):
            head = buf[start - at:end - at]
            if len(head) >= end - start:
                return head
            lo = start + len(head)
        sequential = (bool(buf) and lo == at + len(buf)) or lo == 0
        ahead = min(max(2 * ahead, _AHEAD_MIN), _AHEAD_MAX) if sequential else 0
        data: bytes = self.fs.read_range(self.path, lo, min(end + ahead, self.size))
        self._buf, self._buf_at, self._ahead = data, lo, ahead
        return head + data[:end - lo]


class _WriteFile(AbstractBufferedFile):  # type: ignore[misc]
    """A new file, spooled to a local temporary file and committed when closed (or at the end
    of the transaction)."""

    def _initiate_upload(self) -> None:
        spool_dir = self.fs.client.cache.tmp  # the cache's file system: cheap to hard-link later
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="fs-write-", dir=spool_dir)
        os.close(fd)
        self._spool = Path(name)

    def _upload_chunk(self, final: bool = False) -> bool:
        with open(self._spool, "ab") as out:
            out.write(self.buffer.getvalue())
        if final:
            change = _Pending(parse_url(self.path), self._spool, owned=True)
            if self.autocommit:
                try:
                    self.fs.commit_changes([change])
                finally:
                    change.discard()
            else:
                self._change = change
        return True

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        change = getattr(self, "_change", None)
        if change is not None:
            change.discard()


AssetHubFileSystem.transaction_type = _HubTransaction
