"""Direct transfer through presigned URLs, against a real object store (SeaweedFS), lakeFS on
its S3 blockstore and a real Asset Hub server: the server authorizes, the bytes go between the
client and the object store, never through the server (it counts the file bytes it streams:
``hub.versions.proxied_bytes``, which the proxied path moves and these tests see move).

Callers: ``ownr`` (owns the folders), ``viewer`` (a view share), ``stranger`` (nothing), and a
job token of one of ``ownr``'s runs. The session's own server (the local blockstore) checks that
the proxied path stays where lakeFS cannot presign.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import lakefs_sdk
import pytest
from _api import Api, fresh, message

from assethub import errors
from assethub._cache import RemoteObject
from assethub.client import Client
from tests.conftest import RunningServer, free_port, start_server

pytestmark = [pytest.mark.integration]

MiB = 1024 * 1024


@dataclass
class S3World:
    server: RunningServer
    store: Any  # infra.seaweedfs.ObjectStore
    api: Api
    owner: str
    folder: str  # ownr's dataset folder, shared with viewer

    def client(self, who: str, tmp: Path) -> Client:
        return Client(self.server.url, self.api.tokens[who], cache_dir=tmp / f"cache-{who}-{fresh()}")

    def dataset(self) -> str:
        path = f"{self.folder}/{fresh('d')}"
        self.api.ok("ownr", "POST", "/assets", json={"path": path})
        return path

    def proxied(self) -> dict[str, int]:
        return self.server.hub.versions.proxied_bytes.snapshot()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3World]:
    """SeaweedFS, lakeFS on it (S3 blockstore) in a home of their own, and a server whose new
    repositories live in the object store's bucket."""
    from infra import lakefs, seaweedfs

    home = tmp_path_factory.mktemp("s3-home")
    old = os.environ.get("ASSETHUB_HOME")

    def in_home(fn: Any, *args: Any, **kw: Any) -> Any:
        os.environ["ASSETHUB_HOME"] = str(home)  # both keep their state under the home
        try:
            return fn(*args, **kw)
        finally:
            if old is None:
                os.environ.pop("ASSETHUB_HOME", None)
            else:
                os.environ["ASSETHUB_HOME"] = old

    try:
        store = in_home(seaweedfs.start, port=free_port())
        lake = in_home(lakefs.start, port=free_port(), backends=lakefs.Backends(
            s3_endpoint=store.endpoint, s3_access_key_id=store.access_key_id,
            s3_secret_access_key=store.secret_access_key, s3_region=store.region))
        server = start_server(lake, home / "server")
        # what ASSETHUB_STORAGE_NAMESPACE sets for `assethub up`: repositories in the bucket
        server.hub.storage.namespace_root = f"s3://{seaweedfs.DATA_BUCKET}/repos"
        api = Api(server.url, server.admin_token)
        owner = api.add_user("ownr")
        api.add_user("viewer")
        api.add_user("stranger")
        folder = f"{owner}/dataset/{fresh('f')}"
        api.ok("ownr", "POST", "/folders", json={"path": folder})
        api.ok("ownr", "POST", f"/folders/{folder}/shares", json={
            "subject_type": "user", "subject_name": api.names["viewer"], "role": "view"})
        yield S3World(server, store, api, owner, folder)
        server.server.should_exit = True
        server.thread.join(timeout=10)
    finally:
        in_home(lakefs.stop)
        in_home(seaweedfs.stop)


def _tree(root: Path, files: int, *, large: int = 0, seed: int = 7) -> dict[str, bytes]:
    rnd = random.Random(seed)
    out: dict[str, bytes] = {}
    for i in range(files):
        out[f"class{i % 5}/{i:04d}.bin"] = rnd.randbytes(rnd.randint(0, 3000))
    if large:
        out["big/weights.bin"] = os.urandom(large)
    for rel, data in out.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return out


def _same_tree(root: Path, expected: dict[str, bytes]) -> None:
    got = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert got == set(expected)
    for rel, data in expected.items():
        assert hashlib.sha256((root / rel).read_bytes()).digest() == hashlib.sha256(data).digest(), rel


def _presigned(w: S3World, who: str, asset: str, **params: Any) -> httpx.Response:
    return w.api.call(who, "GET", f"/assets/{asset}/presigned", params=params)


def _bucket_key(url: str) -> tuple[str, str]:
    bucket, _, key = urlsplit(url).path.lstrip("/").partition("/")
    return bucket, unquote(key)


# -- the capability ---------------------------------------------------------------------------
def test_the_server_offers_presign_on_s3_and_not_on_the_local_blockstore(s3: S3World,
                                                                          hub_server: Any) -> None:
    assert httpx.get(f"{s3.server.url}/api/v1/capabilities").json() == {"presign": True}
    assert httpx.get(f"{hub_server.url}/api/v1/capabilities").json() == {"presign": False}


# -- the data path ----------------------------------------------------------------------------
def test_upload_and_download_move_no_bytes_through_the_server(s3: S3World, tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = _tree(src, 400, large=64 * MiB)
    asset = s3.dataset()
    client = s3.client("ownr", tmp_path)
    before = s3.proxied()
    commit = client.upload(f"{asset}:main", src, message="direct")
    assert s3.proxied() == before, "the upload's bytes went through the server"
    # each file's SHA-256, computed by the client while it uploaded, is recorded
    listed = {o.path: o for o in client.list_objects(f"{asset}:{commit.id}")}
    assert {p: o.sha256 for p, o in listed.items()} == \
        {p: hashlib.sha256(d).hexdigest() for p, d in expected.items()}
    assert {p: o.size for p, o in listed.items()} == {p: len(d) for p, d in expected.items()}

    result = client.download(f"{asset}:main", tmp_path / "out")
    assert s3.proxied() == before, "the download's bytes went through the server"
    assert result.commit_id == commit.id and result.files == len(expected)
    assert result.bytes_transferred == sum(len(d) for d in expected.values())
    _same_tree(tmp_path / "out", expected)
    # the cache is the same content-addressed one: a second download transfers nothing
    again = client.download(f"{asset}:main", tmp_path / "again")
    assert again.bytes_transferred == 0
    _same_tree(tmp_path / "again", expected)

    # the meter does see bytes that go through the server: the proxied path, on demand
    os.environ["ASSETHUB_PRESIGN"] = "0"
    try:
        proxied = s3.client("ownr", tmp_path).download(f"{asset}:main", tmp_path / "proxied",
                                                       prefix="class1/")
    finally:
        os.environ.pop("ASSETHUB_PRESIGN")
    # (bundles add a small header per file)
    assert s3.proxied()["down"] - before["down"] >= proxied.bytes_transferred > 0


def test_a_cached_re_download_asks_for_no_urls_and_still_checks_the_permission(
        s3: S3World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    expected = _tree(src, 60)
    folder = f"{s3.owner}/dataset/{fresh('f')}"
    s3.api.ok("ownr", "POST", "/folders", json={"path": folder})
    reader = s3.api.add_user("reader")
    share = {"subject_type": "user", "subject_name": reader}
    s3.api.ok("ownr", "POST", f"/folders/{folder}/shares", json={**share, "role": "view"})
    asset = f"{folder}/{fresh('d')}"
    s3.api.ok("ownr", "POST", "/assets", json={"path": asset})
    commit = s3.client("ownr", tmp_path).upload(f"{asset}:main", src, message="once").id
    client = s3.client("reader", tmp_path)
    asked: list[str] = []
    listing = client.presigned_objects
    monkeypatch.setattr(client, "presigned_objects",
                        lambda ref, **kw: (asked.append(str(ref)), listing(ref, **kw))[1])
    first = client.download(f"{asset}:main", tmp_path / "first")
    assert first.bytes_transferred == sum(len(d) for d in expected.values()) and len(asked) == 1
    again = client.download(f"{asset}:main", tmp_path / "again")
    assert (again.commit_id, again.files, again.bytes_transferred) == (commit, len(expected), 0)
    _same_tree(tmp_path / "again", expected)
    assert len(asked) == 1, "a download the cache holds asked the server for URLs"
    # a file missing from the cache: the server presigns again, and only that file moves
    gone = next(RemoteObject(o.path, o.size, o.checksum, o.sha256)
                for o in client.list_objects(f"{asset}:{commit}") if o.size > 0)
    os.unlink(client.cache.blob_file(gone))
    part = client.download(f"{asset}:{commit}", tmp_path / "part")
    assert part.bytes_transferred == gone.size and len(asked) == 2
    _same_tree(tmp_path / "part", expected)
    # the share taken away: the cache does not stand in for the permission
    s3.api.ok("ownr", "DELETE", f"/folders/{folder}/shares", params=share)
    with pytest.raises(errors.NotFoundError):
        client.download(f"{asset}:{commit}", tmp_path / "denied")
    assert not (tmp_path / "denied").exists()


def test_a_prefix_and_paging_of_presigned_listings(s3: S3World, tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = _tree(src, 30)
    asset = s3.dataset()
    commit = s3.client("ownr", tmp_path).upload(f"{asset}:main", src, message="paged").id
    seen: list[str] = []
    after = ""
    while True:
        page = s3.api.ok("viewer", "GET", f"/assets/{asset}/presigned",
                         params={"ref": "main", "prefix": "class2/", "limit": 4, "after": after})
        assert page["commit_id"] == commit
        seen += [o["path"] for o in page["objects"]]
        if not page["next_after"]:
            break
        after = page["next_after"]
    assert seen == sorted(p for p in expected if p.startswith("class2/"))
    out = s3.client("viewer", tmp_path).download(f"{asset}:{commit}", tmp_path / "out", prefix="class2/")
    assert out.files == len(seen)


# -- who gets a URL ---------------------------------------------------------------------------
def test_only_viewers_get_read_urls_and_only_the_uploader_write_urls(s3: S3World, tmp_path: Path) -> None:
    asset = s3.dataset()
    s3.client("ownr", tmp_path).upload(f"{asset}:main", _write(tmp_path / "a.txt", b"secret"),
                                       message="one")
    for who in ("stranger", "anonymous"):
        r = _presigned(s3, who, asset)
        assert r.status_code in (401, 403, 404), r.text
        assert "X-Amz" not in r.text and "url" not in r.json()
    assert _presigned(s3, "viewer", asset).json()["objects"][0]["path"] == "a.txt"

    # a viewer cannot open an upload, nor presign in the owner's
    r = s3.api.call("viewer", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})
    assert r.status_code == 403, r.text
    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    for who in ("viewer", "stranger"):
        r = s3.api.call(who, "POST", f"/uploads/{upload}/presign", json={"paths": ["b.txt"]})
        assert r.status_code == 404 and "X-Amz" not in r.text, r.text
    s3.api.ok("ownr", "DELETE", f"/uploads/{upload}")

    # an editor whose share is taken away gets no more URLs for the upload already open
    s3.api.add_user("editor")
    share = {"subject_type": "user", "subject_name": s3.api.names["editor"]}
    s3.api.ok("ownr", "POST", f"/folders/{s3.folder}/shares", json={**share, "role": "edit"})
    upload = s3.api.ok("editor", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    assert s3.api.ok("editor", "POST", f"/uploads/{upload}/presign", json={"paths": ["b.txt"]})["files"]
    s3.api.ok("ownr", "DELETE", f"/folders/{s3.folder}/shares", params=share)
    r = s3.api.call("editor", "POST", f"/uploads/{upload}/presign", json={"paths": ["b.txt"]})
    assert r.status_code in (403, 404) and "X-Amz" not in r.text, r.text


def test_a_job_token_gets_urls_only_for_its_runs_assets(s3: S3World, tmp_path: Path) -> None:
    dataset = s3.dataset()
    other = s3.dataset()
    mfolder = f"{s3.owner}/model/{fresh('m')}"
    s3.api.ok("ownr", "POST", "/folders", json={"path": mfolder})
    model = f"{mfolder}/net"
    s3.api.ok("ownr", "POST", "/assets", json={"path": model})
    ownr = s3.client("ownr", tmp_path)
    ownr.upload(f"{model}:main", _write(tmp_path / "w.bin", b"w1"), message="w")
    pinned = ownr.upload(f"{dataset}:main", _write(tmp_path / "1.txt", b"one"), message="1").id
    ownr.upload(f"{dataset}:main", _write(tmp_path / "2.txt", b"two"), message="2")
    ownr.upload(f"{other}:main", _write(tmp_path / "x.txt", b"x"), message="x")
    run = s3.api.ok("ownr", "POST", "/runs", json={
        "kind": "train", "model": model, "dataset": f"{dataset}:{pinned}"})
    s3.api.tokens["job"], s3.api.names["job"] = run["job_token"], s3.owner

    assert [o["path"] for o in _presigned(s3, "job", dataset, ref=pinned).json()["objects"]] == ["1.txt"]
    for asset, ref in ((dataset, "main"), (other, "main")):
        r = _presigned(s3, "job", asset, ref=ref)
        assert r.status_code == 403 and "url" not in r.text, r.text
    # the job fetches and pushes through the SDK as tasks/ do: the presigned path, automatically
    job = Client(s3.server.url, run["job_token"], cache_dir=tmp_path / "job-cache")
    job.create_branch(model, run["branch"])
    before = s3.proxied()
    job.download(f"{dataset}:{pinned}", tmp_path / "data")
    assert (tmp_path / "data" / "1.txt").read_bytes() == b"one"
    job.upload(f"{model}:{run['branch']}", _write(tmp_path / "w2.bin", b"w2"), path="w.bin",
               message="trained")
    assert s3.proxied() == before
    assert ownr.stat(f"{model}:{run['branch']}", "w.bin").sha256 == hashlib.sha256(b"w2").hexdigest()
    # not on main: its token writes its branch only
    r = s3.api.call("job", "POST", f"/assets/{model}/uploads", json={"branch": "main"})
    assert r.status_code == 403, r.text


# -- what a URL allows ------------------------------------------------------------------------
def test_a_url_cannot_be_used_for_another_key(s3: S3World, tmp_path: Path) -> None:
    asset = s3.dataset()
    _tree(tmp_path / "src", 2)
    s3.client("ownr", tmp_path).upload(f"{asset}:main", tmp_path / "src", message="two")
    objs = _presigned(s3, "viewer", asset).json()["objects"]
    a, b = objs[0], objs[1]
    assert httpx.get(a["url"]).status_code == 200
    _, key_b = _bucket_key(b["url"])
    moved = urlunsplit(urlsplit(a["url"])._replace(path=urlsplit(b["url"]).path))
    r = httpx.get(moved)
    assert r.status_code == 403, (r.status_code, key_b)

    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    put = s3.api.ok("ownr", "POST", f"/uploads/{upload}/presign", json={"paths": ["c.txt"]})["files"][0]
    elsewhere = urlunsplit(urlsplit(put["url"])._replace(path=urlsplit(put["url"]).path + "x"))
    assert httpx.put(elsewhere, content=b"evil").status_code == 403
    assert httpx.put(urlunsplit(urlsplit(b["url"])._replace(query=urlsplit(put["url"]).query)),
                     content=b"evil").status_code == 403  # nor overwrite a committed object
    assert httpx.get(b["url"]).status_code == 200
    s3.api.ok("ownr", "DELETE", f"/uploads/{upload}")


def test_a_link_is_refused_unless_the_object_store_holds_what_was_declared(s3: S3World,
                                                                          tmp_path: Path) -> None:
    asset = s3.dataset()
    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    puts = s3.api.ok("ownr", "POST", f"/uploads/{upload}/presign",
                     json={"paths": ["never.txt", "short.txt"]})["files"]
    sha = hashlib.sha256(b"hello").hexdigest()

    def link(put: dict[str, Any], size: int, etag: str) -> httpx.Response:
        return s3.api.call("ownr", "POST", f"/uploads/{upload}/link", json={"files": [{
            "path": put["path"], "physical_address": put["physical_address"], "size": size,
            "sha256": sha, "etag": etag}]})

    r = link(puts[0], 5, "0123")  # never uploaded
    assert r.status_code == 400 and "not in the object store as declared" in message(r)
    etag = httpx.put(puts[1]["url"], content=b"hel").headers["etag"]
    r = link(puts[1], 5, etag)  # a size it does not have
    assert r.status_code == 400 and "holds 3 bytes" in message(r)
    # an address that is not this asset's
    r = link({**puts[1], "physical_address": "s3://assethub-data/elsewhere/x"}, 3, etag)
    assert r.status_code == 400 and "not an address of this asset" in message(r)
    r = s3.api.call("ownr", "POST", f"/uploads/{upload}/commit", json={"message": "nothing linked"})
    assert r.status_code == 409 and "nothing to commit" in message(r)  # no refused link was kept
    assert s3.api.ok("ownr", "GET", f"/assets/{asset}/objects") == []


def test_lakefs_itself_links_an_issued_address_without_looking_at_the_object_store(
        s3: S3World) -> None:
    """Why the server's own check of each link stays: lakeFS 1.86's LinkPhysicalAddress only
    verifies that it issued the address (and that a checksum is given); it records whatever
    size and checksum it is told for an object the store has never held. If a lakeFS release
    starts refusing this, the server's per-file GET of the object store can go."""
    asset = s3.dataset()
    storage = s3.server.hub.storage
    repo = storage.repository(asset)
    api = storage.lakefs.api
    api.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(name="probe", source="main"))
    loc = api.staging_api.get_physical_address(repo, "probe", "ghost.bin")
    stats = api.staging_api.link_physical_address(repo, "probe", "ghost.bin", lakefs_sdk.StagingMetadata(
        staging=loc, checksum="not-an-etag", size_bytes=12345))
    assert (stats.size_bytes, stats.checksum) == (12345, "not-an-etag")
    # nothing at that address: the store has never held the object
    assert httpx.get(api.objects_api.stat_object(repo, "probe", "ghost.bin", presign=True)
                     .physical_address).status_code == 404


@pytest.mark.parametrize("listing_pages", [3, 0], ids=["listed", "stat-per-file"])
def test_a_group_of_links_is_all_or_nothing(s3: S3World, listing_pages: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Links come a group at a time (the object store asked about each file through one
    listing of presigned URLs, or a stat each when the listing does not reach them): one file
    that is not there as declared refuses the whole request, and keeps none of it."""
    from assethub.storage import _presign

    monkeypatch.setattr(_presign, "_LISTING_PAGES", listing_pages)
    asset = s3.dataset()
    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    paths = ["a/1.bin", "a/2.bin", "b/3.bin", "b/4.bin"]
    puts = s3.api.ok("ownr", "POST", f"/uploads/{upload}/presign", json={"paths": paths})["files"]
    assert [p["path"] for p in puts] == paths
    assert len({p["physical_address"] for p in puts}) == len(paths)
    files = []
    for i, put in enumerate(puts):
        data = os.urandom(100 + i) if i != 1 else b""
        etag = httpx.put(put["url"], content=data).headers["etag"].strip('"')
        files.append({"path": put["path"], "physical_address": put["physical_address"],
                      "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "etag": etag})
    wrong = [dict(f) for f in files]
    wrong[2]["etag"] = files[3]["etag"]  # another file's ETag: the store holds other bytes
    r = s3.api.call("ownr", "POST", f"/uploads/{upload}/link", json={"files": wrong})
    assert r.status_code == 400 and "b/3.bin is not in the object store as declared" in message(r)
    r = s3.api.call("ownr", "POST", f"/uploads/{upload}/commit", json={"message": "none kept"})
    assert r.status_code == 409 and "nothing to commit" in message(r)

    # the same group, declared as stored, in a fresh upload: every file linked and committed
    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    puts = s3.api.ok("ownr", "POST", f"/uploads/{upload}/presign", json={"paths": paths})["files"]
    for put, f in zip(puts, files, strict=True):
        data = os.urandom(f["size"])
        f.update(physical_address=put["physical_address"], sha256=hashlib.sha256(data).hexdigest(),
                 etag=httpx.put(put["url"], content=data).headers["etag"].strip('"'))
    linked = s3.api.ok("ownr", "POST", f"/uploads/{upload}/link", json={"files": files})["files"]
    assert [(o["path"], o["size"], o["sha256"]) for o in linked] == \
        [(f["path"], f["size"], f["sha256"]) for f in files]
    s3.api.ok("ownr", "POST", f"/uploads/{upload}/commit", json={"message": "four"})
    listed = {o["path"]: o for o in s3.api.ok("ownr", "GET", f"/assets/{asset}/objects")}
    assert {p: (o["size"], o["sha256"]) for p, o in listed.items()} == \
        {f["path"]: (f["size"], f["sha256"]) for f in files}


@pytest.mark.parametrize("shape", ["small", "streamed", "ranges"])
def test_a_corrupted_object_fails_the_sha256_check_and_stays_out_of_the_cache(
        s3: S3World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    """One byte changed behind lakeFS's back, whichever way the file comes: checked in memory
    (small), streamed to a temporary file (streamed), or as parallel ranges hashed in order as
    they arrive (ranges: the byte is in the third of four ranges, so every range arrives whole
    and at its size, and only the running SHA-256 over all of them catches it)."""
    from assethub import client as client_module

    size = {"small": 70_000, "streamed": 5 * MiB + 11, "ranges": 3 * MiB + 7}[shape]
    if shape == "ranges":
        monkeypatch.setattr(client_module, "_RANGED_FROM", MiB)
        monkeypatch.setattr(client_module, "_RANGE_PART", MiB)
    asset = s3.dataset()
    data = os.urandom(size)
    s3.client("ownr", tmp_path).upload(f"{asset}:main", _write(tmp_path / "f.bin", data), message="f")
    url = _presigned(s3, "ownr", asset).json()["objects"][0]["url"]
    bucket, key = _bucket_key(url)
    at = 2 * MiB + 5 if shape == "ranges" else size // 2
    damaged = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    s3.store.client().put_object(Bucket=bucket, Key=key, Body=damaged)  # behind lakeFS's back
    client = s3.client("viewer", tmp_path)
    with pytest.raises(errors.ChecksumMismatchError, match=r"f\.bin failed verification"):
        client.download(f"{asset}:main", tmp_path / "out")
    assert not any(p.is_file() for p in (client.cache.root / "blobs").rglob("*"))
    assert not any(p.is_file() for p in (client.cache.root / "tmp").rglob("*"))
    assert not (tmp_path / "out" / "f.bin").exists()
    # put right, the same client downloads it: the failure left nothing that gets in the way
    s3.store.client().put_object(Bucket=bucket, Key=key, Body=data)
    assert client.download(f"{asset}:main", tmp_path / "out").bytes_transferred == size
    assert (tmp_path / "out" / "f.bin").read_bytes() == data


def test_an_aborted_upload_leaves_nothing(s3: S3World, tmp_path: Path) -> None:
    asset = s3.dataset()
    client = s3.client("ownr", tmp_path)
    first = client.upload(f"{asset}:main", _write(tmp_path / "keep.txt", b"keep"), message="keep")
    upload = s3.api.ok("ownr", "POST", f"/assets/{asset}/uploads", json={"branch": "main"})["upload_id"]
    put = s3.api.ok("ownr", "POST", f"/uploads/{upload}/presign", json={"paths": ["new.txt"]})["files"][0]
    etag = httpx.put(put["url"], content=b"new").headers["etag"]
    s3.api.ok("ownr", "POST", f"/uploads/{upload}/link", json={"files": [{
        "path": "new.txt", "physical_address": put["physical_address"], "size": 3,
        "sha256": hashlib.sha256(b"new").hexdigest(), "etag": etag}]})
    s3.api.ok("ownr", "DELETE", f"/uploads/{upload}")
    assert client.resolve(f"{asset}:main") == first.id
    assert [o.path for o in client.list_objects(f"{asset}:main")] == ["keep.txt"]
    assert s3.server.hub.storage.transaction_branches(asset) == []
    r = s3.api.call("ownr", "POST", f"/uploads/{upload}/presign", json={"paths": ["x.txt"]})
    assert r.status_code == 404


# -- the local blockstore keeps the proxied path ----------------------------------------------
def test_the_local_blockstore_keeps_the_proxied_path(hub_server: Any, tmp_path: Path) -> None:
    api = Api(hub_server.url, hub_server.admin_token)
    api.add_user("ownr")
    folder = f"{api.names['ownr']}/dataset/{fresh('f')}"
    api.ok("ownr", "POST", "/folders", json={"path": folder})
    asset = f"{folder}/d"
    api.ok("ownr", "POST", "/assets", json={"path": asset})
    client = Client(hub_server.url, api.tokens["ownr"], cache_dir=tmp_path / "cache")
    meter = hub_server.hub.versions.proxied_bytes
    before = meter.snapshot()
    client.upload(f"{asset}:main", _write(tmp_path / "f.bin", b"x" * 5000), message="proxied")
    client.download(f"{asset}:main", tmp_path / "out")
    after = meter.snapshot()
    assert after["up"] - before["up"] >= 5000 and after["down"] - before["down"] >= 5000
    r = api.call("ownr", "GET", f"/assets/{asset}/presigned")
    assert r.status_code == 400 and "does not presign" in message(r)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
