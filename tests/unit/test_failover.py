"""The client's failover between server replicas (``url="http://a,http://b"``) against fake
servers (httpx.MockTransport): which requests move to the next server and when, the re-sent
upload body, the sticky choice, and the errors. No network."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assethub import config, errors
from assethub.client import Client

SECRET = "ah_failover-secret-token"
A, B = "http://a.test", "http://b.test"
COMMIT = {"id": "c" * 64, "message": "m", "committer": "alice", "created": "2024-05-01T12:00:00+00:00",
          "parents": [], "metadata": {}}


class Replicas:
    """Two fake servers; ``down`` ones refuse connections, ``broken`` ones drop the connection
    after reading the request, ``busy`` ones answer 503. Records who got what."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.broken: set[str] = set()
        self.busy: set[str] = set()
        self.seen: list[tuple[str, str, str]] = []  # (server, method, path)
        self.files: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        server = f"{request.url.scheme}://{request.url.host}"
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        if server in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = request.read()
        with self.lock:
            self.seen.append((server, request.method, request.url.path))
        if server in self.broken:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        if server in self.busy:
            return httpx.Response(503, json={"error": {"type": "StorageUnavailableError",
                                                       "message": "lakeFS is not answering"}})
        path = request.url.path.removeprefix("/api/v1")
        if request.method == "GET" and path == "/whoami":
            return httpx.Response(200, json={"name": "alice", "display_name": "", "email": "",
                                             "is_admin": False, "disabled": False, "groups": []})
        if request.method == "POST" and path == "/groups":
            return httpx.Response(201, json={"name": json.loads(body)["name"]})
        if request.method == "POST" and path.endswith("/uploads"):
            return httpx.Response(201, json={"upload_id": "u1"})
        if request.method == "PUT" and path.startswith("/uploads/u1/files/"):
            with self.lock:
                self.files[path.removeprefix("/uploads/u1/files/")] = body
            return httpx.Response(200, json={"path": "x", "size": len(body), "checksum": "e",
                                             "modified": COMMIT["created"], "sha256": None,
                                             "content_type": None})
        if request.method == "POST" and path == "/uploads/u1/commit":
            return httpx.Response(200, json={**COMMIT, "message": json.loads(body)["message"]})
        return httpx.Response(404, json={"error": {"type": "NotFoundError", "message": "no route"}})

    def servers(self, method: str | None = None) -> list[str]:
        return [s for s, m, _ in self.seen if method is None or m == method]


def client(fake: Replicas, tmp_path: Path, url: str = f"{A},{B}") -> Client:
    return Client(url, SECRET, transport=httpx.MockTransport(fake), cache_dir=tmp_path / "cache")


# -- the setting ------------------------------------------------------------------------------
def test_a_url_setting_lists_servers_in_order_once_each() -> None:
    assert config.server_urls("http://a:1") == ["http://a:1"]
    assert config.server_urls(" http://a:1/ , https://b:2,,http://a:1") == ["http://a:1", "https://b:2"]


@pytest.mark.parametrize("bad", ["", " , ", "a.test:8780", "ftp://a", "http://", "http://a b"])
def test_a_bad_url_setting_is_a_clear_error(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="server URL"):
        config.server_urls(bad)
    if bad.strip(" ,"):
        with pytest.raises(errors.InvalidReferenceError, match="server URL"):
            Client(bad, SECRET, cache_dir=tmp_path)


def test_a_bad_url_never_shows_its_password() -> None:
    with pytest.raises(ValueError) as e:
        config.server_urls("http://a,ftp://user:hunter2@b")
    assert "hunter2" not in str(e.value)


# -- which requests move on -------------------------------------------------------------------
def test_a_server_that_cannot_be_reached_is_skipped_and_the_next_stays_first(tmp_path: Path) -> None:
    fake = Replicas()
    fake.down.add(A)
    hub = client(fake, tmp_path)
    assert hub.whoami().name == "alice"
    assert hub.create_group("ml").name == "ml"  # not sent to A: any request moves on
    fake.down.clear()
    hub.whoami()
    assert fake.servers() == [B, B, B]  # B answered: it stays first while it answers


def test_an_idempotent_request_cut_off_midway_is_sent_again_to_the_next(tmp_path: Path) -> None:
    fake = Replicas()
    fake.broken.add(A)
    assert client(fake, tmp_path).whoami().name == "alice"
    assert fake.servers() == [A, B]


def test_a_post_cut_off_midway_is_not_sent_twice(tmp_path: Path) -> None:
    fake = Replicas()
    fake.broken.add(A)
    with pytest.raises(errors.TransferError, match="RemoteProtocolError"):
        client(fake, tmp_path).create_group("ml")
    assert fake.servers() == [A]  # it may have been made on A: B is not asked to make it again


def test_503_moves_an_idempotent_request_on_but_not_a_post(tmp_path: Path) -> None:
    fake = Replicas()
    fake.busy.add(A)
    assert client(fake, tmp_path).whoami().name == "alice"
    assert fake.servers() == [A, B]
    fake.seen.clear()
    with pytest.raises(errors.StorageUnavailableError, match="lakeFS"):
        client(fake, tmp_path).create_group("ml")
    assert fake.servers() == [A]


def test_an_upload_cut_off_on_one_server_is_sent_whole_to_the_next_and_committed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "big.bin").write_bytes(bytes(range(256)) * 9000)  # over two 1 MiB chunks
    fake = Replicas()
    hub = client(fake, tmp_path)
    real = fake.__call__

    def drop_files_on_a(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            fake.broken.add(A)  # A dies once the upload has started there
        return real(request)

    hub._transport = httpx.MockTransport(drop_files_on_a)
    c = hub.upload("alice/model/f/n:main", src, message="m")
    assert c.id == "c" * 64
    assert fake.files == {"a.txt": b"alpha", "sub/big.bin": bytes(range(256)) * 9000}
    assert fake.seen[0] == (A, "POST", "/api/v1/assets/alice/model/f/n/uploads")
    assert set(fake.servers("PUT")) == {A, B}  # each file tried on A, then sent whole to B
    assert fake.seen[-1] == (B, "POST", "/api/v1/uploads/u1/commit")


def test_an_upload_commit_is_sent_again_to_the_next(tmp_path: Path) -> None:
    fake = Replicas()
    src = tmp_path / "one.txt"
    src.write_bytes(b"one")
    hub = client(fake, tmp_path)
    real = fake.__call__

    def commit_cut_on_a(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/commit"):
            fake.broken.add(A)
        return real(request)

    hub._transport = httpx.MockTransport(commit_cut_on_a)
    assert hub.upload("alice/model/f/n:main", src, message="m").id == "c" * 64
    assert [s for s, _, p in fake.seen if p.endswith("/commit")] == [A, B]


def test_when_no_server_answers_the_error_names_them_all_and_no_token(tmp_path: Path) -> None:
    fake = Replicas()
    fake.down.update({A, B})
    with pytest.raises(errors.ServerUnavailableError) as e:
        client(fake, tmp_path).whoami()
    assert A in str(e.value) and B in str(e.value)
    assert SECRET not in str(e.value) and SECRET not in repr(client(fake, tmp_path))


def test_one_server_behaves_as_before(tmp_path: Path) -> None:
    fake = Replicas()
    fake.down.add(A)
    with pytest.raises(errors.ServerUnavailableError, match="is the server running"):
        client(fake, tmp_path, url=A).whoami()
    fake.broken.add(B)
    with pytest.raises(errors.TransferError):
        client(fake, tmp_path, url=B).whoami()


def test_a_commit_that_timed_out_is_not_sent_again(tmp_path: Path) -> None:
    """The first server may still be committing: a second commit beside it could race it."""
    fake = Replicas()
    src = tmp_path / "one.txt"
    src.write_bytes(b"one")
    hub = client(fake, tmp_path)
    real = fake.__call__

    def slow_commit_on_a(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/commit") and request.url.host == "a.test":
            raise httpx.ReadTimeout("timed out", request=request)
        return real(request)

    hub._transport = httpx.MockTransport(slow_commit_on_a)
    with pytest.raises(errors.TransferError, match="ReadTimeout"):
        hub.upload("alice/model/f/n:main", src, message="m")
    assert not [s for s, _, p in fake.seen if p.endswith("/commit")]  # B was never asked


def test_an_answer_cut_off_midway_is_asked_for_again_from_the_next(tmp_path: Path) -> None:
    """The server died after its answer's headers: the answer is incomplete, so (for a request
    that may be sent twice) the next server is asked."""
    fake = Replicas()

    class Cut(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"name": "al'
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            fake.seen.append((A, request.method, request.url.path))
            return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=Cut())
        return fake(request)

    hub = client(fake, tmp_path)
    hub._transport = httpx.MockTransport(handler)
    assert hub.whoami().name == "alice"
    assert fake.servers() == [A, B]
