"""Obtain, start and stop the S3-compatible object store of the distributed profile: SeaweedFS.

    python -m infra.seaweedfs build    # `weed` at the pinned revision (cached)
    python -m infra.seaweedfs start    # idempotent: a second start finds the running server
    python -m infra.seaweedfs status
    python -m infra.seaweedfs stop
    python -m infra.seaweedfs env      # AWS_* exports for boto3 / the AWS CLI (prints secrets: local only)

Why SeaweedFS (Apache-2.0) and not moto: it is a real object store, a server of its own with
durable volumes, multipart uploads and presigned URLs — what lakeFS, MLflow and clients meet in
production on S3 — where moto is an in-memory mock for unit tests. It is built from its Go
module like lakeFS (``infra/seaweedfs-build`` repeats its ``replace`` line), once, cached under
``~/.cache/assethub/bin`` (``$ASSETHUB_BIN_DIR``); a ``weed`` on PATH is used as it is.

One ``weed server`` process runs the master, a volume server, the filer and the S3 gateway,
all on loopback, with its data under ``$ASSETHUB_HOME/seaweedfs``. The S3 gateway accepts one
generated identity (never a default): its keys are in ``credentials.json`` (mode 0600). The
buckets Asset Hub needs are created at start.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra._process import ManagedProcess, free_port, log

SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"  # github.com/seaweedfs/seaweedfs
BUILD_MODULE_DIR = Path(__file__).resolve().parent / "seaweedfs-build"
DEFAULT_PORT = 8333  # the S3 gateway; the master, volume and filer ports are found near 9333
REGION = "us-east-1"
#: lakeFS's repositories (``s3://assethub-data/repos/...``) and MLflow's artifacts
DATA_BUCKET, MLFLOW_BUCKET = "assethub-data", "assethub-mlflow"
BUCKETS = (DATA_BUCKET, MLFLOW_BUCKET)

SERVER = ManagedProcess("seaweedfs", default_port=DEFAULT_PORT, health_path="/healthz",
                        pid_name="weed.pid", log_name="weed.out")


@dataclass(frozen=True)
class ObjectStore:
    """How to reach the object store (an S3 endpoint and a key pair that may use every bucket)."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION
    data_dir: Path | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"ObjectStore(endpoint={self.endpoint!r}, access_key_id={self.access_key_id!r})"

    def aws_env(self) -> dict[str, str]:
        """The variables boto3, MLflow's S3 artifact store and the AWS CLI read."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        """A boto3 S3 client on this store (path-style addressing: buckets are not DNS names here)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key,
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 5, "mode": "standard"}))


def bin_dir() -> Path:
    root = os.environ.get("ASSETHUB_BIN_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assethub" / "bin"
    return Path(root).expanduser() / f"seaweedfs-{SEAWEEDFS_VERSION.rsplit('-', 1)[-1]}"


def ensure_binary() -> Path:
    """``weed`` (PATH first, else built once from the Go module at the pinned revision)."""
    if on_path := shutil.which("weed"):
        return Path(on_path)
    weed = bin_dir() / "weed"
    if weed.exists():
        return weed
    go = shutil.which("go")
    if go is None:
        raise SystemExit("SeaweedFS's `weed` is not on PATH and Go is not installed to build it: "
                         "install Go (https://go.dev/dl) or put `weed` on PATH")
    weed.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    log("seaweedfs", f"building weed {SEAWEEDFS_VERSION} from the Go module (first time only, "
                     "about 5 minutes)...")
    started, tmp = time.monotonic(), weed.with_suffix(".partial")
    subprocess.run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp),
                    "github.com/seaweedfs/seaweedfs/weed"], cwd=BUILD_MODULE_DIR, env=env, check=True)
    tmp.rename(weed)  # only a complete binary ever gets the final name
    log("seaweedfs", f"built in {time.monotonic() - started:.0f}s into {weed.parent}")
    return weed


def data_dir() -> Path:
    return SERVER.dir


def _state(d: Path) -> dict[str, Any]:
    """Saved ports (master, volume, filer: kept so a restart finds its data) and the S3 keys."""
    f = d / "state.json"
    saved = dict(json.loads(f.read_text())) if f.exists() else {}
    return saved


def _save(d: Path, state: dict[str, Any]) -> None:
    f = d / "state.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.chmod(0o600)
    tmp.replace(f)


def _credentials(d: Path) -> dict[str, str]:
    f = d / "credentials.json"
    if f.exists():
        return dict(json.loads(f.read_text()))
    creds = {"access_key_id": "AKIA" + secrets.token_hex(8).upper(),
             "secret_access_key": secrets.token_urlsafe(30)}
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(creds))
    tmp.chmod(0o600)
    tmp.rename(f)
    return creds


def _s3_config(d: Path, creds: dict[str, str]) -> Path:
    """The S3 gateway's identities: ours only (anonymous requests are refused)."""
    cfg = d / "s3.json"
    cfg.write_text(json.dumps({"identities": [{
        "name": "assethub",
        "credentials": [{"accessKey": creds["access_key_id"], "secretKey": creds["secret_access_key"]}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))
    cfg.chmod(0o600)
    return cfg


#: the ports of the master, volume server and filer (HTTP and gRPC) and of the S3 gateway's gRPC,
#: each chosen free near its default once and kept, so that a restart finds its data and two
#: instances (tests, benches) never share one; all given to weed explicitly
_PORTS = {"master": 9333, "volume": 9340, "filer": 9350, "master_grpc": 19333,
          "volume_grpc": 19340, "filer_grpc": 19350, "s3_grpc": 18333}


def _ports(d: Path, s3_port: int) -> dict[str, int]:
    state = _state(d)
    ports = {k: int(v) for k, v in (state.get("ports") or {}).items() if k in _PORTS}
    taken = {s3_port, *ports.values()}
    for name, preferred in _PORTS.items():
        if name not in ports:
            port = preferred
            while (port := free_port(port)) in taken:
                port += 1
            ports[name] = port
            taken.add(port)
    if ports != state.get("ports"):
        _save(d, {**state, "ports": ports})
    return ports


def start(port: int = DEFAULT_PORT, timeout: float = 120,
          buckets: Iterable[str] = BUCKETS) -> ObjectStore:
    """Start SeaweedFS (or find it running), create ``buckets``; how to reach its S3 gateway."""
    weed = ensure_binary()
    d = data_dir()
    (d / "data").mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    creds = _credentials(d)
    cfg = _s3_config(d, creds)
    s3_port = SERVER.claim_port(None if "port" in _state(d) else free_port(port))
    ports = _ports(d, s3_port)
    (d / "logs").mkdir(exist_ok=True)
    # glog's files go to the home (its default is the system's temporary directory); what it
    # prints (its -alsologtostderr default) is in weed.out as well
    argv = [str(weed), f"-logdir={d / 'logs'}", "server", f"-dir={d / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
            "-s3", "-s3.port={port}", f"-s3.port.grpc={ports['s3_grpc']}", f"-s3.config={cfg}",
            # only the S3 API: no IAM API on its port (it would let anyone who reaches it manage
            # users), no Iceberg or Lance catalog listeners (fixed ports, unused here)
            "-s3.iam=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # small volumes, grown on demand: a test home must not reserve gigabytes
            "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-master.volumePreallocate=false",
            # one volume server, no peer to take its reads: on SIGTERM it need not keep serving
            # for 10 s after its last heartbeat before it flushes and closes its volumes
            "-volume.preStopSeconds=0",
            "-master.telemetry=false"]  # it would report cluster statistics to seaweedfs.com
    endpoint = SERVER.start(argv, timeout=timeout, port=s3_port)
    store = ObjectStore(endpoint, creds["access_key_id"], creds["secret_access_key"], data_dir=d)
    ensure_buckets(store, buckets, timeout=timeout)
    return store


def ensure_buckets(store: ObjectStore, buckets: Iterable[str], timeout: float = 60) -> None:
    """Create the buckets that do not exist (the gateway may answer before the filer is ready)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = store.client()
    deadline = time.monotonic() + timeout
    for bucket in buckets:
        while True:
            try:
                s3.head_bucket(Bucket=bucket)
                break
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchBucket", "NotFound"):
                    try:
                        s3.create_bucket(Bucket=bucket)
                        break
                    except ClientError as c:
                        if c.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou",
                                                                       "BucketAlreadyExists"):
                            break
                        if time.monotonic() > deadline:
                            raise
                elif time.monotonic() > deadline:
                    raise
            except BotoCoreError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)  # polling a server that is still starting, bounded by the deadline


def stop(timeout: float = 30) -> bool:
    return SERVER.stop(timeout)


def status() -> ObjectStore | None:
    d = data_dir()
    if SERVER.pid() is None or not (d / "credentials.json").exists() or not SERVER.healthy():
        return None
    creds = json.loads((d / "credentials.json").read_text())
    return ObjectStore(SERVER.url, creds["access_key_id"], creds["secret_access_key"], data_dir=d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.seaweedfs", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "start", "stop", "status", "env"])
    args = parser.parse_args(argv)
    if args.command == "build":
        print(ensure_binary())
    elif args.command == "start":
        store = start()
        print(f"SeaweedFS S3 is running at {store.endpoint} (data: {store.data_dir})")
    elif args.command == "stop":
        print("stopped" if stop() else "not running")
    elif args.command == "status":
        store = status()
        print(f"running at {store.endpoint}" if store else "not running")
        return 0 if store else 1
    else:
        store = status()
        if store is None:
            print("SeaweedFS is not running: python -m infra.seaweedfs start", file=sys.stderr)
            return 1
        for k, v in store.aws_env().items():
            print(f"export {k}={v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
