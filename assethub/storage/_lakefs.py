"""The one connection to lakeFS: its clients, its pager, and its error translation.

Every request Asset Hub makes to lakeFS goes through a :class:`LakeFS`, and every failure
comes out of :meth:`LakeFS.translate` as an :mod:`assethub.errors` exception: nothing else
reads an HTTP status. Clients are made on first use, one of each per connection:

- the generated SDK (``lakefs_sdk``) for typed calls; the hot listings (logs, diffs, object
  listings) go through its connection pool too but are read as plain JSON, because the SDK's
  argument validation and model parsing cost more than the request for long listings
  (``bench/api.py``);
- an ``httpx.AsyncClient`` for the server's streamed uploads;
- a urllib3 pool worked from a thread pool of its own (:meth:`LakeFS.open_raw`,
  :meth:`LakeFS.in_reader`) for the server's downloads: a GET there costs about half the CPU
  of one on the ``httpx.AsyncClient`` (URL building, the async connection pool, h11 in 64 KiB
  reads), and a 1 MiB chunk is one read in C;
- the S3 gateway (:mod:`assethub.storage.gateway`) for bulk file transfer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import lakefs_sdk
import urllib3
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import ApiException

from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AssetNotFoundError,
    InvalidReferenceError,
    NotAllowedError,
    ObjectNotFoundError,
    RefNotFoundError,
    StorageUnavailableError,
)
from assethub.refs import AssetPath
from assethub.storage.gateway import S3Gateway
from assethub.wire import CommitInfo

PAGE = 1000  # the most lakeFS returns in one page

_T = TypeVar("_T")

# status -> (status, lakeFS's message) -> the exception to raise, or None for the default
Override = Callable[[int, str], BaseException | None]


class Retry(Exception):
    """Raised by an override to tell the caller that trying again may succeed."""


@dataclass(frozen=True, slots=True)
class Pagination:
    has_more: bool
    next_offset: str


@dataclass(frozen=True, slots=True)
class JsonPage:
    """One page of a listing read as JSON, shaped like the SDK's pages for :meth:`LakeFS.pages`."""

    results: list[dict[str, Any]]
    pagination: Pagination


def error_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", "")) or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def raise_for_status(resp: httpx.Response) -> None:
    """Turn an httpx error response into the SDK's ApiException, so one translation reads both."""
    if resp.status_code >= 400:
        err = ApiException(status=resp.status_code, reason=resp.reason_phrase)
        err.body = resp.text
        raise err


class LakeFS:
    """One lakeFS server: settings only until a client is first used."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str, *,
                 max_workers: int = 16) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.key = access_key_id
        self.secret = secret_access_key
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._basic = urllib3.util.make_headers(
            basic_auth=f"{access_key_id}:{secret_access_key}")["authorization"]
        self._sdk: LakeFSClient | None = None
        self._ahttp: httpx.AsyncClient | None = None
        self._s3: S3Gateway | None = None
        self._raw: urllib3.PoolManager | None = None
        self._readers: ThreadPoolExecutor | None = None

    # -- clients (created on first use) ---------------------------------------------------------
    @property
    def api(self) -> LakeFSClient:
        with self._lock:
            if self._sdk is None:
                cfg = lakefs_sdk.Configuration(
                    host=f"{self.endpoint}/api/v1", username=self.key, password=self.secret
                )
                cfg.connection_pool_maxsize = self.max_workers * 2
                self._sdk = LakeFSClient(cfg)
            return self._sdk

    @property
    def async_http(self) -> httpx.AsyncClient:
        with self._lock:
            if self._ahttp is None:
                self._ahttp = httpx.AsyncClient(
                    base_url=f"{self.endpoint}/api/v1", auth=(self.key, self.secret),
                    timeout=httpx.Timeout(60, read=600, write=600),
                    limits=httpx.Limits(max_connections=self.max_workers * 2))
            return self._ahttp

    def _raw_pool(self) -> tuple[urllib3.PoolManager, ThreadPoolExecutor]:
        with self._lock:
            if self._raw is None or self._readers is None:
                # as many threads as pooled connections: a read waiting on lakeFS holds one
                self._raw = urllib3.PoolManager(maxsize=self.max_workers * 2, block=False)
                self._readers = ThreadPoolExecutor(self.max_workers * 2,
                                                   thread_name_prefix="lakefs-read")
            return self._raw, self._readers

    async def in_reader(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """``fn(*args)`` on a thread of the read pool (not asyncio's small default one: a
        stream's next chunk must not wait behind other requests' reads)."""
        _, readers = self._raw_pool()
        return await asyncio.get_running_loop().run_in_executor(readers, fn, *args)

    def open_raw(self, url: str, headers: Mapping[str, str] | None = None,
                 ) -> urllib3.BaseHTTPResponse:
        """A GET of lakeFS's API (``url`` under ``/api/v1``) on the raw pool, its body not
        read yet (never content-decoded). An error status raises the SDK's ApiException like a
        typed call, for :meth:`translate`; call it in :meth:`in_reader`."""
        pool, _ = self._raw_pool()
        resp = pool.request(
            "GET", f"{self.endpoint}/api/v1{url}",
            headers={**(headers or {}), "Authorization": self._basic},
            preload_content=False, decode_content=False,
            # once more on a pooled connection lakeFS closed meanwhile (a GET; nothing of the
            # answer has been read yet)
            retries=urllib3.Retry(total=1, redirect=False, status=0, raise_on_status=False),
            timeout=urllib3.Timeout(connect=60, read=600))
        if resp.status >= 400:
            try:
                body = resp.read(1 << 16)
            finally:
                if resp.length_remaining == 0:
                    resp.release_conn()
                else:
                    resp.close()
            err = ApiException(status=resp.status, reason=resp.reason)
            err.body = body.decode(errors="replace")
            raise err
        return resp

    @property
    def gateway(self) -> S3Gateway:
        with self._lock:
            if self._s3 is None:
                self._s3 = S3Gateway(self.endpoint, self.key, self.secret,
                                     max_workers=self.max_workers)
            return self._s3

    # -- the one error translation --------------------------------------------------------------
    @contextmanager
    def translate(self, *, asset: AssetPath | None = None, ref: str = "", what: str = "",
                  on: Mapping[int, Override] | None = None,
                  otherwise: Override | None = None) -> Iterator[None]:
        """Turn lakeFS failures into Asset Hub errors (the only place that reads statuses).

        ``on`` maps a status to a function of (status, lakeFS's message) that returns the
        exception to raise instead of the default one (or None to keep the default);
        ``otherwise`` does the same for every other 4xx status. lakeFS out of reach (refused,
        reset, timed out) or failing (5xx) is a :class:`StorageUnavailableError` naming lakeFS.
        """
        try:
            yield
        except ApiException as exc:
            raise self.error(exc, asset=asset, ref=ref, what=what, on=on,
                             otherwise=otherwise) from None
        except httpx.TransportError as exc:  # refused, reset, timed out: every client error
            raise self.unreachable(exc) from None
        except (ConnectionError, OSError, urllib3.exceptions.HTTPError) as exc:
            if isinstance(exc, AssetHubError):
                raise
            # the lakeFS SDK's urllib3 gives up on a refused connection with MaxRetryError
            if ("urllib3" in type(exc).__module__
                    or isinstance(exc, (ConnectionError, TimeoutError))):
                raise self.unreachable(exc) from None
            raise

    def unreachable(self, exc: BaseException) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"cannot reach lakeFS at {self.endpoint}: {type(exc).__name__}")

    @staticmethod
    def error(exc: ApiException, *, asset: AssetPath | None, ref: str, what: str,
              on: Mapping[int, Override] | None = None,
              otherwise: Override | None = None) -> BaseException:
        status, msg = int(exc.status or 0), error_message(exc)
        # lakeFS failing (5xx) is an outage whatever the call: only an override for that very
        # status (a merge's 503 while the branch is busy) decides otherwise
        special = (on or {}).get(status, otherwise if 0 < status < 500 else None)
        if special is not None and (chosen := special(status, msg)) is not None:
            return chosen
        if status >= 500:
            return StorageUnavailableError(
                f"lakeFS failed on {what or 'a request'}: HTTP {status} {msg}".rstrip())
        if status == 0 and "SSLError" in str(exc.reason):  # the SDK's wrapping of a TLS failure
            return StorageUnavailableError(f"cannot reach lakeFS: {exc.reason}")
        if status == 404:
            if "repository" in msg.lower() and asset is not None:
                return AssetNotFoundError(str(asset))
            if what.startswith("object:"):
                return ObjectNotFoundError(ref, what.removeprefix("object:"))
            return RefNotFoundError(ref or what, msg)
        if status == 409:
            return AlreadyExistsError(what or "resource", ref, msg)
        if status in (401, 403):
            return NotAllowedError(f"lakeFS refused {what or 'the request'}: {msg}")
        if status == 400:
            return InvalidReferenceError(f"lakeFS rejected {what}: {msg}",
                                         part=what or "request", value=ref)
        return AssetHubError(f"lakeFS error {status} on {what or 'request'}: {msg}")

    # -- the one pager ------------------------------------------------------------------------
    def pages(self, call: Callable[..., Any], /, *args: Any, asset: AssetPath | None = None,
              ref: str = "", what: str = "listing", **kwargs: Any) -> Iterator[Any]:
        """Every result of a paginated listing ``call(*args, after=..., **kwargs)``, page by page.

        ``call`` is an SDK list method or :meth:`json_page`; ``amount`` defaults to a full page.
        """
        kwargs.setdefault("amount", PAGE)
        after = str(kwargs.pop("start", "") or "")  # where a caller pages on from
        while True:
            with self.translate(asset=asset, ref=ref, what=what):
                page = call(*args, after=after, **kwargs)
            yield from page.results
            if not page.pagination.has_more:
                return
            after = page.pagination.next_offset

    def call(self, method: str, url: str, body: Any = None, /, **params: Any) -> bytes:
        """One lakeFS API call (``url`` under ``/api/v1``, a JSON ``body``) on the SDK's own
        connection pool, its answer's bytes as they are: no argument validation or model
        parsing (a third of the SDK's CPU for a call as small as a branch creation). A failure
        raises the SDK's ApiException like a typed call, for :meth:`translate`."""
        api = self.api._api
        headers = {"Accept": "application/json",
                   "Authorization": api.configuration.get_basic_auth_token()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        query = f"?{urlencode(params)}" if params else ""
        resp = api.rest_client.request(method, f"{self.endpoint}/api/v1{url}{query}",
                                       headers=headers, body=body, _request_timeout=60)
        return bytes(resp.data)

    def json_page(self, url: str, /, **params: Any) -> JsonPage:
        """One page of a listing GET as plain JSON (for :meth:`pages`), on the SDK's own
        connection pool; a failure raises the SDK's ApiException like a typed call."""
        api = self.api._api  # the SDK's ApiClient: its auth and its pool, not a second client
        resp = api.rest_client.request(
            "GET", f"{self.endpoint}/api/v1{url}?{urlencode(params, doseq=True)}",
            headers={"Accept": "application/json",
                     "Authorization": api.configuration.get_basic_auth_token()},
            _request_timeout=60)
        page = json.loads(resp.data)
        p = page["pagination"]
        return JsonPage(page["results"], Pagination(bool(p["has_more"]), p["next_offset"]))


# -- lakeFS values as Asset Hub values ---------------------------------------------------------
def sha256_of(meta: Mapping[str, str] | None) -> str | None:
    """The SHA-256 an object's user metadata records (``sha256``, with or without the S3
    gateway's ``x-amz-meta-`` prefix), if any."""
    for k, v in (meta or {}).items():
        if k.lower().replace("x-amz-meta-", "") == "sha256":
            return v
    return None


def timestamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def commit_info(c: lakefs_sdk.Commit) -> CommitInfo:
    return CommitInfo(
        id=c.id, message=c.message, committer=c.committer, created=timestamp(c.creation_date),
        parents=tuple(c.parents),
        metadata={k: v for k, v in (c.metadata or {}).items() if not k.startswith(".lakefs.")},
    )


def commit_from_json(c: Mapping[str, Any]) -> CommitInfo:
    return CommitInfo(
        id=c["id"], message=c["message"], committer=c["committer"],
        created=timestamp(c["creation_date"]), parents=tuple(c.get("parents") or ()),
        metadata={k: v for k, v in (c.get("metadata") or {}).items()
                  if not k.startswith(".lakefs.")},
    )
