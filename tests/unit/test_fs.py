"""``assethub://`` without a server: URL parsing, the hub's errors as fsspec users expect them,
pinning and ranged reads against a fake server (httpx.MockTransport), and light imports."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest

from assethub import errors
from assethub.client import Client
from assethub.fs import AssetHubFileSystem, HubPath, parse_url
from assethub.refs import AssetPath
from tests.unit.test_imports import HEAVY, loaded_after

A = "alice/dataset/tables/iris"


@pytest.mark.parametrize(("url", "asset", "ref", "path"), [
    (f"assethub://{A}@v1/data.csv", A, "v1", "data.csv"),
    (f"assethub://{A}:v1/a/b.parquet", A, "v1", "a/b.parquet"),
    (f"{A}@main", A, "main", ""),
    (f"assethub://{A}/", A, "main", ""),
    (f"assethub://{A}@feature-1/x/", A, "feature-1", "x"),
    ("assethub://bob/model/m/net@2024@v1.2/model/MLmodel", "bob/model/m/net@2024", "v1.2", "model/MLmodel"),
    (f"assethub://{A}@abc123~1/f", A, "abc123~1", "f"),
])
def test_urls_parse_into_an_asset_ref_and_a_path(url: str, asset: str, ref: str, path: str) -> None:
    hp = parse_url(url)
    assert hp == HubPath(AssetPath.parse(asset).at(ref), path)
    assert hp.name(path) == f"{asset}@{ref}" + (f"/{path}" if path else "")


@pytest.mark.parametrize(("url", "says"), [
    ("assethub://alice/dataset/tables", "expected assethub://<owner>"),
    ("assethub://alice/notakind/tables/x@v1/f", "asset type"),
    (f"assethub://{A}@v1/a/../b", "object path"),
    (f"assethub://{A}@bad ref/f", "ref"),
    ("assethub://Alice/dataset/t/x/f", "owner"),
])
def test_bad_urls_say_what_is_expected(url: str, says: str) -> None:
    with pytest.raises(errors.InvalidReferenceError, match=re.escape(says)) as caught:
        parse_url(url)
    assert isinstance(caught.value, ValueError)


def test_the_protocol_is_registered_by_entry_point() -> None:
    assert fsspec.get_filesystem_class("assethub") is AssetHubFileSystem


# -- a fake server: one commit per ref, files with Range --------------------------------------
FILES = {"small.csv": b"a,b\n1,2\n", "big.bin": bytes(range(256)) * 1000}
COMMIT = "c" * 64


class FakeHub:
    def __init__(self) -> None:
        self.commit = COMMIT
        self.requests: list[httpx.Request] = []
        self.refuse: dict[str, tuple[int, dict[str, Any]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        for prefix, (status, body) in self.refuse.items():
            if path.startswith(prefix):
                return httpx.Response(status, json={"error": body})
        if path.endswith("/commit"):
            return httpx.Response(200, json={"id": self.commit, "message": "m", "committer": "x",
                                             "created": "2024-05-01T12:00:00+00:00",
                                             "metadata": {}, "parents": []})
        if path.endswith("/objects"):
            assert request.url.params["ref"] == self.commit  # listings of the pinned commit only
            return httpx.Response(200, json=[
                {"path": p, "size": len(d), "checksum": hashlib.md5(d).hexdigest(),
                 "sha256": hashlib.sha256(d).hexdigest(), "modified": "2024-05-01T12:00:00+00:00"}
                for p, d in FILES.items()])
        if "/files/" in path:
            assert request.url.params["ref"] == self.commit
            data = FILES[path.split("/files/", 1)[1]]
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("range", ""))
            if m is None:
                return httpx.Response(200, content=data)
            lo, hi = int(m.group(1)), int(m.group(2))
            return httpx.Response(206, content=data[lo:hi + 1])
        return httpx.Response(404, json={"error": {"type": "NotFoundError", "message": "no route",
                                                   "what": "route", "name": path}})


def fake_fs(tmp_path: Path, hub: FakeHub, **options: Any) -> AssetHubFileSystem:
    client = Client("http://hub.test", "t", transport=httpx.MockTransport(hub), cache_dir=tmp_path / "c")
    return AssetHubFileSystem(client=client, **options)


def test_a_ref_is_resolved_once_and_read_at_that_commit(tmp_path: Path) -> None:
    hub = FakeHub()
    fs = fake_fs(tmp_path, hub)
    assert fs.cat_file(f"{A}@main/small.csv") == FILES["small.csv"]
    hub.commit = "d" * 64  # the branch moves: this filesystem keeps reading its commit
    assert fs.cat_file(f"{A}@main/small.csv") == FILES["small.csv"]
    assert sum(r.url.path.endswith("/commit") for r in hub.requests) == 1
    assert [r.url.params["ref"] for r in hub.requests if r.url.path.endswith("/objects")] == [COMMIT]


def test_large_files_are_read_by_range_small_ones_whole_once(tmp_path: Path) -> None:
    hub = FakeHub()
    fs = fake_fs(tmp_path, hub, whole_file_max=1000)
    big = FILES["big.bin"]
    assert fs.cat_file(f"{A}@v1/big.bin", start=1000, end=1010) == big[1000:1010]
    assert fs.cat_file(f"{A}@v1/big.bin", start=-5) == big[-5:]
    with fs.open(f"{A}@v1/big.bin", "rb", block_size=64) as f:
        f.seek(200_000)
        assert f.read(100) == big[200_000:200_100]
    ranges = [r.headers.get("range") for r in hub.requests if "/files/" in r.url.path]
    assert None not in ranges and "bytes=1000-1009" in ranges
    assert fs.local_file(f"{A}@v1/big.bin") is None
    fs.cat_file(f"{A}@v1/small.csv")
    fs.cat_file(f"{A}@v1/small.csv")
    small = [r for r in hub.requests if r.url.path.endswith("/files/small.csv")]
    assert len(small) == 1 and "range" not in small[0].headers  # whole, then from the cache


def test_hidden_or_missing_assets_are_file_not_found_and_refusals_permission_errors(
        tmp_path: Path) -> None:
    hub = FakeHub()
    hub.refuse["/api/v1/assets/"] = (404, {"type": "AssetNotFoundError", "message": "asset not found",
                                           "what": "asset", "name": A, "path": A})
    with pytest.raises(FileNotFoundError) as missing:
        fake_fs(tmp_path, hub).cat_file(f"{A}@v1/small.csv")
    assert isinstance(missing.value.__cause__, errors.AssetNotFoundError)
    assert not fake_fs(tmp_path, hub).exists(f"{A}@v1/small.csv")
    hub.refuse["/api/v1/assets/"] = (404, {"type": "RefNotFoundError", "message": "no ref",
                                           "ref": "v9"})
    with pytest.raises(FileNotFoundError):
        fake_fs(tmp_path, hub).ls(f"{A}@v9")
    hub.refuse["/api/v1/assets/"] = (401, {"type": "AuthenticationError", "message": "bad token"})
    with pytest.raises(PermissionError):
        fake_fs(tmp_path, hub).cat_file(f"{A}@v1/small.csv")


def test_a_missing_file_or_directory_is_file_not_found(tmp_path: Path) -> None:
    fs = fake_fs(tmp_path, FakeHub())
    for call in (lambda: fs.cat_file(f"{A}@v1/nope.csv"), lambda: fs.ls(f"{A}@v1/nope"),
                 lambda: fs.info(f"{A}@v1/nope"), lambda: fs.open(f"{A}@v1/nope", "rb")):
        with pytest.raises(FileNotFoundError):
            call()
    assert fs.info(f"{A}@v1")["type"] == "directory"


def test_the_filesystem_pickles_by_its_settings() -> None:
    fs = AssetHubFileSystem("http://hub.test", "t", cache_dir="/tmp/x", whole_file_max=5)
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.client.url == "http://hub.test" and clone.whole_file_max == 5
    assert clone.client.cache.root == Path("/tmp/x") and clone is not fs


def test_importing_the_filesystem_and_load_stays_light() -> None:
    # the filesystem needs fsspec and the SDK only; `assethub.load` imports MLflow when called
    assert sorted(loaded_after("import assethub.fs") & set(HEAVY)) == []
    assert sorted(loaded_after("import assethub; assethub.load; import assethub.loading") & set(HEAVY)) == []
