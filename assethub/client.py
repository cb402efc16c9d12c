"""The Asset Hub Python client: each server operation is one method returning frozen dataclasses.

    from assethub.client import Client

    hub = Client()                                    # URL and token from `assethub login` or env
    hub.create_folder("alice/model/vision")
    hub.create_asset("alice/model/vision/resnet", labels=["cv"])
    hub.upload("alice/model/vision/resnet:main", "out/", message="first weights")
    hub.download("alice/model/vision/resnet:v1", "weights/")   # cached: a second call moves nothing

The constructor only stores settings; the first call opens the connection. Every failure is an
:mod:`assethub.errors` exception, built from the server's error body by :func:`_error_from`,
the only code that looks at HTTP statuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import itertools
import json
import os
import ssl
import sys
import threading
import types
import typing
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import httpx

from assethub import config, errors, wire
from assethub._cache import BlobCache, RemoteObject, place_all, run_parallel
from assethub.gitcred import GitSecret, split_credentials
from assethub.refs import AssetPath, AssetRef, FolderPath, validate_object_path

if typing.TYPE_CHECKING:
    from assethub._services_client import Services
    from assethub.wire import AddFile, CreatedToken, DeleteFile, GroupView, ImportResult

__all__ = ["AddFile", "Client", "CreatedToken", "DeleteFile", "GroupView", "ImportResult"]
_WIRE_NAMES = ("AddFile", "CreatedToken", "DeleteFile", "GroupView", "ImportResult")


def __getattr__(name: str) -> Any:
    """The wire types this module has always offered, loaded (with their section of
    :mod:`assethub.wire`) when asked for."""
    if name in _WIRE_NAMES:
        return getattr(wire, name)
    raise AttributeError(f"module 'assethub.client' has no attribute {name!r}")

API = "/api/v1"
_CHUNK = 1024 * 1024
# Files this large come as parallel byte ranges (one stream tops out well below the disk).
_RANGED_FROM = 64 * _CHUNK
_RANGE_PART = 8 * _CHUNK  # memory in flight is bounded by workers x part size
# Small files come many to a request (a bundle): one round trip and one permission check for
# hundreds of files instead of one each.
_BUNDLE_FILE_MAX = 4 * _CHUNK
_BUNDLE_FILES = 400
_BUNDLE_BYTES = 64 * _CHUNK
_UPLOAD_BUNDLE_BYTES = 32 * _CHUNK  # an upload bundle's body (the server takes up to 256 MiB)
_BUNDLE_PATH_BYTES = 256 * 1024  # the request's list of paths stays well under the body limit
_DIRECT_GROUP_FILES = 100  # presigned PUTs asked for (and linked) this many at a time
_DIRECT_PUT_MAX = 5 * 1024**3  # the most one S3 PUT takes (no presigned multipart upload yet)
# Reads from the object store (presigned GETs) run max_workers x this many at once, the ranges of
# one large file max_workers x _DIRECT_RANGE_WORKERS_PER (see bench/README.md, third round).
_DIRECT_WORKERS_PER = 4
_DIRECT_RANGE_WORKERS_PER = 2
T = TypeVar("T")
AssetLike = AssetPath | AssetRef | str
Advance = Callable[[int], None]


# -- errors: the one place that reads HTTP statuses ---------------------------------------------
# When the body names no error of the protocol (a proxy's page, an old server), the status decides.
_BY_STATUS: dict[int, Callable[[str], errors.AssetHubError]] = {
    400: lambda m: errors.InvalidReferenceError(m, part="request", value=""),
    401: errors.AuthenticationError,
    403: errors.ForbiddenError,
    413: errors.PayloadTooLargeError,
    422: lambda m: errors.InvalidReferenceError(m, part="request", value=""),
    # a proxy in front of the server, saying the server is not there
    502: errors.ServerUnavailableError,
    503: errors.ServerUnavailableError,
    504: errors.ServerUnavailableError,
}


def _error_from(response: httpx.Response) -> errors.AssetHubError:
    """The :mod:`assethub.errors` exception for an error response, with the server's message and
    the fields of the error protocol (:data:`assethub.errors.WIRE_ERRORS`)."""
    try:
        body = response.json()["error"]
        message = str(body["message"])
    except (ValueError, KeyError, TypeError):
        body = None
        message = f"HTTP {response.status_code} from {response.request.url.host}: " \
                  f"{response.text.strip()[:200] or response.reason_phrase}"
    exc = errors.from_wire(body) if isinstance(body, dict) else None
    if exc is None:
        exc = _BY_STATUS.get(response.status_code, errors.AssetHubError)(message)
    if isinstance(exc, errors.ServerUnavailableError) and not exc.url:
        exc.url = f"{response.request.url.scheme}://{response.request.url.netloc.decode()}"
    return exc


# -- JSON to the dataclasses --------------------------------------------------------------------
# Each wire type gets its loader once: the conversion each field needs, worked out from its type
# hint; fields that need none (str, int, dicts of them ...) are taken as they are. A listing of a
# dataset with thousands of files is that many objects to build.
_Converter = Callable[[Any], Any] | None


def _converter(hint: Any) -> _Converter:
    """What turns a JSON value into ``hint`` (None: the value as it is); None stays None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _converter(next(a for a in args if a is not type(None)))
    if hint is datetime:
        return datetime.fromisoformat
    if hint in (AssetPath, FolderPath):
        return cast(Callable[[Any], Any], hint.parse)
    if origin is tuple:
        if args[-1:] == (Ellipsis,):
            each = _converter(args[0])
            if each is None:
                return tuple
            return lambda value: tuple(None if v is None else each(v) for v in value)
        items = [_converter(h) or (lambda v: v) for h in args]
        return lambda value: tuple(None if v is None else c(v) for c, v in zip(items, value, strict=True))
    if dataclasses.is_dataclass(hint):
        return _loader(cast(Any, hint))
    return None


@functools.cache
def _loader(cls: Any) -> Callable[[Mapping[str, Any]], Any]:
    hints = typing.get_type_hints(cls)
    fields = tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))

    def load(data: Mapping[str, Any]) -> Any:
        return cls(**{name: data[name] if convert is None or data[name] is None else convert(data[name])
                      for name, convert in fields if name in data})
    return load


def _load(cls: type[T], data: Mapping[str, Any]) -> T:
    return cast(T, _loader(cast(Any, cls))(data))


def _loads(cls: type[T], rows: Iterable[Mapping[str, Any]]) -> list[T]:
    load = _loader(cast(Any, cls))
    return [load(row) for row in rows]


# -- small helpers ------------------------------------------------------------------------------
def _q(segment: str) -> str:
    return quote(segment, safe="")


def _path(value: AssetLike) -> AssetPath:
    return value.path if isinstance(value, AssetRef) else AssetPath.coerce(value)


def _asset_url(path: AssetPath) -> str:
    return "/assets/" + "/".join(map(_q, (path.owner, path.kind.value, path.folder, path.name)))


def _folder_url(folder: FolderPath | str) -> str:
    f = FolderPath.coerce(folder)
    return "/folders/" + "/".join(map(_q, (f.owner, f.kind.value, f.name)))


def _meta_json(meta: wire.DatasetMeta | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    out = {"task_type": meta.task_type, "format": meta.data_format, "split_mode": meta.split_mode,
           "split_ratio": meta.split_ratio, "test_set_path": meta.test_set_path}
    return {k: v for k, v in out.items() if v is not None}


def _subject(user: str | None, group: str | None, everyone: bool) -> tuple[str, str]:
    chosen = [(t, n) for t, n in (("user", user), ("group", group)) if n]
    chosen += [("everyone", "")] if everyone else []
    if len(chosen) != 1:
        raise errors.InvalidReferenceError("name exactly one of: a user, a group, or everyone",
                                           part="share subject", value=str(chosen))
    return chosen[0]


def _local_files(local: Path, remote: str) -> list[tuple[Path, str]]:
    """(local file, path in the asset) for a file, or for every file under a directory."""
    if local.is_dir():
        base = remote.strip("/") + "/" if remote.strip("/") else ""
        return sorted((Path(d, n), base + Path(d, n).relative_to(local).as_posix())
                      for d, _, names in os.walk(local) for n in names)
    if not local.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(local))
    return [(local, remote + local.name if remote.endswith("/") or not remote else remote)]


def _bundles(objs: list[RemoteObject]) -> list[list[RemoteObject]]:
    """Small files grouped for bundle requests, bounded in count, bytes and request size."""
    out: list[list[RemoteObject]] = []
    group: list[RemoteObject] = []
    size = names = 0
    for o in sorted(objs, key=lambda o: o.path):
        if group and (len(group) >= _BUNDLE_FILES or size + o.size > _BUNDLE_BYTES
                      or names + len(o.path) > _BUNDLE_PATH_BYTES):
            out.append(group)
            group, size, names = [], 0, 0
        group.append(o)
        size += o.size
        names += len(o.path) + 8
    return [*out, group] if group else out


def _upload_bundles(remotes: list[str], sizes: Mapping[str, int]) -> list[list[str]]:
    """Small files of an upload grouped for bundle requests, bounded in count and bytes."""
    out: list[list[str]] = []
    group: list[str] = []
    size = 0
    for r in sorted(remotes):
        if group and (len(group) >= _BUNDLE_FILES or size + sizes[r] > _UPLOAD_BUNDLE_BYTES):
            out.append(group)
            group, size = [], 0
        group.append(r)
        size += sizes[r] + len(r) + 100
    return [*out, group] if group else out


class _Reiterable:
    """A request body made afresh each time it is sent: a retry on another server replica sends
    it whole (httpx sends a plain generator once)."""

    def __init__(self, make: Callable[[], Iterator[bytes]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[bytes]:
        return self._make()


class _Refused(errors.TransferError):
    """The object store refused a presigned URL (expired, or not for this object)."""


class _FrameReader:
    """Exact-length reads over a stream of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        if len(self._buffer) - self._pos < n:
            parts = [self._buffer[self._pos:]]
            have = len(parts[0])
            while have < n:
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise errors.TransferError(f"the bundle ended early ({have} of {n} bytes)")
                parts.append(chunk)
                have += len(chunk)
            self._buffer, self._pos = b"".join(parts), 0
        out = self._buffer[self._pos:self._pos + n]
        self._pos += n
        return out


class _chunks:
    """A file's content, streamed from disk: never the whole file in memory. Iterable again
    from the start, so a request can be sent whole to another server replica."""

    def __init__(self, path: Path, advance: Advance = lambda n: None) -> None:
        self.path = path
        self.advance = advance

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while chunk := f.read(_CHUNK):
                self.advance(len(chunk))
                yield chunk


@contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Advance]:
    if not enabled or total == 0:
        yield lambda n: None
        return
    # rich's console and progress bar cost a tenth of a second to import: only when shown
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
                  console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _tls_verification(url: str) -> ssl.SSLContext | bool:
    """How the connection checks TLS: httpx's default (certifi's store) for an https server or
    when a proxy is configured; for a plain-http server, which never speaks TLS, a context
    without a certificate store, which would refuse any TLS peer rather than trust it.
    Loading the store takes about 40 ms, a tenth of a CLI command."""
    proxied = any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in os.environ)
    if url.lower().startswith("https:") or proxied:
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names


_HTTP2_MODULES = ("h2", "httpcore._sync.http2", "httpcore._async.http2")


class _WithoutH2:
    """An import hook that makes ``h2`` look missing, installed only while httpcore first loads.

    The client speaks HTTP/1.1 (it never passes ``http2=True``), but ``import httpcore`` loads
    its HTTP/2 connection classes, and with them h2, hpack and hyperframe, when h2 is installed:
    a third of a CLI command's import time. Seeing h2 missing, httpcore leaves those out of its
    package namespace only; its connections import them when a connection negotiates HTTP/2,
    so an ``httpx.Client(http2=True)`` elsewhere in the process still works."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name in _HTTP2_MODULES or name.startswith("h2."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _load_httpcore() -> None:
    """Import httpcore (which httpx defers to the first client) without h2, unless already loaded."""
    if "httpcore" in sys.modules or "h2" in sys.modules:
        return
    sys.meta_path.insert(0, _WithoutH2)
    try:
        import httpcore  # noqa: F401
    finally:
        sys.meta_path.remove(_WithoutH2)


#: a reply that says this server cannot serve now (a proxy without it, or a component it cannot
#: reach): a request that may be sent twice goes to the next server
_FAILOVER_STATUSES = (502, 503)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _retry_sent(method: str, url: str) -> bool:
    """Whether a request that may have reached a server can be sent again to another: the
    idempotent methods (an upload's file PUT replaces the file whole), and an upload's commit
    (the upload lives in the catalog; a second commit answers with the first's commit)."""
    if method in _IDEMPOTENT:
        return True
    return method == "POST" and url.startswith("/uploads/") and url.endswith("/commit")


class Client:
    """A connection to one Asset Hub server, as one user (or anonymously, without a token).

    ``url`` and ``token`` default to ``ASSETHUB_URL`` / ``ASSETHUB_TOKEN`` or what
    ``assethub login`` saved; the saved token is only used with the saved URL. ``url`` may
    list several replicas of one server, comma-separated: when one cannot be reached (or says
    502/503), a request goes to the next if sending it again is safe (see :func:`_retry_sent`).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 120.0, transport: httpx.BaseTransport | None = None,
                 cache_dir: Path | str | None = None, max_workers: int = 4) -> None:
        saved = config.load()
        try:
            # several replicas, comma-separated: a request goes to the one that last answered
            # and moves on to the next when it cannot (see _stream)
            self.urls = config.server_urls(url or saved.url)
        except ValueError as e:
            raise errors.InvalidReferenceError(str(e), part="server URL", value="") from None
        self.url = ",".join(self.urls)
        if token is None and self.url == ",".join(config.server_urls(saved.url)):
            token = saved.token  # never send the saved token to a server it was not made for
        self._token = token
        self.timeout = timeout
        self.max_workers = max_workers
        self.cache = BlobCache(Path(cache_dir) if cache_dir else config.home() / "cache")
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._current = 0  # the index in urls of the server requests go to first

    def __repr__(self) -> str:  # never show the token
        return f"Client(url={self.url!r}, token={'***' if self._token else None})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if (store := self.__dict__.pop("_object_client", None)) is not None:
            store.close()
        if pool := self.__dict__.pop("_store_urllib3", None):
            pool.clear()

    # -- transport ---------------------------------------------------------------------------
    @property
    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                _load_httpcore()
                headers = {"User-Agent": "assethub-client/0.1"}
                if self._token:
                    headers["Authorization"] = f"Bearer {self._token}"
                tls = next((u for u in self.urls if u.lower().startswith("https:")), self.urls[0])
                self._client = httpx.Client(
                    headers=headers, transport=self._transport,
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    verify=_tls_verification(tls))
            return self._client

    @contextmanager
    def _stream(self, method: str, url: str, *, buffered: bool = False,
                **kwargs: Any) -> Iterator[httpx.Response]:
        """One request, to the servers in turn until one answers: a request goes to the next
        server when the one it went to cannot be reached (nothing was sent), and, if sending it
        again is safe (:func:`_retry_sent`), when its connection broke before the answer was
        whole or it said 502/503. ``buffered``: the answer is read whole before it is yielded
        (so a server dying in the middle of it counts too); else it streams."""
        if kwargs.get("params"):
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
        body = kwargs.get("content")
        resendable = body is None or isinstance(body, bytes | str) or iter(body) is not body
        retry_sent = resendable and _retry_sent(method, url)
        n = len(self.urls)
        start = self._current
        unreachable: list[str] = []
        response: httpx.Response | None = None
        with contextlib.ExitStack() as stack:
            for i in range(n):
                index = (start + i) % n
                base = self.urls[index]
                last = i == n - 1
                try:
                    response = stack.enter_context(self._http.stream(method, base + API + url, **kwargs))
                    if buffered or response.status_code in _FAILOVER_STATUSES or response.is_error:
                        response.read()
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    # nothing reached the server: any request may go to the next
                    stack.close()
                    unreachable.append(base)
                    if last or not resendable:
                        raise self._unreachable(unreachable) from exc
                    continue
                except httpx.TransportError as exc:
                    # the server went away while the request was under way (killed, restarted);
                    # a commit that only timed out may still be under way there: not sent twice
                    stack.close()
                    slow_commit = isinstance(exc, httpx.TimeoutException) and method == "POST"
                    if last or not retry_sent or slow_commit:
                        raise errors.TransferError(
                            f"{method} {base}{API}{url} failed: {type(exc).__name__}: {exc}") from exc
                    unreachable.append(base)
                    continue
                if response.status_code in _FAILOVER_STATUSES and retry_sent and not last:
                    stack.close()  # this server said it cannot: the next may
                    unreachable.append(base)
                    continue
                self._current = index  # answering: the next request goes here first
                break
            assert response is not None
            if response.is_error:
                raise _error_from(response)
            try:
                yield response
            except httpx.TransportError as exc:
                raise errors.TransferError(
                    f"{method} {response.request.url} failed: {type(exc).__name__}: {exc}") from exc

    def _unreachable(self, urls: list[str]) -> errors.ServerUnavailableError:
        where = ", ".join(urls)
        return errors.ServerUnavailableError(
            f"cannot reach the Asset Hub server at {where}: is the server running? "
            "start one with `assethub up`, or set ASSETHUB_URL / run `assethub login`",
            url=urls[-1])

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        with self._stream(method, url, buffered=True, **kwargs) as response:
            return response.json() if response.content else None

    @functools.cached_property
    def services(self) -> Services:
        """Model services: publish a model version over HTTP, scale, stop, start, predict."""
        from assethub._services_client import Services

        return Services(self)

    # -- identity and admin ------------------------------------------------------------------
    def whoami(self) -> wire.UserView:
        return _load(wire.UserView, self._call("GET", "/whoami"))

    def list_users(self) -> list[wire.UserView]:
        return _loads(wire.UserView, self._call("GET", "/users"))

    def create_user(self, name: str, *, display_name: str = "", email: str = "",
                    is_admin: bool = False) -> wire.UserView:
        return _load(wire.UserView, self._call("POST", "/users", json={
            "name": name, "display_name": display_name, "email": email, "is_admin": is_admin}))

    def update_user(self, name: str, *, is_admin: bool | None = None, disabled: bool | None = None,
                    display_name: str | None = None, email: str | None = None) -> wire.UserView:
        body = {"is_admin": is_admin, "disabled": disabled, "display_name": display_name,
                "email": email}
        return _load(wire.UserView, self._call("PATCH", f"/users/{_q(name)}",
                                          json={k: v for k, v in body.items() if v is not None}))

    def list_groups(self) -> list[wire.GroupView]:
        return [wire.GroupView(g, tuple(m)) for g, m in self._call("GET", "/groups").items()]

    def create_group(self, name: str) -> wire.GroupView:
        return wire.GroupView(self._call("POST", "/groups", json={"name": name})["name"])

    def delete_group(self, name: str) -> None:
        self._call("DELETE", f"/groups/{_q(name)}")

    def add_member(self, group: str, user: str) -> None:
        self._call("POST", f"/groups/{_q(group)}/members", json={"user": user})

    def remove_member(self, group: str, user: str) -> None:
        self._call("DELETE", f"/groups/{_q(group)}/members/{_q(user)}")

    def create_token(self, user: str | None = None, *, name: str = "",
                     expires_in_days: float | None = None) -> wire.CreatedToken:
        """A new API token for ``user`` (default: yourself); its secret is returned only now."""
        user = user or self.whoami().name
        data = self._call("POST", f"/users/{_q(user)}/tokens",
                          json={"name": name, "expires_in_days": expires_in_days})
        return wire.CreatedToken(_load(wire.TokenView, data), data["token"])

    def list_tokens(self, user: str | None = None) -> list[wire.TokenView]:
        user = user or self.whoami().name
        return _loads(wire.TokenView, self._call("GET", f"/users/{_q(user)}/tokens"))

    def revoke_token(self, token_id: int) -> None:
        self._call("DELETE", f"/tokens/{int(token_id)}")

    def audit(self, *, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              outcome: str | None = None, before: int | None = None,
              limit: int = 100) -> list[wire.AuditView]:
        """Audit events, newest first: everyone's for an admin, your own otherwise; ``outcome``
        (ok, denied, error) and ``before`` (older than the event of that id: the next page)."""
        params = {"actor": actor, "action": action, "target": target, "limit": limit,
                  "outcome": outcome, "before": before,
                  "since": since.astimezone(UTC).isoformat() if since else None}  # naive: local
        return _loads(wire.AuditView, self._call("GET", "/audit", params=params))

    # -- folders and shares ------------------------------------------------------------------
    def create_folder(self, folder: FolderPath | str, *, description: str = "") -> wire.FolderView:
        body = {"path": str(FolderPath.coerce(folder)), "description": description}
        return _load(wire.FolderView, self._call("POST", "/folders", json=body))

    def list_folders(self, *, owner: str | None = None, kind: str | None = None) -> list[wire.FolderView]:
        return _loads(wire.FolderView, self._call("GET", "/folders",
                                             params={"owner": owner, "kind": kind}))

    def get_folder(self, folder: FolderPath | str) -> wire.FolderView:
        return _load(wire.FolderView, self._call("GET", _folder_url(folder)))

    def update_folder(self, folder: FolderPath | str, *, new_name: str | None = None,
                      description: str | None = None) -> wire.FolderView:
        body = {k: v for k, v in (("name", new_name), ("description", description)) if v is not None}
        return _load(wire.FolderView, self._call("PATCH", _folder_url(folder), json=body))

    def delete_folder(self, folder: FolderPath | str) -> None:
        """Delete a folder and every asset in it."""
        self._call("DELETE", _folder_url(folder))

    def share(self, folder: FolderPath | str, *, role: str, user: str | None = None,
              group: str | None = None, everyone: bool = False) -> wire.ShareView:
        """Give a user, a group or everyone a role (view, run, edit) on a folder."""
        kind, name = _subject(user, group, everyone)
        return _load(wire.ShareView, self._call("POST", f"{_folder_url(folder)}/shares", json={
            "subject_type": kind, "subject_name": name, "role": role}))

    def unshare(self, folder: FolderPath | str, *, user: str | None = None,
                group: str | None = None, everyone: bool = False) -> None:
        kind, name = _subject(user, group, everyone)
        self._call("DELETE", f"{_folder_url(folder)}/shares",
                   params={"subject_type": kind, "subject_name": name})

    def list_shares(self, folder: FolderPath | str) -> list[wire.ShareView]:
        return _loads(wire.ShareView, self._call("GET", f"{_folder_url(folder)}/shares"))

    # -- assets ------------------------------------------------------------------------------
    def create_asset(self, asset: AssetLike, *, description: str = "", labels: Iterable[str] = (),
                     readme: str = "", dataset: wire.DatasetMeta | None = None) -> wire.AssetView:
        body = {"path": str(_path(asset)), "description": description, "labels": list(labels),
                "readme": readme, "dataset": _meta_json(dataset)}
        return _load(wire.AssetView, self._call("POST", "/assets", json=body))

    def get_asset(self, asset: AssetLike) -> wire.AssetView:
        return _load(wire.AssetView, self._call("GET", _asset_url(_path(asset))))

    def update_asset(self, asset: AssetLike, *, new_name: str | None = None,
                     description: str | None = None, labels: Iterable[str] | None = None,
                     readme: str | None = None, dataset: wire.DatasetMeta | None = None,
                     preset: bool | None = None) -> wire.AssetView:
        body = {"name": new_name, "description": description, "readme": readme, "preset": preset,
                "labels": list(labels) if labels is not None else None,
                "dataset": _meta_json(dataset)}
        return _load(wire.AssetView, self._call("PATCH", _asset_url(_path(asset)),
                                           json={k: v for k, v in body.items() if v is not None}))

    def delete_asset(self, asset: AssetLike) -> None:
        self._call("DELETE", _asset_url(_path(asset)))

    def search(self, query: str = "", *, label: str | None = None, kind: str | None = None,
               owner: str | None = None, folder: str | None = None, task_type: str | None = None,
               limit: int = 100) -> list[wire.AssetView]:
        """Assets you may see, matching words of their name or description and the filters."""
        params = {"q": query, "label": label, "kind": kind, "owner": owner, "folder": folder,
                  "task_type": task_type, "limit": limit}
        return _loads(wire.AssetView, self._call("GET", "/assets", params=params))

    def role(self, asset: AssetLike) -> str:
        """Your role on an asset: view, run, edit or owner."""
        return str(self._call("GET", f"{_asset_url(_path(asset))}/role")["role"])

    # -- versions ----------------------------------------------------------------------------
    def get_commit(self, ref: AssetLike) -> wire.CommitInfo:
        r = AssetRef.coerce(ref)
        return _load(wire.CommitInfo, self._call("GET", f"{_asset_url(r.path)}/commit",
                                            params={"ref": r.ref}))

    def resolve(self, ref: AssetLike) -> str:
        """The commit id a branch, tag or commit reference points at now."""
        return self.get_commit(ref).id

    def log(self, ref: AssetLike, *, limit: int = 100, path: str | None = None) -> list[wire.CommitInfo]:
        r = AssetRef.coerce(ref)
        return _loads(wire.CommitInfo, self._call("GET", f"{_asset_url(r.path)}/log",
                                             params={"ref": r.ref, "limit": limit, "file": path}))

    def diff(self, left: AssetLike, right: AssetLike, *, prefix: str = "") -> list[wire.DiffEntry]:
        """What changed from ``left`` to ``right``; ``right`` may be a bare ref of left's asset."""
        a = AssetRef.coerce(left)
        b = AssetRef.coerce(right) if not isinstance(right, str) or "/" in right else a.path.at(right)
        if b.path != a.path:
            raise errors.InvalidReferenceError(f"diff compares versions of one asset, not {a.path} "
                                               f"and {b.path}", part="ref", value=str(b))
        return _loads(wire.DiffEntry, self._call("GET", f"{_asset_url(a.path)}/diff",
                                            params={"left": a.ref, "right": b.ref, "prefix": prefix}))

    def list_branches(self, asset: AssetLike) -> list[wire.BranchInfo]:
        return _loads(wire.BranchInfo, self._call("GET", f"{_asset_url(_path(asset))}/branches"))

    def create_branch(self, asset: AssetLike, name: str, *, source: str = "main") -> wire.BranchInfo:
        return _load(wire.BranchInfo, self._call("POST", f"{_asset_url(_path(asset))}/branches",
                                            json={"name": name, "source": source}))

    def delete_branch(self, asset: AssetLike, name: str) -> None:
        self._call("DELETE", f"{_asset_url(_path(asset))}/branches/{_q(name)}")

    def list_tags(self, asset: AssetLike) -> list[wire.TagInfo]:
        return _loads(wire.TagInfo, self._call("GET", f"{_asset_url(_path(asset))}/tags"))

    def create_tag(self, asset: AssetLike, name: str, *, ref: str = "main") -> wire.TagInfo:
        return _load(wire.TagInfo, self._call("POST", f"{_asset_url(_path(asset))}/tags",
                                         json={"name": name, "ref": ref}))

    def delete_tag(self, asset: AssetLike, name: str) -> None:
        self._call("DELETE", f"{_asset_url(_path(asset))}/tags/{_q(name)}")

    def merge(self, asset: AssetLike, source: str, *, into: str = "main",
              strategy: str | None = None, message: str | None = None,
              metadata: Mapping[str, str] | None = None) -> wire.CommitInfo:
        """Merge branch ``source`` into ``into``; on conflicts, ``strategy`` picks a side."""
        body = {"source": source, "into": into, "strategy": strategy, "message": message,
                "metadata": dict(metadata or {})}
        return _load(wire.CommitInfo, self._call("POST", f"{_asset_url(_path(asset))}/merge", json=body))

    def publish(self, dataset: AssetLike, tag: str, *, ref: str = "main") -> wire.TagInfo:
        """Publish a dataset version as an immutable tag."""
        return _load(wire.TagInfo, self._call("POST", f"{_asset_url(_path(dataset))}/publish",
                                         json={"tag": tag, "ref": ref}))

    # -- files -------------------------------------------------------------------------------
    def list_objects(self, ref: AssetLike, *, prefix: str = "") -> list[wire.ObjectInfo]:
        r = AssetRef.coerce(ref)
        return _loads(wire.ObjectInfo, self._call("GET", f"{_asset_url(r.path)}/objects",
                                             params={"ref": r.ref, "prefix": prefix}))

    def stat(self, ref: AssetLike, path: str) -> wire.ObjectInfo:
        r = AssetRef.coerce(ref)
        return _load(wire.ObjectInfo, self._call("GET", f"{_asset_url(r.path)}/stat",
                                            params={"ref": r.ref, "file": path}))

    def download(self, ref: AssetLike, dest: Path | str, *, prefix: str = "",
                 progress: bool = False) -> wire.DownloadResult:
        """Download a version (or the files under ``prefix``) into ``dest``.

        Files land at their path relative to ``prefix``. Content already in the local cache
        (by SHA-256) is not transferred again; every transferred file is checked.
        """
        r = AssetRef.coerce(ref)
        if self._direct():
            return self._download_direct(r, Path(dest), prefix=prefix, progress=progress)
        at = r.path.at(self.resolve(r))  # one commit throughout, even if the branch moves
        base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        plan: list[tuple[RemoteObject, str]] = []
        root = os.fspath(dest)
        for o in self._remote_objects(at, prefix):
            if prefix and o.path != prefix and not o.path.startswith(base):
                continue
            rel = o.path.rsplit("/", 1)[-1] if o.path == prefix else o.path[len(base):]
            # refuse '..' and absolute paths coming from the server
            plan.append((o, os.path.join(root, validate_object_path(rel))))
        if prefix and not plan:
            raise errors.ObjectNotFoundError(str(r), prefix)
        missing = {o.cache_key: o for o, _ in plan if not self.cache.has(o)}
        total = sum(o.size for o in missing.values())
        small = [o for o in missing.values() if o.size <= _BUNDLE_FILE_MAX]
        single = [o for o in missing.values() if o.size > _BUNDLE_FILE_MAX] + \
            (small if len(small) < 4 else [])
        bundles = _bundles(small) if len(small) >= 4 else []
        with _progress(progress, f"download {r}", total) as advance:
            run_parallel([*(functools.partial(self._fetch_bundle, at, b, advance) for b in bundles),
                          *(functools.partial(self._fetch, at, o, advance) for o in single)],
                         self.max_workers)
        place_all((self.cache.blob_file(obj), target) for obj, target in plan)
        return wire.DownloadResult(at.ref, len(plan), sum(o.size for o, _ in plan), total)

    def _listing_key(self, at: AssetRef, prefix: str) -> str:
        return "sdk-" + hashlib.sha256(f"{self.url}\n{at.path}\n{prefix}".encode()).hexdigest()[:40]

    def _remote_objects(self, at: AssetRef, prefix: str) -> list[RemoteObject]:
        """A commit's files under ``prefix``: listed by the server once, then from the cache
        (a commit never changes; the caller has just been allowed to resolve it)."""
        key = self._listing_key(at, prefix)
        cached = self.cache.load_listing(key, at.ref)
        if cached is not None:
            return cached
        objs = [RemoteObject(o.path, o.size, o.checksum, o.sha256)
                for o in self.list_objects(at, prefix=prefix)]
        self.cache.save_listing(key, at.ref, objs)
        return objs

    def _ranges_into(self, tmp: Path, obj: RemoteObject,
                     read_range: Callable[[int, int], contextlib.AbstractContextManager[Iterable[bytes]]],
                     advance: Advance, workers: int) -> str:
        """A large file as parallel byte ranges (``read_range(start, end)``: a context giving the
        range's bytes as chunks) written in place into ``tmp`` and hashed in order as they
        arrive, from the bytes already in memory (one pass: the file is never read back).

        A window of ``workers`` ranges is in flight; a range that has landed waits, in memory,
        for the ones before it to be hashed, so memory stays within (workers + 1) parts
        whatever the file's size. Returns the SHA-256."""
        sha = hashlib.sha256()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

        def part(start: int) -> list[bytes]:
            end = min(start + _RANGE_PART, obj.size) - 1
            offset, chunks = start, []
            with read_range(start, end) as body:
                for chunk in body:
                    if offset + len(chunk) > end + 1:
                        raise errors.TransferError(f"range {start}-{end} of {obj.path} came long",
                                                   path=obj.path)
                    os.pwrite(fd, chunk, offset)
                    offset += len(chunk)
                    chunks.append(chunk)
                    advance(len(chunk))
            if offset != end + 1:
                raise errors.TransferError(f"range {start}-{end} of {obj.path} came short",
                                           path=obj.path)
            return chunks

        try:
            with ThreadPoolExecutor(max(workers, 1)) as pool:
                starts = iter(range(0, obj.size, _RANGE_PART))
                window = deque(pool.submit(part, start)
                               for start in itertools.islice(starts, max(workers, 1)))
                try:
                    while window:
                        chunks = window.popleft().result()
                        if (start := next(starts, None)) is not None:
                            window.append(pool.submit(part, start))
                        for chunk in chunks:  # hashlib lets go of the GIL: the parts go on landing
                            sha.update(chunk)
                except BaseException:
                    for future in window:
                        future.cancel()
                    raise
        finally:
            os.close(fd)
        return sha.hexdigest()

    def _fetch_ranges(self, url: str, at: AssetRef, obj: RemoteObject, tmp: Path,
                      advance: Advance) -> None:
        """A large file through the server as parallel byte ranges, hashed as they arrive."""
        @contextmanager
        def read_range(start: int, end: int) -> Iterator[Iterable[bytes]]:
            with self._stream("GET", url, params={"ref": at.ref},
                              headers={"Range": f"bytes={start}-{end}"}) as resp:
                yield resp.iter_bytes()  # as they come off the socket: no re-chunking copy

        digest = self._ranges_into(tmp, obj, read_range, advance, self.max_workers)
        if obj.sha256 and digest != obj.sha256:
            raise errors.TransferError(
                f"download of {obj.path} failed verification (sha256 {digest} != "
                f"{obj.sha256})", path=obj.path)

    def _fetch_bundle(self, at: AssetRef, objs: list[RemoteObject], advance: Advance) -> None:
        """Many small files in one request; each is checked and cached as it arrives."""
        wanted = {o.path: o for o in objs}
        with self._stream("POST", f"{_asset_url(at.path)}/bundle",
                          json={"ref": at.ref, "paths": list(wanted)}) as resp:
            frames = _FrameReader(resp.iter_bytes(_CHUNK))
            for _ in objs:
                header = json.loads(frames.read(int.from_bytes(frames.read(4), "big")))
                if "error" in header:  # the error protocol's body, with the wire name as "error"
                    raise errors.from_wire({**header, "type": header["error"]}) or errors.TransferError(
                        str(header.get("message")), path=str(header.get("path")))
                obj = wanted.pop(str(header.get("path")), None)
                if obj is None or header.get("size") != obj.size:
                    raise errors.TransferError(f"the server sent {header} in a bundle of {at}, "
                                               "which was not asked for", path=str(header.get("path")))
                data = frames.read(obj.size)  # a bundled file is small (_BUNDLE_FILE_MAX)
                if obj.sha256 and (got := hashlib.sha256(data).hexdigest()) != obj.sha256:
                    raise errors.TransferError(f"download of {obj.path} failed verification (sha256 "
                                               f"{got} != {obj.sha256})", path=obj.path)
                self.cache.put_blob(obj, data)
                advance(obj.size)

    def _fetch(self, at: AssetRef, obj: RemoteObject, advance: Advance) -> None:
        tmp, sha, size = self.cache.temp_file(), hashlib.sha256(), 0
        url = f"{_asset_url(at.path)}/files/{quote(obj.path, safe='/')}"
        if obj.size >= _RANGED_FROM:
            try:
                self._fetch_ranges(url, at, obj, tmp, advance)
                self.cache.commit_blob(tmp, obj)
            finally:
                tmp.unlink(missing_ok=True)
            return
        try:
            with open(tmp, "wb") as out, self._stream("GET", url, params={"ref": at.ref}) as resp:
                for chunk in resp.iter_bytes(_CHUNK):
                    out.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    advance(len(chunk))
            if size != obj.size or (obj.sha256 and sha.hexdigest() != obj.sha256):
                raise errors.TransferError(
                    f"download of {obj.path} failed verification (size {size}/{obj.size}, "
                    f"sha256 {sha.hexdigest()} != {obj.sha256})", path=obj.path)
            self.cache.commit_blob(tmp, obj)
        finally:
            tmp.unlink(missing_ok=True)

    def create_commit(self, ref: AssetLike, operations: Iterable[wire.AddFile | wire.DeleteFile], *,
                      message: str, metadata: Mapping[str, str] | None = None,
                      parent_commit: str | None = None, base: str | None = None,
                      progress: bool = False) -> wire.CommitInfo:
        """Apply file operations to a branch as one commit: all of them, or none.

        ``AddFile(local, path)`` with a directory adds every file under it below ``path``.
        ``parent_commit`` makes the commit fail if the branch has moved past that commit.
        ``base`` (datasets): start from this published version or commit, or ``"empty"``,
        instead of the branch's head; the commit records what it was based on.
        """
        r = AssetRef.coerce(ref)
        adds: dict[str, Path] = {}
        deletes: list[str] = []
        for op in operations:
            if isinstance(op, wire.DeleteFile):
                deletes.append(validate_object_path(op.path))
                continue
            for local, remote in _local_files(Path(op.local), op.path):
                if adds.setdefault(validate_object_path(remote), local) != local:
                    raise errors.InvalidReferenceError(
                        f"both {adds[remote]} and {local} would be uploaded to {remote!r}",
                        part="object path", value=remote)
        start: dict[str, str] = {"branch": r.ref}
        if base is not None:
            start["base"] = base
        upload_id = self._call("POST", f"{_asset_url(r.path)}/uploads", json=start)["upload_id"]
        try:
            total = sum(p.stat().st_size for p in adds.values())
            with _progress(progress, f"upload {r}", total) as advance:
                direct: dict[str, Path] = {}
                if adds and self._direct():  # S3 takes at most 5 GiB in one PUT: larger go proxied
                    direct = {k: p for k, p in adds.items() if p.stat().st_size <= _DIRECT_PUT_MAX}
                    self._put_direct(upload_id, direct, advance)
                self._put_all(upload_id, {k: p for k, p in adds.items() if k not in direct}, advance)
            data = self._call("POST", f"/uploads/{upload_id}/commit", json={
                "message": message, "metadata": dict(metadata or {}), "delete": deletes,
                "parent_commit": parent_commit})
        except BaseException:
            with suppress(errors.AssetHubError):
                self._call("DELETE", f"/uploads/{upload_id}")
            raise
        return _load(wire.CommitInfo, data)

    def _put_all(self, upload_id: str, adds: Mapping[str, Path], advance: Advance) -> None:
        """Every file of an upload: small ones several to a request (``_put_bundle``), the rest
        one request each, ``max_workers`` requests at a time."""
        sizes = {remote: local.stat().st_size for remote, local in adds.items()}
        small = [r for r, size in sizes.items() if size <= _BUNDLE_FILE_MAX]
        bundles = _upload_bundles(small, sizes) if len(small) >= 4 else []
        bundled = {r for b in bundles for r in b}
        run_parallel([*(functools.partial(self._put_bundle, upload_id,
                                          [(r, adds[r], sizes[r]) for r in b], advance)
                        for b in bundles),
                      *(functools.partial(self._put, upload_id, r, local, advance)
                        for r, local in adds.items() if r not in bundled)], self.max_workers)

    def _put_bundle(self, upload_id: str, files: list[tuple[str, Path, int]],
                    advance: Advance) -> None:
        """Small files of an upload in one request: per file a 4-byte big-endian length, a JSON
        header ``{"path", "size", "sha256"}`` and the bytes; the server checks each SHA-256."""
        def header(remote: str, size: int, sha256: str) -> bytes:
            h = json.dumps({"path": remote, "size": size, "sha256": sha256}).encode()
            return len(h).to_bytes(4, "big") + h

        # a SHA-256 is always 64 hex digits: the body's length is known before any is computed
        length = sum(len(header(r, size, "0" * 64)) + size for r, _, size in files)
        sent: dict[str, str] = {}

        def body() -> Iterator[bytes]:
            for remote, local, size in files:
                data = local.read_bytes()
                if len(data) != size:
                    raise errors.TransferError(f"{local} changed while it was uploaded ({size} "
                                               f"bytes, now {len(data)})", path=str(local))
                sent[remote] = hashlib.sha256(data).hexdigest()
                yield header(remote, size, sent[remote]) + data
                advance(size)

        got = self._call("PUT", f"/uploads/{upload_id}/bundle", content=_Reiterable(body),
                         headers={"Content-Length": str(length),
                                  "Content-Type": "application/x-assethub-bundle"})
        stored = {f.get("path"): f for f in got.get("files", [])}
        for remote, local, size in files:
            f = stored.get(remote) or {}
            if f.get("size") != size or f.get("sha256") != sent.get(remote):
                raise errors.TransferError(f"upload of {local} is incomplete: the server has "
                                           f"{f or 'nothing'} for {remote}", path=str(local))

    def _put(self, upload_id: str, remote: str, local: Path, advance: Advance) -> None:
        size = local.stat().st_size
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        content: Iterable[bytes] | bytes = _chunks(local, advance)
        if size <= _BUNDLE_FILE_MAX:  # its SHA-256 sent along saves the server a call to lakeFS
            content = local.read_bytes()
            if len(content) != size:
                raise errors.TransferError(f"{local} changed while it was uploaded ({size} "
                                           f"bytes, now {len(content)})", path=str(local))
            headers["X-Asset-Sha256"] = hashlib.sha256(content).hexdigest()
            advance(size)
        got = self._call("PUT", f"/uploads/{upload_id}/files/{quote(remote, safe='/')}",
                         content=content, headers=headers)
        if got.get("size") != size:
            raise errors.TransferError(f"upload of {local} is incomplete: the server has "
                                       f"{got.get('size')} of {size} bytes", path=str(local))

    # -- direct transfer: presigned URLs, the bytes go between here and the object store ----
    def capabilities(self) -> dict[str, Any]:
        """What the server offers: ``presign`` when file bytes may move straight between this
        client and the object store (asked once per client)."""
        with self._lock:
            cached = self.__dict__.get("_capabilities")
        if cached is None:
            cached = dict(self._call("GET", "/capabilities") or {})
            with self._lock:
                self.__dict__["_capabilities"] = cached
        return cached

    def _direct(self) -> bool:
        """Whether transfers take the presigned path: the server offers it, and
        ``ASSETHUB_PRESIGN`` is not ``0`` (for a client that cannot reach the object store)."""
        if os.environ.get("ASSETHUB_PRESIGN", "1").strip().lower() in ("0", "false", "no", "off"):
            return False
        try:
            return bool(self.capabilities().get("presign"))
        except (errors.ServerUnavailableError, errors.AuthenticationError):
            raise
        except errors.AssetHubError:  # a server from before presigned transfer (no such route)
            return False

    @property
    def _object_http(self) -> httpx.Client:
        """The connection to the object store: no Asset Hub token ever goes there."""
        with self._lock:
            client = self.__dict__.get("_object_client")
            if client is None:
                _load_httpcore()
                client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                                      limits=httpx.Limits(max_connections=self._direct_workers),
                                      transport=self._transport)  # a test's fake serves both
                self.__dict__["_object_client"] = client
            return cast(httpx.Client, client)

    @property
    def _direct_workers(self) -> int:
        """Downloads from the object store run this many requests at once: each waits on the
        store far longer than it costs this process (``max_workers`` is sized for the server)."""
        return self.max_workers * _DIRECT_WORKERS_PER

    @property
    def _store_pool(self) -> Any:
        """A urllib3 pool for reads from the object store, or None where httpx must carry them
        (a test's transport, or a proxy from the environment, which urllib3 would not use).

        A presigned GET is a plain request, and with many small files the client's CPU per
        request (on cores the object store needs too) sets the pace: urllib3 (boto3's own
        transport, so always installed, imported on first use) costs less per request than
        httpx, as in ``assethub/storage/gateway.py``."""
        pool = self.__dict__.get("_store_urllib3")  # decided once: this is asked per request
        if pool is not None:
            return pool or None
        with self._lock:
            if "_store_urllib3" not in self.__dict__:
                pool = False
                if self._transport is None and not any(
                        k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in os.environ):
                    import certifi  # httpx's certificate store, so both paths trust the same
                    import urllib3

                    pool = urllib3.PoolManager(
                        maxsize=self._direct_workers, retries=False, ca_certs=certifi.where(),
                        timeout=urllib3.Timeout(connect=min(self.timeout, 10.0), read=self.timeout))
                self.__dict__["_store_urllib3"] = pool
            return self.__dict__["_store_urllib3"] or None

    def presigned_objects(self, ref: AssetLike, *,
                          prefix: str = "") -> tuple[str, list[wire.PresignedObject]]:
        """The commit ``ref`` is at and its files (under ``prefix``) with URLs that read them
        straight from the object store, page by page from the server."""
        r = AssetRef.coerce(ref)
        commit, after = r.ref, ""
        out: list[wire.PresignedObject] = []
        while True:
            page = _load(wire.PresignedPage, self._call(
                "GET", f"{_asset_url(r.path)}/presigned",
                params={"ref": commit, "prefix": prefix, "after": after}))
            commit = page.commit_id  # later pages read the commit the first one resolved
            out.extend(page.objects)
            if not page.next_after:
                return commit, out
            after = page.next_after

    def _download_direct(self, r: AssetRef, dest: Path, *, prefix: str,
                         progress: bool) -> wire.DownloadResult:
        # A commit whose listing this cache kept and whose files it holds is placed from the
        # cache after one call that resolves the ref (so the permission is checked every time),
        # without asking the server to presign thousands of URLs nobody will use.
        commit = self.resolve(r)
        key = self._listing_key(r.path.at(commit), prefix)
        kept = self.cache.load_listing(key, commit)
        complete = kept is not None and all(self.cache.has(o) for o in kept)
        listed: Sequence[RemoteObject] = kept or []
        urls: dict[str, str] = {}
        if not complete:
            commit, presigned = self.presigned_objects(r.path.at(commit), prefix=prefix)
            listed = [RemoteObject(o.path, o.size, o.checksum, o.sha256) for o in presigned]
            urls = {o.path: o.url for o in presigned}
        base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        plan: list[tuple[RemoteObject, str]] = []
        root = os.fspath(dest)
        for obj in listed:
            if prefix and obj.path != prefix and not obj.path.startswith(base):
                continue
            rel = obj.path.rsplit("/", 1)[-1] if obj.path == prefix else obj.path[len(base):]
            # refuse '..' and absolute paths coming from the server
            plan.append((obj, os.path.join(root, validate_object_path(rel))))
        if prefix and not plan:
            raise errors.ObjectNotFoundError(str(r), prefix)
        # (a complete listing's files were each just found in the cache: not asked again)
        missing = {} if complete else {o.cache_key: o for o, _ in plan if not self.cache.has(o)}
        total = sum(o.size for o in missing.values())
        at = r.path.at(commit)
        with _progress(progress, f"download {r}", total) as advance:
            # the large files first: their ranges then overlap the many small files
            run_parallel((functools.partial(self._fetch_fresh, at, urls[o.path], o, advance)
                          for o in sorted(missing.values(), key=lambda o: -o.size)),
                         self._direct_workers)
        place_all((self.cache.blob_file(obj), target) for obj, target in plan)
        if not complete:  # kept once every file is: a listing of what the cache holds
            self.cache.save_listing(key, commit, list(listed))
        return wire.DownloadResult(commit, len(plan), sum(o.size for o, _ in plan), total)

    @contextmanager
    def _from_store(self, url: str, obj: RemoteObject,
                    headers: dict[str, str] | None = None) -> Iterator[Iterable[bytes]]:
        """An object's bytes (or the range ``headers`` ask for) read from the object store with
        a presigned URL, as chunks: raw, as stored (never decoded), no Asset Hub token sent."""
        pool = self._store_pool
        if pool is None:
            try:
                with self._object_http.stream("GET", url, headers=headers) as resp:
                    if resp.status_code not in (200, 206):
                        resp.read()
                        raise self._store_refused(obj, resp.status_code, resp.text)
                    yield resp.iter_bytes(_CHUNK)
            except httpx.TransportError as exc:
                raise self._store_failed(obj, exc) from exc
            return
        import urllib3

        try:
            resp = pool.urlopen("GET", url, headers=headers, redirect=False,
                                preload_content=False, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise self._store_failed(obj, exc) from exc
        whole = False
        try:
            if resp.status not in (200, 206):
                raise self._store_refused(obj, resp.status,
                                          resp.read(4096).decode("utf-8", "replace"))
            yield resp.stream(_CHUNK, decode_content=False)
            whole = True  # the caller read the body to its end
        except urllib3.exceptions.HTTPError as exc:  # the connection broke mid-body
            raise self._store_failed(obj, exc) from exc
        finally:
            if not whole:
                resp.close()  # a body left unread: the connection is dropped, not reused
            resp.release_conn()

    @staticmethod
    def _store_refused(obj: RemoteObject, status: int, text: str) -> errors.TransferError:
        return (_Refused if status == 403 else errors.TransferError)(
            f"the object store refused {obj.path}: HTTP {status} {text.strip()[:200]}",
            path=obj.path)

    @staticmethod
    def _store_failed(obj: RemoteObject, exc: Exception) -> errors.TransferError:
        return errors.TransferError(f"reading {obj.path} from the object store failed: "
                                    f"{type(exc).__name__}: {exc}", path=obj.path)

    def _fetch_fresh(self, at: AssetRef, url: str, obj: RemoteObject, advance: Advance) -> None:
        """:meth:`_fetch_direct`, asking the server once for a new URL when the object store
        refuses this one (presigned URLs expire: 15 minutes by default)."""
        try:
            self._fetch_direct(url, obj, advance)
        except _Refused:
            page = _load(wire.PresignedPage, self._call(
                "GET", f"{_asset_url(at.path)}/presigned",
                params={"ref": at.ref, "prefix": obj.path, "limit": 1}))
            fresh = next((o.url for o in page.objects if o.path == obj.path), None)
            if fresh is None:
                raise
            self._fetch_direct(fresh, obj, advance)

    def _verified(self, obj: RemoteObject, size: int, digest: str) -> None:
        if size != obj.size or (obj.sha256 and digest != obj.sha256):
            raise errors.ChecksumMismatchError(
                f"download of {obj.path} failed verification (size {size}/{obj.size}, "
                f"sha256 {digest} != {obj.sha256}): the object store holds other "
                "bytes than were committed", path=obj.path)

    def _fetch_direct(self, url: str, obj: RemoteObject, advance: Advance) -> None:
        """One file straight from the object store, its size and SHA-256 checked before it
        enters the cache: a small one in memory (nothing written unless it is right), a large
        one as parallel byte ranges hashed as they arrive, the rest streamed to a temporary file."""
        if obj.size <= _BUNDLE_FILE_MAX:
            with self._from_store(url, obj) as body:
                data = b"".join(body)  # one chunk (no copy) for a file under _CHUNK
            self._verified(obj, len(data), hashlib.sha256(data).hexdigest())
            self.cache.put_blob(obj, data)
            advance(len(data))
            return
        tmp = self.cache.temp_file()
        try:
            if obj.size >= _RANGED_FROM:
                digest = self._ranges_into(tmp, obj, lambda start, end: self._from_store(
                    url, obj, {"Range": f"bytes={start}-{end}"}), advance,
                    self.max_workers * _DIRECT_RANGE_WORKERS_PER)
                size = obj.size
            else:
                sha, size = hashlib.sha256(), 0
                with open(tmp, "wb") as out, self._from_store(url, obj) as body:
                    for chunk in body:
                        out.write(chunk)
                        sha.update(chunk)
                        size += len(chunk)
                        advance(len(chunk))
                digest = sha.hexdigest()
            self._verified(obj, size, digest)
            self.cache.commit_blob(tmp, obj)
        finally:
            tmp.unlink(missing_ok=True)

    def _put_direct(self, upload_id: str, adds: Mapping[str, Path], advance: Advance) -> None:
        """Files of an upload straight to the object store: presigned PUTs asked for a group at
        a time, each file hashed while it is sent, then linked (the server checks each is there
        at its size and ETag). Groups run in parallel."""
        # groups of at most _DIRECT_GROUP_FILES, as many as fill every worker in each wave
        per = _DIRECT_GROUP_FILES
        if len(adds) > self.max_workers:
            waves = -(-len(adds) // (per * self.max_workers))
            per = -(-len(adds) // (waves * self.max_workers))
        groups: list[list[tuple[str, Path]]] = []
        group: list[tuple[str, Path]] = []
        size = 0
        for remote, local in adds.items():
            n = local.stat().st_size
            if group and (len(group) >= per or size + n > _BUNDLE_BYTES):
                groups.append(group)
                group, size = [], 0
            group.append((remote, local))
            size += n
        groups += [group] if group else []

        def send(files: list[tuple[str, Path]]) -> None:
            puts = _loads(wire.PresignedPut, self._call(
                "POST", f"/uploads/{_q(upload_id)}/presign",
                json={"paths": [remote for remote, _ in files]})["files"])
            linked = []
            for (remote, local), put in zip(files, puts, strict=True):
                sha, size, etag = self._put_to_store(put, local, advance)
                linked.append({"path": remote, "physical_address": put.physical_address,
                               "size": size, "sha256": sha, "etag": etag})
            self._call("POST", f"/uploads/{_q(upload_id)}/link", json={"files": linked})

        run_parallel((functools.partial(send, g) for g in groups), self.max_workers)

    def _put_to_store(self, put: wire.PresignedPut, local: Path,
                      advance: Advance) -> tuple[str, int, str]:
        sha = hashlib.sha256()
        size = local.stat().st_size
        if size <= _BUNDLE_FILE_MAX and self._transport is None:
            return self._put_small_to_store(put, local, size, advance)

        def body() -> Iterator[bytes]:
            for chunk in _chunks(local, advance):
                sha.update(chunk)
                yield chunk

        try:
            resp = self._object_http.put(put.url, content=body(), headers={
                "Content-Length": str(size), "Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise errors.TransferError(f"upload of {local} to the object store failed: "
                                       f"{type(exc).__name__}: {exc}", path=str(local)) from exc
        if resp.status_code not in (200, 201, 204):
            raise errors.TransferError(f"the object store refused {local}: HTTP {resp.status_code} "
                                       f"{resp.text.strip()[:200]}", path=str(local))
        etag = resp.headers.get("etag", "").strip('"')
        if not etag:
            raise errors.TransferError(f"the object store answered the upload of {local} without "
                                       "an ETag", path=str(local))
        return sha.hexdigest(), size, etag

    def _put_small_to_store(self, put: wire.PresignedPut, local: Path, size: int,
                            advance: Advance) -> tuple[str, int, str]:
        """A small file in one PUT of its bytes on the raw urllib3 pool reads use
        (:attr:`_store_pool`): a third of httpx's CPU per request, which for thousands of small
        files is most of the client's work."""
        import urllib3

        pool = self._store_pool
        if pool is None:  # a test's transport or a proxy from the environment: httpx carries it
            return self._put_to_store(put, local, advance)
        data = local.read_bytes()
        if len(data) != size:
            raise errors.TransferError(f"{local} changed while it was uploaded ({size} bytes, "
                                       f"now {len(data)})", path=str(local))
        try:
            resp = pool.request("PUT", put.url, body=data, retries=False, headers={
                "Content-Length": str(size), "Content-Type": "application/octet-stream"})
        except urllib3.exceptions.HTTPError as exc:
            raise errors.TransferError(f"upload of {local} to the object store failed: "
                                       f"{type(exc).__name__}: {exc}", path=str(local)) from exc
        if resp.status not in (200, 201, 204):
            raise errors.TransferError(
                f"the object store refused {local}: HTTP {resp.status} "
                f"{resp.data.decode(errors='replace').strip()[:200]}", path=str(local))
        etag = (resp.headers.get("etag") or "").strip('"')
        if not etag:
            raise errors.TransferError(f"the object store answered the upload of {local} without "
                                       "an ETag", path=str(local))
        advance(size)
        return hashlib.sha256(data).hexdigest(), size, etag

    def upload(self, ref: AssetLike, local: Path | str, *, path: str = "",
               message: str | None = None, metadata: Mapping[str, str] | None = None,
               delete: Iterable[str] = (), parent_commit: str | None = None,
               base: str | None = None, progress: bool = False) -> wire.CommitInfo:
        """Commit a local file (at ``path``, default its name) or a directory's files (under
        ``path``, default the root) to a branch, deleting ``delete`` in the same commit;
        ``base``: see :meth:`create_commit`."""
        local = Path(local)
        ops: list[wire.AddFile | wire.DeleteFile] = [wire.AddFile(local, path),
                                                     *(wire.DeleteFile(d) for d in delete)]
        return self.create_commit(ref, ops, message=message or f"Upload {local.name}",
                                  metadata=metadata, parent_commit=parent_commit, base=base,
                                  progress=progress)

    def import_archive(self, dataset: AssetLike, archive: Path | str, *,
                       message: str = "", base: str | None = None, mode: str = "add",
                       split: str | None = None) -> wire.ImportResult:
        """Import a zip archive into a dataset's ``main`` as one commit, after the server checks
        its layout: on top of ``main`` (or of ``base``: a published version, a commit or
        ``"empty"``) with ``mode="add"``, or as a clean version of only its files with
        ``mode="replace"``; ``split="test"``: a separate test set into the test split."""
        archive = Path(archive)
        params = {"message": message, "from": base, "mode": mode, "split": split}
        data = self._call("POST", f"{_asset_url(_path(dataset))}/import", params=params,
                          content=_chunks(archive), timeout=httpx.Timeout(self.timeout, read=None),
                          headers={"Content-Length": str(archive.stat().st_size),
                                   "Content-Type": "application/zip"})
        return wire.ImportResult(_load(wire.CommitInfo, data["commit"]),
                                 _load(wire.DatasetSummary, data["summary"]))

    # -- jobs: runs, evaluations, lineage ----------------------------------------------------
    def create_run(self, model: AssetLike, *, kind: str, branch: str = "", dataset: str = "",
                   base: str = "", code_url: str = "", code_revision: str = "",
                   code_subpath: str = "", command: str = "",
                   params: Mapping[str, Any] | None = None, trigger: str = "person",
                   owner: str = "", deferred: bool = False, algorithm: str = "") -> wire.RunView:
        """Register a job with the server, which checks every permission it needs first.

        ``trigger`` says what started it: ``person``, ``schedule`` or ``event`` (new data);
        ``owner`` whom it acts for (an admin may name another user; default: you). A credential
        in ``code_url`` is kept by the server for you and the run records the URL without it.
        :meth:`open_run` also returns the run's job token."""
        return self.open_run(model, kind=kind, branch=branch, dataset=dataset, base=base,
                             code_url=code_url, code_revision=code_revision,
                             code_subpath=code_subpath, command=command, params=params,
                             trigger=trigger, owner=owner, deferred=deferred, algorithm=algorithm)[0]

    def open_run(self, model: AssetLike, *, kind: str, branch: str = "", dataset: str = "",
                 base: str = "", code_url: str = "", code_revision: str = "",
                 code_subpath: str = "", command: str = "",
                 params: Mapping[str, Any] | None = None, trigger: str = "person",
                 owner: str = "", deferred: bool = False,
                 algorithm: str = "") -> tuple[wire.RunView, str | None]:
        """:meth:`create_run`, and the run's job token (shown once): it acts for you on that run
        only and ends with it. ``deferred``: the job runs on the worker, whose service user
        claims the token (:meth:`claim_run`); none is returned then.

        What you leave empty the server takes from the model's job settings (:meth:`configure`)
        and then from ``algorithm`` (``name`` or ``name@N``); the run records what was used."""
        body = {"kind": kind, "model": str(_path(model)), "branch": branch, "dataset": dataset,
                "base": base, "code_url": code_url, "code_revision": code_revision,
                "code_subpath": code_subpath, "command": command, "params": dict(params or {}),
                "trigger": trigger, "owner": owner, "deferred": deferred, "algorithm": algorithm}
        data = self._call("POST", "/runs", json=body)
        return _load(wire.RunView, data), data.get("job_token")

    def claim_run(self, run_id: str) -> tuple[wire.RunView, str]:
        """A deferred run's job token, once (the service user, for the worker's flow)."""
        data = self._call("POST", f"/runs/{_q(run_id)}/claim")
        return _load(wire.RunView, data), str(data["job_token"])

    def open_follow_run(self, follow_id: int, *, trigger: str = "event") -> tuple[wire.RunView, str]:
        """Register follow ``follow_id``'s retrain as the follow's owner (the service user only);
        the run and its job token."""
        data = self._call("POST", f"/follows/{int(follow_id)}/runs", params={"trigger": trigger})
        return _load(wire.RunView, data), str(data["job_token"])

    def with_token(self, token: str) -> Client:
        """A client of the same server that authenticates with ``token`` (e.g. a job token)."""
        return Client(self.url, token, timeout=self.timeout, transport=self._transport,
                      cache_dir=self.cache.root, max_workers=self.max_workers)

    def update_run(self, run_id: str, **changes: Any) -> wire.RunView:
        return _load(wire.RunView, self._call("PATCH", f"/runs/{_q(run_id)}", json=changes))

    def get_run(self, run_id: str) -> wire.RunView:
        return _load(wire.RunView, self._call("GET", f"/runs/{_q(run_id)}"))

    def list_runs(self, model: AssetLike | None = None, *, state: str | None = None,
                  kind: str | None = None, limit: int = 50) -> list[wire.RunView]:
        """Runs newest first: of ``model``, or (without one) those you started."""
        params = {"model": str(_path(model)) if model else None, "state": state, "kind": kind,
                  "limit": limit}
        return _loads(wire.RunView, self._call("GET", "/runs", params=params))

    def add_evaluation(self, ref: AssetLike, *, dataset: str, metrics: Mapping[str, float],
                       run_id: str = "", evaluation_id: str | None = None) -> wire.EvaluationView:
        """Record how the model version ``ref`` scored on the dataset version ``dataset``."""
        r = AssetRef.coerce(ref)
        body = {"ref": r.ref, "dataset": dataset, "metrics": dict(metrics), "run_id": run_id,
                "id": evaluation_id}
        return _load(wire.EvaluationView, self._call("POST", f"{_asset_url(r.path)}/evaluations", json=body))

    def list_evaluations(self, model: AssetLike, *, commit: str | None = None) -> list[wire.EvaluationView]:
        return _loads(wire.EvaluationView, self._call("GET", f"{_asset_url(_path(model))}/evaluations",
                                                 params={"commit": commit}))

    # -- git credentials: kept by the server, used by your jobs, never returned --------------
    def set_git_credential(self, host: str, username: str, password: str = "") -> wire.GitCredentialView:
        """Keep a credential for the Git repositories on ``host`` (``git.example.org`` or
        ``host:port``); a token alone goes in ``username``. Your jobs use it through git's
        credential helper; no API returns it."""
        return _load(wire.GitCredentialView, self._call("PUT", f"/git-credentials/{_q(host)}",
                                                   json={"username": username, "password": password}))

    def adopt_git_url(self, url: str) -> str:
        """``url`` without credentials; one that was in it (``https://user:token@host/...``) is
        kept by the server for you first (as :meth:`set_git_credential`)."""
        clean, secret = split_credentials(url)
        if secret is not None:
            self.set_git_credential(secret.host, secret.username, secret.password)
        return clean

    def list_git_credentials(self) -> list[wire.GitCredentialView]:
        """The hosts you keep a credential for (never the credentials)."""
        return _loads(wire.GitCredentialView, self._call("GET", "/git-credentials"))

    def delete_git_credential(self, host: str) -> None:
        self._call("DELETE", f"/git-credentials/{_q(host)}")

    def run_git_credential(self, run_id: str) -> GitSecret | None:
        """For a job: the credential for its code's host, of the user it acts for, while the
        run is pending or running and only to whoever registered it (None when there is none)."""
        data = self._call("POST", f"/runs/{_q(run_id)}/git-credential")
        if not data:
            return None
        return GitSecret(str(data["host"]), str(data["username"]), str(data["password"]))

    # -- models' job settings ----------------------------------------------------------------
    def job_settings(self, model: AssetLike) -> wire.JobSettingsView:
        """The model's job settings (``.assethub/job.yaml`` on its main) and their commit."""
        return _load(wire.JobSettingsView, self._call("GET", f"{_asset_url(_path(model))}/job-settings"))

    def configure(self, model: AssetLike, *, unset: Iterable[str] = (),
                  **fields: Any) -> wire.JobSettingsView:
        """Change the model's job settings in one commit on its main: ``repo``, ``revision``,
        ``subpath``, ``train_command``, ``evaluate_command``, ``dataset``, ``params`` (merged into
        the saved ones), ``resources`` (``{"cpu": N, "gpu": N}``) or ``algorithm``; ``unset``
        removes fields. A credential in ``repo`` is kept for you; the settings get the clean URL."""
        body = {**{k: v for k, v in fields.items() if v is not None}, "unset": list(unset)}
        return _load(wire.JobSettingsView, self._call("PUT", f"{_asset_url(_path(model))}/job-settings",
                                                      json=body))

    # -- the algorithm library ---------------------------------------------------------------
    @staticmethod
    def _algorithm_url(name: str) -> str:
        group, sep, rest = name.partition("/")
        if not sep or not group or not rest or "/" in rest:
            raise errors.InvalidReferenceError(f"invalid algorithm name {name!r}: use <task type>/<name>",
                                               part="algorithm", value=name[:200])
        return f"/algorithms/{_q(group)}/{_q(rest)}"

    def list_algorithms(self, *, task_type: str | None = None,
                        query: str | None = None) -> list[wire.AlgorithmView]:
        """The algorithms you may use (yours, shared with you, public, presets), by name."""
        return _loads(wire.AlgorithmView, self._call("GET", "/algorithms",
                                                     params={"task_type": task_type, "q": query}))

    def get_algorithm(self, name: str) -> wire.AlgorithmView:
        """An algorithm with all its versions and shares; ``name@N`` makes version N ``current``."""
        return _load(wire.AlgorithmView, self._call("GET", self._algorithm_url(name)))

    def register_algorithm(self, name: str, *, code_url: str, task_type: str, code_revision: str = "",
                           code_subpath: str = "", params: Mapping[str, Any] | None = None,
                           train_command: str = "", evaluate_command: str = "",
                           predict_command: str = "", resources: Mapping[str, int] | None = None,
                           description: str = "", public: bool = False,
                           preset: bool = False) -> wire.AlgorithmView:
        """Register a new algorithm ``<task type>/<name>`` (version 1)."""
        body = {"name": name, "code_url": code_url, "task_type": task_type, "code_revision": code_revision,
                "code_subpath": code_subpath, "params": dict(params or {}), "train_command": train_command,
                "evaluate_command": evaluate_command, "predict_command": predict_command,
                "resources": dict(resources or {}), "description": description, "public": public,
                "preset": preset}
        return _load(wire.AlgorithmView, self._call("POST", "/algorithms", json=body))

    def update_algorithm(self, name: str, *, public: bool | None = None,
                         **changes: Any) -> wire.AlgorithmView:
        """A new version of the algorithm: the latest with ``changes`` (any field of
        :meth:`register_algorithm`); ``public`` alone makes none."""
        body = {k: v for k, v in {**changes, "public": public}.items() if v is not None}
        return _load(wire.AlgorithmView, self._call("PATCH", self._algorithm_url(name), json=body))

    def delete_algorithm(self, name: str) -> None:
        self._call("DELETE", self._algorithm_url(name))

    def share_algorithm(self, name: str, *, role: str, user: str | None = None, group: str | None = None,
                        everyone: bool = False) -> wire.AlgorithmShareView:
        """Let a user, a group or everyone ``view`` (see and use) or ``edit`` the algorithm."""
        kind, subject = _subject(user, group, everyone)
        return _load(wire.AlgorithmShareView, self._call(
            "POST", f"{self._algorithm_url(name)}/shares",
            json={"subject_type": kind, "subject_name": subject, "role": role}))

    def unshare_algorithm(self, name: str, *, user: str | None = None, group: str | None = None,
                          everyone: bool = False) -> None:
        kind, subject = _subject(user, group, everyone)
        self._call("DELETE", f"{self._algorithm_url(name)}/shares",
                   params={"subject_type": kind, "subject_name": subject})

    # -- follows: retrain a model when a dataset's main moves -------------------------------
    def follow(self, model: AssetLike, dataset: AssetLike, *, repo: str, revision: str = "",
               subpath: str = "", metric: str = "accuracy", higher_is_better: bool = True,
               margin: float = 0.0, schedule: str = "", params: Mapping[str, Any] | None = None,
               command: str = "") -> wire.FollowView:
        """Retrain ``model`` when ``dataset``'s main moves (and on the cron ``schedule``); the
        result is merged into the model's main only if ``metric`` improves by ``margin``."""
        settings = {"repo": repo, "revision": revision, "subpath": subpath, "metric": metric,
                    "higher_is_better": higher_is_better, "margin": margin, "schedule": schedule,
                    "params": dict(params or {}), "command": command}
        body = {"model": str(_path(model)), "dataset": str(_path(dataset)), "settings": settings}
        return _load(wire.FollowView, self._call("POST", "/follows", json=body))

    def list_follows(self, *, model: AssetLike | None = None,
                     dataset: AssetLike | None = None) -> list[wire.FollowView]:
        params = {"model": str(_path(model)) if model else None,
                  "dataset": str(_path(dataset)) if dataset else None}
        return _loads(wire.FollowView, self._call("GET", "/follows", params=params))

    def resume_follow(self, follow_id: int) -> wire.FollowView:
        """Let a paused follow retrain again (its owner only, once they hold the rights a
        retrain needs: ``edit`` on the model, ``run`` on the dataset)."""
        return _load(wire.FollowView, self._call("POST", f"/follows/{int(follow_id)}/resume"))

    def unfollow(self, follow_id: int) -> None:
        self._call("DELETE", f"/follows/{int(follow_id)}")

    def lineage(self, ref: AssetLike) -> wire.LineageView:
        """The model version at ``ref``: the job behind it (dataset, code, params, base model,
        MLflow and Prefect runs) and its evaluations."""
        r = AssetRef.coerce(ref)
        return _load(wire.LineageView, self._call("GET", f"{_asset_url(r.path)}/lineage",
                                             params={"ref": r.ref}))

    def export(self, ref: AssetLike, *, format: str = "onnx", quantize: str = "", branch: str = "",
               dataset: str = "", max_abs_diff: float | None = None,
               max_accuracy_drop: float | None = None) -> wire.ExportJob:
        """Export the model version ``ref`` to ONNX (``quantize="dynamic-int8"``: int8 weights) as a
        job on the server's worker, registered as you (``edit`` on the model). It commits an MLflow
        ONNX model to ``branch`` (default ``export-onnx[-int8]``) if it answers like the original
        within the tolerances. Returns at once; follow the run with :meth:`get_run`."""
        r = AssetRef.coerce(ref)
        body: dict[str, Any] = {"ref": r.ref, "format": format, "quantize": quantize, "branch": branch,
                                "dataset": dataset}
        if max_abs_diff is not None:
            body["max_abs_diff"] = max_abs_diff
        if max_accuracy_drop is not None:
            body["max_accuracy_drop"] = max_accuracy_drop
        return _load(wire.ExportJob, self._call("POST", f"{_asset_url(r.path)}/export", json=body))

    # -- datasets: statistics, sample diff ---------------------------------------------------
    def stats(self, ref: AssetLike, *, compute: bool = True) -> wire.DatasetStats:
        """The statistics of a dataset version (samples per class and split, file and image
        sizes, text lengths, annotations, table columns). The server computes them on the first
        ask for a commit, which may take a while for a large version (this call waits, with no
        read timeout), and keeps them; ``compute=False`` raises NotFoundError instead then."""
        r = AssetRef.coerce(ref)
        data = self._call("GET", f"{_asset_url(r.path)}/stats",
                          params={"ref": r.ref, "compute": "true" if compute else "false"},
                          timeout=httpx.Timeout(self.timeout, read=None))
        return _load(wire.DatasetStats, data)

    def sample_diff(self, left: AssetLike, right: AssetLike, *,
                    key: str | None = None) -> wire.SampleDiff:
        """Samples of two versions of one dataset compared: per split and class how many were
        added, removed, changed and moved to another class, and the rows of its tables added,
        removed and changed (by the column ``key``, or by content); ``right`` may be a bare
        ref of left's dataset."""
        a = AssetRef.coerce(left)
        b = AssetRef.coerce(right) if not isinstance(right, str) or "/" in right else a.path.at(right)
        if b.path != a.path:
            raise errors.InvalidReferenceError(f"a sample diff compares versions of one dataset, "
                                               f"not {a.path} and {b.path}", part="ref", value=str(b))
        data = self._call("GET", f"{_asset_url(a.path)}/sample-diff",
                          params={"left": a.ref, "right": b.ref, "key": key},
                          timeout=httpx.Timeout(self.timeout, read=None))
        return _load(wire.SampleDiff, data)
    # -- datasets: versions, preview ---------------------------------------------------------
    def versions(self, dataset: AssetLike, *, limit: int = 100) -> wire.VersionGraph:
        """A dataset's version graph: ``main``'s commits (newest first) with what each was
        based on, the published versions and ``main``'s head."""
        return _load(wire.VersionGraph, self._call("GET", f"{_asset_url(_path(dataset))}/versions",
                                              params={"limit": limit}))

    def restore(self, dataset: AssetLike, version: str, *, message: str = "") -> wire.CommitInfo:
        """Make ``version`` (a published version or a commit) the content of ``main`` in one
        new commit; the history and the published versions stay as they are."""
        return _load(wire.CommitInfo, self._call("POST", f"{_asset_url(_path(dataset))}/restore",
                                                 json={"version": version, "message": message}))

    def head(self, ref: AssetLike, path: str | None = None, *, n: int = 10) -> wire.DatasetHead:
        """The first ``n`` rows of a table, lines of a text or an image's size and class
        (``path``); without a path the first ``n`` files, each previewed. Nothing is
        downloaded: the server reads only the byte ranges it needs."""
        r = AssetRef.coerce(ref)
        return _load(wire.DatasetHead, self._call("GET", f"{_asset_url(r.path)}/head",
                                             params={"ref": r.ref, "file": path, "n": n}))

    def cat(self, ref: AssetLike, path: str) -> Generator[bytes, None, None]:
        """The bytes of one file of a version, as they arrive (nothing is cached or saved)."""
        r = AssetRef.coerce(ref)
        url = f"{_asset_url(r.path)}/files/{quote(validate_object_path(path), safe='/')}"
        with self._stream("GET", url, params={"ref": r.ref}) as response:
            yield from response.iter_raw(_CHUNK)
    # -- fsspec support: what assethub.fs and assethub.loading read a pinned commit with -----
    def commit_files(self, at: AssetRef) -> list[RemoteObject]:
        """Every file of the commit ``at`` (a commit id, resolved by the caller, who was just
        allowed to): listed by the server once, then from the cache's listing of that commit."""
        return self._remote_objects(at, "")

    def cached_blob(self, at: AssetRef, obj: RemoteObject) -> Path:
        """The content-cache file holding ``obj`` of the commit ``at``, fetched (checked) first
        when the cache lacks it: through the server, or straight from the object store when it
        presigns."""
        if not self.cache.has(obj):
            if self._direct():
                _, listed = self.presigned_objects(at, prefix=obj.path)
                url = next((o.url for o in listed if o.path == obj.path), None)
                if url is None:
                    raise errors.ObjectNotFoundError(str(at), obj.path)
                self._fetch_fresh(at, url, obj, lambda n: None)
            else:
                self._fetch(at, obj, lambda n: None)
        return self.cache.blob_path(obj)

    def read_range(self, at: AssetRef, path: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of a file, through the server's file GET with
        ``Range``: the server checks the caller's role and streams only those bytes."""
        if end <= start:
            return b""
        url = f"{_asset_url(at.path)}/files/{quote(path, safe='/')}"
        with self._stream("GET", url, params={"ref": at.ref},
                          headers={"Range": f"bytes={start}-{end - 1}"}) as resp:
            data = resp.read()
            whole = resp.status_code == 200  # a server that ignored the range sent the file
        return data[start:end] if whole else data

    def fresh(self) -> Client:
        """A client of the same server, token and cache with connections of its own: what a
        forked process (a DataLoader worker) uses instead of its parent's sockets."""
        return Client(self.url, self._token, timeout=self.timeout, transport=self._transport,
                      cache_dir=self.cache.root, max_workers=self.max_workers)
