"""Direct transfer: presigned URLs of the object store behind lakeFS, so a file's bytes move
between the client and the object store and never through Asset Hub.

lakeFS says whether its blockstore presigns (``config``'s ``pre_sign_support``: S3, GCS, Azure
yes; the local blockstore no). Reads: a listing with ``presign=true`` turns each object's
physical address into a presigned GET. Writes, inside a transaction (its hidden branch):
``get_physical_address(presign=True)`` gives a fresh address and a presigned PUT; after the
client's PUT, :meth:`Presigning.link_upload` checks with the object store that the object is
there at the size the client declared (a one-byte ranged GET of a presigned URL: the server
holds no object-store credentials) and links it with the object store's ETag and the SHA-256
the client computed while uploading, as user metadata, as the proxied upload records it. The
commit is the transaction's usual atomic step.

One PUT per file (S3 takes up to 5 GiB in one); lakeFS's presigned multipart upload is
experimental in 1.86 and not used.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import urllib3

from assethub.errors import (
    ChecksumMismatchError,
    InvalidReferenceError,
    StorageUnavailableError,
    TransferError,
)
from assethub.refs import AssetPath, AssetRef, validate_object_path
from assethub.storage import _policy
from assethub.storage._lakefs import PAGE, LakeFS, sha256_of, timestamp
from assethub.storage._transact import Transaction
from assethub.wire import ObjectInfo, PresignedObject, PresignedPut

if TYPE_CHECKING:
    from assethub.wire import CommitInfo

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (?:\d+-\d+|\*)/(\d+)")
_WORKERS = 8  # lakeFS calls and object-store checks of one request at once
_LISTING_PAGES = 3  # pages of a branch's listing read for a group's URLs before stat'ing the rest
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class UploadLink:
    """A file a client PUT to a presigned URL, as it declares it: where, how large, the
    object store's ETag for the PUT and the SHA-256 of the bytes."""

    path: str
    physical_address: str
    size: int
    sha256: str
    etag: str


@dataclass(frozen=True, slots=True)
class PresignedListing:
    commit_id: str
    objects: tuple[PresignedObject, ...]
    next_after: str | None


class Presigning:
    """The presigned half of :class:`assethub.storage.Storage`."""

    if TYPE_CHECKING:
        lakefs: LakeFS

        def repository(self, asset: AssetPath | str) -> str: ...
        def _get_commit(self, repo: str, r: AssetRef) -> CommitInfo: ...

    _presign_support: bool | None = None
    _object_http: urllib3.PoolManager | None = None
    _presign_pool: ThreadPoolExecutor | None = None
    _presign_lock = threading.Lock()

    def presign_supported(self) -> bool:
        """Whether lakeFS's blockstore hands out presigned URLs (asked once per connection:
        a lakeFS keeps its blockstore)."""
        if self._presign_support is None:
            with self.lakefs.translate(what="config"):
                cfg = self.lakefs.api.config_api.get_config()
            storages = [cfg.storage_config] if cfg.storage_config else []
            storages += list(getattr(cfg, "storage_config_list", None) or [])
            self._presign_support = bool(storages) and all(bool(s.pre_sign_support) for s in storages)
        return self._presign_support

    def _require_presign(self) -> None:
        if not self.presign_supported():
            raise InvalidReferenceError(
                "this lakeFS's blockstore does not presign: transfer through the server instead",
                part="presign", value="unsupported")

    # -- reads ---------------------------------------------------------------------------------
    def presigned_objects(self, ref: AssetRef | str, *, prefix: str = "", after: str = "",
                          limit: int = PAGE) -> PresignedListing:
        """One page of the files of a version (recursively under ``prefix``) with presigned
        GET URLs. A branch or tag is resolved to its commit first; pass that commit on for the
        next pages."""
        self._require_presign()
        r = AssetRef.coerce(ref)
        if prefix:
            _policy.user_path(prefix, "list")
        if not 1 <= limit <= PAGE:
            raise InvalidReferenceError(f"a page holds 1 to {PAGE} files", part="limit",
                                        value=str(limit))
        if len(after) > 1024:
            raise InvalidReferenceError("after is over 1024 characters", part="after",
                                        value=after[:20])
        repo = self.repository(r.path)
        commit = self._get_commit(repo, r).id
        params: dict[str, Any] = {"user_metadata": "true", "presign": "true", "amount": limit,
                                  "after": after}
        if prefix:
            params["prefix"] = prefix
        with self.lakefs.translate(asset=r.path, ref=str(r), what="ref"):
            page = self.lakefs.json_page(f"/repositories/{repo}/refs/{commit}/objects/ls", **params)
        objects = tuple(
            PresignedObject(str(o["path"]), int(o.get("size_bytes") or 0), str(o["checksum"]),
                            sha256_of(o.get("metadata")), str(o["physical_address"]),
                            o.get("physical_address_expiry"))
            for o in page.results if not _policy.is_reserved(str(o.get("path", ""))))
        more = page.pagination.next_offset if page.pagination.has_more else None
        return PresignedListing(commit, objects, more or None)

    # -- writes (inside a transaction) ------------------------------------------------------------
    def presign_upload(self, txn: Transaction, path: str) -> PresignedPut:
        """A fresh physical address for ``path`` in the transaction and a presigned PUT to it."""
        return self.presign_uploads(txn, [path])[0]

    def presign_uploads(self, txn: Transaction, paths: list[str]) -> list[PresignedPut]:
        """A fresh physical address and a presigned PUT for each of ``paths``: lakeFS hands
        out each (and remembers it, for a while, as the one address a link may name), asked
        several at once on a raw connection pool."""
        self._require_presign()
        for p in paths:
            _policy.user_path(validate_object_path(p), "upload")
        url = f"/repositories/{quote(txn.repo)}/branches/{quote(txn.branch)}/staging/backing"

        def one(path: str) -> PresignedPut:
            with self.lakefs.translate(ref=txn.ref, what="upload"):
                loc = self._lakefs_json("GET", url, path=path, presign="true")
            if not loc.get("presigned_url") or not loc.get("physical_address"):
                raise StorageUnavailableError("lakeFS returned no presigned URL for an upload")
            return PresignedPut(path, str(loc["presigned_url"]), str(loc["physical_address"]),
                                loc.get("presigned_url_expiry"))

        return self._each(one, paths)

    def storage_namespace(self, txn: Transaction) -> str:
        """Where the transaction's repository keeps its objects (what every address it issues
        starts with); asked once per batch of links, never remembered: a repository deleted and
        made again under its name gets a new one."""
        with self.lakefs.translate(what="repository"):
            return str(self.lakefs.api.repositories_api.get_repository(txn.repo).storage_namespace)

    def link_upload(self, txn: Transaction, path: str, *, physical_address: str, size: int,
                    sha256: str, etag: str, max_bytes: int | None = None,
                    namespace: str | None = None) -> ObjectInfo:
        """Record a file the client PUT to a presigned URL as ``path`` of the transaction, if
        the object store holds it there at ``size`` with ``etag`` (what its PUT answered);
        ``sha256`` (the client's, computed while it uploaded) is kept as user metadata and
        checked by every download. Otherwise the link is undone and the error says why."""
        return self.link_uploads(txn, [UploadLink(path, physical_address, size, sha256, etag)],
                                 max_bytes=max_bytes, namespace=namespace)[0]

    def link_uploads(self, txn: Transaction, files: list[UploadLink], *,
                     max_bytes: int | None = None, namespace: str | None = None) -> list[ObjectInfo]:
        """:meth:`link_upload` for a group of files: every declaration checked before any
        link, the links made several at once, then the object store asked about each file
        through URLs lakeFS presigns for the whole group in one listing (not a stat per file).
        All or nothing: if lakeFS refuses a link or the store does not hold a file as
        declared, none of the group stays linked and the first file's error is raised."""
        namespace = (namespace or self.storage_namespace(txn)).rstrip("/") + "/"
        checked = [self._checked_link(f, max_bytes, namespace) for f in files]
        url = f"/repositories/{quote(txn.repo)}/branches/{quote(txn.branch)}/staging/backing"

        def link(f: UploadLink) -> ObjectInfo:
            def refused(status: int, msg: str) -> BaseException:
                return InvalidReferenceError(f"lakeFS refused to link {f.path}: {msg[:200]}",
                                             part="physical_address",
                                             value=f.physical_address[:200])
            body = {"staging": {"physical_address": f.physical_address}, "checksum": f.etag,
                    "size_bytes": f.size, "user_metadata": {"sha256": f.sha256},
                    "content_type": "application/octet-stream"}
            with self.lakefs.translate(ref=txn.ref, what="upload",
                                       on={400: refused, 401: refused, 403: refused, 404: refused}):
                st = self._lakefs_json("PUT", url, body, path=f.path)
            return ObjectInfo(f.path, int(st.get("size_bytes") or f.size), str(st.get("checksum")),
                              f.sha256, timestamp(int(st.get("mtime") or 0)),
                              st.get("content_type"))

        outcomes = self._each(link, checked, errors=True)
        linked = [f.path for f, o in zip(checked, outcomes, strict=True)
                  if not isinstance(o, BaseException)]
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self._unlink(txn, linked)
            raise failed[0]
        found = self._observe_all(txn, checked)
        bad = [f for f in checked if found[f.path] != (f.size, f.etag)]
        if bad:
            self._unlink(txn, linked)
            f = bad[0]
            found_size, found_etag = found[f.path]
            raise ChecksumMismatchError(
                f"{f.path} is not in the object store as declared: it holds {found_size} bytes "
                f"(ETag {found_etag or 'none'}), the upload said {f.size} (ETag {f.etag})",
                path=f.path)
        return [o for o in outcomes if isinstance(o, ObjectInfo)]

    @staticmethod
    def _checked_link(f: UploadLink, max_bytes: int | None, namespace: str) -> UploadLink:
        _policy.user_path(validate_object_path(f.path), "upload")
        if not _SHA256.fullmatch(f.sha256):
            raise InvalidReferenceError("sha256 must be 64 lowercase hex digits", part="sha256",
                                        value=f.sha256[:70])
        if f.size < 0 or (max_bytes is not None and f.size > max_bytes):
            raise InvalidReferenceError(f"size must be 0 to {max_bytes} bytes", part="size",
                                        value=str(f.size))
        etag = f.etag.strip().strip('"')
        if not etag or len(etag) > 200:
            raise InvalidReferenceError("etag must be the object store's ETag for the PUT",
                                        part="etag", value=etag[:200])
        if not f.physical_address.startswith(namespace):
            raise InvalidReferenceError(
                f"{f.physical_address[:200]} is not an address of this asset",
                part="physical_address", value=f.physical_address[:200])
        return UploadLink(f.path, f.physical_address, f.size, f.sha256, etag)

    def _unlink(self, txn: Transaction, paths: list[str]) -> None:
        url = f"/repositories/{quote(txn.repo)}/branches/{quote(txn.branch)}/objects"

        def one(path: str) -> None:
            with suppress(Exception), self.lakefs.translate(ref=txn.ref, what="upload"):
                self._lakefs_json("DELETE", url, path=path)

        self._each(one, paths)

    def _observe_all(self, txn: Transaction, files: list[UploadLink]) -> dict[str, tuple[int, str]]:
        """Size and ETag of what the object store holds for each linked file: presigned GET
        URLs for the group from lakeFS's listing of the branch (a few pages at most, from the
        group's first path to its last; a file not met there is stat'ed alone), then a
        one-byte ranged GET of each (the server holds no object-store keys)."""
        want = {f.path: f for f in files}
        urls: dict[str, str] = {}
        paths = sorted(want)
        first, last = paths[0], paths[-1]  # sorted: their common start is every path's
        n = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b),
                 min(len(first), len(last)))
        prefix = first[:n]
        after = paths[0][:-1]  # lakeFS lists after this value: the first path is included
        base = f"/repositories/{quote(txn.repo)}/refs/{quote(txn.branch)}/objects"
        for _ in range(_LISTING_PAGES):
            with self.lakefs.translate(ref=txn.ref, what="ref"):
                page = self._lakefs_json("GET", f"{base}/ls", prefix=prefix, after=after,
                                         amount=PAGE, presign="true", user_metadata="false")
            for o in page.get("results", []):
                p = str(o.get("path", ""))
                if p in want and o.get("checksum") == want[p].etag:
                    urls[p] = str(o["physical_address"])
            results = page.get("results") or []
            more = page.get("pagination", {}).get("has_more")
            if not more or not results or str(results[-1].get("path", "")) >= paths[-1]:
                break
            after = page["pagination"]["next_offset"]

        def stat(path: str) -> None:
            with self.lakefs.translate(ref=txn.ref, what=f"object:{path}"):
                st = self._lakefs_json("GET", f"{base}/stat", path=path, presign="true")
            urls[path] = str(st["physical_address"])

        self._each(stat, [p for p in paths if p not in urls])
        got = self._each(lambda f: self._observe_url(f.path, urls[f.path], empty=f.size == 0),
                         files)
        return {f.path: g for f, g in zip(files, got, strict=True)}

    def _observe(self, txn: Transaction, path: str, *, empty: bool) -> tuple[int, str]:
        """Size and ETag of what the object store holds for ``path`` of the transaction."""
        with self.lakefs.translate(ref=txn.ref, what=f"object:{path}"):
            st = self._lakefs_json(
                "GET", f"/repositories/{quote(txn.repo)}/refs/{quote(txn.branch)}/objects/stat",
                path=path, presign="true")
        return self._observe_url(path, str(st["physical_address"]), empty=empty)

    def _observe_url(self, path: str, url: str, *, empty: bool) -> tuple[int, str]:
        """A one-byte ranged GET of a presigned URL; for a file said to be ``empty``, which
        has no first byte, a GET of nothing."""
        try:
            resp = self._object_pool().request(
                "GET", url, headers=None if empty else {"Range": "bytes=0-0"},
                preload_content=False, retries=False, timeout=urllib3.Timeout(30))
        except urllib3.exceptions.HTTPError as exc:
            raise StorageUnavailableError(
                f"cannot reach the object store to check {path}: {type(exc).__name__}") from None
        try:
            status = resp.status
            if status == 206 or (empty and status == 200):
                resp.read(2)  # at most the one byte asked for (an empty file: nothing)
                if resp.length_remaining == 0:  # back to the pool only with nothing unread
                    resp.release_conn()
        finally:
            resp.close()  # a body left unread (a store that ignores Range) is not read here
        etag = (resp.headers.get("etag") or "").strip('"')
        m = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range") or "")
        if status == 416:  # an empty object has no first byte
            return (int(m.group(1)) if m else 0), etag
        if status == 404:
            return -1, ""
        if status >= 500:
            raise StorageUnavailableError(f"the object store failed checking {path}: "
                                          f"HTTP {status}")
        if status == 200:  # a store that ignores Range: the length says it
            return int(resp.headers.get("content-length") or 0), etag
        if status != 206 or m is None:
            raise TransferError(f"the object store refused checking {path}: HTTP {status}",
                                path=path)
        return int(m.group(1)), etag

    # -- plumbing: raw calls on pooled connections, several at once ---------------------------
    def _lakefs_json(self, method: str, url: str, body: Any = None, /, **params: Any) -> Any:
        """One lakeFS API call as plain JSON on the SDK's own connection pool (no model
        objects: a tenth of the SDK's CPU per call); a failure raises the SDK's ApiException
        like a typed call, for :meth:`LakeFS.translate`."""
        api = self.lakefs.api._api
        headers = {"Accept": "application/json",
                   "Authorization": api.configuration.get_basic_auth_token()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = api.rest_client.request(
            method, f"{self.lakefs.endpoint}/api/v1{url}?{urlencode(params)}", headers=headers,
            body=body, _request_timeout=60)
        return json.loads(resp.data) if resp.data else None

    def _each(self, fn: Callable[[_T], _R], items: list[_T], *,
              errors: bool = False) -> list[Any]:
        """``fn`` of every item, several at once; with ``errors`` an item's exception is its
        result, otherwise the first one raises (after all have run)."""
        outcomes: list[Any] = []
        if len(items) <= 1:
            for item in items:
                try:
                    outcomes.append(fn(item))
                except Exception as exc:
                    outcomes.append(exc)
        else:
            for fut in [self._pool().submit(fn, item) for item in items]:
                try:
                    outcomes.append(fut.result())
                except Exception as exc:
                    outcomes.append(exc)
        if not errors:
            for o in outcomes:
                if isinstance(o, BaseException):
                    raise o
        return outcomes

    def _pool(self) -> ThreadPoolExecutor:
        with self._presign_lock:
            if self._presign_pool is None:
                self._presign_pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="presign")
            return self._presign_pool

    def _object_pool(self) -> urllib3.PoolManager:
        with self._presign_lock:
            if self._object_http is None:
                self._object_http = urllib3.PoolManager(maxsize=_WORKERS * 2, block=False)
            return self._object_http
