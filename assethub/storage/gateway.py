"""Bulk transfer through lakeFS's S3 gateway, and the local content-addressed download cache.

Small objects go as one PUT/GET each from a thread pool; large ones as parallel multipart
uploads (boto3's transfer manager) and parallel ranged GETs. Every uploaded object carries the
SHA-256 of its content as user metadata; single-part uploads are checked against the ETag the
server computed, and every download is checked against the SHA-256 before it is used.

A small object's PUT/GET is one request signed by botocore's own SigV4 signer and sent on a
shared urllib3 pool, not a call of the boto3 client: the client's per-call machinery (event
hooks, parameter validation, serialization, response parsing, an ``Expect: 100-continue``
round trip per PUT) cost about three times the CPU of the request itself, and with many small
files that CPU, not the network, was the limit (``bench/transfer.py``). A large object's
ranges are written in place and hashed in order as they arrive, instead of boto3's
``download_file`` followed by a second pass over the file to hash it (512 MiB: 1.8 s -> 1.2 s).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import urllib3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from assethub._cache import (  # the cache is the SDK's too; defined there, re-exported here
    BlobCache,
    RemoteObject,
    file_sha256,
    place,
    place_all,
    run_parallel,
)
from assethub.errors import AssetHubError, ChecksumMismatchError, StorageUnavailableError, TransferError

__all__ = ["BlobCache", "RemoteObject", "S3Gateway", "copy_local_blockstore", "file_sha256", "place",
           "place_all", "run_parallel"]

SHA256_META = "sha256"  # stored by lakeFS as user metadata "X-Amz-Meta-Sha256"
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 32 * 1024 * 1024
DOWNLOAD_PART = 8 * 1024 * 1024  # a large download holds about (workers + 2) parts in memory
_READ_CHUNK = 4 * 1024 * 1024
_ATTEMPTS = 5  # as the boto3 client's "standard" retry mode
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Progress = Callable[[int], None]


def copy_local_blockstore(obj: RemoteObject, tmp: Path, progress: Progress | None) -> bool:
    """Copy an object straight out of a local blockstore this process can read.

    lakeFS's local blockstore offers no presigned URLs; on the machine that holds it, reading
    its immutable file is the direct path (as a presigned GET is on S3). The copy is checked
    against the object's size and SHA-256 like any download; False when not possible.
    """
    if not obj.sha256 or not obj.physical.startswith("local:///"):
        return False
    src = Path(obj.physical.removeprefix("local://"))
    try:
        if src.stat().st_size != obj.size:
            return False
        sha = hashlib.sha256()
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(_READ_CHUNK):
                sha.update(chunk)
                fout.write(chunk)
                if progress:
                    progress(len(chunk))
    except OSError:
        return False
    return sha.hexdigest() == obj.sha256


class S3Gateway:
    """lakeFS's S3 gateway: bucket = repository, key = ``<ref>/<path>``."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str,
                 *, max_workers: int = 16) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.max_workers = max_workers
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                max_pool_connections=max_workers * 2,
                retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
                # lakeFS's gateway does not take the CRC checksums newer boto3 adds by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=max_workers // 2 or 1,
            use_threads=True,
        )
        self.range_workers = max_workers // 4 or 1  # per large download, beside the others
        self._signer = S3SigV4Auth(Credentials(access_key_id, secret_access_key), "s3",
                                   "us-east-1")
        self._http = urllib3.PoolManager(
            maxsize=max_workers * 2, retries=False,
            timeout=urllib3.Timeout(connect=60, read=60),  # the boto3 client's defaults
        )

    def _request(self, method: str, repo: str, key: str, *, body: bytes = b"",
                 headers: Mapping[str, str] | None = None) -> Any:
        """One signed request (a small object, or a range of a large one), retried like the
        boto3 client would: up to 5 attempts, on connection errors, 429 and 5xx."""
        url = f"{self.endpoint}/{repo}/{quote(key, safe='/~')}"
        failure: Exception | None = None
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, min(20, 2 ** (attempt - 1))))
            request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
            self._signer.add_auth(request)  # per attempt: the signature carries the time
            try:
                resp = self._http.urlopen(method, url, body=body or None,
                                          headers=dict(request.headers.items()),
                                          redirect=False, decode_content=False)
            except urllib3.exceptions.HTTPError as exc:  # connection refused/reset, timeout
                failure = exc
                continue
            if resp.status < 300:
                return resp
            answer = f"lakeFS's S3 gateway answered {method} {key} with HTTP {resp.status}" \
                     f"{_s3_error(resp.data)}"
            # lakeFS failing (5xx) is an outage; a refusal of this request is not
            failure = (StorageUnavailableError(answer) if resp.status >= 500
                       else TransferError(answer, path=key))
            if resp.status not in _RETRY_STATUSES:
                break
        if isinstance(failure, AssetHubError):
            raise failure
        raise StorageUnavailableError(
            f"cannot reach lakeFS's S3 gateway at {self.endpoint}: {type(failure).__name__}"
        ) from failure

    @contextmanager
    def _boto_errors(self, key: str) -> Iterator[None]:
        """The boto3 client's failures as Asset Hub errors, like :meth:`_request`'s."""
        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise self._boto_error(exc, key) from exc

    def _boto_error(self, exc: BaseException, key: str) -> AssetHubError:
        # the transfer manager wraps the client's error in S3UploadFailedError
        cause = exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
        if isinstance(cause, ClientError):
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            answer = f"lakeFS's S3 gateway answered {key} with HTTP {status}: {cause}"
            if status >= 500:
                return StorageUnavailableError(answer)
            return TransferError(answer, path=key)
        if isinstance(cause, (BotoConnectionError, HTTPClientError)):
            return StorageUnavailableError(
                f"cannot reach lakeFS's S3 gateway at {self.endpoint}: {type(cause).__name__}")
        return TransferError(f"transfer of {key} through lakeFS's S3 gateway failed: {exc}",
                             path=key)

    # -- upload ------------------------------------------------------------------------------
    def put_bytes(self, repo: str, key: str, data: bytes, *, sha256: str, path: str) -> str:
        """Upload a small object held in memory after checking it against the SHA-256 its
        sender declared (stored with it); verified against the server's ETag. Returns the ETag."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{path} arrived corrupted: sha256 {actual}, expected {sha256}", path=path)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        resp = self._request("PUT", repo, key, body=data,
                             headers={f"x-amz-meta-{SHA256_META}": sha256})
        etag = str(resp.headers.get("ETag", "")).strip('"')
        if etag and etag != md5:
            raise TransferError(f"upload of {path} was corrupted in transit (md5 {md5}, server "
                                f"has {etag})", path=path)
        return etag or md5

    def put_file(self, repo: str, key: str, local: Path, progress: Progress | None) -> str:
        """Upload one file; returns its SHA-256. Verified against the server's ETag when single-part."""
        size = local.stat().st_size
        if size < MULTIPART_THRESHOLD:
            data = local.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            resp = self._request("PUT", repo, key, body=data,
                                 headers={f"x-amz-meta-{SHA256_META}": sha})
            etag = str(resp.headers.get("ETag", "")).strip('"')
            if etag and etag != md5:
                raise TransferError(
                    f"upload of {local} was corrupted in transit (md5 {md5}, server has {etag})",
                    path=str(local),
                )
            if progress:
                progress(size)
            return sha
        sha = file_sha256(local)
        with self._boto_errors(key):
            self.client.upload_file(
                str(local), repo, key,
                ExtraArgs={"Metadata": {SHA256_META: sha}},
                Config=self.transfer_config,
                Callback=progress,
            )
            head = self.client.head_object(Bucket=repo, Key=key)
        if int(head["ContentLength"]) != size:
            raise TransferError(
                f"upload of {local} is incomplete: {head['ContentLength']} of {size} bytes",
                path=str(local),
            )
        return sha

    # -- download ----------------------------------------------------------------------------
    def get_to_file(self, repo: str, key: str, obj: RemoteObject, tmp: Path,
                    progress: Progress | None) -> None:
        """Download one object to ``tmp`` and check its content against the listing."""
        if obj.size < MULTIPART_THRESHOLD:
            body = self._request("GET", repo, key).data
            tmp.write_bytes(body)
            if progress:
                progress(len(body))
            got_size = len(body)
            got_sha = hashlib.sha256(body).hexdigest() if obj.sha256 else None
        else:
            got_size, got_sha = self._get_ranges(repo, key, obj, tmp, progress)
        if got_size != obj.size or (obj.sha256 and got_sha != obj.sha256):
            tmp.unlink(missing_ok=True)
            raise TransferError(
                f"download of {obj.path} failed verification "
                f"(size {got_size}/{obj.size}, sha256 {got_sha} != {obj.sha256})",
                path=obj.path,
            )

    def _get_ranges(self, repo: str, key: str, obj: RemoteObject, tmp: Path,
                    progress: Progress | None) -> tuple[int, str | None]:
        """Parallel ranged GETs written in place and hashed in order: (size, sha256 or None)."""
        sha = hashlib.sha256() if obj.sha256 else None
        got = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

        def fetch(offset: int) -> bytes:
            last = min(offset + DOWNLOAD_PART, obj.size) - 1
            data: bytes = self._request("GET", repo, key,
                                        headers={"Range": f"bytes={offset}-{last}"}).data
            if len(data) != last - offset + 1:
                raise TransferError(f"download of {obj.path}: bytes {offset}-{last} came back "
                                    f"as {len(data)} bytes", path=obj.path)
            os.pwrite(fd, data, offset)
            return data

        try:
            with ThreadPoolExecutor(self.range_workers) as pool:
                offsets = iter(range(0, obj.size, DOWNLOAD_PART))
                # a window of parts in flight: memory stays bounded however large the file
                window = deque(pool.submit(fetch, offset)
                               for offset in itertools.islice(offsets, self.range_workers + 1))
                try:
                    while window:
                        data = window.popleft().result()
                        if (offset := next(offsets, None)) is not None:
                            window.append(pool.submit(fetch, offset))
                        if sha is not None:
                            sha.update(data)
                        got += len(data)
                        if progress:
                            progress(len(data))
                except BaseException:
                    for future in window:
                        future.cancel()
                    raise
        finally:
            os.close(fd)
        return got, sha.hexdigest() if sha is not None else None


def _s3_error(body: bytes) -> str:
    """' NoSuchKey: The specified key does not exist.' from an S3 error document, or ''."""
    text = body[:2000].decode("utf-8", "replace")
    code, message = (m.group(1) if (m := re.search(f"<{tag}>(.*?)</{tag}>", text, re.S)) else ""
                     for tag in ("Code", "Message"))
    return f" {code}: {message}" if code else ""
