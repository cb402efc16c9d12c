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

import re
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import lakefs_sdk

from assethub.errors import (
    ChecksumMismatchError,
    InvalidReferenceError,
    StorageUnavailableError,
    TransferError,
)
from assethub.refs import AssetPath, AssetRef, validate_object_path
from assethub.storage import _policy
from assethub.storage._lakefs import PAGE, LakeFS, timestamp
from assethub.storage._transact import Transaction
from assethub.wire import ObjectInfo, PresignedObject, PresignedPut

if TYPE_CHECKING:
    from assethub.wire import CommitInfo

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (?:\d+-\d+|\*)/(\d+)")


@dataclass(frozen=True, slots=True)
class PresignedListing:
    commit_id: str
    objects: tuple[PresignedObject, ...]
    next_after: str | None


def _sha256_of(meta: Mapping[str, str] | None) -> str | None:
    for k, v in (meta or {}).items():
        if k.lower().replace("x-amz-meta-", "") == "sha256":
            return v
    return None


class Presigning:
    """The presigned half of :class:`assethub.storage.Storage`."""

    if TYPE_CHECKING:
        lakefs: LakeFS

        def repository(self, asset: AssetPath | str) -> str: ...
        def _get_commit(self, repo: str, r: AssetRef) -> CommitInfo: ...

    _presign_support: bool | None = None
    _object_http: httpx.Client | None = None
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
                            _sha256_of(o.get("metadata")), str(o["physical_address"]),
                            o.get("physical_address_expiry"))
            for o in page.results if not _policy.is_reserved(str(o.get("path", ""))))
        more = page.pagination.next_offset if page.pagination.has_more else None
        return PresignedListing(commit, objects, more or None)

    # -- writes (inside a transaction) ------------------------------------------------------------
    def presign_upload(self, txn: Transaction, path: str) -> PresignedPut:
        """A fresh physical address for ``path`` in the transaction and a presigned PUT to it."""
        self._require_presign()
        _policy.user_path(validate_object_path(path), "upload")
        with self.lakefs.translate(ref=txn.ref, what="upload"):
            loc = self.lakefs.api.staging_api.get_physical_address(txn.repo, txn.branch, path,
                                                                   presign=True)
        if not loc.presigned_url or not loc.physical_address:
            raise StorageUnavailableError("lakeFS returned no presigned URL for an upload")
        return PresignedPut(path, loc.presigned_url, loc.physical_address, loc.presigned_url_expiry)

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
        _policy.user_path(validate_object_path(path), "upload")
        if not _SHA256.fullmatch(sha256):
            raise InvalidReferenceError("sha256 must be 64 lowercase hex digits", part="sha256",
                                        value=sha256[:70])
        if size < 0 or (max_bytes is not None and size > max_bytes):
            raise InvalidReferenceError(f"size must be 0 to {max_bytes} bytes", part="size",
                                        value=str(size))
        etag = etag.strip().strip('"')
        if not etag or len(etag) > 200:
            raise InvalidReferenceError("etag must be the object store's ETag for the PUT",
                                        part="etag", value=etag[:200])
        namespace = (namespace or self.storage_namespace(txn)).rstrip("/") + "/"
        if not physical_address.startswith(namespace):
            raise InvalidReferenceError(f"{physical_address[:200]} is not an address of this asset",
                                        part="physical_address", value=physical_address[:200])
        meta = lakefs_sdk.StagingMetadata(
            staging=lakefs_sdk.StagingLocation(physical_address=physical_address),
            checksum=etag, size_bytes=size, user_metadata={"sha256": sha256},
            content_type="application/octet-stream")

        def refused(status: int, msg: str) -> BaseException:
            return InvalidReferenceError(f"lakeFS refused to link {path}: {msg[:200]}",
                                         part="physical_address", value=physical_address[:200])

        with self.lakefs.translate(ref=txn.ref, what="upload",
                                   on={400: refused, 401: refused, 403: refused, 404: refused}):
            st = self.lakefs.api.staging_api.link_physical_address(txn.repo, txn.branch, path, meta)
        try:
            found_size, found_etag = self._observe(txn, path, empty=size == 0)
            if found_size != size or found_etag != etag:
                raise ChecksumMismatchError(
                    f"{path} is not in the object store as declared: it holds {found_size} bytes "
                    f"(ETag {found_etag or 'none'}), the upload said {size} (ETag {etag})", path=path)
        except BaseException:
            with suppress(Exception), self.lakefs.translate(ref=txn.ref, what="upload"):
                self.lakefs.api.objects_api.delete_object(txn.repo, txn.branch, path)
            raise
        return ObjectInfo(path, int(st.size_bytes or size), st.checksum, sha256, timestamp(st.mtime),
                          st.content_type)

    def _observe(self, txn: Transaction, path: str, *, empty: bool) -> tuple[int, str]:
        """Size and ETag of what the object store holds for ``path`` of the transaction: a
        one-byte ranged GET of a URL lakeFS presigns (the server holds no object-store keys);
        for a file said to be ``empty``, which has no first byte, a GET of nothing."""
        with self.lakefs.translate(ref=txn.ref, what=f"object:{path}"):
            st = self.lakefs.api.objects_api.stat_object(txn.repo, txn.branch, path, presign=True)
        try:  # streamed and left unread: a store that ignores Range sends no body through here
            with self._object_client().stream("GET", st.physical_address,
                                              headers=None if empty else {"Range": "bytes=0-0"}
                                              ) as resp:
                pass
        except httpx.TransportError as exc:
            raise StorageUnavailableError(
                f"cannot reach the object store to check {path}: {type(exc).__name__}") from None
        etag = resp.headers.get("etag", "").strip('"')
        m = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", ""))
        if resp.status_code == 416:  # an empty object has no first byte
            return (int(m.group(1)) if m else 0), etag
        if resp.status_code == 404:
            return -1, ""
        if resp.status_code >= 500:
            raise StorageUnavailableError(f"the object store failed checking {path}: "
                                          f"HTTP {resp.status_code}")
        if resp.status_code == 200:  # a store that ignores Range: the length says it
            return int(resp.headers.get("content-length", 0)), etag
        if resp.status_code != 206 or m is None:
            raise TransferError(f"the object store refused checking {path}: HTTP {resp.status_code}",
                                path=path)
        return int(m.group(1)), etag

    def _object_client(self) -> httpx.Client:
        with self._presign_lock:
            if self._object_http is None:
                self._object_http = httpx.Client(timeout=httpx.Timeout(30))
            return self._object_http
