"""Atomicity and isolation of writes, checked against the real lakeFS server.

A write that dies (SIGKILL) or fails half-way must leave its target branch exactly as it was;
``main`` takes no direct writes; concurrent writers lose nothing and overwrite nothing
silently; and a client we did not write (lakectl) sees what Asset Hub wrote, and vice versa.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lakefs_sdk import Configuration
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import ApiException

from assethub.errors import ConcurrentUpdateError, MergeConflictError, TransferError
from assethub.storage import AddFile, Storage, gateway
from tests._wait import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def lakefs_api(server: Any) -> LakeFSClient:
    """A plain lakeFS client, to look at the server without going through Asset Hub."""
    return LakeFSClient(Configuration(host=f"{server.endpoint}/api/v1",
                                      username=server.access_key_id,
                                      password=server.secret_access_key))


def state(storage: Storage, ref: str) -> tuple[str, list[tuple[str, str]]]:
    """(head commit id, [(path, checksum)]) of a branch."""
    return storage.resolve(ref), [(o.path, o.checksum) for o in storage.list_objects(ref)]


def make_tree(root: Path, files: int, size: int) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"part-{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * (size // 4))
    return root


def run_threads(n: int, work: Any) -> list[Any]:
    """Run ``work(i)`` in n threads released together; each result or exception, by index."""
    barrier, results = threading.Barrier(n), [None] * n

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted by the caller
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


# -- 1. interrupted and failed uploads ------------------------------------------------------
UPLOADER = textwrap.dedent("""
    import sys
    from assethub.storage import Storage
    storage = Storage.from_env(max_workers=2, cache_dir=sys.argv[3])
    storage.upload(sys.argv[1], sys.argv[2], path="data", message="must never land")
    print("upload finished", flush=True)
""")


@pytest.mark.parametrize("kind", ["model_path", "dataset_path"])
def test_killed_upload_leaves_main_untouched(storage, lakefs_server, request, tmp_path, kind):
    path = request.getfixturevalue(kind)
    (tmp_path / "README.md").write_text("v1\n")
    storage.upload(f"{path}:main", tmp_path / "README.md", message="first version")
    before = state(storage, f"{path}:main")
    n_commits = len(list(storage.log(f"{path}:main")))
    src = make_tree(tmp_path / "big", files=400, size=64 * 1024)
    script = tmp_path / "uploader.py"
    script.write_text(UPLOADER)
    env = os.environ | {
        "ASSETHUB_LAKEFS_ENDPOINT": lakefs_server.endpoint,
        "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lakefs_server.access_key_id,
        "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lakefs_server.secret_access_key,
    }
    out = tmp_path / "uploader.out"
    repo, api = storage.repository(path), lakefs_api(lakefs_server)
    with open(out, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(script), f"{path}:main", str(src),
                                 str(tmp_path / "child-cache")],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    def staged_files() -> int:
        assert proc.poll() is None, f"uploader exited early:\n{out.read_text()}"
        txs = storage.transaction_branches(path)
        staged = len(api.objects_api.list_objects(repo, txs[0], amount=1000).results) if txs else 0
        return staged if staged >= 20 else 0

    try:  # wait until files are really arriving on the temporary branch
        staged = wait_for("the upload to get under way", staged_files, timeout=120, every=0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert "upload finished" not in out.read_text()
    assert 0 < staged < 400
    [tx] = storage.transaction_branches(path)  # the writer died before cleaning up

    assert state(storage, f"{path}:main") == before
    assert len(list(storage.log(f"{path}:main"))) == n_commits
    assert storage.list_objects(f"{path}:main", prefix="data/") == []
    assert storage.read_bytes(f"{path}:main", "README.md") == b"v1\n"

    assert storage.cleanup_transactions(path) == []  # a young branch may be a live writer's
    assert storage.cleanup_transactions(path, older_than=0) == [tx]
    assert storage.transaction_branches(path) == []
    storage.upload(f"{path}:main", src / "part-0001.bin", path="data/one.bin", message="again")
    assert [o.path for o in storage.list_objects(f"{path}:main")] == ["README.md", "data/one.bin"]


@pytest.mark.parametrize("failure", ["server-error", "file-vanishes"])
def test_failed_upload_leaves_no_trace(storage, model_path, tmp_path, monkeypatch, failure):
    (tmp_path / "README.md").write_text("v1\n")
    storage.upload(f"{model_path}:main", tmp_path / "README.md", message="first version")
    before = state(storage, f"{model_path}:main")
    src = make_tree(tmp_path / "tree", files=60, size=4096)
    (src / "README.md").write_text("v2\n")
    real_put, calls, lock = gateway.S3Gateway.put_file, [0], threading.Lock()

    def put_file(self, repo, key, local, progress):  # type: ignore[no-untyped-def]
        with lock:
            calls[0] += 1
            nth = calls[0]
        if nth == 10:
            if failure == "server-error":
                raise TransferError("connection reset by peer", path=str(local))
            local.unlink()  # deleted by someone else after the upload started
        return real_put(self, repo, key, local, progress)

    monkeypatch.setattr(gateway.S3Gateway, "put_file", put_file)
    with pytest.raises((TransferError, FileNotFoundError)):
        storage.upload(f"{model_path}:main", src, message="half an upload")
    assert calls[0] >= 10
    assert state(storage, f"{model_path}:main") == before
    assert storage.read_bytes(f"{model_path}:main", "README.md") == b"v1\n"
    assert storage.transaction_branches(model_path) == []


# -- 2. main is protected ----------------------------------------------------------------------
def test_main_refuses_direct_writes(storage, lakefs_server, model_path, tmp_path):
    repo, before = storage.repository(model_path), state(storage, f"{model_path}:main")
    s3 = boto3.client(
        "s3", endpoint_url=lakefs_server.endpoint, region_name="us-east-1",
        aws_access_key_id=lakefs_server.access_key_id,
        aws_secret_access_key=lakefs_server.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      request_checksum_calculation="when_required"),
    )
    with pytest.raises(ClientError):
        s3.put_object(Bucket=repo, Key="main/x.txt", Body=b"sneaked in")
    with pytest.raises(ApiException) as refused:
        lakefs_api(lakefs_server).objects_api.upload_object(repo, "main", "y.txt", content=b"no")
    assert refused.value.status == 403
    assert state(storage, f"{model_path}:main") == before
    assert not lakefs_api(lakefs_server).branches_api.diff_branch(repo, "main").results

    storage.create_branch(model_path, "scratch")  # the same client may write elsewhere
    s3.put_object(Bucket=repo, Key="scratch/x.txt", Body=b"fine here")

    (tmp_path / "x.txt").write_text("through Asset Hub\n")
    commit = storage.upload(f"{model_path}:main", tmp_path / "x.txt", message="add x")
    assert storage.resolve(f"{model_path}:main") == commit.id
    assert storage.read_bytes(f"{model_path}:main", "x.txt") == b"through Asset Hub\n"


# -- 3. concurrent writers -------------------------------------------------------------------
def test_concurrent_uploads_to_one_branch_lose_nothing(storage, model_path, tmp_path):
    n, ref = 8, f"{model_path}:main"
    head = storage.resolve(ref)
    for i in range(n):
        (tmp_path / f"f{i}.txt").write_text(f"writer {i}\n")
    results = run_threads(n, lambda i: storage.upload(ref, tmp_path / f"f{i}.txt",
                                                      message=f"writer {i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    files = {o.path for o in storage.list_objects(ref)}
    assert files == {f"f{i}.txt" for i in range(n)}
    for i in range(n):
        assert storage.read_bytes(ref, f"f{i}.txt") == f"writer {i}\n".encode()
    *new, base = storage.log(ref, limit=n + 1)
    assert base.id == head
    assert {c.id for c in new} == {r.id for r in results}
    assert sorted(c.message for c in new) == sorted(f"writer {i}" for i in range(n))
    assert storage.transaction_branches(model_path) == []


def test_concurrent_writes_to_one_path_never_overwrite_silently(storage, model_path, tmp_path):
    n, ref = 4, f"{model_path}:main"
    head = storage.resolve(ref)
    for i in range(n):
        (tmp_path / f"w{i}").write_bytes(f"weights of writer {i}".encode())
    results = run_threads(n, lambda i: storage.upload(ref, tmp_path / f"w{i}",
                                                      path="weights.bin", message=f"writer {i}"))
    won = {i: r for i, r in enumerate(results) if not isinstance(r, Exception)}
    lost = [r for r in results if isinstance(r, Exception)]
    assert won, results
    assert all(isinstance(e, MergeConflictError) and e.paths == ["weights.bin"] for e in lost), lost
    log = [c.id for c in storage.log(ref)]
    assert log[len(won)] == head and set(log[:len(won)]) == {c.id for c in won.values()}
    last = next(i for i, c in won.items() if c.id == log[0])
    assert storage.read_bytes(ref, "weights.bin") == f"weights of writer {last}".encode()
    assert storage.transaction_branches(model_path) == []


def test_commit_on_a_moved_branch_is_refused(storage, model_path, tmp_path):
    ref = f"{model_path}:main"
    old = storage.resolve(ref)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    moved = storage.upload(ref, tmp_path / "a.txt", message="someone else")
    with pytest.raises(ConcurrentUpdateError) as refused:
        storage.commit(ref, [AddFile(tmp_path / "b.txt", "b.txt")], message="stale",
                       parent_commit=old)
    assert (refused.value.expected, refused.value.actual) == (old, moved.id)
    assert storage.resolve(ref) == moved.id
    assert [o.path for o in storage.list_objects(ref)] == ["a.txt"]
    assert storage.transaction_branches(model_path) == []
    ok = storage.commit(ref, [AddFile(tmp_path / "b.txt", "b.txt")], message="fresh",
                        parent_commit=moved.id)
    assert ok.parents[0] == moved.id


@pytest.mark.parametrize("moment", ["during-upload", "just-before-merge"])
def test_branch_moving_during_the_commit_is_refused(storage, lakefs_server, model_path,
                                                    tmp_path, monkeypatch, moment):
    ref, other = f"{model_path}:main", Storage(lakefs_server.endpoint,
                                               lakefs_server.access_key_id,
                                               lakefs_server.secret_access_key,
                                               cache_dir=tmp_path / "other-cache")
    old = storage.resolve(ref)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    real_put, real_merge = gateway.S3Gateway.put_file, Storage._merge

    def put_file(self, repo, key, local, progress):  # type: ignore[no-untyped-def]
        if local.name == "b.txt":  # another writer commits while our file is on its way
            monkeypatch.setattr(gateway.S3Gateway, "put_file", real_put)
            other.upload(ref, tmp_path / "a.txt", message="someone else")
        return real_put(self, repo, key, local, progress)

    def merge(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(Storage, "_merge", real_merge)  # after the last check, before ours
        other.upload(ref, tmp_path / "a.txt", message="someone else")
        return real_merge(self, *args, **kwargs)

    if moment == "during-upload":
        monkeypatch.setattr(gateway.S3Gateway, "put_file", put_file)
    else:
        monkeypatch.setattr(Storage, "_merge", merge)
    with pytest.raises(ConcurrentUpdateError):
        storage.commit(ref, [AddFile(tmp_path / "b.txt", "b.txt")], message="stale",
                       parent_commit=old)
    # the other writer's change is kept, ours is not in the branch
    assert [o.path for o in storage.list_objects(ref)] == ["a.txt"]
    assert storage.transaction_branches(model_path) == []


# -- 4. lakectl agrees -----------------------------------------------------------------------
def lakectl(server: Any, *args: str) -> str:
    done = subprocess.run([str(server.lakectl), "--no-color", *args], capture_output=True,
                          text=True, timeout=60, env=os.environ | server.lakectl_env())
    assert done.returncode == 0, f"lakectl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def test_lakectl_sees_what_storage_wrote(storage, lakefs_server, model_path, tmp_path):
    repo = storage.repository(model_path)
    src = tmp_path / "model"
    (src / "weights").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 3}\n')
    (src / "weights" / "model.bin").write_bytes(b"\x00\x01" * 1000)
    commit = storage.upload(f"{model_path}:main", src, message="Train run 42",
                            metadata={"framework": "torch", "epochs": "3"})

    log = lakectl(lakefs_server, "log", "--amount", "1", f"lakefs://{repo}/main")
    assert commit.id in log and "Train run 42" in log
    for key, value in (("framework", "torch"), ("epochs", "3")):
        assert any(line.split() == [key, "=", value] for line in log.splitlines()), log
    listing = lakectl(lakefs_server, "fs", "ls", "--recursive", f"lakefs://{repo}/main/")
    assert sorted(line.split()[-1] for line in listing.splitlines() if line.strip()) == [
        "config.json", "weights/model.bin"]
    cat = lakectl(lakefs_server, "fs", "cat", f"lakefs://{repo}/main/config.json")
    assert cat == '{"layers": 3}\n'

    storage.create_branch(model_path, "experiment")
    tag = storage.create_tag(model_path, "v1.0")
    branches = {line.split()[0]: line.split()[-1]
                for line in lakectl(lakefs_server, "branch", "list", f"lakefs://{repo}")
                .splitlines() if line.strip()}
    assert branches == {"experiment": commit.id, "main": commit.id}
    tags = lakectl(lakefs_server, "tag", "list", f"lakefs://{repo}")
    assert any(line.split()[:2] == ["v1.0", tag.commit_id] for line in tags.splitlines()), tags
