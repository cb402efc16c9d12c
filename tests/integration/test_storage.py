"""assethub.storage against a real lakeFS server: every operation and its refusals."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from assethub.errors import (
    AlreadyExistsError,
    AssetNotFoundError,
    InvalidReferenceError,
    MergeConflictError,
    NotAllowedError,
    NothingToCommitError,
    ObjectNotFoundError,
    RefNotFoundError,
)
from assethub.refs import AssetRef
from assethub.storage import AddFile, DeleteFile, Storage
from assethub.wire import BranchInfo

pytestmark = pytest.mark.integration


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- assets ----------------------------------------------------------------------------------
def test_create_list_and_delete_assets(storage: Storage, unique: str) -> None:
    path = f"bob/dataset/texts/corpus-{unique}"
    info = storage.create_asset(path)
    assert str(info.path) == path
    assert info.repository.startswith("ah-")
    assert storage.asset_exists(path)
    assert path in {str(a.path) for a in storage.list_assets()}
    with pytest.raises(AlreadyExistsError):
        storage.create_asset(path)
    assert storage.create_asset(path, exist_ok=True).repository == info.repository
    storage.delete_asset(path)
    assert not storage.asset_exists(path)
    with pytest.raises(AssetNotFoundError):
        storage.list_objects(f"{path}:main")
    # the same path can be created again after deletion, starting empty
    storage.create_asset(path)
    assert storage.list_objects(f"{path}:main") == []


@pytest.mark.parametrize(
    "name",
    ["数字分类-模型", "Ünïcode name with spaces", "x" * 128, "a.b_c-d"],
)
def test_unicode_and_long_names_get_their_own_repository(
    storage: Storage, unique: str, name: str, tmp_path: Path
) -> None:
    path = f"carol/model/文件夹-{unique}/{name}"
    info = storage.create_asset(path)
    assert 3 <= len(info.repository) <= 63
    assert info.repository == info.repository.lower()
    tree(tmp_path / "m", {"w.bin": b"weights"})
    storage.upload(f"{path}:main", tmp_path / "m", message="init")
    assert [o.path for o in storage.list_objects(f"{path}:main")] == ["w.bin"]
    # a fresh client finds the asset again from lakeFS alone
    again = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret, cache_dir=tmp_path / "c2")
    assert again.repository(path) == info.repository


def test_a_renamed_asset_is_found_by_its_new_path_without_a_catalog(
    storage: Storage, unique: str, tmp_path: Path
) -> None:
    """Standalone, the repository's metadata is the map: a renamed asset (whose repository is
    named after its old path) is found by its new path, by a fresh client too."""
    old, new = f"dave/model/f-{unique}/net", f"dave/model/f-{unique}/net2"
    repo = storage.create_asset(old).repository
    tree(tmp_path / "m", {"w.bin": b"w"})
    commit = storage.upload(f"{old}:main", tmp_path / "m", message="init").id
    storage.rename_asset(old, new)
    again = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret,
                    cache_dir=tmp_path / "c2")
    for s in (storage, again):
        assert s.repository(new) == repo and s.resolve(f"{new}:main") == commit
        assert not s.asset_exists(old)
    with pytest.raises(NotAllowedError):
        storage.rename_asset(new, f"dave/dataset/f-{unique}/net2")


def test_unknown_asset_is_a_clear_error(storage: Storage, unique: str) -> None:
    with pytest.raises(AssetNotFoundError, match=f"nobody/model/f/none-{unique}"):
        storage.resolve(f"nobody/model/f/none-{unique}:main")


# -- upload, download, list, stat ------------------------------------------------------------
def test_upload_directory_and_download_whole_or_prefix(
    storage: Storage, dataset_path: str, tmp_path: Path
) -> None:
    files = {
        "train/0/a.png": os.urandom(3000),
        "train/1/b.png": os.urandom(5000),
        "test/0/c.png": os.urandom(700),
        "README.md": b"# digits\n",
    }
    src = tree(tmp_path / "src", files)
    commit = storage.upload(f"{dataset_path}:main", src, message="add digits",
                            metadata={"source": "sklearn"})
    assert commit.message == "add digits"
    assert commit.metadata["source"] == "sklearn"
    assert storage.resolve(f"{dataset_path}:main") == commit.id

    listed = {o.path: o for o in storage.list_objects(f"{dataset_path}:main")}
    assert set(listed) == set(files)
    assert listed["train/1/b.png"].size == 5000
    assert listed["train/1/b.png"].sha256  # every upload records its content hash
    assert [o.path for o in storage.list_objects(f"{dataset_path}:main", prefix="train/")] == [
        "train/0/a.png", "train/1/b.png"]
    assert storage.stat(f"{dataset_path}:main", "README.md").size == len(files["README.md"])
    assert storage.read_bytes(f"{dataset_path}:{commit.id}", "README.md") == files["README.md"]

    whole = tmp_path / "whole"
    result = storage.download(f"{dataset_path}:main", whole)
    assert read_tree(whole) == files
    assert result.commit_id == commit.id and result.files == 4

    part = tmp_path / "part"
    storage.download(f"{dataset_path}:main", part, prefix="train")
    assert read_tree(part) == {"0/a.png": files["train/0/a.png"], "1/b.png": files["train/1/b.png"]}

    single = tmp_path / "single"
    storage.download(f"{dataset_path}:main", single, prefix="test/0/c.png")
    assert read_tree(single) == {"c.png": files["test/0/c.png"]}


def test_upload_single_file_to_a_path(storage: Storage, model_path: str, tmp_path: Path) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"\x00" * 1024)
    storage.upload(f"{model_path}:main", f, path="weights/model.pt", message="weights")
    assert [o.path for o in storage.list_objects(f"{model_path}:main")] == ["weights/model.pt"]


def test_missing_things_are_reported(storage: Storage, model_path: str, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError):
        storage.stat(f"{model_path}:main", "nope.txt")
    with pytest.raises(RefNotFoundError):
        storage.resolve(f"{model_path}:no-such-branch")
    with pytest.raises(RefNotFoundError):
        storage.download(f"{model_path}:v9", tmp_path / "d")
    with pytest.raises(ObjectNotFoundError):
        storage.download(f"{model_path}:main", tmp_path / "d", prefix="absent/")
    with pytest.raises(FileNotFoundError):
        storage.upload(f"{model_path}:main", tmp_path / "absent", message="x")
    with pytest.raises(InvalidReferenceError):
        storage.upload(f"{model_path}:main", tmp_path, path="../escape", message="x")


def test_commit_operations_add_and_delete(storage: Storage, model_path: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a")
    b.write_text("b")
    storage.commit(f"{model_path}:main", [AddFile(a, "a.txt"), AddFile(b, "b.txt")], message="two")
    before = storage.resolve(f"{model_path}:main")
    c = storage.commit(f"{model_path}:main", [DeleteFile("a.txt")], message="drop a")
    assert c.parents == (before,)
    assert [o.path for o in storage.list_objects(f"{model_path}:main")] == ["b.txt"]
    # the old version still has it
    assert storage.read_bytes(f"{model_path}:{before}", "a.txt") == b"a"


def test_nothing_to_commit_and_empty_message_are_refused(
    storage: Storage, model_path: str, tmp_path: Path
) -> None:
    f = tmp_path / "same.txt"
    f.write_text("same")
    storage.upload(f"{model_path}:main", f, message="first")
    head = storage.resolve(f"{model_path}:main")
    with pytest.raises(NothingToCommitError):
        storage.upload(f"{model_path}:main", f, message="again, identical")
    with pytest.raises(NothingToCommitError):
        storage.commit(f"{model_path}:main", [], message="empty")
    with pytest.raises(InvalidReferenceError, match="message"):
        storage.upload(f"{model_path}:main", f, message="  ")
    assert storage.resolve(f"{model_path}:main") == head
    assert storage.transaction_branches(model_path) == []


# -- history: log, diff ----------------------------------------------------------------------
def test_log_and_diff(storage: Storage, model_path: str, tmp_path: Path) -> None:
    src = tree(tmp_path / "v1", {"a.txt": b"1", "b.txt": b"1"})
    c1 = storage.upload(f"{model_path}:main", src, message="v1")
    (src / "a.txt").write_bytes(b"2")
    (src / "c.txt").write_bytes(b"new")
    storage.commit(
        f"{model_path}:main",
        [AddFile(src / "a.txt", "a.txt"), AddFile(src / "c.txt", "c.txt"), DeleteFile("b.txt")],
        message="v2",
    )
    log = list(storage.log(f"{model_path}:main"))
    assert [c.message for c in log[:2]] == ["v2", "v1"]
    assert [c.message for c in storage.log(f"{model_path}:main", limit=1)] == ["v2"]
    assert [c.message for c in storage.log(f"{model_path}:main", path="c.txt")] == ["v2"]
    changes = {d.path: d.change for d in storage.diff(f"{model_path}:{c1.id}", f"{model_path}:main")}
    assert changes == {"a.txt": "changed", "b.txt": "removed", "c.txt": "added"}
    reverse = {d.path: d.change for d in storage.diff(f"{model_path}:main", f"{model_path}:{c1.id}")}
    assert reverse == {"a.txt": "changed", "b.txt": "added", "c.txt": "removed"}


# -- branches, tags, merge -------------------------------------------------------------------
def test_model_branches(storage: Storage, model_path: str, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"base")
    base = storage.upload(f"{model_path}:main", f, message="base")
    assert storage.create_branch(model_path, "exp-1") == BranchInfo("exp-1", base.id)
    storage.create_branch(model_path, "exp-2", source="exp-1")
    assert {b.name for b in storage.list_branches(model_path)} == {"main", "exp-1", "exp-2"}
    with pytest.raises(AlreadyExistsError):
        storage.create_branch(model_path, "exp-1")
    with pytest.raises(InvalidReferenceError):
        storage.create_branch(model_path, "_tx-mine")  # reserved for transactions
    with pytest.raises(RefNotFoundError):
        storage.create_branch(model_path, "exp-3", source="missing")
    storage.delete_branch(model_path, "exp-2")
    assert {b.name for b in storage.list_branches(model_path)} == {"main", "exp-1"}
    with pytest.raises(NotAllowedError):
        storage.delete_branch(model_path, "main")


def test_datasets_have_only_main(storage: Storage, dataset_path: str, tmp_path: Path) -> None:
    with pytest.raises(NotAllowedError, match="only the 'main' branch"):
        storage.create_branch(dataset_path, "dev")
    f = tmp_path / "x"
    f.write_text("x")
    with pytest.raises(NotAllowedError):
        storage.upload(f"{dataset_path}:dev", f, message="x")
    with pytest.raises(NotAllowedError):
        storage.merge(dataset_path, "main", into="other")
    assert [b.name for b in storage.list_branches(dataset_path)] == ["main"]


def test_tags_are_immutable(storage: Storage, dataset_path: str, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,b\n")
    c1 = storage.upload(f"{dataset_path}:main", f, message="one")
    storage.create_tag(dataset_path, "v1")
    f.write_text("a,b\n1,2\n")
    storage.upload(f"{dataset_path}:main", f, message="two")
    with pytest.raises(AlreadyExistsError, match="immutable"):
        storage.create_tag(dataset_path, "v1")
    assert storage.resolve(f"{dataset_path}:v1") == c1.id  # still the first version
    assert storage.read_bytes(f"{dataset_path}:v1", "d.csv") == b"a,b\n"
    with pytest.raises(NotAllowedError):
        storage.delete_tag(dataset_path, "v1")
    assert [(t.name, t.commit_id) for t in storage.list_tags(dataset_path)] == [("v1", c1.id)]
    with pytest.raises(InvalidReferenceError):
        storage.create_tag(dataset_path, "bad tag")


def test_merge_branch_into_main(storage: Storage, model_path: str, tmp_path: Path) -> None:
    src = tree(tmp_path / "s", {"model.bin": b"v1", "README.md": b"card"})
    storage.upload(f"{model_path}:main", src, message="v1")
    storage.create_branch(model_path, "finetune")
    (src / "model.bin").write_bytes(b"v2")
    storage.upload(f"{model_path}:finetune", src / "model.bin", path="model.bin", message="tuned")
    assert storage.read_bytes(f"{model_path}:main", "model.bin") == b"v1"
    merged = storage.merge(model_path, "finetune", message="ship finetune",
                           metadata={"why": "better"})
    assert merged.message == "ship finetune" and merged.metadata["why"] == "better"
    assert len(merged.parents) == 2
    assert storage.read_bytes(f"{model_path}:main", "model.bin") == b"v2"
    with pytest.raises(NothingToCommitError):
        storage.merge(model_path, "finetune")


def test_merge_conflict_names_paths_and_strategies_resolve_it(
    storage: Storage, model_path: str, tmp_path: Path
) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"base")
    storage.upload(f"{model_path}:main", f, path="shared.txt", message="base")
    storage.create_branch(model_path, "left")
    storage.create_branch(model_path, "right")
    f.write_bytes(b"left")
    storage.upload(f"{model_path}:left", f, path="shared.txt", message="left")
    f.write_bytes(b"right")
    storage.upload(f"{model_path}:right", f, path="shared.txt", message="right")
    storage.merge(model_path, "left")
    head = storage.resolve(f"{model_path}:main")
    with pytest.raises(MergeConflictError) as err:
        storage.merge(model_path, "right")
    assert err.value.paths == ["shared.txt"]
    assert "shared.txt" in str(err.value)
    assert storage.resolve(f"{model_path}:main") == head  # nothing changed
    with pytest.raises(InvalidReferenceError, match="strategy"):
        storage.merge(model_path, "right", strategy="theirs")  # type: ignore[arg-type]
    storage.merge(model_path, "right", strategy="dest-wins")
    assert storage.read_bytes(f"{model_path}:main", "shared.txt") == b"left"
    f.write_bytes(b"right again")
    storage.upload(f"{model_path}:right", f, path="shared.txt", message="right 2")
    storage.merge(model_path, "right", strategy="source-wins")
    assert storage.read_bytes(f"{model_path}:main", "shared.txt") == b"right again"


# -- the download cache ----------------------------------------------------------------------
def test_cached_download_transfers_nothing_and_new_version_only_changes(
    storage: Storage, dataset_path: str, tmp_path: Path
) -> None:
    files = {f"class{i % 3}/img{i}.png": os.urandom(2048 + i) for i in range(30)}
    src = tree(tmp_path / "src", files)
    storage.upload(f"{dataset_path}:main", src, message="v1")
    first = storage.download(f"{dataset_path}:main", tmp_path / "d1")
    assert first.bytes_transferred == first.bytes_total > 0
    again = storage.download(f"{dataset_path}:main", tmp_path / "d2")
    assert again.bytes_transferred == 0
    assert read_tree(tmp_path / "d2") == files
    same_dir = storage.download(f"{dataset_path}:main", tmp_path / "d1")
    assert same_dir.bytes_transferred == 0

    changed = "class0/img0.png"
    (src / changed).write_bytes(b"changed content")
    storage.upload(f"{dataset_path}:main", src / changed, path=changed, message="fix one image")
    newer = storage.download(f"{dataset_path}:main", tmp_path / "d1")
    assert newer.bytes_transferred == len(b"changed content")
    assert (tmp_path / "d1" / changed).read_bytes() == b"changed content"
    # the older download elsewhere is unaffected
    assert (tmp_path / "d2" / changed).read_bytes() == files[changed]


def test_corrupted_cache_blob_is_not_used(storage: Storage, model_path: str, tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(4096))
    storage.upload(f"{model_path}:main", f, message="w")
    storage.download(f"{model_path}:main", tmp_path / "d1")
    blob = next(p for p in (tmp_path / "cache" / "blobs").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_bytes(b"truncated")  # a damaged cache entry (wrong size)
    storage.download(f"{model_path}:main", tmp_path / "d2")
    assert (tmp_path / "d2" / "w.bin").read_bytes() == f.read_bytes()


def test_downloads_read_a_local_blockstore_directly_or_go_through_the_gateway(
    storage: Storage, model_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assethub.storage import gateway

    files = {f"w{i}.bin": os.urandom(1000 + i) for i in range(5)}
    storage.upload(f"{model_path}:main", tree(tmp_path / "src", files), message="w")

    def no_gateway(*args: object, **kwargs: object) -> None:
        raise AssertionError("the gateway was used although the blockstore is local")

    monkeypatch.setattr(gateway.S3Gateway, "get_to_file", no_gateway)
    storage.download(f"{model_path}:main", tmp_path / "direct")
    assert read_tree(tmp_path / "direct") == files
    monkeypatch.undo()

    # a client that may not read the blockstore (or one told not to) uses the S3 gateway
    remote = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret,
                     cache_dir=tmp_path / "c2", direct_local=False)
    result = remote.download(f"{model_path}:main", tmp_path / "gateway")
    assert read_tree(tmp_path / "gateway") == files
    assert result.bytes_transferred == sum(map(len, files.values()))


def test_a_damaged_blockstore_file_is_not_trusted(
    storage: Storage, model_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assethub.storage import gateway

    (tmp_path / "w.bin").write_bytes(b"good bytes")
    storage.upload(f"{model_path}:main", tmp_path / "w.bin", message="w")
    obj = storage._listing(storage.repository(model_path), storage.resolve(f"{model_path}:main"))[0]
    bad = gateway.RemoteObject(obj.path, obj.size, obj.checksum, "0" * 64, obj.physical)
    assert not gateway.copy_local_blockstore(bad, tmp_path / "t", None)  # hash differs
    missing = gateway.RemoteObject(obj.path, obj.size, obj.checksum, obj.sha256,
                                     "local:///nonexistent/x")
    assert not gateway.copy_local_blockstore(missing, tmp_path / "t2", None)
    assert gateway.copy_local_blockstore(obj, tmp_path / "t3", None)
    assert (tmp_path / "t3").read_bytes() == b"good bytes"


def test_a_commits_file_is_streamed_from_a_local_blockstore_as_lakefs_would(
    storage: Storage, model_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_stream at a commit reads the local blockstore's file itself (whole or a byte range)
    and answers exactly what lakeFS's read answers: status, length, range, ETag, bytes."""
    import asyncio

    from assethub.errors import RangeNotSatisfiableError

    data = os.urandom(3 * 2**20 + 17)  # more than one read chunk
    (tmp_path / "w.bin").write_bytes(data)
    storage.upload(f"{model_path}:main", tmp_path / "w.bin", message="w")
    at = f"{model_path}:{storage.resolve(f'{model_path}:main')}"
    ranges = [None, "bytes=10-19", "bytes=5-", "bytes=-7", "bytes=0-99999999",
              f"bytes={len(data) - 1}-"]

    async def read(s: Storage, ref: str, byte_range: str | None,
                   path: str = "w.bin") -> tuple[Any, ...]:
        obj = await s.get_stream(ref, path, byte_range=byte_range)
        body = b"".join([c async for c in obj.chunks])
        return obj.status, obj.length, obj.content_range, obj.etag, body

    async def through_lakefs() -> list[tuple[Any, ...]]:
        remote = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret,
                         cache_dir=tmp_path / "c2", direct_local=False)
        return [await read(remote, at, br) for br in ranges]

    expected = asyncio.run(through_lakefs())
    assert expected[1][4] == data[10:20] and expected[3][4] == data[-7:]

    async def direct() -> list[tuple[Any, ...]]:
        s = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret,
                    cache_dir=tmp_path / "c3")
        got = [await read(s, at, br) for br in ranges]
        for bad in ("bytes=99999999-", "bytes=-0"):  # outside the file: lakeFS's refusal
            with pytest.raises(RangeNotSatisfiableError):
                await read(s, at, bad)
        with pytest.raises(ObjectNotFoundError):
            await read(s, at, None, "nothing.bin")
        return got

    real = Storage._get_stream
    through: list[str | None] = []

    async def spy(self: Storage, repo: str, r: Any, path: str, byte_range: str | None) -> Any:
        through.append(byte_range)
        return await real(self, repo, r, path, byte_range)

    monkeypatch.setattr(Storage, "_get_stream", spy)
    assert asyncio.run(direct()) == expected
    # only what the blockstore cannot answer, and the missing file (stat said 404)
    assert through == ["bytes=99999999-", "bytes=-0", None]

    async def damaged_or_branch() -> list[tuple[Any, ...]]:
        s = Storage(storage.endpoint, storage.lakefs.key, storage.lakefs.secret,
                    cache_dir=tmp_path / "c4")
        obj = await s._local_object(s.repository(model_path), AssetRef.coerce(at), "w.bin")
        assert obj is not None and obj.physical.startswith("local:///")
        s._stats[next(iter(s._stats))] = dataclasses.replace(obj, size=obj.size + 1)
        return [await read(s, at, "bytes=10-19"), await read(s, f"{model_path}:main", None)]

    through.clear()
    assert asyncio.run(damaged_or_branch()) == [expected[1], expected[0]]
    assert through == ["bytes=10-19", None]  # a file not at its size, a branch: lakeFS reads
