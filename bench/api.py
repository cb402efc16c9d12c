"""How much the Asset Hub server adds on top of lakeFS, measured in one run.

    uv run python bench/api.py [--quick]

Latency (median of N calls) of commit, list, branch create and small-file download through
the server (the Python SDK over HTTP, with authentication, permission checks and the audit
log) against the same calls made straight to lakeFS with its own SDK; then large-file
streaming throughput through the server against the storage layer alone. Targets: latency
ratio <= 1.3x, streaming >= 0.9x.

The server runs as its own process (as in production), on a private catalog, against the
embedded lakeFS (started if needed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import lakefs_sdk
from lakefs_sdk.client import LakeFSClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assethub.client import Client
from assethub.storage import AddFile, Storage
from infra import lakefs

MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(lake: lakefs.LakeFSInstance, home: Path,
                 timeout: float = 300) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "ASSETHUB_HOME": str(home), "ASSETHUB_PORT": str(port),
           "ASSETHUB_LAKEFS_ENDPOINT": lake.endpoint,
           "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lake.access_key_id,
           "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lake.secret_access_key}
    proc = subprocess.Popen([sys.executable, "-m", "assethub.server"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            status = proc.poll()
            if status is None:  # not left running when the bench gives up on it
                proc.kill()
                proc.wait(timeout=30)
            raise SystemExit(f"the Asset Hub server did not start in {timeout:.0f} s "
                             f"(exit status {status})")
        time.sleep(0.1)
    token = (home / "server" / "admin-token").read_text().strip()
    return proc, url, token


def median_ms(fn: Callable[[int], object], n: int, warmup: int = 3) -> float:
    for i in range(warmup):
        fn(-1 - i)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, a 64 MiB file")
    args = parser.parse_args()
    n = 10 if args.quick else 40
    big_mb = 64 if args.quick else 512

    lake = lakefs.start()
    work = Path(tempfile.mkdtemp(prefix="assethub-bench-api-"))
    proc, url, token = start_server(lake, work / "home")
    api = LakeFSClient(lakefs_sdk.Configuration(host=f"{lake.endpoint}/api/v1",
                                                username=lake.access_key_id,
                                                password=lake.secret_access_key))
    client = Client(url, token, cache_dir=work / "client-cache-0")
    suffix = uuid.uuid4().hex[:6]
    asset = f"admin/model/bench/api-{suffix}"
    raw_repo = f"bench-api-{suffix}"
    try:
        client.create_folder("admin/model/bench")
        client.create_asset(asset)
        api.repositories_api.create_repository(lakefs_sdk.RepositoryCreation(
            name=raw_repo, storage_namespace=f"local://bench/{raw_repo}", default_branch="main"))
        small = work / "small.bin"
        small.write_bytes(os.urandom(4096))
        listing = work / "listing"
        for i in range(100):
            (listing / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
            (listing / f"d{i % 10}" / f"f{i}.bin").write_bytes(os.urandom(1024))
        client.upload(f"{asset}:main", listing, message="100 files")
        for p in sorted(listing.rglob("*.bin")):
            api.objects_api.upload_object(raw_repo, "main", p.relative_to(listing).as_posix(),
                                          content=p.read_bytes())
        api.commits_api.commit(raw_repo, "main", lakefs_sdk.CommitCreation(message="100 files"))
        http = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})

        rows: list[tuple[str, float, float]] = []

        def hub_commit(i: int) -> None:
            small.write_bytes(os.urandom(4096))
            client.create_commit(f"{asset}:main", [AddFile(small, f"c/{i}.bin")], message=f"c{i}")

        def raw_commit(i: int) -> None:
            api.objects_api.upload_object(raw_repo, "main", f"c/{i}.bin", content=os.urandom(4096))
            api.commits_api.commit(raw_repo, "main", lakefs_sdk.CommitCreation(message=f"c{i}"))

        def raw_atomic_commit(i: int) -> None:
            # lakeFS's own all-or-nothing write (what lakefs.Branch.transact does): the same
            # guarantee Asset Hub gives every commit
            tx = f"tx-{uuid.uuid4().hex[:8]}"
            api.branches_api.create_branch(raw_repo, lakefs_sdk.BranchCreation(name=tx, source="main"))
            api.objects_api.upload_object(raw_repo, tx, f"t/{i}.bin", content=os.urandom(4096))
            api.commits_api.commit(raw_repo, tx, lakefs_sdk.CommitCreation(message=f"t{i}"))
            api.refs_api.merge_into_branch(raw_repo, tx, "main")
            api.branches_api.delete_branch(raw_repo, tx)

        hub_commit_ms = median_ms(hub_commit, n)
        rows.append(("commit one 4 KiB file", hub_commit_ms, median_ms(raw_commit, n)))
        rows.append(("  vs lakeFS atomic commit", hub_commit_ms, median_ms(raw_atomic_commit, n)))
        rows.append(("list 100 objects",
                     median_ms(lambda i: client.list_objects(f"{asset}:main", prefix="d"), n),
                     median_ms(lambda i: api.objects_api.list_objects(raw_repo, "main", prefix="d",
                                                                       amount=1000), n)))
        rows.append(("create a branch",
                     median_ms(lambda i: client.create_branch(asset, f"b{i + 10}x"), n),
                     median_ms(lambda i: api.branches_api.create_branch(
                         raw_repo, lakefs_sdk.BranchCreation(name=f"b{i + 10}x", source="main")),
                         n)))
        rows.append(("download one 1 KiB file",
                     median_ms(lambda i: http.get(f"/assets/{asset}/files/d0/f0.bin").content, n),
                     median_ms(lambda i: api.objects_api.get_object(raw_repo, "main", "d0/f0.bin"),
                               n)))

        print(f"\nlatency, median of {n} calls (lakeFS {lake.endpoint}, server {url})")
        print(f"{'operation':28} {'server ms':>10} {'lakeFS ms':>10} {'ratio':>7}")
        for name, hub_ms, raw_ms in rows:
            print(f"{name:28} {hub_ms:10.2f} {raw_ms:10.2f} {hub_ms / raw_ms:6.2f}x")

        # -- large-file streaming through the server vs the storage layer alone ------------------
        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(big_mb):
                f.write(os.urandom(MB))
        storage = Storage(lake.endpoint, lake.access_key_id, lake.secret_access_key,
                          cache_dir=work / "storage-cache")
        direct = f"admin/model/bench/direct-{suffix}"
        storage.create_asset(direct)

        def timed(fn: Callable[[], object]) -> float:
            t0 = time.perf_counter()
            fn()
            return big_mb / (time.perf_counter() - t0)

        up_hub = timed(lambda: client.upload(f"{asset}:main", big, path="big.bin", message="big"))
        up_raw = timed(lambda: storage.upload(f"{direct}:main", big, path="big.bin", message="big"))
        hub_dl = Client(url, token, cache_dir=work / "client-cache")
        down_hub = timed(lambda: hub_dl.download(f"{asset}:main", work / "hub-dl", prefix="big.bin"))
        down_raw = timed(lambda: storage.download(f"{direct}:main", work / "raw-dl",
                                                  prefix="big.bin"))
        assert (work / "hub-dl" / "big.bin").stat().st_size == big_mb * MB
        assert (work / "raw-dl" / "big.bin").stat().st_size == big_mb * MB
        print(f"\nstreaming one {big_mb} MiB file, MB/s")
        print(f"{'direction':28} {'server':>10} {'storage':>10} {'ratio':>7}")
        print(f"{'upload':28} {up_hub:10.1f} {up_raw:10.1f} {up_hub / up_raw:6.2f}x")
        print(f"{'download':28} {down_hub:10.1f} {down_raw:10.1f} {down_hub / down_raw:6.2f}x")
        worst = max(h / r for _, h, r in rows)
        print(f"\nRESULT latency worst ratio {worst:.2f}x (target <= 1.3x); streaming "
              f"upload {up_hub / up_raw:.2f}x, download {down_hub / down_raw:.2f}x (target >= 0.9x)")
        storage.delete_asset(direct)
    finally:
        with __import__("contextlib").suppress(Exception):
            client.delete_asset(asset)
            api.repositories_api.delete_repository(raw_repo, force=True)
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
