"""Data-stack benchmark: ``pandas.read_parquet("assethub://...")`` against the same file on local
disk and through boto3 on lakeFS's S3 gateway, cold and warm cache; a filtered pyarrow read.

    uv run python bench/data.py                 # a 1 GiB Parquet file, 3 rounds
    uv run python bench/data.py --quick         # 128 MiB, 1 round: a smoke run
    uv run python bench/data.py --size-mib 256 --rounds 5

One Parquet file of random (incompressible) data in 64 MiB row groups — ``k`` (the row group's
number) and fifteen float64 columns ``x0``-``x14`` (cheap for pandas to convert, so the times are
mostly moving bytes) — is uploaded once to a dataset of a
private Asset Hub server (as bench/api.py starts one) on a private lakeFS. Then, each round:

- ``local``: ``pd.read_parquet(path)`` of the file on local disk;
- ``boto3``: ``download_fileobj`` of the same lakeFS object through the S3 gateway into memory
  (boto3's transfer manager defaults), then ``pd.read_parquet`` of that buffer (no cache to warm);
- ``assethub cold``: ``pd.read_parquet("assethub://...")`` with an empty content cache: a file
  this large is read by byte range through the server, what pyarrow asks for;
- ``assethub cold whole``: the same with ``whole_file_max`` above the file's size: the file is
  fetched whole (parallel ranges, SHA-256 checked) into the content cache, then read from it;
- ``assethub warm``: the same with the file already in the content cache (a new filesystem
  object: the ref is resolved again and the listing comes from the cache);
- ``filtered``: ``pq.read_table(..., columns=["k", "x0"], filters=[("k", "=", 3)])`` locally and
  through ``assethub://`` (cold), with the bytes the server sent.

Then the statistics time per 10,000 samples (``bench/stats_time.py``): digits images, an iris
table and docstring texts computed locally, and an image dataset's statistics asked of the same
server cold (computed) and warm (kept in the catalog).

Every result is checked against the local read (rows, column sums, first and last values)
before its time counts. Times are the median
round; the ratios are printed in the same run. Everything lives under $TMPDIR and is removed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import free_port, start_server  # bench/api.py: an Asset Hub server process on a private catalog
from stats_time import result_line, stats_time  # bench/stats_time.py: statistics per 10,000 samples

from assethub.client import Client
from assethub.fs import AssetHubFileSystem
from assethub.refs import AssetPath
from assethub.storage import Storage
from infra import lakefs

MIB = 1024 * 1024
COLUMNS = 15  # x0..x14: float64, random (incompressible, and cheap for pandas to convert)
ROW_BYTES = 8 + 8 * COLUMNS
GROUP_BYTES = 64 * MIB


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def write_parquet(path: Path, size: int, seed: int = 20261130) -> int:
    """A Parquet file of about ``size`` bytes of random data in 64 MiB row groups; its row count."""
    rng = np.random.default_rng(seed)
    rows = GROUP_BYTES // ROW_BYTES
    groups = max(1, size // GROUP_BYTES)
    schema = pa.schema([("k", pa.int64()), *((f"x{i}", pa.float64()) for i in range(COLUMNS))])
    with pq.ParquetWriter(path, schema, compression="none") as w:
        for g in range(groups):
            columns = {"k": np.full(rows, g, np.int64)} | {f"x{i}": rng.random(rows) for i in range(COLUMNS)}
            w.write_table(pa.table(columns, schema=schema), row_group_size=rows)
    return rows * groups


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    os.sync()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the Parquet file's size (MiB)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="128 MiB, one round")
    args = parser.parse_args(argv)
    size = (128 if args.quick else args.size_mib) * MIB
    rounds = 1 if args.quick else args.rounds

    work = Path(tempfile.mkdtemp(prefix="assethub-bench-data-"))
    os.environ["ASSETHUB_HOME"] = str(work / "stack")  # a lakeFS of our own, on a free port
    proc = None
    try:
        lake = lakefs.start(port=free_port())
        proc, url, token = start_server(lake, work / "home", timeout=300)  # a busy machine is slow
        local = work / "big.parquet"
        t_write, nrows = timed(lambda: write_parquet(local, size))
        real = local.stat().st_size
        log(f"wrote {real / MIB:.0f} MiB, {nrows:,} rows in {t_write:.1f} s")
        hub = Client(url, token, cache_dir=work / "upload-cache")
        asset = f"admin/dataset/bench/data-{uuid.uuid4().hex[:6]}"
        hub.create_folder("admin/dataset/bench")
        hub.create_asset(asset)
        t_up, commit = timed(lambda: hub.upload(f"{asset}:main", local, message="bench").id)
        log(f"uploaded in {t_up:.1f} s ({real / MIB / t_up:.0f} MiB/s), commit {commit[:12]}")
        shutil.rmtree(work / "upload-cache", ignore_errors=True)  # the reads below start from an empty cache

        storage = Storage(lake.endpoint, lake.access_key_id, lake.secret_access_key,
                          cache_dir=work / "storage-cache")
        repo = storage.derived_repository(AssetPath.parse(asset))
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=lake.endpoint, aws_access_key_id=lake.access_key_id,
            aws_secret_access_key=lake.secret_access_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        target = f"assethub://{asset}@{commit}/big.parquet"
        def fingerprint(df: pd.DataFrame) -> tuple[Any, ...]:
            return (len(df), int(df["k"].sum()), float(df["x0"].sum()), float(df[f"x{COLUMNS - 1}"].iloc[-1]))

        expected = fingerprint(pd.read_parquet(local))
        filters = [("k", "=", 3 % max(1, nrows // (GROUP_BYTES // ROW_BYTES)))]
        expected_f = pq.read_table(local, columns=["k", "x0"], filters=filters)

        def fs(cache: Path, **options: Any) -> AssetHubFileSystem:
            return AssetHubFileSystem(url, token, cache_dir=str(cache), **options)

        def boto3_read() -> pd.DataFrame:
            buf = io.BytesIO()
            s3.download_fileobj(repo, f"{commit}/big.parquet", buf)
            buf.seek(0)
            return pd.read_parquet(buf)

        times: dict[str, list[float]] = {}
        sent: list[int] = []
        for r in range(rounds):
            cache = work / f"cache-{r}"
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("local", lambda: pd.read_parquet(local)),
                ("boto3", boto3_read),
                ("assethub cold", lambda c=cache: pd.read_parquet(
                    target, storage_options={"server": url, "token": token, "cache_dir": str(c / "a")})),
                ("assethub cold whole", lambda c=cache: pd.read_parquet(
                    target, filesystem=fs(c / "w", whole_file_max=2 * size))),
                ("assethub warm", lambda c=cache: pd.read_parquet(target, filesystem=fs(c / "w"))),
            ]
            for name, step in steps:
                seconds, df = timed(step)
                if fingerprint(df) != expected:
                    raise SystemExit(f"{name}: the table differs from the local file's")
                del df
                times.setdefault(name, []).append(seconds)
                log(f"round {r + 1}: {name}: {seconds:.2f} s")
            counter = fs(cache / "f")
            read = counter.client.read_range
            moved: list[int] = []

            def counted(*a: Any, _read: Any = read, _moved: list[int] = moved) -> bytes:
                data: bytes = _read(*a)
                _moved.append(len(data))
                return data

            counter.client.read_range = counted  # type: ignore[method-assign]
            for name, step in (("filtered local", lambda: pq.read_table(local, columns=["k", "x0"],
                                                                          filters=filters)),
                               ("filtered assethub", lambda c=counter: pq.read_table(
                                   target.removeprefix("assethub://"), filesystem=c, columns=["k", "x0"],
                                   filters=filters))):
                seconds, table = timed(step)
                if not table.equals(expected_f):
                    raise SystemExit(f"{name}: the filtered table differs from the local file's")
                times.setdefault(name, []).append(seconds)
            sent.append(sum(moved))
            shutil.rmtree(cache, ignore_errors=True)

        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nParquet file: {real / MIB:.0f} MiB, {nrows:,} rows, {real // GROUP_BYTES or 1} row "
              f"groups; median of {rounds} round(s)")
        print(f"{'read':<22} {'median s':>9} {'MiB/s':>8} {'range s':>15}")
        for k, v in times.items():
            print(f"{k:<22} {med[k]:>9.2f} {real / MIB / med[k]:>8.0f} "
                  f"{min(v):>7.2f}-{max(v):<7.2f}")
        print("\nratios (time / time; lower is faster):")
        for a, b in (("assethub cold", "local"), ("assethub cold whole", "local"),
                     ("assethub warm", "local"), ("assethub cold", "boto3"),
                     ("assethub cold whole", "boto3"), ("assethub warm", "boto3"),
                     ("filtered assethub", "filtered local")):
            print(f"  {a} / {b}: {med[a] / med[b]:.2f}x")
        print(f"filtered read through assethub://: {statistics.median(sent) / MIB:.1f} MiB of "
              f"{real / MIB:.0f} MiB sent by the server ({statistics.median(sent) / real:.2%})")
        print("RESULT " + " ".join(f"{k.replace(' ', '_')}={med[k]:.3f}" for k in med)
              + f" filtered_bytes={int(statistics.median(sent))} size={real}")

        # statistics time per 10,000 samples, here and through the same server (bench/stats_time.py)
        (work / "stats").mkdir()
        per10k = stats_time(rounds=rounds, work=work / "stats", client=hub, folder="admin/dataset/bench")
        print("\nstatistics, seconds per 10,000 samples: "
              + ", ".join(f"{k} {v:.2f}" for k, v in per10k.items()))
        print(result_line(per10k))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        lakefs.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
