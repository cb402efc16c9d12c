"""The SDK moving real bytes through the real server: ranged downloads, checks, the cache."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub import client as client_module
from assethub.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture
def owned(hub_server: Any, tmp_path: Path) -> tuple[Client, str]:
    c = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "cache")
    folder = f"admin/model/xfer-{uuid.uuid4().hex[:6]}"
    c.create_folder(folder)
    c.create_asset(f"{folder}/net")
    return c, f"{folder}/net"


def test_large_files_come_as_parallel_ranges_and_are_verified(
        owned: tuple[Client, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        hub_server: Any) -> None:
    c, asset = owned
    data = os.urandom(5 * 1024 * 1024 + 123)  # not a multiple of the part size
    (tmp_path / "w.bin").write_bytes(data)
    c.upload(f"{asset}:main", tmp_path / "w.bin", message="weights")
    monkeypatch.setattr(client_module, "_RANGED_FROM", 1024 * 1024)
    monkeypatch.setattr(client_module, "_RANGE_PART", 1024 * 1024)
    ranges: list[str] = []
    real_stream = Client._stream

    def spy(self: Client, method: str, url: str, **kw: Any) -> Any:
        if "headers" in kw and "Range" in kw["headers"]:
            ranges.append(kw["headers"]["Range"])
        return real_stream(self, method, url, **kw)

    monkeypatch.setattr(Client, "_stream", spy)
    result = c.download(f"{asset}:main", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == data
    assert result.bytes_transferred == len(data)
    assert len(ranges) == 6 and ranges[0] == "bytes=0-1048575"
    # the server answers a range with 206 and the right slice
    r = httpx.get(f"{hub_server.url}/api/v1/assets/{asset}/files/w.bin",
                  headers={"Authorization": f"Bearer {hub_server.admin_token}",
                           "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"


def test_a_corrupted_upload_is_refused_and_changes_nothing(
        owned: tuple[Client, str], hub_server: Any) -> None:
    c, asset = owned
    head = c.resolve(f"{asset}:main")
    h = {"Authorization": f"Bearer {hub_server.admin_token}"}
    base = f"{hub_server.url}/api/v1"
    up = httpx.post(f"{base}/assets/{asset}/uploads", json={"branch": "main"}, headers=h).json()
    r = httpx.put(f"{base}/uploads/{up['upload_id']}/files/x.bin", content=b"actual bytes",
                  headers={**h, "X-Asset-Sha256": "0" * 64})
    assert r.status_code == 400 and "corrupted" in r.json()["error"]["message"]
    httpx.delete(f"{base}/uploads/{up['upload_id']}", headers=h)
    assert c.resolve(f"{asset}:main") == head


@pytest.mark.parametrize("ranged", [False, True], ids=["one-stream", "ranges"])
def test_streaming_through_the_server_keeps_memory_flat(
        owned: tuple[Client, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        ranged: bool) -> None:
    """A 96 MiB file goes up and down through the (in-process) server with a bounded peak."""
    import tracemalloc

    c, asset = owned
    if not ranged:
        monkeypatch.setattr(client_module, "_RANGED_FROM", 2**62)
    else:  # what is in flight is bounded by parallel parts, whatever the file's size
        monkeypatch.setattr(client_module, "_RANGE_PART", 4 * 1024 * 1024)
    size = 96 * 1024 * 1024
    with open(tmp_path / "big.bin", "wb") as f:
        for _ in range(size // (4 * 1024 * 1024)):
            f.write(os.urandom(4 * 1024 * 1024))
    tracemalloc.start()
    try:
        c.upload(f"{asset}:main", tmp_path / "big.bin", message="big")
        _, up_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        c.download(f"{asset}:main", tmp_path / "out", prefix="big.bin")
        _, down_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "out" / "big.bin").stat().st_size == size
    # client and server together hold a few chunks at a time, never the file
    assert up_peak < size / 4, f"upload peak {up_peak / 2**20:.0f} MiB"
    assert down_peak < size / 4, f"download peak {down_peak / 2**20:.0f} MiB"


def test_many_small_files_come_in_bundles(owned: tuple[Client, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, hub_server: Any) -> None:
    c, asset = owned
    src = tmp_path / "src"
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 300) for i in range(600)}  # empty ones too
    files["big.bin"] = os.urandom(5 * 1024 * 1024)
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    c.upload(f"{asset}:main", src, message="many files")
    calls: list[str] = []
    real_stream = Client._stream

    def spy(self: Client, method: str, url: str, **kw: Any) -> Any:
        calls.append(f"{method} {url.rsplit('/', 1)[-1]}")
        return real_stream(self, method, url, **kw)

    monkeypatch.setattr(Client, "_stream", spy)
    fresh = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "cache2")
    result = fresh.download(f"{asset}:main", tmp_path / "out")
    assert result.files == 601 and result.bytes_transferred == sum(map(len, files.values()))
    assert all((tmp_path / "out" / n).read_bytes() == d for n, d in files.items())
    assert calls.count("POST bundle") == 2  # 600 small files, 400 to a bundle
    assert sum(1 for x in calls if x.startswith("GET ") and x.endswith(".bin")) == 1  # only the big one


def test_bundles_read_the_local_blockstore_and_a_damaged_file_is_caught(
        owned: tuple[Client, str], tmp_path: Path, hub_server: Any) -> None:
    """On the machine that holds lakeFS's local blockstore the server reads bundled files from
    it directly; the SDK still checks every file's SHA-256, so a file changed on disk (same
    size) fails the download instead of reaching the cache or the destination."""
    from assethub import errors

    c, asset = owned
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}.txt").write_text(f"file {i}\n" * 10)
    c.upload(f"{asset}:main", src, message="eight")
    good = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "c1")
    assert good.download(f"{asset}:main", tmp_path / "ok").files == 8
    storage = hub_server.hub.storage
    listing = storage._listing(storage.repository(asset), storage.resolve(f"{asset}:main"))
    victim = next(o for o in listing if o.path == "f3.txt")
    assert victim.physical.startswith("local:///"), victim.physical
    blob = Path(victim.physical.removeprefix("local://"))
    blob.chmod(0o644)
    blob.write_bytes(b"X" * victim.size)  # same size, other bytes
    fresh = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "c2")
    with pytest.raises(errors.TransferError, match=r"f3\.txt"):
        fresh.download(f"{asset}:main", tmp_path / "bad")
    assert not (tmp_path / "bad" / "f3.txt").exists()


def test_a_large_file_with_one_damaged_range_is_refused_and_not_cached(
        owned: tuple[Client, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        hub_server: Any) -> None:
    """The ranges of a large file are hashed in order as they arrive (never read back): one
    byte changed on disk in the third of four ranges (every range still arrives whole and at its
    size) fails the download, and neither the cache nor the destination gets the file."""
    from assethub import errors

    c, asset = owned
    data = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_path / "w.bin").write_bytes(data)
    c.upload(f"{asset}:main", tmp_path / "w.bin", message="weights")
    monkeypatch.setattr(client_module, "_RANGED_FROM", 1024 * 1024)
    monkeypatch.setattr(client_module, "_RANGE_PART", 1024 * 1024)
    storage = hub_server.hub.storage
    listing = storage._listing(storage.repository(asset), storage.resolve(f"{asset}:main"))
    victim = next(o for o in listing if o.path == "w.bin")
    assert victim.physical.startswith("local:///"), victim.physical
    blob = Path(victim.physical.removeprefix("local://"))
    blob.chmod(0o644)
    at = 2 * 1024 * 1024 + 5
    with open(blob, "r+b") as f:
        f.seek(at)
        f.write(bytes([data[at] ^ 0xFF]))
    fresh = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "c2")
    with pytest.raises(errors.TransferError, match=r"w\.bin failed verification"):
        fresh.download(f"{asset}:main", tmp_path / "bad")
    assert not (tmp_path / "bad" / "w.bin").exists()
    assert not [p for p in (tmp_path / "c2").rglob("*") if p.is_file() and "listings" not in p.parts]
    blob.write_bytes(data)  # put right: the same client now gets it whole
    assert fresh.download(f"{asset}:main", tmp_path / "bad").bytes_transferred == len(data)
    assert (tmp_path / "bad" / "w.bin").read_bytes() == data


def test_bundle_refuses_what_it_cannot_send(owned: tuple[Client, str], hub_server: Any,
                                            tmp_path: Path) -> None:
    c, asset = owned
    (tmp_path / "a.txt").write_text("a")
    c.upload(f"{asset}:main", tmp_path / "a.txt", message="a")
    url = f"{hub_server.url}/api/v1/assets/{asset}/bundle"
    auth = {"Authorization": f"Bearer {hub_server.admin_token}"}
    # a file missing after the stream began: the last frame says so, and the SDK raises it
    missing = httpx.post(url, headers=auth, json={"ref": "main", "paths": ["a.txt", "nope.txt"]})
    assert missing.status_code == 200 and b'"error": "ObjectNotFoundError"' in missing.content
    from assethub import errors
    from assethub._cache import RemoteObject
    from assethub.refs import AssetRef

    objs = [RemoteObject("a.txt", 1, "", None), RemoteObject("nope.txt", 1, "", None)]
    with pytest.raises(errors.ObjectNotFoundError):
        c._fetch_bundle(AssetRef.parse(f"{asset}:main"), objs, lambda n: None)
    first_missing = httpx.post(url, headers=auth, json={"ref": "main", "paths": ["nope.txt"]})
    assert first_missing.status_code == 404 and first_missing.json()["error"]["type"] == "ObjectNotFoundError"
    bad = httpx.post(url, headers=auth, json={"ref": "main", "paths": ["../etc/passwd"]})
    assert bad.status_code == 400
    too_many = httpx.post(url, headers=auth, json={"ref": "main", "paths": ["a.txt"] * 5001})
    assert too_many.status_code == 422
    anonymous = httpx.post(url, json={"ref": "main", "paths": ["a.txt"]})
    assert anonymous.status_code == 401


def test_many_small_files_go_up_in_bundles(owned: tuple[Client, str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, hub_server: Any) -> None:
    """Small files of an upload travel several to a request; each keeps its SHA-256 in lakeFS
    (checked by the server) and the commit holds exactly what was sent."""
    c, asset = owned
    src = tmp_path / "src"
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 300) for i in range(600)}  # empty ones too
    files["big.bin"] = os.urandom(5 * 1024 * 1024)
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    calls: list[str] = []
    real_stream = Client._stream

    def spy(self: Client, method: str, url: str, **kw: Any) -> Any:
        calls.append(f"{method} {url.rsplit('/', 1)[-1]}")
        return real_stream(self, method, url, **kw)

    monkeypatch.setattr(Client, "_stream", spy)
    c.upload(f"{asset}:main", src, path="up", message="many files")
    assert calls.count("PUT bundle") == 2  # 600 small files, 400 to a bundle
    assert [x for x in calls if x.startswith("PUT ") and x != "PUT bundle"] == ["PUT big.bin"]
    listed = {o.path: o for o in c.list_objects(f"{asset}:main", prefix="up/")}
    assert listed.keys() == {f"up/{n}" for n in files}
    import hashlib

    assert all(listed[f"up/{n}"].sha256 == hashlib.sha256(d).hexdigest() for n, d in files.items())
    fresh = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "cache2")
    fresh.download(f"{asset}:main", tmp_path / "out", prefix="up")
    assert all((tmp_path / "out" / n).read_bytes() == d for n, d in files.items())


def _frame(path: str, data: bytes, sha256: str | None = None, size: int | None = None) -> bytes:
    import hashlib
    import json

    header = json.dumps({"path": path, "size": len(data) if size is None else size,
                         "sha256": sha256 or hashlib.sha256(data).hexdigest()}).encode()
    return len(header).to_bytes(4, "big") + header + data


def test_an_upload_bundle_refuses_bad_frames_and_other_peoples_uploads(
        owned: tuple[Client, str], hub_server: Any) -> None:
    """Bad input in a bundle is a clear 400 and nothing of it reaches the branch; another user
    (not an admin) cannot put files into someone else's upload, nor can an anonymous caller."""
    c, asset = owned
    head = c.resolve(f"{asset}:main")
    h = {"Authorization": f"Bearer {hub_server.admin_token}"}
    base = f"{hub_server.url}/api/v1"

    def start() -> str:
        return str(httpx.post(f"{base}/assets/{asset}/uploads", json={"branch": "main"},
                              headers=h).json()["upload_id"])

    upload = start()
    url = f"{base}/uploads/{upload}/bundle"
    good = _frame("ok/a.bin", b"a" * 100)
    cases = {
        "corrupted": good + _frame("ok/b.bin", b"actual bytes", sha256="0" * 64),
        "object path": _frame("../etc/passwd", b"x"),
        "ended early": good + _frame("ok/c.bin", b"short", size=50),
        "twice": good + good,
        "size must be": _frame("ok/d.bin", b"", size=5 * 1024 * 1024),
        "needs its SHA-256": _frame("ok/e.bin", b"e", sha256="ABC"),
        "not JSON": (5).to_bytes(4, "big") + b"{nope",
    }
    for expected, body in cases.items():
        r = httpx.put(url, content=body, headers=h)
        assert r.status_code == 400, (expected, r.status_code, r.text)
        assert expected in r.json()["error"]["message"], (expected, r.text)
    httpx.delete(f"{base}/uploads/{upload}", headers=h)
    assert c.resolve(f"{asset}:main") == head  # nothing committed

    # someone else's upload: not found for another user, nor for nobody
    admin = Client(hub_server.url, hub_server.admin_token)
    name = f"mallory{uuid.uuid4().hex[:6]}"
    admin.create_user(name)
    other = admin.create_token(name, name="t").secret
    upload = start()
    r = httpx.put(f"{base}/uploads/{upload}/bundle", content=good,
                  headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"
    anonymous = httpx.put(f"{base}/uploads/{upload}/bundle", content=good)
    assert anonymous.status_code == 404  # an anonymous caller owns no upload either
    # the owner's bundle goes through and commits
    r = httpx.put(f"{base}/uploads/{upload}/bundle", content=good + _frame("ok/z.bin", b""),
                  headers=h)
    assert r.status_code == 200, r.text
    assert [f["path"] for f in r.json()["files"]] == ["ok/a.bin", "ok/z.bin"]
    httpx.post(f"{base}/uploads/{upload}/commit", json={"message": "two"}, headers=h)
    assert {o.path for o in c.list_objects(f"{asset}:main", prefix="ok/")} == {"ok/a.bin", "ok/z.bin"}
