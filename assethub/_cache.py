"""The local content-addressed download cache, shared by the SDK and the server's storage layer.

Blobs by SHA-256 under ``root/blobs`` and immutable commit listings under ``root/listings``; files
are hard-linked from the cache into their destinations. Standard library only: the SDK imports it
(:mod:`assethub.storage.gateway`, the S3 gateway transfer, needs boto3 and stays on the server side).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BlobCache", "RemoteObject", "file_sha256", "place", "place_all", "run_parallel"]

_READ_CHUNK = 4 * 1024 * 1024


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One file of a version as listed by lakeFS."""

    path: str
    size: int
    checksum: str  # lakeFS's checksum (the ETag of the stored object)
    sha256: str | None  # from user metadata, when Asset Hub wrote the object
    physical: str = ""  # where the blockstore keeps it (``local:///...`` on one machine)

    @property
    def cache_key(self) -> str:
        if self.sha256:
            return f"sha256/{self.sha256[:2]}/{self.sha256}"
        return f"etag/{self.checksum[:2]}/{self.checksum}-{self.size}"

    def to_json(self) -> list[Any]:
        return [self.path, self.size, self.checksum, self.sha256, self.physical]

    @classmethod
    def from_json(cls, row: list[Any]) -> RemoteObject:
        return cls(row[0], int(row[1]), row[2], row[3], row[4] if len(row) > 4 else "")


class BlobCache:
    """Files by content under ``root/blobs`` and immutable commit listings under ``root/listings``.

    A blob is only ever written to a temporary name and renamed into place after its checksum
    is verified, so a present blob is a complete one.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.listings = root / "listings"
        self.tmp = root / "tmp"
        self._dirs: set[Path] = set()  # directories this instance made (or found): made once
        self._blobs = os.fspath(self.blobs)
        self._tmp = os.fspath(self.tmp)

    def _mkdir(self, d: Path) -> None:
        if d not in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            self._dirs.add(d)

    def blob_path(self, obj: RemoteObject) -> Path:
        return self.blobs / obj.cache_key

    def blob_file(self, obj: RemoteObject) -> str:
        """``blob_path`` as a string: thousands of pathlib objects cost more than the stat and
        the hard link a cached file needs."""
        return f"{self._blobs}/{obj.cache_key}"

    def has(self, obj: RemoteObject) -> bool:
        try:
            return os.stat(self.blob_file(obj)).st_size == obj.size
        except FileNotFoundError:
            return False

    def temp_file(self) -> Path:
        self._mkdir(self.tmp)
        return self.tmp / f"{os.getpid()}-{threading.get_ident()}-{os.urandom(6).hex()}"

    def put_blob(self, obj: RemoteObject, data: bytes) -> None:
        """Store verified content held in memory: written read-only under a temporary name,
        then renamed into place (string paths and raw writes: bundles bring thousands)."""
        self._mkdir(self.tmp)
        tmp = f"{self._tmp}/{os.getpid()}-{threading.get_ident()}-{os.urandom(6).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            final = self.blob_file(obj)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:  # the blob's fan-out directory, made on first use
                self._mkdir(Path(os.path.dirname(final)))
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def commit_blob(self, tmp: Path, obj: RemoteObject, *, read_only: bool = False) -> Path:
        final = self.blob_path(obj)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # the blob's fan-out directory, made on first use
            self._mkdir(final.parent)
            os.replace(tmp, final)
        if not read_only:  # blobs are shared by hard links: nobody should edit one in place
            final.chmod(0o444)
        return final

    def load_listing(self, repo: str, commit: str) -> list[RemoteObject] | None:
        try:
            rows = json.loads((self.listings / repo / f"{commit}.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return [RemoteObject.from_json(r) for r in rows]

    def save_listing(self, repo: str, commit: str, objects: list[RemoteObject]) -> None:
        d = self.listings / repo
        d.mkdir(parents=True, exist_ok=True)
        # unique per writer: threads of one process may save the same listing at once
        tmp = d / f".{commit}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps([o.to_json() for o in objects]))
        os.replace(tmp, d / f"{commit}.json")


def place_all(pairs: Iterable[tuple[Path | str, Path | str]]) -> None:
    """Put cached blobs at their destinations; files already there from the blob are kept.

    A new file is one hard link (the common case, a few microseconds); an existing different
    file is replaced atomically; across file systems blobs are copied. Paths may be strings
    (cheaper by the thousand than pathlib objects).
    """
    made: set[str] = set()
    for blob, dest in pairs:
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.link(blob, dest)
            continue
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if os.path.samefile(dest, blob):
                    continue
        except OSError:
            pass
        place(Path(blob), Path(dest))


def place(blob: Path, dest: Path) -> None:
    """Put a cached blob at ``dest``: a hard link when possible, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.part")
    try:
        os.link(blob, tmp)
    except OSError:
        import shutil

        shutil.copyfile(blob, tmp)
    os.replace(tmp, dest)


def run_parallel(jobs: Iterable[Callable[[], None]], max_workers: int) -> None:
    """Run jobs on a pool; the first failure cancels what has not started and is raised."""
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures: list[Future[None]] = [pool.submit(job) for job in jobs]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in done:
            exc = f.exception()
            if exc is not None:
                raise exc
