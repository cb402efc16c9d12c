"""No request body makes the server hold more than a few MiB, whoever sends it and wherever.

Large bodies are sent over a raw socket, chunk by chunk from one thread while another reads
the answer, so that the client holds one chunk at a time and stops as soon as the server has
answered. The server runs in this process (tests/conftest.py's start_server), so its memory is
this process's: the peak resident size (VmHWM, reset through /proc/self/clear_refs) during a
request, minus the resident size before it, is what the request cost.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _api import Api, message, zip_bytes

from assethub.hub import Limits
from tests.conftest import RunningServer, start_server

pytestmark = [pytest.mark.integration, pytest.mark.attacks]

MiB = 2**20
CAP = 8 * MiB  # this server's limit on one uploaded file and on one imported archive
LARGE = 256 * MiB  # what a hostile client offers
ARCHIVE = zip_bytes({"cat/1.txt": b"meow", "dog/1.txt": b"woof"})


@pytest.fixture(scope="module")
def server(lakefs_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(lakefs_server, tmp_path_factory.mktemp("hub-limits"),
                           limits=Limits(max_upload_bytes=CAP, max_archive_bytes=CAP))
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Api:
    return Api(server.url, server.admin_token)


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, str]:
    """A user ("user") with a model, a dataset and an open upload; another ("other")."""
    u = api.add_user("user")
    api.add_user("other")
    w = {"u": u, "M": f"{u}/model/m/net", "D": f"{u}/dataset/d/ds"}
    api.ok("user", "POST", "/folders", json={"path": f"{u}/model/m"})
    api.ok("user", "POST", "/folders", json={"path": f"{u}/dataset/d"})
    api.ok("user", "POST", "/assets", json={"path": w["M"]})
    api.ok("user", "POST", "/assets", json={"path": w["D"], "dataset": {"format": "dir"}})
    api.ok("user", "POST", f"/assets/{w['D']}/import", content=ARCHIVE)
    w["upload"] = api.ok("user", "POST", f"/assets/{w['M']}/uploads", json={})["upload_id"]
    return w


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


class Sent:
    def __init__(self, status: int, body: bytes, sent: int) -> None:
        self.status, self.body, self.sent = status, body, sent

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def offer(server: RunningServer, method: str, path: str, *, token: str | None,
          size: int = LARGE, declare: bool = False) -> tuple[Sent, int]:
    """Offer ``size`` bytes to ``path``: chunked, or with a declared Content-Length and no body
    sent at all (``declare``). Returns the answer and how much the peak resident size of this
    process (the server's) rose above its size before, in bytes."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=120)
    head = [f"{method} /api/v1{path} HTTP/1.1", f"Host: {host}",
            "Content-Type: application/octet-stream"]
    head += [f"Authorization: Bearer {token}"] if token else []
    head += [f"Content-Length: {size}"] if declare else ["Transfer-Encoding: chunked"]
    chunk = b"x" * MiB
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answered = threading.Event()
    sent = 0

    def send_body() -> None:
        nonlocal sent
        try:
            while sent < size and not answered.is_set():
                sock.sendall(frame)
                sent += len(chunk)
            if not answered.is_set():
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: that is the point

    before = _kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from now
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sender = threading.Thread(target=send_body, daemon=True)
    if not declare:
        sender.start()
    try:
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        answered.set()
        body = response.read()
    finally:
        answered.set()
        if sender.is_alive():
            sender.join()
        sock.close()
    return Sent(response.status, body, sent), (_kib("VmHWM") - before) * 1024


def _refused(sent: Sent, status: int, growth: int) -> str:
    assert sent.status == status, (sent.status, sent.body[:300])
    assert growth < 16 * MiB, f"the server grew by {growth / MiB:.1f} MiB"
    assert sent.sent < 32 * MiB, f"the server read {sent.sent / MiB:.0f} MiB before answering"
    return str(sent.json()["error"]["message"])


@pytest.mark.parametrize(("who", "path", "status"), [
    ("anonymous", "/assets/{D}/import", 401),
    ("bad-token", "/assets/{D}/import", 401),
    ("other", "/assets/{D}/import", 404),  # not shared with them
    ("user", "/assets/{M}/import", 409),  # a model: not imported from archives
    ("anonymous", "/uploads/{upload}/files/a.bin", 404),  # not theirs either
    ("other", "/uploads/{upload}/files/a.bin", 404),  # not their upload
])
def test_a_large_body_is_refused_unread_when_the_caller_may_not_send_it(
        server: RunningServer, api: Api, world: dict[str, str], who: str, path: str,
        status: int) -> None:
    token = "ah_not-a-token" if who == "bad-token" else api.tokens[who]
    method = "PUT" if "/uploads/" in path else "POST"
    sent, growth = offer(server, method, path.format(**world), token=token)
    _refused(sent, status, growth)


@pytest.mark.parametrize(("method", "path"), [
    # routes whose path ends in /import, the suffix the body limit used to skip
    ("PATCH", "/folders/{u}/model/import"),
    ("PATCH", "/assets/{u}/model/m/import"),
    ("PATCH", "/users/import"),
    ("PATCH", "/runs/import"),
    ("POST", "/groups/import/members"),
    # every other kind of body: JSON, a model's scoring input, a lakeFS hook
    ("POST", "/assets"),
    ("POST", "/assets/{M}/bundle"),
    ("POST", "/uploads/{upload}/commit"),
    ("POST", "/services/x/predict"),
    ("POST", "/hooks/lakefs"),
    ("POST", "/no/such/route"),
])
@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_other_bodies_stop_at_one_mib(server: RunningServer, api: Api, world: dict[str, str],
                                      method: str, path: str, who: str) -> None:
    sent, growth = offer(server, method, path.format(**world), token=api.tokens[who])
    if sent.status == 404 and path == "/no/such/route":
        return  # no route: answered without reading
    assert "limit" in _refused(sent, 413, growth)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/assets/{D}/import"),
    ("PUT", "/uploads/{upload}/files/big.bin"),
    ("PATCH", "/folders/{u}/model/import"),
])
def test_a_declared_length_over_the_limit_is_refused_at_once(
        server: RunningServer, api: Api, world: dict[str, str], method: str, path: str) -> None:
    sent, growth = offer(server, method, path.format(**world), token=api.tokens["user"],
                         size=600 * MiB, declare=True)
    assert "limit" in _refused(sent, 413, growth)


def test_an_import_over_the_limit_is_refused_and_commits_nothing(
        server: RunningServer, api: Api, world: dict[str, str]) -> None:
    before = api.state(world["D"])
    # offered far past what the checks allow (8x the limit): what the socket buffers take before
    # the answer stops the sender varies with the machine's load
    sent, growth = offer(server, "POST", f"/assets/{world['D']}/import", token=api.tokens["user"],
                         size=8 * CAP)
    assert "limit" in _refused(sent, 413, growth)
    assert sent.sent < 3 * CAP  # stopped near the limit (what the socket buffers took), not at the end
    assert api.state(world["D"]) == before
    assert not list((Path(server.hub.tmp_dir)).iterdir())  # the spooled part is gone


def test_a_file_over_the_limit_is_refused_and_the_upload_goes_on(
        server: RunningServer, api: Api, world: dict[str, str]) -> None:
    upload = api.ok("user", "POST", f"/assets/{world['M']}/uploads", json={})["upload_id"]
    sent, growth = offer(server, "PUT", f"/uploads/{upload}/files/big.bin",
                         token=api.tokens["user"], size=8 * CAP)
    assert "limit" in _refused(sent, 413, growth)
    api.ok("user", "PUT", f"/uploads/{upload}/files/small.bin", content=b"small")
    commit = api.ok("user", "POST", f"/uploads/{upload}/commit", json={"message": "small"})
    files = {o["path"] for o in api.ok("user", "GET", f"/assets/{world['M']}/objects",
                                       params={"ref": commit["id"]})}
    assert files == {"small.bin"}


def test_bodies_within_the_limits_still_go_through(
        server: RunningServer, api: Api, world: dict[str, str]) -> None:
    # a file and an archive just under the limit, streamed by httpx in parts
    def parts(total: int, part: int = MiB) -> Iterator[bytes]:
        for start in range(0, total, part):
            yield b"y" * min(part, total - start)

    upload = api.ok("user", "POST", f"/assets/{world['M']}/uploads", json={})["upload_id"]
    r = api.call("user", "PUT", f"/uploads/{upload}/files/w.bin", content=parts(CAP - 1))
    assert r.status_code == 200 and r.json()["size"] == CAP - 1, r.text
    api.ok("user", "POST", f"/uploads/{upload}/commit", json={"message": "big"})
    assert api.ok("user", "GET", f"/assets/{world['M']}/stat", params={"file": "w.bin"})["size"] \
        == CAP - 1
    archive = zip_bytes({"cat/2.txt": b"purr", "dog/2.txt": b"bark"})
    r = api.call("user", "POST", f"/assets/{world['D']}/import", content=iter([archive]))
    assert r.status_code == 201, r.text
    # and a JSON body just under 1 MiB is read
    r = api.call("user", "PATCH", f"/assets/{world['M']}",
                 json={"description": "d" * 10_000, "readme": "r" * 199_000})
    assert r.status_code == 200, message(r)


def test_the_client_sdk_reports_the_limit(server: RunningServer, api: Api, world: dict[str, str],
                                          tmp_path: Path) -> None:
    from assethub import errors
    from assethub.client import Client

    big = tmp_path / "big.zip"
    big.write_bytes(b"z" * (CAP + 1))
    client = Client(server.url, api.tokens["user"], cache_dir=tmp_path / "c")
    with pytest.raises(errors.PayloadTooLargeError, match="limit"):
        client.import_archive(world["D"], big)
    assert httpx.get(server.url + "/api/v1/health").status_code == 200
