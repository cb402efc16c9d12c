"""The distributed profile for the tests: `assethub up --profile distributed` in a home of its
own (PostgreSQL, SeaweedFS, lakeFS on S3 + PostgreSQL, the catalog, Prefect and MLflow on
PostgreSQL, MLflow's artifacts on S3, the server and a Prefect worker: all real processes), once
per session and only when a test asks for ``distributed_stack``; `assethub down` after.

The stack runs as the CLI starts it, in a subprocess: none of its state is this process's (the
embedded fixtures keep their own ASSETHUB_HOME). Its logs are under the session's base
temporary directory, so the log gate reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: what must not leak from the test process into the stack (each would point a piece elsewhere)
_OUTSIDE = ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "ASSETHUB_URL", "ASSETHUB_TOKEN", "ASSETHUB_PROFILE",
            "ASSETHUB_CATALOG_URL", "ASSETHUB_POSTGRES_URL", "ASSETHUB_STORAGE_NAMESPACE",
            "ASSETHUB_LAKEFS_ENDPOINT", "ASSETHUB_LAKEFS_ACCESS_KEY_ID", "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY",
            "ASSETHUB_S3_ENDPOINT", "ASSETHUB_S3_ACCESS_KEY_ID", "ASSETHUB_S3_SECRET_ACCESS_KEY",
            "ASSETHUB_S3_BUCKET", "ASSETHUB_MLFLOW_ARTIFACTS", "ASSETHUB_HOOK_SECRET")


@contextmanager
def in_home(home: Path) -> Iterator[None]:
    """Read (or stop, start) the stack's pieces in ``home`` from this process, briefly."""
    old = os.environ.get("ASSETHUB_HOME")
    os.environ["ASSETHUB_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ASSETHUB_HOME", None)
        else:
            os.environ["ASSETHUB_HOME"] = old


@dataclass
class DistributedStack:
    home: Path
    url: str  # the Asset Hub server
    admin_token: str
    lakefs: str
    mlflow: str
    prefect_api: str
    postgres_url: str  # the cluster's superuser, database ``assethub`` (the catalog)
    store: Any  # infra.seaweedfs.ObjectStore
    env: dict[str, str] = field(repr=False, default_factory=dict)  # the CLI's, for this home

    def assethub(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """The `assethub` command of this environment, on this stack's home."""
        return subprocess.run([str(Path(sys.executable).parent / "assethub"), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def database(self, name: str) -> str:
        """The libpq URL of database ``name`` on the stack's PostgreSQL."""
        from infra.postgres import libpq_url

        return libpq_url(self.postgres_url).rsplit("/", 1)[0] + f"/{name}"

    def tables(self, database: str) -> set[str]:
        import psycopg

        with psycopg.connect(self.database(database), connect_timeout=10) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        return {r[0] for r in rows}

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Key -> size of every object in ``bucket`` (boto3, straight to the object store)."""
        s3 = self.store.client()
        found: dict[str, int] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found |= {o["Key"]: int(o["Size"]) for o in page.get("Contents", [])}
        return found


def volumes(stack: DistributedStack) -> set[int]:
    """The volume ids SeaweedFS's master knows now (its /vol/status): after a restart a volume
    is readable once its volume server has reported it again."""
    import httpx

    master = json.loads((stack.home / "seaweedfs" / "state.json").read_text())["ports"]["master"]
    try:
        tree = httpx.get(f"http://127.0.0.1:{master}/vol/status", timeout=5).json().get("Volumes", {})
    except (httpx.HTTPError, ValueError):
        return set()
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("Id"), int):
                found.add(node["Id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


def _kernel_ports(home: Path) -> None:
    """SeaweedFS's ports picked by the kernel, as the other components' of the tests, saved where
    it keeps them. Near its defaults (8333, 9333, ...) they would be the ports another stack on
    this machine takes while the outage test has this one stopped, and its restart would fail."""
    from infra import seaweedfs
    from tests.conftest import free_port

    d = home / "seaweedfs"
    d.mkdir(mode=0o700, parents=True)
    picked: list[int] = []
    while len(picked) < len(seaweedfs._PORTS) + 1:  # + the S3 gateway's
        if (port := free_port()) not in picked:
            picked.append(port)
    (d / "state.json").write_text(json.dumps({"port": picked[0],
                                              "ports": dict(zip(seaweedfs._PORTS, picked[1:], strict=True))}))


def start(home: Path, port: int) -> DistributedStack:
    from infra import lakefs, postgres, prefect, seaweedfs
    from infra import mlflow as tracking

    env = {k: v for k, v in os.environ.items() if k not in _OUTSIDE}
    env |= {"ASSETHUB_HOME": str(home), "ASSETHUB_CONFIG": str(home / "cli-config.json"),
            "ASSETHUB_PROFILE": "distributed"}  # the variable, where `make up-distributed` says --profile
    stack = DistributedStack(home, "", "", "", "", "", "", None, env)
    _kernel_ports(home)
    done = stack.assethub("up", "--port", str(port), timeout=900)
    if done.returncode != 0:
        stop(stack)  # what came up before the failure must not outlive the test
        raise RuntimeError(f"assethub up --profile distributed failed ({done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    saved = json.loads((home / "cli-config.json").read_text())
    with in_home(home):
        store = seaweedfs.status()
        lake = lakefs.status()
        pg = postgres.status()
        assert store is not None and lake is not None and pg is not None, done.stderr
        stack.url, stack.admin_token = saved["url"], saved["token"]
        stack.lakefs, stack.mlflow, stack.prefect_api = lake.endpoint, tracking.SERVER.url, prefect.api_url()
        stack.postgres_url, stack.store = pg, store
    return stack


def stop(stack: DistributedStack) -> None:
    from infra import postgres

    try:
        stack.assethub("down", timeout=300)
    finally:
        with in_home(stack.home):
            postgres.destroy()  # as root its cluster is outside the home: remove it
