"""How much the Asset Hub server adds on top of lakeFS, measured in one run.

    uv run python bench/api.py [--quick] [--rounds R] [--no-stream]

Latency (median of N calls, then the median over R rounds) of commit, list, branch create
and small-file download through the server (the Python SDK over HTTP, with authentication,
permission checks and the audit log) against the same calls made straight to lakeFS with its
own SDK; then large-file streaming throughput through the server against the storage layer
alone (fresh caches each round: neither side is served from a cache). Targets: latency ratio
<= 1.3x, streaming >= 0.9x. Beside the wall time, each row shows the CPU the Asset Hub server
process and the lakeFS process spent per call (from /proc): on a shared machine the wall time
swings with the load, CPU per call far less.

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
from functools import partial
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


class ServerCPU:
    """CPU seconds a process has used so far, from /proc (0 when it cannot be read); the
    lakeFS instance's process, or ``pid``'s (bench/transfer.py uses it too)."""

    def __init__(self, instance: lakefs.LakeFSInstance | None, pid: int | None = None) -> None:
        self.pid = pid
        if instance is not None:
            try:
                self.pid = int((instance.data_dir / "lakefs.pid").read_text())
            except (OSError, ValueError):
                self.pid = None

    def seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_ms(fn: Callable[[int], object], n: int, warmup: int = 3,
              cpus: tuple[ServerCPU, ...] = ()) -> tuple[float, list[float]]:
    """Median wall time of ``n`` calls in ms, and each of ``cpus``' CPU ms per call."""
    for i in range(warmup):
        fn(-1 - i)
    times = []
    before = [c.seconds() or 0.0 for c in cpus]
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    per_call = [((c.seconds() or 0.0) - b) * 1000 / n for c, b in zip(cpus, before, strict=True)]
    return statistics.median(times) * 1000, per_call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, a 64 MiB file")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every measurement; medians over the rounds")
    parser.add_argument("--no-stream", action="store_true", help="latency only")
    parser.add_argument("--calls", type=int, help="calls per operation (10 with --quick, else 40)")
    args = parser.parse_args()
    n = args.calls or (10 if args.quick else 40)
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

        hub_cpu = ServerCPU(None, proc.pid)
        lake_cpu = ServerCPU(lake)
        branches = iter(range(10, 10**9))

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

        ops: list[tuple[str, Callable[[int], object], Callable[[int], object]]] = [
            ("commit one 4 KiB file", hub_commit, raw_commit),
            ("  vs lakeFS atomic commit", hub_commit, raw_atomic_commit),
            ("list 100 objects",
             lambda i: client.list_objects(f"{asset}:main", prefix="d"),
             lambda i: api.objects_api.list_objects(raw_repo, "main", prefix="d", amount=1000)),
            ("create a branch",
             lambda i: client.create_branch(asset, f"b{next(branches)}x"),
             lambda i: api.branches_api.create_branch(
                 raw_repo, lakefs_sdk.BranchCreation(name=f"b{next(branches)}x", source="main"))),
            ("download one 1 KiB file",
             lambda i: http.get(f"/assets/{asset}/files/d0/f0.bin").content,
             lambda i: api.objects_api.get_object(raw_repo, "main", "d0/f0.bin")),
        ]
        # per operation, per round: (server ms, lakeFS ms, server CPU ms, lakeFS CPU ms under
        # the server's call, lakeFS CPU ms under its own)
        results: dict[str, list[tuple[float, float, float, float, float]]] = {o[0]: [] for o in ops}
        for rnd in range(args.rounds):
            for name, hub_fn, raw_fn in ops:
                hub_ms, (hub_c, lake_c_hub) = median_ms(hub_fn, n, cpus=(hub_cpu, lake_cpu))
                raw_ms, (lake_c_raw,) = median_ms(raw_fn, n, cpus=(lake_cpu,))
                results[name].append((hub_ms, raw_ms, hub_c, lake_c_hub, lake_c_raw))
            print(f"round {rnd + 1}: " + ", ".join(
                f"{name.strip()} {r[-1][0] / r[-1][1]:.2f}x" for name, r in results.items()),
                flush=True)

        def med(values: list[float]) -> float:
            return statistics.median(values)

        print(f"\nlatency, median of {n} calls, median of {args.rounds} round(s) "
              f"(lakeFS {lake.endpoint}, server {url})")
        print(f"{'operation':28} {'server ms':>10} {'lakeFS ms':>10} {'ratio':>7} "
              f"{'rounds':>22}  {'server CPU':>10} {'lakeFS CPU':>10} {'(own)':>6}")
        worst = 0.0
        for name, rs in results.items():
            ratios = [h / r for h, r, *_ in rs]
            worst = max(worst, med(ratios))
            print(f"{name:28} {med([x[0] for x in rs]):10.2f} {med([x[1] for x in rs]):10.2f} "
                  f"{med(ratios):6.2f}x {' '.join(f'{x:.2f}' for x in ratios):>22}  "
                  f"{med([x[2] for x in rs]):7.2f} ms {med([x[3] for x in rs]):7.2f} ms "
                  f"{med([x[4] for x in rs]):6.2f}")
        if args.no_stream:
            print(f"\nRESULT latency worst ratio {worst:.2f}x (target <= 1.3x)")
            return 0

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

        ups_hub: list[float] = []
        ups_raw: list[float] = []
        downs_hub: list[float] = []
        downs_raw: list[float] = []
        for rnd in range(args.rounds):
            # each round: fresh caches and destinations (nothing served from a cache), and the
            # two sides in turn first
            first_hub = rnd % 2 == 0
            name = f"big-{rnd}.bin"  # a new file each round: the same one again is no commit
            hub_up = partial(client.upload, f"{asset}:main", big, path=name, message="big")
            raw_up = partial(storage.upload, f"{direct}:main", big, path=name, message="big")
            hub_dl = partial(Client(url, token, cache_dir=work / f"client-cache-{rnd}").download,
                             f"{asset}:main", work / f"hub-dl-{rnd}", prefix=name)
            raw_dl = partial(Storage(lake.endpoint, lake.access_key_id, lake.secret_access_key,
                                     cache_dir=work / f"storage-cache-{rnd}").download,
                             f"{direct}:main", work / f"raw-dl-{rnd}", prefix=name)
            sides = [(hub_up, hub_dl, ups_hub, downs_hub), (raw_up, raw_dl, ups_raw, downs_raw)]
            order = sides if first_hub else sides[::-1]
            for up, _, ups, _ in order:
                ups.append(timed(up))
            for _, down, _, downs in order:
                downs.append(timed(down))
            for side in ("hub", "raw"):
                got = work / f"{side}-dl-{rnd}" / name
                assert got.stat().st_size == big_mb * MB, got
                shutil.rmtree(got.parent)
            print(f"stream round {rnd + 1}: up {ups_hub[-1] / ups_raw[-1]:.2f}x, "
                  f"down {downs_hub[-1] / downs_raw[-1]:.2f}x", flush=True)
        up_ratio = statistics.median(h / r for h, r in zip(ups_hub, ups_raw, strict=True))
        down_ratio = statistics.median(h / r for h, r in zip(downs_hub, downs_raw, strict=True))
        print(f"\nstreaming one {big_mb} MiB file, MB/s (medians of {args.rounds} round(s))")
        print(f"{'direction':28} {'server':>10} {'storage':>10} {'ratio':>7}")
        print(f"{'upload':28} {statistics.median(ups_hub):10.1f} "
              f"{statistics.median(ups_raw):10.1f} {up_ratio:6.2f}x")
        print(f"{'download':28} {statistics.median(downs_hub):10.1f} "
              f"{statistics.median(downs_raw):10.1f} {down_ratio:6.2f}x")
        print(f"\nRESULT latency worst ratio {worst:.2f}x (target <= 1.3x); streaming "
              f"upload {up_ratio:.2f}x, download {down_ratio:.2f}x (target >= 0.9x)")
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
