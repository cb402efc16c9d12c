"""Transfer benchmark: Asset Hub's Storage against lakectl and plain boto3 on one lakeFS.

    uv run python bench/transfer.py              # one 512 MiB file, and 5,000 files of 4-64 KiB
    uv run python bench/transfer.py --quick      # 64 MiB and 500 files: a smoke run
    uv run python bench/transfer.py --rounds 1   # one round instead of three
    uv run python bench/transfer.py --shape small

For each shape every tool uploads the same local tree to a fresh repository of its own as one
commit, then downloads that commit into an empty directory. Every download is checked file by
file (names, sizes and SHA-256) before its number counts. For Asset Hub also: a second
download of the same commit into a new directory (the cache should serve it: 0 bytes
transferred), and for the small files a download after 1% of them changed in a new commit.

Each round starts from fresh repositories and an empty cache, runs the tools in a rotated
order, keeps what it downloaded until it ends (so that no download lands, by chance of the
order, on page-cache pages another one just freed, which are much cheaper on a VM than fresh
ones) and calls sync(2) before every timed step, so that one tool's dirty pages are not
written back on another's time; the tables show the median round. Throughput is MB/s with
MB = 10^6 bytes, over the shape's total size. Upload times include the commit (Asset Hub's
include its temporary branch and squash-merge). "client CPU" is this process plus its
children (lakectl); "lakeFS CPU" is the server's, from /proc; "other CPU" is everything else
the machine ran meanwhile (each step waits for a nearly idle machine first; a large value
marks a disturbed measurement). All data lives under $TMPDIR (or /tmp) and is removed at the
end, as are the repositories and their blockstore directories.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import boto3
import lakefs_sdk
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from lakefs_sdk.client import LakeFSClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _distributed  # bench/_distributed.py: the distributed profile and its S3 floor
from api import ServerCPU, start_server  # bench/api.py: a server process on a private catalog; CPU meter

from assethub.client import Client
from assethub.storage import AddFile, Storage
from infra import lakefs
from infra.lakefs import LakeFSInstance
from infra.seaweedfs import ObjectStore

MB = 1_000_000
MIB = 1024 * 1024
KIB = 1024
SEED = 20240611
PREFIX = "data"  # every tool writes the tree under this path of its repository
NAMESPACE_ROOT = "assethub-bench"  # local://assethub-bench/<repo>-<suffix>
# where the benchmark's repositories live: lakeFS's local blockstore, or (--profile distributed)
# a prefix of the object store's bucket, s3://assethub-data/assethub-bench
NAMESPACE = f"local://{NAMESPACE_ROOT}"
WORKERS = 16  # Asset Hub's default max_workers; the boto3 baseline uses the same pool size
CHANGED_FRACTION = 0.01
QUIET = 0.15  # each step first waits (30 s at most) until the machine uses less of one core
PEERS = ("lakectl", "boto3", "s3")  # s3: boto3 straight to the object store (--profile distributed)
HUBS = ("assethub", "server")  # Storage alone; the SDK's Client through the Asset Hub server
T = TypeVar("T")


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- test data -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    sha256: str


Manifest = dict[str, FileInfo]  # relative posix path -> expected content


@dataclass(frozen=True, slots=True)
class ShapeSpec:
    name: str
    files: int  # 1 means a single big file of big_size bytes
    big_size: int = 0
    min_size: int = 4 * KIB
    max_size: int = 64 * KIB

    @property
    def is_big(self) -> bool:
        return self.files == 1


@dataclass(frozen=True, slots=True)
class Shape:
    spec: ShapeSpec
    root: Path
    manifest: Manifest

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.manifest.values())

    def describe(self) -> str:
        n = len(self.manifest)
        return f"{n:,} file{'s' if n != 1 else ''}, {self.total_bytes / MB:,.1f} MB"


def write_random_file(path: Path, size: int, rng: random.Random) -> FileInfo:
    """Write ``size`` seeded random bytes and return their digest (no second read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(left, 4 * MIB))
            sha.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return FileInfo(size, sha.hexdigest())


def generate(spec: ShapeSpec, root: Path) -> Shape:
    rng = random.Random(f"{SEED}-{spec.name}")
    manifest: Manifest = {}
    if spec.is_big:
        manifest["model.bin"] = write_random_file(root / "model.bin", spec.big_size, rng)
    else:
        for i in range(spec.files):
            rel = f"part-{i // 100:03d}/sample-{i:05d}.bin"
            size = rng.randint(spec.min_size, spec.max_size)
            manifest[rel] = write_random_file(root / rel, size, rng)
    return Shape(spec, root, manifest)


def change_some(shape: Shape, out: Path) -> tuple[dict[str, Path], Manifest]:
    """New content for CHANGED_FRACTION of the files: (path -> new local file, new manifest)."""
    rng = random.Random(f"{SEED}-{shape.spec.name}-change")
    count = max(1, round(len(shape.manifest) * CHANGED_FRACTION))
    changed: dict[str, Path] = {}
    manifest = dict(shape.manifest)
    for rel in rng.sample(sorted(shape.manifest), count):
        local = out / rel
        manifest[rel] = write_random_file(
            local, rng.randint(shape.spec.min_size, shape.spec.max_size), rng
        )
        changed[rel] = local
    return changed, manifest


def verify(dest: Path, expected: Manifest) -> None:
    """Raise unless ``dest`` holds exactly the expected files with the expected content."""
    found = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    if found.keys() != expected.keys():
        missing = sorted(expected.keys() - found.keys())[:3]
        extra = sorted(found.keys() - expected.keys())[:3]
        raise BenchError(f"{dest}: wrong file set (missing e.g. {missing}, unexpected e.g. {extra})")
    for rel, info in expected.items():
        path = found[rel]
        size = path.stat().st_size
        if size != info.size:
            raise BenchError(f"{path}: {size} bytes, expected {info.size}")
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != info.sha256:
                raise BenchError(f"{path}: content differs from what was uploaded")


# -- measuring -------------------------------------------------------------------------------
def client_cpu() -> float:
    """CPU seconds of this process and its waited-for children (lakectl)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_cpu() -> float:
    """CPU seconds all processes have used so far (busy time of all cores, from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


QUIET_LIMIT = [30.0]  # seconds each step waits at most for a quiet machine (--wait)


def wait_until_quiet(*, window: float = 0.5, limit: float | None = None) -> float:
    """Wait (up to ``limit`` s) until the machine is nearly idle; the busy fraction of one core.

    Others' work on the 2 cores (lakeFS compacting after the previous step, a test run of
    another session) would otherwise land on the next measurement.
    """
    deadline = time.monotonic() + (QUIET_LIMIT[0] if limit is None else limit)
    while True:
        before = machine_cpu()
        time.sleep(window)
        busy = (machine_cpu() - before) / window
        if busy < QUIET or time.monotonic() > deadline:
            return busy


@dataclass(slots=True)
class Usage:
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    hub_cpu: float | None = None  # the Asset Hub server process's (when it runs)
    other_cpu: float = 0.0  # everything else on the machine meanwhile: noise, if large


@contextmanager
def measure(server: ServerCPU, hub: ServerCPU | None = None) -> Iterator[Usage]:
    usage = Usage()
    srv0, cpu0, all0, t0 = server.seconds(), client_cpu(), machine_cpu(), time.perf_counter()
    hub0 = hub.seconds() if hub else None
    yield usage
    usage.seconds = time.perf_counter() - t0
    usage.client_cpu = client_cpu() - cpu0
    srv1 = server.seconds()
    usage.server_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
    hub1 = hub.seconds() if hub else None
    usage.hub_cpu = hub1 - hub0 if hub0 is not None and hub1 is not None else None
    usage.other_cpu = max(0.0, machine_cpu() - all0 - usage.client_cpu - (usage.server_cpu or 0)
                          - (usage.hub_cpu or 0))


@dataclass(frozen=True, slots=True)
class Measurement:
    tool: str
    op: str  # "upload", "download", "download (cached)", "download (1% changed)", "commit 1%"
    round: int
    usage: Usage
    bytes_total: int  # size of the data the operation delivers
    bytes_transferred: int  # what actually crossed the wire

    @property
    def mbps(self) -> float:
        return self.bytes_total / MB / self.usage.seconds if self.usage.seconds else 0.0


# -- the tools -------------------------------------------------------------------------------
class Tool(Protocol):
    name: str

    def upload(self, src: Path) -> str:
        """Upload the tree ``src`` under PREFIX as one commit on main; return the commit id."""
        ...

    def download(self, commit: str, dest: Path) -> int | None:
        """Download PREFIX of ``commit`` into ``dest``; return the bytes transferred (None:
        everything)."""
        ...


class Repositories:
    """lakeFS repositories this run created, deleted with their blockstore data at the end."""

    def __init__(self, api: LakeFSClient, instance: LakeFSInstance, suffix: str,
                 store: ObjectStore | None = None) -> None:
        self.api = api
        self.store = store
        self.blockstore = instance.data_dir / "blockstore"
        self.suffix = suffix
        self.names: list[str] = []

    def create(self, name: str) -> str:
        repo = f"{name}-{self.suffix}"
        self.api.repositories_api.create_repository(
            lakefs_sdk.RepositoryCreation(
                name=repo,
                storage_namespace=f"{NAMESPACE}/{repo}-{uuid.uuid4().hex[:8]}",
                default_branch="main",
            )
        )
        self.names.append(repo)
        return repo

    def adopt(self, repo: str) -> None:
        self.names.append(repo)

    def delete_all(self) -> None:
        for repo in self.names:
            try:
                namespace = self.api.repositories_api.get_repository(repo).storage_namespace
                self.api.repositories_api.delete_repository(repo, force=True)
            except lakefs_sdk.ApiException as exc:
                log(f"could not delete repository {repo}: {exc.status} {exc.reason}")
                continue
            self._remove_namespace(namespace)
        self.names.clear()

    def _remove_namespace(self, namespace: str) -> None:
        # lakeFS leaves a deleted repository's objects in the blockstore; they are ours to drop
        if self.store is not None and namespace.startswith(f"{NAMESPACE}/"):
            _distributed.remove_prefix(self.store, namespace)
            return
        if not namespace.startswith(f"local://{NAMESPACE_ROOT}/"):
            return
        path = (self.blockstore / namespace.removeprefix("local://")).resolve()
        if path.is_relative_to(self.blockstore.resolve() / NAMESPACE_ROOT):
            shutil.rmtree(path, ignore_errors=True)


class AssetHubTool:
    name = "assethub"

    def __init__(self, instance: LakeFSInstance, cache_dir: Path, asset: str) -> None:
        self.storage = Storage(
            instance.endpoint, instance.access_key_id, instance.secret_access_key,
            cache_dir=cache_dir, namespace_root=NAMESPACE,
        )
        self.asset = asset
        self.storage.create_asset(asset)
        self.repository = self.storage.repository(asset)

    def upload(self, src: Path) -> str:
        return self.storage.upload(f"{self.asset}:main", src, path=PREFIX, message="bench").id

    def download(self, commit: str, dest: Path) -> int | None:
        result = self.storage.download(f"{self.asset}:{commit}", dest, prefix=PREFIX)
        return result.bytes_transferred

    def commit_files(self, files: Mapping[str, Path]) -> str:
        ops = [AddFile(local, f"{PREFIX}/{rel}") for rel, local in files.items()]
        return self.storage.commit(f"{self.asset}:main", ops, message="bench: change 1%").id


class ServerTool:
    """The SDK as a user runs it: ``Client`` (its defaults) -> the Asset Hub server process ->
    lakeFS, with authentication, permission checks, audit, SHA-256 checks and atomic commits."""

    name = "server"

    def __init__(self, server: tuple[str, str], cache_dir: Path, asset: str,
                 storage: Storage) -> None:
        self.client = Client(server[0], server[1], cache_dir=cache_dir)
        self.asset = asset
        self.client.create_asset(asset)
        self.repository = storage.repository(asset)

    def upload(self, src: Path) -> str:
        return self.client.upload(f"{self.asset}:main", src, path=PREFIX, message="bench").id

    def download(self, commit: str, dest: Path) -> int | None:
        result = self.client.download(f"{self.asset}:{commit}", dest, prefix=PREFIX)
        return result.bytes_transferred

    def commit_files(self, files: Mapping[str, Path]) -> str:
        ops = [AddFile(local, f"{PREFIX}/{rel}") for rel, local in files.items()]
        return self.client.create_commit(f"{self.asset}:main", ops, message="bench: change 1%").id


class LakectlTool:
    """``lakectl fs upload/download --recursive`` with their defaults (parallelism 25)."""

    name = "lakectl"

    def __init__(self, instance: LakeFSInstance, api: LakeFSClient, repo: str) -> None:
        self.binary = str(instance.lakectl)
        self.env = {**os.environ, **instance.lakectl_env()}
        self.api = api
        self.repo = repo

    def _run(self, *args: str) -> None:
        done = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise BenchError(f"lakectl {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")

    def upload(self, src: Path) -> str:
        self._run("fs", "upload", "--recursive", "--no-progress", "-s", f"{src}/",
                  f"lakefs://{self.repo}/main/{PREFIX}/")
        self._run("commit", f"lakefs://{self.repo}/main", "-m", "bench")
        return str(self.api.branches_api.get_branch(self.repo, "main").commit_id)

    def download(self, commit: str, dest: Path) -> int | None:
        self._run("fs", "download", "--recursive", "--no-progress",
                  f"lakefs://{self.repo}/{commit}/{PREFIX}/", str(dest))
        return None


class Boto3Tool:
    """Plain boto3 on lakeFS's S3 gateway: a pool of put/get for small files, the transfer
    manager (boto3's defaults: 8 MiB parts, 10 threads) for large ones; commit with lakefs_sdk."""

    name = "boto3"

    def __init__(self, instance: LakeFSInstance, api: LakeFSClient, repo: str) -> None:
        self.api = api
        self.bucket = repo  # the gateway's bucket is the repository, its keys start with a ref
        self.endpoint = instance.endpoint
        self.keys = (instance.access_key_id, instance.secret_access_key)
        self.region = "us-east-1"
        self.transfer = TransferConfig()  # the defaults
        self._client: Any = None

    @property
    def client(self) -> Any:
        # created on first use, inside the timed upload, as Asset Hub creates its own
        if self._client is None:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.keys[0],
                aws_secret_access_key=self.keys[1],
                region_name=self.region,
                config=Config(
                    s3={"addressing_style": "path"},
                    max_pool_connections=WORKERS * 2,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        return self._client

    def _root(self) -> str:
        """Where an upload's keys start: the branch written to."""
        return "main"

    def _finish(self, root: str) -> str:
        """What a download of the upload is given: lakeFS's commit of the branch."""
        commit = self.api.commits_api.commit(
            self.bucket, root, lakefs_sdk.CommitCreation(message="bench")
        )
        return str(commit.id)

    def _is_large(self, size: int) -> bool:
        return size >= self.transfer.multipart_threshold

    def upload(self, src: Path) -> str:
        root = self._root()
        files = [(p, f"{root}/{PREFIX}/{p.relative_to(src).as_posix()}")
                 for p in sorted(src.rglob("*")) if p.is_file()]
        client = self.client

        def put(item: tuple[Path, str]) -> None:
            client.put_object(Bucket=self.bucket, Key=item[1], Body=item[0].read_bytes())

        small = [f for f in files if not self._is_large(f[0].stat().st_size)]
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(put, small))
        for path, key in files:
            if self._is_large(path.stat().st_size):
                client.upload_file(str(path), self.bucket, key, Config=self.transfer)
        return self._finish(root)

    def download(self, commit: str, dest: Path) -> int | None:
        client = self.client
        prefix = f"{commit}/{PREFIX}/"
        objects: list[tuple[str, int]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                    Prefix=prefix):
            objects.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", []))

        def target(key: str) -> Path:
            path = dest / key.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

        def get(key: str) -> None:
            body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            target(key).write_bytes(body)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(get, [k for k, size in objects if not self._is_large(size)]))
        for key, size in objects:
            if self._is_large(size):
                client.download_file(self.bucket, key, str(target(key)), Config=self.transfer)
        return sum(size for _, size in objects)


class DirectS3Tool(Boto3Tool):
    """boto3 straight to the object store's bucket (--profile distributed): the same transfers,
    with no lakeFS and no commit in the way — the floor a presigned path can approach."""

    name = "s3"

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.bucket = _distributed.BUCKET
        self.endpoint = store.endpoint
        self.keys = (store.access_key_id, store.secret_access_key)
        self.region = store.region
        self.prefix = prefix
        self.transfer = TransferConfig()
        self._client = None

    def _root(self) -> str:
        return f"{self.prefix}/{uuid.uuid4().hex[:8]}"  # a fresh key prefix per upload

    def _finish(self, root: str) -> str:
        return root  # the prefix stands for the commit


# -- one shape -------------------------------------------------------------------------------
@dataclass(slots=True)
class ShapeResult:
    shape: str
    description: str
    measurements: list[Measurement] = field(default_factory=list)

    def runs(self, tool: str, op: str) -> list[Measurement]:
        return sorted((m for m in self.measurements if m.tool == tool and m.op == op),
                      key=lambda m: m.usage.seconds)

    def get(self, tool: str, op: str) -> Measurement | None:
        """The median round (the faster of the middle two for an even count)."""
        runs = self.runs(tool, op)
        return runs[(len(runs) - 1) // 2] if runs else None


@dataclass(frozen=True, slots=True)
class Context:
    instance: LakeFSInstance
    api: LakeFSClient
    repos: Repositories
    server: ServerCPU
    work: Path
    hub_server: tuple[str, str] | None = None  # (url, admin token) of the Asset Hub server
    hub_cpu: ServerCPU | None = None  # its process's CPU
    store: ObjectStore | None = None  # --profile distributed: the object store under lakeFS


@dataclass(frozen=True, slots=True)
class Round:
    ctx: Context
    result: ShapeResult
    number: int

    def timed(self, action: Callable[[], T]) -> tuple[Usage, T]:
        os.sync()  # start clean: no writeback of an earlier step's pages on this step's time
        busy = wait_until_quiet()
        if busy >= QUIET:
            log(f"the machine is still {busy:.0%} busy with other work: expect noise")
        with measure(self.ctx.server, self.ctx.hub_cpu) as usage:
            value = action()
        return usage, value

    def record(self, tool: str, op: str, usage: Usage, size: int,
               transferred: int | None = None) -> Measurement:
        """Keep one measurement (``transferred`` None: all ``size`` bytes) and log it."""
        m = Measurement(tool, op, self.number, usage, size,
                        size if transferred is None else transferred)
        self.result.measurements.append(m)
        server = f"{usage.server_cpu:5.1f}" if usage.server_cpu is not None else "  n/a"
        hub = f", server {usage.hub_cpu:5.1f} s" if usage.hub_cpu is not None else ""
        log(f"{self.result.shape:>5} #{self.number}  {tool:<8} {op:<22} {usage.seconds:7.2f} s "
            f"{m.mbps:8.1f} MB/s  cpu client {usage.client_cpu:5.1f} s, lakeFS {server} s{hub}, "
            f"other {usage.other_cpu:4.1f} s")
        return m

    def fresh_dir(self, name: str) -> Path:
        path = self.ctx.work / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path


HubTool = AssetHubTool | ServerTool


def make_tools(rnd: Round) -> tuple[list[HubTool], list[Tool]]:
    """A fresh asset (with a fresh, cold cache) per Asset Hub tool and a fresh repository per
    peer."""
    ctx, label = rnd.ctx, f"{rnd.result.shape}-r{rnd.number}"
    hub = AssetHubTool(ctx.instance, rnd.fresh_dir("cache"),
                       f"bench/model/transfer/{label}-{ctx.repos.suffix}")
    ctx.repos.adopt(hub.repository)
    hubs: list[HubTool] = [hub]
    if ctx.hub_server is not None:
        srv = ServerTool(ctx.hub_server, rnd.fresh_dir("client-cache"),
                         f"admin/model/transfer/{label}-{ctx.repos.suffix}", hub.storage)
        ctx.repos.adopt(srv.repository)
        hubs.append(srv)
    peers: list[Tool] = [
        LakectlTool(ctx.instance, ctx.api, ctx.repos.create(f"bench-lakectl-{label}")),
        # on the distributed profile the floor is the object store itself, not lakeFS's gateway
        DirectS3Tool(ctx.store, f"{NAMESPACE_ROOT}/s3-{label}-{ctx.repos.suffix}")
        if ctx.store is not None else
        Boto3Tool(ctx.instance, ctx.api, ctx.repos.create(f"bench-boto3-{label}")),
    ]
    return hubs, peers


def download_and_check(rnd: Round, tool: Tool, op: str, commit: str,
                       expected: Manifest) -> Measurement:
    dest = rnd.fresh_dir(f"dl-{tool.name}")
    usage, transferred = rnd.timed(lambda: tool.download(commit, dest))
    verify(dest, expected)
    # kept until the round ends: a download that reused the page cache a deleted one just freed
    # would be cheaper on this VM than one that needs fresh pages, by chance of the order
    return rnd.record(tool.name, op, usage, sum(f.size for f in expected.values()), transferred)


def run_round(rnd: Round, shape: Shape) -> None:
    hubs, peers = make_tools(rnd)
    tools: list[Tool] = [*hubs, *peers]
    turn = rnd.number % len(tools)
    tools = tools[turn:] + tools[:turn]  # no tool always goes first
    commits: dict[str, str] = {}
    for tool in tools:
        usage, commits[tool.name] = rnd.timed(partial(tool.upload, shape.root))
        rnd.record(tool.name, "upload", usage, shape.total_bytes)
    for tool in tools:
        download_and_check(rnd, tool, "download", commits[tool.name], shape.manifest)

    # Asset Hub's cache: the same commit again, into a new empty directory
    for hub in hubs:
        download_and_check(rnd, hub, "download (cached)", commits[hub.name], shape.manifest)
    if not shape.spec.is_big:
        changed, manifest = change_some(shape, rnd.fresh_dir("changed"))
        for hub in hubs:
            usage, commit = rnd.timed(partial(hub.commit_files, changed))
            rnd.record(hub.name, "commit 1%", usage, sum(manifest[rel].size for rel in changed))
            download_and_check(rnd, hub, "download (1% changed)", commit, manifest)


def run_shape(ctx: Context, spec: ShapeSpec, rounds: int) -> ShapeResult:
    log(f"{spec.name}: generating data")
    shape = generate(spec, ctx.work / "src")
    result = ShapeResult(spec.name, shape.describe())
    for number in range(rounds):
        work = ctx.work / f"round-{number}"
        run_round(Round(replace(ctx, work=work), result, number), shape)
        ctx.repos.delete_all()  # and their blockstore data: a round's leftovers cost disk
        shutil.rmtree(work)
    return result


# -- report ----------------------------------------------------------------------------------
def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def fmt_bytes(n: int) -> str:
    if n >= MB:
        return f"{n / MB:,.1f} MB"
    if n >= 1000:
        return f"{n / 1000:,.1f} kB"
    return f"{n} B"


def measurements_table(results: list[ShapeResult]) -> str:
    rows = []
    for r in results:
        for tool, op in dict.fromkeys((m.tool, m.op) for m in r.measurements):
            runs = r.runs(tool, op)
            m = r.get(tool, op)
            assert m is not None
            srv = m.usage.server_cpu
            rows.append([
                r.shape, f"{op} / {tool}", f"{m.usage.seconds:.2f}", f"{m.mbps:,.1f}",
                f"{runs[-1].mbps:,.1f}-{runs[0].mbps:,.1f}", fmt_bytes(m.bytes_transferred),
                f"{m.usage.client_cpu:.1f}", f"{srv:.1f}" if srv is not None else "n/a",
                f"{m.usage.hub_cpu:.1f}" if m.usage.hub_cpu is not None else "-",
                f"{m.usage.other_cpu:.1f}",
            ])
    return table(rows, ["shape", "op / tool", "time s", "MB/s", "MB/s range", "transferred",
                        "client CPU s", "lakeFS CPU s", "server CPU s", "other CPU s"])


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str
    hub: Measurement
    best: Measurement

    @property
    def ratio(self) -> float:
        return self.hub.mbps / self.best.mbps if self.best.mbps else float("inf")


def compare(r: ShapeResult, op: str, tool: str = "assethub") -> Comparison | None:
    hub = r.get(tool, op)
    peers = [m for m in (r.get(p, op) for p in PEERS) if m is not None]
    if hub is None or not peers:
        return None
    return Comparison(op, hub, max(peers, key=lambda m: m.mbps))


def summary_table(results: list[ShapeResult]) -> str:
    rows = []
    for r in results:
        for op in ("upload", "download"):
            tools = {t: r.get(t, op) for t in (*HUBS, *PEERS)}
            ratios = []
            for hub in HUBS:
                c = compare(r, op, hub)
                lakectl = r.get("lakectl", op)
                if c is not None:
                    ratios.append(f"{c.ratio:.2f}x vs {c.best.tool}")
                    if lakectl is not None and c.best.tool != "lakectl":
                        ratios[-1] += f" ({c.hub.mbps / lakectl.mbps:.2f}x vs lakectl)"
                else:
                    ratios.append("-")
            rows.append([r.shape, op, *(f"{m.mbps:,.1f}" if m else "-" for m in tools.values()),
                         *ratios])
    return table(rows, ["shape", "op", *(f"{t} MB/s" for t in (*HUBS, *PEERS)),
                        *(f"{h} / best peer" for h in HUBS)])


def cache_table(results: list[ShapeResult]) -> str:
    rows = []
    for r, hub in ((r, hub) for r in results for hub in HUBS):
        cold = r.get(hub, "download")
        if cold is None:
            continue
        for op in ("download (cached)", "download (1% changed)"):
            m = r.get(hub, op)
            if m is None:
                continue
            rows.append([
                r.shape, f"{op} / {hub}", f"{m.usage.seconds:.3f}",
                f"{100 * m.usage.seconds / cold.usage.seconds:.1f}%",
                fmt_bytes(m.bytes_transferred),
                f"{100 * m.bytes_transferred / m.bytes_total:.1f}%",
            ])
    return table(rows, ["shape", "op / tool", "time s", "% of cold download time",
                        "transferred", "% of bytes"])


def result_line(r: ShapeResult) -> str:
    parts = [f"RESULT shape={r.shape}", f"data='{r.description}'"]
    for op, key in (("upload", "up"), ("download", "down")):
        parts += [f"{key}_{t}={m.mbps:.1f}" for t in (*HUBS, *PEERS)
                  if (m := r.get(t, op)) is not None]
        if (c := compare(r, op)) is not None:
            parts.append(f"{key}_ratio={c.ratio:.2f}")
        srv, lakectl = r.get("server", op), r.get("lakectl", op)
        if srv is not None and lakectl is not None:
            parts.append(f"{key}_server_vs_lakectl={srv.mbps / lakectl.mbps:.2f}")
    for hub, tag in (("assethub", ""), ("server", "server_")):
        cold = r.get(hub, "download")
        cached = r.get(hub, "download (cached)")
        if cold and cached:
            parts += [f"{tag}cached_s={cached.usage.seconds:.3f}",
                      f"{tag}cached_pct={100 * cached.usage.seconds / cold.usage.seconds:.1f}",
                      f"{tag}cached_bytes={cached.bytes_transferred}"]
        if (changed := r.get(hub, "download (1% changed)")) is not None:
            parts += [f"{tag}change1pct_s={changed.usage.seconds:.3f}",
                      f"{tag}change1pct_bytes={changed.bytes_transferred}"]
    return " ".join(parts)


def report(results: list[ShapeResult], setup: str, rounds: int) -> None:
    print(f"\n{setup}\n")
    for r in results:
        print(f"  {r.shape}: {r.description}")
    print(f"\nAll operations (median of {rounds} round{'s' if rounds > 1 else ''}; the CPU "
          f"columns are the median round's)\n{measurements_table(results)}")
    print(f"\nThroughput (MB/s = 10^6 bytes/s, higher is better)\n{summary_table(results)}")
    print(f"\nAsset Hub cache\n{cache_table(results)}\n")
    for r in results:
        print(result_line(r))


# -- main ------------------------------------------------------------------------------------
def shapes(quick: bool) -> list[ShapeSpec]:
    if quick:
        return [ShapeSpec("big", 1, big_size=64 * MIB), ShapeSpec("small", 500)]
    return [ShapeSpec("big", 1, big_size=512 * MIB), ShapeSpec("small", 5000)]


def api_client(instance: LakeFSInstance) -> LakeFSClient:
    cfg = lakefs_sdk.Configuration(host=f"{instance.endpoint}/api/v1",
                                   username=instance.access_key_id,
                                   password=instance.secret_access_key)
    return LakeFSClient(cfg)


def describe_setup(instance: LakeFSInstance, api: LakeFSClient,
                   store: ObjectStore | None = None) -> str:
    storage = api.config_api.get_config().storage_config
    presign = bool(storage.pre_sign_support)
    if store is not None:
        return "\n".join([
            f"distributed profile: lakeFS {lakefs.LAKEFS_VERSION} at {instance.endpoint} on "
            f"SeaweedFS ({store.endpoint}, S3) + PostgreSQL; {os.cpu_count()} CPUs shared by "
            "SeaweedFS, lakeFS, the server and the clients",
            f"assethub: Storage(max_workers={WORKERS}) over lakeFS's S3 gateway, SHA-256 verified",
            "server  : the SDK's Client through the Asset Hub server, which presigns: bytes go "
            "straight to and from SeaweedFS (SHA-256 verified)",
            f"lakectl : fs upload/download --recursive, default parallelism 25; presign="
            f"{'yes' if presign else 'no'}",
            f"s3      : boto3 straight to the bucket (no lakeFS, no commit), {WORKERS} threads of "
            "put/get for small files, TransferManager defaults for large ones",
        ])
    return "\n".join([
        f"lakeFS {lakefs.LAKEFS_VERSION} at {instance.endpoint}, blockstore "
        f"{storage.blockstore_type}; {os.cpu_count()} CPUs shared by lakeFS and the clients",
        f"assethub: Storage(max_workers={WORKERS}) over the S3 gateway, SHA-256 verified",
        f"lakectl : fs upload/download --recursive, default parallelism 25; presign="
        f"{'yes' if presign else 'no (not supported by this blockstore): data goes through the API'}",
        f"boto3   : S3 gateway, {WORKERS} threads of put/get for small files, TransferManager "
        "defaults (8 MiB parts, 10 threads) for large ones; commit with lakefs_sdk",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB and 500 files")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (median shown)")
    parser.add_argument("--shape", choices=["all", "big", "small"], default="all")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds each step waits at most for a nearly idle machine")
    parser.add_argument("--profile", choices=["embedded", "distributed"], default="embedded",
                        help="distributed: lakeFS on SeaweedFS (S3) + PostgreSQL in a home of its "
                             "own; the server presigns and the floor is boto3 straight to the bucket")
    parser.add_argument("--no-server", action="store_true",
                        help="skip the SDK through the Asset Hub server (Storage and peers only)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    QUIET_LIMIT[0] = args.wait

    global NAMESPACE
    store: ObjectStore | None = None
    profile_home = None
    if args.profile == "distributed":
        profile_home = tempfile.mkdtemp(prefix="assethub-bench-distributed-")
        instance, store = _distributed.start(Path(profile_home))
        NAMESPACE = f"s3://{_distributed.BUCKET}/{NAMESPACE_ROOT}"
    else:
        instance = lakefs.start()
    api = api_client(instance)
    setup = describe_setup(instance, api, store)
    results: list[ShapeResult] = []
    repos = Repositories(api, instance, uuid.uuid4().hex[:6], store)
    with tempfile.TemporaryDirectory(prefix="assethub-bench-") as tmp:
        ctx = Context(instance, api, repos, ServerCPU(instance), Path(tmp), store=store)
        proc = None
        if not args.no_server:
            # its repositories under the bench's namespace: removed with the others at the end
            os.environ["ASSETHUB_STORAGE_NAMESPACE"] = NAMESPACE
            proc, url, token = start_server(instance, Path(tmp) / "home", timeout=300)  # a loaded machine
            ctx = replace(ctx, hub_server=(url, token), hub_cpu=ServerCPU(None, proc.pid))
            Client(url, token).create_folder("admin/model/transfer")
        try:
            for spec in shapes(args.quick):
                if args.shape not in ("all", spec.name):
                    continue
                shape_ctx = replace(ctx, work=ctx.work / spec.name)
                results.append(run_shape(shape_ctx, spec, args.rounds))
                shutil.rmtree(shape_ctx.work)  # its data, downloads and caches
        finally:
            log("deleting the benchmark repositories")
            repos.delete_all()
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            if profile_home is not None:
                _distributed.stop()
                shutil.rmtree(profile_home, ignore_errors=True)
    report(results, setup, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
