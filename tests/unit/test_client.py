"""The client against a fake server (httpx.MockTransport): error mapping, the token, typed results,
streamed uploads that abort on failure, and the download cache. No network."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub import errors
from assethub.client import Client, CreatedToken, _tls_verification
from assethub.hub import AssetView, DatasetMeta, TokenView
from assethub.refs import AssetPath

SECRET = "ah_super-secret-token-value"
URL = "http://hub.test"
A = "alice/model/vision/resnet"
T0 = "2024-05-01T12:00:00+00:00"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, tmp_path: Path, token: str | None = SECRET) -> Client:
    return Client(URL, token, transport=httpx.MockTransport(handler), cache_dir=tmp_path / "cache")


def error(status: int, type_: str, message: str, **fields: Any) -> Handler:
    return lambda request: httpx.Response(
        status, json={"error": {"type": type_, "message": message, **fields}})


# -- errors -----------------------------------------------------------------------------------
CASES: list[tuple[int, str, dict[str, Any], type[Exception], type[Exception], dict[str, Any]]] = [
    (400, "InvalidReferenceError", {"part": "branch", "value": "-x"}, errors.InvalidReferenceError,
     ValueError, {"part": "branch", "value": "-x"}),
    (404, "NotFoundError", {"what": "folder", "name": "a/model/f"}, errors.NotFoundError,
     LookupError, {"what": "folder", "name": "a/model/f"}),
    (404, "AssetNotFoundError", {"what": "asset", "name": A, "path": A}, errors.AssetNotFoundError,
     LookupError, {"path": A}),
    (404, "RefNotFoundError", {"ref": "nope"}, errors.RefNotFoundError, LookupError, {"ref": "nope"}),
    (404, "ObjectNotFoundError", {"ref": f"{A}:main", "path": "x.bin"}, errors.ObjectNotFoundError,
     FileNotFoundError, {"ref": f"{A}:main", "path": "x.bin"}),
    (409, "AlreadyExistsError", {"what": "tag", "name": "v1"}, errors.AlreadyExistsError,
     FileExistsError, {"what": "tag", "name": "v1"}),
    (409, "NotAllowedError", {"reason": "main is protected"}, errors.NotAllowedError,
     PermissionError, {"reason": "main is protected"}),
    (401, "AuthenticationError", {}, errors.AuthenticationError, PermissionError, {}),
    (403, "ForbiddenError", {"needed": "edit"}, errors.ForbiddenError, PermissionError,
     {"needed": "edit"}),
    (400, "InvalidDatasetError", {"reason": "empty class folder(s)", "path": "cat"},
     errors.InvalidDatasetError, ValueError, {"reason": "empty class folder(s)", "path": "cat"}),
    (413, "PayloadTooLargeError", {}, errors.PayloadTooLargeError, ValueError, {}),
    (409, "MergeConflictError", {"paths": ["a.txt", "b.txt"], "source": "dev", "dest": "main"},
     errors.MergeConflictError, errors.AssetHubError,
     {"paths": ["a.txt", "b.txt"], "source": "dev", "dest": "main"}),
    (412, "ConcurrentUpdateError", {"ref": "main", "expected": "a" * 64, "actual": "b" * 64},
     errors.ConcurrentUpdateError, errors.AssetHubError,
     {"ref": "main", "expected": "a" * 64, "actual": "b" * 64}),
    (409, "NothingToCommitError", {"ref": f"{A}:main"}, errors.NothingToCommitError, ValueError,
     {"ref": f"{A}:main"}),
    (502, "TransferError", {"path": "x.bin"}, errors.TransferError, OSError, {"path": "x.bin"}),
    (503, "StorageUnavailableError", {}, errors.StorageUnavailableError, ConnectionError, {}),
    (400, "ChecksumMismatchError", {"path": "x.bin"}, errors.ChecksumMismatchError, ValueError,
     {"path": "x.bin"}),
    (416, "RangeNotSatisfiableError", {}, errors.RangeNotSatisfiableError, ValueError, {}),
    (409, "PortInUseError", {"name": "digits", "port": 8080}, errors.PortInUseError, OSError,
     {"name": "digits", "port": 8080}),
    (422, "JobFailedError", {"exit_code": 3, "tail": "boom"}, errors.JobFailedError, errors.JobError,
     {"exit_code": 3, "tail": "boom"}),
    (422, "CodeFetchError", {"url": "https://git.test/x.git", "transient": True},
     errors.CodeFetchError, LookupError, {"url": "https://git.test/x.git", "transient": True}),
    (400, "JobSpecError", {}, errors.JobSpecError, ValueError, {}),
]


@pytest.mark.parametrize(("status", "type_", "fields", "cls", "builtin", "attrs"), CASES,
                         ids=[c[1] for c in CASES])
def test_each_error_type_becomes_its_exception_with_fields_and_message(
        tmp_path: Path, status: int, type_: str, fields: dict[str, Any], cls: type[Exception],
        builtin: type[Exception], attrs: dict[str, Any]) -> None:
    message = f"the server's own words about {type_}"
    hub = client(error(status, type_, message, **fields), tmp_path)
    with pytest.raises(cls) as caught:
        hub.get_asset(A)
    assert type(caught.value) is cls
    assert isinstance(caught.value, builtin)
    assert str(caught.value) == message
    for name, value in attrs.items():
        assert getattr(caught.value, name) == value


@pytest.mark.parametrize(("status", "body", "cls"), [
    (401, "Unauthorized", errors.AuthenticationError),
    (403, "<html>Forbidden by proxy</html>", errors.ForbiddenError),
    (413, "Request Entity Too Large", errors.PayloadTooLargeError),
    (502, "<html>Bad Gateway</html>", errors.ServerUnavailableError),  # a proxy: the server is down
    (500, "<html>oops</html>", errors.AssetHubError),
    (404, '{"detail": "Not Found"}', errors.AssetHubError),
])
def test_bodies_without_a_known_type_fall_back_on_the_status(
        tmp_path: Path, status: int, body: str, cls: type[Exception]) -> None:
    hub = client(lambda r: httpx.Response(status, text=body), tmp_path)
    with pytest.raises(cls) as caught:
        hub.whoami()
    assert type(caught.value) is cls
    assert f"HTTP {status}" in str(caught.value)


def test_internal_and_validation_errors(tmp_path: Path) -> None:
    hub = client(error(500, "InternalError", "internal server error; see the server log"), tmp_path)
    with pytest.raises(errors.AssetHubError) as caught:
        hub.whoami()
    assert type(caught.value) is errors.AssetHubError
    assert "see the server log" in str(caught.value)
    hub = client(error(422, "RequestValidationError", "invalid request: body.name: too long"),
                 tmp_path)
    with pytest.raises(errors.InvalidReferenceError, match=r"body\.name: too long"):
        hub.create_user("x" * 100)


def test_an_unreachable_server_names_the_url_and_what_to_do(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(errors.ServerUnavailableError) as caught:
        client(refuse, tmp_path).whoami()
    assert not isinstance(caught.value, errors.StorageUnavailableError)  # that one means lakeFS
    assert caught.value.url == URL
    assert URL in str(caught.value)
    assert "assethub up" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- the token ------------------------------------------------------------------------------------
def test_the_token_is_sent_as_a_bearer_header_and_never_shown(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": {"type": "AuthenticationError",
                                                   "message": "unknown API token"}})

    hub = client(handler, tmp_path)
    with pytest.raises(errors.AuthenticationError) as caught:
        hub.whoami()
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(hub) and SECRET not in str(hub)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert "***" in repr(hub)

    anonymous = client(handler, tmp_path, token="")
    with pytest.raises(errors.AuthenticationError):
        anonymous.whoami()
    assert "authorization" not in seen[1].headers


def test_settings_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("ASSETHUB_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("ASSETHUB_URL", "http://from-env:1234/")
    monkeypatch.setenv("ASSETHUB_TOKEN", SECRET)
    hub = Client()
    assert hub.url == "http://from-env:1234"
    assert SECRET not in repr(hub)


def test_tls_is_verified_and_plain_http_loads_no_certificate_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _tls_verification("https://hub.example.org") is True  # httpx's default: certifi
    plain = _tls_verification("http://127.0.0.1:8780")
    assert isinstance(plain, ssl.SSLContext)
    # were TLS ever spoken on it, it would check the peer, and trust nobody
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    monkeypatch.setenv("https_proxy", "https://proxy.example.org:3128")
    assert _tls_verification("http://127.0.0.1:8780") is True  # the proxy's TLS is verified


def test_the_saved_token_only_goes_to_the_saved_server(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"role": "view"})

    monkeypatch.delenv("ASSETHUB_URL", raising=False)
    monkeypatch.delenv("ASSETHUB_TOKEN", raising=False)
    monkeypatch.setenv("ASSETHUB_CONFIG", str(tmp_path / "config.json"))
    (tmp_path / "config.json").write_text(json.dumps({"url": URL, "token": SECRET}))
    for url in (None, URL, "http://elsewhere.test"):
        Client(url, transport=httpx.MockTransport(handler)).role(A)
    assert [r.headers.get("authorization") for r in seen] == [f"Bearer {SECRET}"] * 2 + [None]


def test_a_new_token_keeps_its_secret_out_of_repr(tmp_path: Path) -> None:
    row = {"id": 7, "user": "bob", "name": "ci", "prefix": SECRET[:10], "created_at": T0,
           "expires_at": None, "revoked_at": None, "last_used_at": None}
    hub = client(lambda r: httpx.Response(201, json={**row, "token": SECRET}), tmp_path)
    new = hub.create_token("bob", name="ci")
    assert isinstance(new, CreatedToken) and isinstance(new.token, TokenView)
    assert new.secret == SECRET and new.token.id == 7
    assert SECRET not in repr(new)


# -- results and requests -----------------------------------------------------------------------
ASSET_JSON = {
    "path": "alice/dataset/digits/my digits", "repository": "r1", "description": "d",
    "labels": ["cv", "small"], "readme": "", "created_at": T0, "created_by": "alice",
    "updated_at": T0, "your_role": "owner",
    "dataset": {"task_type": "image_classification", "data_format": "dir", "split_mode": None,
                "split_ratio": None, "test_set_path": None},
    "preset": False, "published": [["v1", "c" * 64]],
}


def test_results_are_typed_dataclasses(tmp_path: Path) -> None:
    hub = client(lambda r: httpx.Response(200, json=ASSET_JSON), tmp_path)
    a = hub.get_asset("alice/dataset/digits/my digits")
    assert isinstance(a, AssetView)
    assert a.path == AssetPath.parse("alice/dataset/digits/my digits")
    assert a.created_at == datetime.fromisoformat(T0)
    assert a.labels == ("cv", "small")
    assert a.dataset == DatasetMeta("image_classification", "dir")
    assert a.published == (("v1", "c" * 64),)


def test_names_are_quoted_in_urls_and_refs_go_in_the_query(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    hub = client(handler, tmp_path)
    hub.log("alice/model/my models/net #1 100%:dev~2", limit=5)
    assert seen[0].url.raw_path.decode() == (
        "/api/v1/assets/alice/model/my%20models/net%20%231%20100%25/log?ref=dev~2&limit=5")
    hub.list_objects("alice/model/f/n:main")  # prefix "" is sent, None values are not
    assert dict(seen[1].url.params) == {"ref": "main", "prefix": ""}


def test_input_is_checked_before_any_request(tmp_path: Path) -> None:
    hub = client(lambda r: pytest.fail("no request expected"), tmp_path)
    with pytest.raises(errors.InvalidReferenceError):
        hub.get_asset("alice/notakind/f/n")
    with pytest.raises(errors.InvalidReferenceError):
        hub.log("alice/model/f/n:bad ref")
    with pytest.raises(errors.InvalidReferenceError):
        hub.share("alice/model/f", role="view", user="bob", everyone=True)
    with pytest.raises(errors.InvalidReferenceError):
        hub.diff("alice/model/f/n:main", "alice/model/f/other:main")


# -- uploads ---------------------------------------------------------------------------------------
COMMIT_JSON = {"id": "c" * 64, "message": "m", "committer": "admin", "created": T0,
               "parents": ["p" * 64], "metadata": {"author": "alice"}}


class FakeUploads:
    """The upload endpoints, failing the PUT of ``fail_on`` if set."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.files: dict[str, bytes] = {}
        self.commit: dict[str, Any] | None = None
        self.aborted = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/capabilities"):
            return httpx.Response(200, json={"presign": False})
        if request.method == "POST" and path.endswith("/uploads"):
            assert json.loads(request.content) == {"branch": "dev"}
            return httpx.Response(201, json={"upload_id": "u1"})
        if request.method == "PUT":
            name = path.split("/api/v1/uploads/u1/files/", 1)[1]
            assert "content-length" in request.headers
            if name == self.fail_on:
                return httpx.Response(502, json={"error": {"type": "TransferError",
                                                           "message": "disk full", "path": name}})
            self.files[name] = request.read()
            return httpx.Response(200, json={"path": name, "size": len(self.files[name])})
        if path.endswith("/uploads/u1/commit"):
            self.commit = json.loads(request.content)
            return httpx.Response(200, json=COMMIT_JSON)
        if request.method == "DELETE" and path.endswith("/uploads/u1"):
            self.aborted = True
            return httpx.Response(204)
        raise AssertionError(f"unexpected {request.method} {path}")


def tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 5000)
    return root


def test_upload_puts_each_file_then_commits_once(tmp_path: Path) -> None:
    fake = FakeUploads()
    src = tree(tmp_path / "src")
    c = client(fake, tmp_path).upload(f"{A}:dev", src, path="weights", message="m",
                                      delete=["old.txt"], parent_commit="p" * 64)
    assert c.id == "c" * 64 and c.created == datetime.fromisoformat(T0)
    assert fake.files == {"weights/a.txt": b"alpha", "weights/sub/b.bin": bytes(range(256)) * 5000}
    assert fake.commit == {"message": "m", "metadata": {}, "delete": ["old.txt"],
                           "parent_commit": "p" * 64}
    assert not fake.aborted


def test_a_failed_file_aborts_the_upload_and_commits_nothing(tmp_path: Path) -> None:
    fake = FakeUploads(fail_on="sub/b.bin")
    with pytest.raises(errors.TransferError, match="disk full"):
        client(fake, tmp_path).upload(f"{A}:dev", tree(tmp_path / "src"))
    assert fake.commit is None
    assert fake.aborted


def test_a_missing_local_file_fails_before_the_upload_starts(tmp_path: Path) -> None:
    hub = client(lambda r: pytest.fail("no request expected"), tmp_path)
    with pytest.raises(FileNotFoundError):
        hub.upload(f"{A}:dev", tmp_path / "missing.bin")


# -- downloads -------------------------------------------------------------------------------------
class FakeFiles:
    def __init__(self, files: dict[str, bytes], *, corrupt: bool = False) -> None:
        self.files, self.corrupt, self.gets = files, corrupt, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/capabilities"):
            return httpx.Response(200, json={"presign": False})
        if path.endswith("/commit"):
            return httpx.Response(200, json={**COMMIT_JSON, "id": "d" * 64})
        if path.endswith("/objects"):
            assert request.url.params["ref"] == "d" * 64  # the resolved commit, not the branch
            return httpx.Response(200, json=[
                {"path": p, "size": len(b), "checksum": "etag", "modified": T0,
                 "sha256": hashlib.sha256(b).hexdigest(), "content_type": None}
                for p, b in self.files.items()])
        if "/files/" in path:
            self.gets += 1
            body = self.files[path.split("/files/", 1)[1]]
            return httpx.Response(200, content=body[::-1] if self.corrupt else body)
        raise AssertionError(f"unexpected {request.method} {path}")


def test_a_second_download_transfers_nothing(tmp_path: Path) -> None:
    fake = FakeFiles({"a.txt": b"alpha", "d/b.bin": b"\x00\x01" * 10_000})
    hub = client(fake, tmp_path)
    first = hub.download(f"{A}:main", tmp_path / "one")
    assert (first.files, first.bytes_total, first.bytes_transferred) == (2, 20_005, 20_005)
    assert first.commit_id == "d" * 64
    second = hub.download(f"{A}:main", tmp_path / "two")
    assert second.bytes_transferred == 0 and fake.gets == 2
    assert (tmp_path / "two" / "d" / "b.bin").read_bytes() == b"\x00\x01" * 10_000
    only = hub.download(f"{A}:main", tmp_path / "three", prefix="d")
    assert only.files == 1 and (tmp_path / "three" / "b.bin").exists()


def test_a_corrupted_download_is_refused_and_not_cached(tmp_path: Path) -> None:
    hub = client(FakeFiles({"a.txt": b"alpha"}, corrupt=True), tmp_path)
    with pytest.raises(errors.TransferError, match="failed verification"):
        hub.download(f"{A}:main", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()
    # no content: only the commit's listing (what the server said the commit holds) is kept
    cache = tmp_path / "cache"
    assert not [p for p in cache.rglob("*") if p.is_file() and "listings" not in p.relative_to(cache).parts]


# -- direct transfer: presigned URLs of an object store ----------------------------------------------
STORE = "http://store.test"


class FakeDirect:
    """A server that presigns and the object store its URLs point at (host ``store.test``)."""

    def __init__(self, files: dict[str, bytes], *, corrupt: bool = False,
                 expired: bool = False) -> None:
        self.files, self.corrupt, self.expired = files, corrupt, expired
        self.listings: list[dict[str, str]] = []
        self.store: dict[str, bytes] = {f"/b/{p}": d for p, d in files.items()}
        self.server_paths: list[str] = []
        self.store_auth: list[str | None] = []
        self.linked: list[dict[str, Any]] = []
        self.proxied: dict[str, bytes] = {}
        self.committed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "store.test":
            self.store_auth.append(request.headers.get("authorization"))
            if request.method == "PUT":
                self.store[path] = request.read()
                return httpx.Response(200, headers={"ETag": f'"{len(self.store[path])}"'})
            if request.url.params.get("X-Amz-Signature") == "expired":
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            body = self.store[path]
            return httpx.Response(200, content=body[::-1] if self.corrupt else body)
        self.server_paths.append(f"{request.method} {path}")
        if path.endswith("/capabilities"):
            return httpx.Response(200, json={"presign": True})
        if request.method == "GET" and path.endswith("/commit"):  # resolve: the listings' commit
            return httpx.Response(200, json={**COMMIT_JSON, "id": "d" * 64})
        if request.method == "PUT" and "/uploads/u1/files/" in path:  # the proxied path
            self.proxied[path.split("/files/", 1)[1]] = request.read()
            return httpx.Response(200, json={"size": len(self.proxied[path.split("/files/", 1)[1]])})
        if path.endswith("/presigned"):
            self.listings.append(dict(request.url.params))
            signature = "expired" if self.expired and len(self.listings) == 1 else "s"
            prefix = request.url.params.get("prefix", "")
            return httpx.Response(200, json={"commit_id": "d" * 64, "next_after": None, "objects": [
                {"path": p, "size": len(b), "checksum": "e", "sha256": hashlib.sha256(b).hexdigest(),
                 "url": f"{STORE}/b/{p}?X-Amz-Signature={signature}", "expires": None}
                for p, b in self.files.items() if p.startswith(prefix)]})
        if path.endswith("/uploads"):
            return httpx.Response(201, json={"upload_id": "u1"})
        if path.endswith("/uploads/u1/presign"):
            return httpx.Response(200, json={"files": [
                {"path": p, "url": f"{STORE}/b/new/{p}?X-Amz-Signature=s", "physical_address": f"s3://b/new/{p}",
                 "expires": None} for p in json.loads(request.content)["paths"]]})
        if path.endswith("/uploads/u1/link"):
            self.linked += json.loads(request.content)["files"]
            return httpx.Response(200, json={"files": []})
        if path.endswith("/uploads/u1/commit"):
            self.committed = True
            return httpx.Response(200, json=COMMIT_JSON)
        raise AssertionError(f"unexpected {request.method} {path}")


def test_a_presigned_download_reads_the_object_store_only(tmp_path: Path) -> None:
    fake = FakeDirect({"a.txt": b"alpha", "d/b.bin": b"\x00\x01" * 10_000})
    hub = client(fake, tmp_path)
    got = hub.download(f"{A}:main", tmp_path / "out")
    assert (got.commit_id, got.files, got.bytes_transferred) == ("d" * 64, 2, 20_005)
    assert (tmp_path / "out" / "d" / "b.bin").read_bytes() == b"\x00\x01" * 10_000
    assert not [p for p in fake.server_paths if "/files/" in p or "/bundle" in p]
    assert fake.store_auth == [None, None]  # the Asset Hub token never goes to the object store
    assert hub.download(f"{A}:main", tmp_path / "again").bytes_transferred == 0


def test_an_expired_url_is_asked_for_again_at_the_same_commit(tmp_path: Path) -> None:
    fake = FakeDirect({"a.txt": b"alpha"}, expired=True)
    client(fake, tmp_path).download(f"{A}:main", tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert fake.listings[1] == {"ref": "d" * 64, "prefix": "a.txt", "limit": "1"}


def test_a_corrupted_presigned_download_is_refused_and_not_cached(tmp_path: Path) -> None:
    hub = client(FakeDirect({"a.txt": b"alpha"}, corrupt=True), tmp_path)
    with pytest.raises(errors.ChecksumMismatchError, match=r"a\.txt failed verification"):
        hub.download(f"{A}:main", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_presigned_upload_puts_to_the_store_and_links_size_etag_and_sha256(tmp_path: Path) -> None:
    fake = FakeDirect({})
    c = client(fake, tmp_path).upload(f"{A}:dev", tree(tmp_path / "src"), message="m")
    assert c.id == "c" * 64 and fake.committed
    big = bytes(range(256)) * 5000
    assert fake.store == {"/b/new/a.txt": b"alpha", "/b/new/sub/b.bin": big}
    assert sorted(fake.linked, key=lambda f: f["path"]) == [
        {"path": "a.txt", "physical_address": "s3://b/new/a.txt", "size": 5, "etag": "5",
         "sha256": hashlib.sha256(b"alpha").hexdigest()},
        {"path": "sub/b.bin", "physical_address": "s3://b/new/sub/b.bin", "size": len(big),
         "etag": str(len(big)), "sha256": hashlib.sha256(big).hexdigest()}]
    assert not [p for p in fake.server_paths if p.startswith("PUT")]
    assert set(fake.store_auth) == {None}


def test_files_over_the_single_put_limit_go_through_the_server(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("assethub.client._DIRECT_PUT_MAX", 1000)  # S3's is 5 GiB
    fake = FakeDirect({})
    client(fake, tmp_path).upload(f"{A}:dev", tree(tmp_path / "src"), message="m")
    assert set(fake.store) == {"/b/new/a.txt"} and set(fake.proxied) == {"sub/b.bin"}
    assert [f["path"] for f in fake.linked] == ["a.txt"] and fake.committed


def test_assethub_presign_0_keeps_the_proxied_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSETHUB_PRESIGN", "0")
    fake = FakeUploads()

    def presigning(request: httpx.Request) -> httpx.Response:  # a server that would presign
        if request.url.path.endswith("/capabilities"):
            return httpx.Response(200, json={"presign": True})
        return fake(request)

    client(presigning, tmp_path).upload(f"{A}:dev", tree(tmp_path / "src"))
    assert set(fake.files) == {"a.txt", "sub/b.bin"}


def test_the_package_exports_the_sdk() -> None:
    import assethub
    from assethub.client import Client as Direct

    assert assethub.Client is Direct
    assert sorted(assethub.__all__) == ["AddFile", "AssetPath", "AssetRef", "Client", "DeleteFile", "load"]
    assert all(getattr(assethub, n) is not None for n in assethub.__all__)
