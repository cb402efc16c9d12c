"""The Prefect server of the embedded stack (SQLite under $ASSETHUB_HOME/prefect, on loopback)
and one process worker polling the work pool ``local``.

    python -m infra.prefect start | stop | status

Flow runs started by the worker inherit its environment: ASSETHUB_URL / ASSETHUB_TOKEN (the
service user's token under `assethub up`, never the admin's; each job switches to its run's own
token) and MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from assethub.config import home
from infra._process import ManagedProcess

SERVER = ManagedProcess("prefect", default_port=4210, health_path="/api/health")
# The worker's own health check server (`--with-healthcheck`): 200 while it polls its pool.
WORKER = ManagedProcess("prefect-worker", default_port=4230, health_path="/health")
POOL = "local"


def prefect_home() -> str:
    return str(home() / "prefect")


def base_env() -> dict[str, str]:
    """Settings every Prefect process of the stack shares (no phoning home, our home)."""
    return {"PREFECT_HOME": prefect_home(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "true",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}


def api_url() -> str:
    return SERVER.url + "/api"


def start_server(timeout: float = 120, wait: bool = True, database_url: str = "") -> str:
    """Start the Prefect server (or find it running); its API URL. ``database_url``: its
    database (``postgresql+asyncpg://...``, the distributed profile); "" SQLite in its home."""
    port = SERVER.claim_port()  # before api_url(): the UI is told where the API is
    argv = [sys.executable, "-m", "infra._prefect_server", "--host", "127.0.0.1", "--port", "{port}"]
    # the UI in the browser calls this API (Prefect's default would be port 4200)
    env = {**base_env(), "PREFECT_UI_API_URL": api_url()}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    SERVER.start(argv, env=env, timeout=timeout, wait=wait, port=port)
    return api_url()


def start_worker(env: Mapping[str, str] | None = None, timeout: float = 120,
                 pool: str = POOL, api: str = "") -> str:
    """Start the process worker on ``pool`` (the server must run); its health URL.

    ``env`` is added to the worker's environment and so to every flow run it starts; ``api``
    is the Prefect API it polls (default: the stack's own server)."""
    port = WORKER.claim_port()  # the worker is told its health port in its environment
    argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
            "--with-healthcheck", "--name", f"assethub-{pool}"]
    worker_env = {**base_env(), "PREFECT_API_URL": api or api_url(),
                  "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                  "PREFECT_WORKER_WEBSERVER_PORT": str(port),
                  # poll often: a run should start within seconds of being scheduled
                  "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
                  "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
                  # flow runs send heartbeats (Prefect's minimum interval): the server's crash
                  # check tells a lost worker by their silence (ASSETHUB_WORKER_LOST_SECONDS)
                  "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
                  "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
                  # results are kept (under PREFECT_HOME) so that `--deployment` can print them
                  "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                  **(env or {})}
    return WORKER.start(argv, env=worker_env, timeout=timeout, port=port)


def start(env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """The server and the worker; the API URL."""
    url = start_server(timeout=timeout)
    start_worker(env, timeout=timeout)
    return url


def wait(timeout: float = 120) -> str:
    SERVER.wait(timeout)
    return api_url()


def stop() -> bool:
    """Stop the worker (and its flow runs), then the server; False when neither ran."""
    worker = WORKER.stop()
    server = SERVER.stop()
    return worker or server


def status() -> str | None:
    return api_url() if SERVER.pid() is not None and SERVER.healthy() else None


def worker_running() -> bool:
    return WORKER.pid() is not None and WORKER.healthy()


def job_env() -> dict[str, str]:
    """What the worker passes on to flow runs from the caller's environment."""
    keys = ("ASSETHUB_URL", "ASSETHUB_TOKEN", "ASSETHUB_HOME", "MLFLOW_TRACKING_URI", "PATH")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.prefect", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.command == "start":
        print(start(job_env()))
    elif args.command == "stop":
        print("stopped" if stop() else "not running")
    else:
        url = status()
        print(f"{url} (worker {'running' if worker_running() else 'not running'})" if url
              else "not running")
        return 0 if url else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
