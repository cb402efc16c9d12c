"""Obtain, start and stop the lakeFS server that Asset Hub stores assets in.

    python -m infra.lakefs build     # lakefs + lakectl at the pinned version (cached)
    python -m infra.lakefs start     # idempotent: a second start finds the running server
    python -m infra.lakefs status
    python -m infra.lakefs stop
    python -m infra.lakefs env       # shell exports for lakectl / tests (prints secrets: local only)

Binaries come from PATH when they are the pinned version, else they are built from the Go
module ``github.com/treeverse/lakefs`` through the wrapper module in ``infra/lakefs-build``
(which repeats lakeFS's own ``replace`` line) and cached under ``~/.cache/assethub/bin``
(``$ASSETHUB_BIN_DIR``).

The server listens on loopback only, keeps its embedded KV store and local blockstore under
``$ASSETHUB_HOME/lakefs`` and is set up with generated credentials (never the quickstart
defaults), which are written to ``credentials.json`` with mode 0600. It runs as a
:class:`~infra._process.ManagedProcess` (its log: ``lakefs.out``).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assethub.triggers import HOOK_SECRET_ENV, LAKEFS_ENV_PREFIX
from infra._process import ManagedProcess, free_port, log

LAKEFS_VERSION = "1.86.0"
BUILD_MODULE_DIR = Path(__file__).resolve().parent / "lakefs-build"
DEFAULT_PORT = 8770


@dataclass(frozen=True)
class LakeFSInstance:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    data_dir: Path
    lakectl: Path
    # what lakeFS actions present to the Asset Hub hook: in lakeFS's environment (HOOK_SECRET_ENV)
    hook_secret: str = field(default="", repr=False)

    def lakectl_env(self) -> dict[str, str]:
        """Environment that points lakectl at this server without a config file."""
        return {
            "LAKECTL_SERVER_ENDPOINT_URL": self.endpoint,
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": self.access_key_id,
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


def _binary_version(path: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # "lakeFS version: 1.86.0" / "lakectl version: 1.86.0"
    for token in out.replace(":", " ").split():
        if token[:1].isdigit():
            return token
    return None


def bin_dir() -> Path:
    """Where built binaries are cached: apart from the data, so test homes share one build."""
    root = os.environ.get("ASSETHUB_BIN_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assethub" / "bin"
    return Path(root).expanduser() / f"lakefs-{LAKEFS_VERSION}"


def ensure_binaries() -> tuple[Path, Path]:
    """Return (lakefs, lakectl) at the pinned version, building them once if needed."""
    found = [shutil.which(name) for name in ("lakefs", "lakectl")]
    if all(found) and all(_binary_version(Path(p)) == LAKEFS_VERSION for p in found if p):
        return Path(found[0] or ""), Path(found[1] or "")
    target = bin_dir()
    lakefs, lakectl = target / "lakefs", target / "lakectl"
    if lakefs.exists() and lakectl.exists():
        return lakefs, lakectl
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            f"lakeFS {LAKEFS_VERSION} is not on PATH and Go is not installed to build it: "
            "install Go (https://go.dev/dl) or put lakefs/lakectl binaries on PATH"
        )
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    ldflags = f"-s -w -X github.com/treeverse/lakefs/pkg/version.Version={LAKEFS_VERSION}"
    started = time.monotonic()
    for name, out in (("lakefs", lakefs), ("lakectl", lakectl)):
        log("lakefs", f"building {name} {LAKEFS_VERSION} from the Go module (first time only)...")
        tmp = out.with_suffix(".partial")
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp),
             f"github.com/treeverse/lakefs/cmd/{name}"],
            cwd=BUILD_MODULE_DIR, env=env, check=True,
        )
        tmp.rename(out)  # only a complete binary ever gets the final name
    log("lakefs", f"built in {time.monotonic() - started:.0f}s into {target}")
    return lakefs, lakectl


SERVER = ManagedProcess("lakefs", default_port=DEFAULT_PORT, health_path="/api/v1/healthcheck",
                        pid_name="lakefs.pid", log_name="lakefs.out")


def data_dir() -> Path:
    return SERVER.dir


def _state(d: Path) -> dict[str, Any]:
    """The saved state (the port, the encryption secret, the hook secret); secrets are made at
    first start (the hook secret also for state saved before it existed)."""
    state = d / "state.json"
    saved = dict(json.loads(state.read_text())) if state.exists() else {}
    wanted = {"encrypt_secret": saved.get("encrypt_secret") or secrets.token_urlsafe(32),
              "hook_secret": saved.get("hook_secret") or secrets.token_urlsafe(32)}
    if any(saved.get(k) != v for k, v in wanted.items()):
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({**saved, **wanted}))
        tmp.chmod(0o600)
        tmp.rename(state)
    return {**saved, **wanted}


@dataclass(frozen=True)
class Backends:
    """Where lakeFS keeps its data and its metadata: its local blockstore and embedded KV store
    (the default, one machine), or an S3 object store and PostgreSQL (the distributed profile).

    The S3 keys and the PostgreSQL password go to lakeFS's environment, not to its config file."""

    s3_endpoint: str = ""  # "" = the local blockstore
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    postgres_dsn: str = field(default="", repr=False)  # "" = the embedded KV store; else postgres://...

    @property
    def kind(self) -> str:
        return f"{'s3' if self.s3_endpoint else 'local'}+{'postgres' if self.postgres_dsn else 'local'}"

    def config_lines(self, d: Path) -> list[str]:
        kv = (["database:", "  type: postgres"] if self.postgres_dsn else
              ["database:", "  type: local", "  local:", f"    path: {d / 'kv'}"])
        blocks = (["blockstore:", "  type: s3", "  s3:", f"    endpoint: {self.s3_endpoint}",
                   "    force_path_style: true", f"    region: {self.s3_region}",
                   "    discover_bucket_region: false",
                   # presigned URLs handed to clients (direct transfer) live this long
                   "    pre_signed_expiry: 15m"] if self.s3_endpoint else
                  ["blockstore:", "  type: local", "  local:", f"    path: {d / 'blockstore'}"])
        return kv + blocks

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.s3_endpoint:
            env |= {"LAKEFS_BLOCKSTORE_S3_CREDENTIALS_ACCESS_KEY_ID": self.s3_access_key_id,
                    "LAKEFS_BLOCKSTORE_S3_CREDENTIALS_SECRET_ACCESS_KEY": self.s3_secret_access_key}
        if self.postgres_dsn:
            env["LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING"] = self.postgres_dsn
        return env


LOCAL = Backends()


def _write_config(d: Path, port: int, encrypt_secret: str, backends: Backends = LOCAL) -> Path:
    cfg = d / "config.yaml"
    cfg.write_text(
        "\n".join(
            [
                f"listen_address: 127.0.0.1:{port}",
                *backends.config_lines(d),
                "committed:",
                "  local_cache:",
                f"    dir: {d / 'cache'}",
                "auth:",
                "  encrypt:",
                f"    secret_key: {encrypt_secret}",
                "gateways:",
                "  s3:",
                "    region: us-east-1",
                "stats:",
                "  enabled: false",
                "usage_report:",
                "  enabled: false",
                "email_subscription:",
                "  enabled: false",
                "security:",
                "  check_latest_version: false",
                "  audit_check_interval: 0s",
                # Actions may read only our variables of lakeFS's environment (the hook secret):
                # lakeFS's default prefix, LAKEFSACTION_, is wider. Lua may not call out.
                "actions:",
                "  enabled: true",
                "  lua:",
                "    net_http_enabled: false",
                "  env:",
                "    enabled: true",
                f"    prefix: {LAKEFS_ENV_PREFIX}",
                "logging:",  # to stdout, which is the log the managed process keeps
                "  level: WARN",
                "",
            ]
        )
    )
    cfg.chmod(0o600)
    return cfg


def _setup_admin(endpoint: str, d: Path) -> dict[str, str]:
    creds_file = d / "credentials.json"
    if creds_file.exists():
        return dict(json.loads(creds_file.read_text()))
    state = httpx.get(f"{endpoint}/api/v1/setup_lakefs", timeout=10).json()
    if state.get("state") == "initialized":
        raise SystemExit(
            f"lakeFS at {endpoint} is already set up but {creds_file} is missing: "
            f"stop it and remove {d} to start afresh"
        )
    creds = {
        "access_key_id": "AKIA" + secrets.token_hex(8).upper(),
        "secret_access_key": secrets.token_urlsafe(30),
    }
    resp = httpx.post(
        f"{endpoint}/api/v1/setup_lakefs",
        json={"username": "admin", "key": creds},
        timeout=30,
    )
    if resp.status_code not in (200, 201):
        raise SystemExit(f"lakeFS admin setup failed: HTTP {resp.status_code} {resp.text[:200]}")
    tmp = creds_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(creds))
    tmp.chmod(0o600)
    tmp.rename(creds_file)
    return creds


def start(port: int = DEFAULT_PORT, timeout: float = 60, backends: Backends = LOCAL) -> LakeFSInstance:
    """Start lakeFS (or find the running one) and return how to reach it; ``port`` is where
    it goes the first time (or a free port near it). A home's lakeFS keeps the backends it was
    set up with: asking for others is refused (its data would not be found)."""
    lakefs, lakectl = ensure_binaries()
    d = data_dir()
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    state = _state(d)
    saved = state.get("backends")
    if saved is None and (d / "credentials.json").exists():
        saved = LOCAL.kind  # set up before backends were recorded
    if saved is not None and saved != backends.kind:
        raise SystemExit(f"lakeFS in {d} was set up on {saved} storage, not {backends.kind}: use "
                         "another ASSETHUB_HOME for another profile (or remove that folder)")
    if saved is None:
        state = {**state, "backends": backends.kind}
        tmp = d / "state.tmp"
        tmp.write_text(json.dumps(state))
        tmp.chmod(0o600)
        tmp.rename(d / "state.json")
    port = SERVER.claim_port(None if "port" in state else free_port(port))
    cfg = _write_config(d, port, state["encrypt_secret"], backends)
    # the hook secret goes to lakeFS's environment, never to a file a user can read
    endpoint = SERVER.start([str(lakefs), "run", "--config", str(cfg)], timeout=timeout, port=port,
                            env={HOOK_SECRET_ENV: state["hook_secret"], **backends.env()})
    creds = _setup_admin(endpoint, d)
    return LakeFSInstance(endpoint, creds["access_key_id"], creds["secret_access_key"], d, lakectl,
                          state["hook_secret"])


def stop(timeout: float = 30) -> bool:
    """Stop the server started by :func:`start`; False when none was running."""
    return SERVER.stop(timeout)


def status() -> LakeFSInstance | None:
    d = data_dir()
    if SERVER.pid() is None or not (d / "credentials.json").exists() or not SERVER.healthy():
        return None
    creds = json.loads((d / "credentials.json").read_text())
    _, lakectl = ensure_binaries()
    return LakeFSInstance(SERVER.url, creds["access_key_id"], creds["secret_access_key"], d, lakectl,
                          _state(d)["hook_secret"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lakefs", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "start", "stop", "status", "env"])
    args = parser.parse_args(argv)
    if args.command == "build":
        for p in ensure_binaries():
            print(p)
    elif args.command == "start":
        inst = start()
        print(f"lakeFS {LAKEFS_VERSION} is running at {inst.endpoint} (data: {inst.data_dir})")
    elif args.command == "stop":
        print("stopped" if stop() else "not running")
    elif args.command == "status":
        inst = status()
        print(f"running at {inst.endpoint}" if inst else "not running")
        return 0 if inst else 1
    elif args.command == "env":
        inst = status()
        if inst is None:
            print("lakeFS is not running: python -m infra.lakefs start", file=sys.stderr)
            return 1
        for k, v in inst.lakectl_env().items():
            print(f"export {k}={v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
