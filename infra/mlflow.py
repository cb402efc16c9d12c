"""The MLflow tracking server of the stack, on loopback. Embedded: SQLite for runs, a local
folder for artifacts. Distributed: runs in a PostgreSQL database (``postgresql+psycopg://``) and
artifacts in an S3 bucket; the S3 endpoint and keys are in MLflow's environment only. Either way
the server proxies artifacts (``--artifacts-destination``), so clients and jobs need no
filesystem or S3 access.

    python -m infra.mlflow start | stop | status
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from infra._process import ManagedProcess

SERVER = ManagedProcess("mlflow", default_port=8781, health_path="/health")


def start(timeout: float = 120, wait: bool = True, *, backend_store_uri: str = "",
          artifacts_destination: str = "", env: Mapping[str, str] | None = None) -> str:
    """Start the tracking server (or find the running one); its URL. ``wait=False`` only
    launches it (then :func:`wait`). ``backend_store_uri`` / ``artifacts_destination`` default
    to SQLite and a folder in the home; ``env`` goes to the server only (the S3 keys)."""
    d = SERVER.dir
    d.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_store_uri or f"sqlite:///{d / 'mlflow.db'}",
            "--artifacts-destination", artifacts_destination or (d / "artifacts").as_uri(),
            "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    # The job runner (GenAI evaluation jobs: a runner and several huey consumers) is not
    # used here and costs more CPU and memory than the tracking server itself.
    return SERVER.start(argv, env={"MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1",
                                   "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})},
                        timeout=timeout, wait=wait)


def wait(timeout: float = 120) -> str:
    return SERVER.wait(timeout)


def stop() -> bool:
    return SERVER.stop()


def status() -> str | None:
    return SERVER.url if SERVER.pid() is not None and SERVER.healthy() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.mlflow", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.command == "start":
        print(start())
    elif args.command == "stop":
        print("stopped" if stop() else "not running")
    else:
        url = status()
        print(url or "not running")
        return 0 if url else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
