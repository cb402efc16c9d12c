"""The embedded stack behind ``assethub up`` / ``assethub down``: lakeFS, the server, MLflow,
and Prefect (server and a process worker on the pool ``local``).

Everything listens on loopback and keeps its state under ``$ASSETHUB_HOME``. The server gets
the lakeFS credentials through its environment; the CLI gets only the admin's API token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from assethub import config


@dataclass(frozen=True)
class StackInfo:
    url: str
    lakefs_url: str
    config_file: Path | None
    mlflow_url: str = ""
    prefect_url: str = ""  # the Prefect UI (its API is at /api)


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def up(port: int = 8780, admin: str = "admin", timeout: float = 60) -> StackInfo:
    """Start lakeFS and the server (or find them running) and point the CLI at them."""
    from infra import lakefs, prefect
    from infra import mlflow as tracking

    tracking.start(wait=False)  # it takes a while: let it come up while lakeFS and the server do
    prefect.start_server(wait=False)
    lake = lakefs.start()
    work = config.home() / "server"
    work.mkdir(parents=True, exist_ok=True)
    pid_file, url = work / "server.pid", f"http://127.0.0.1:{port}"
    if _alive(pid_file) is None or not _healthy(url):
        if _alive(pid_file) is None:
            env = {
                **os.environ,
                "ASSETHUB_HOME": str(config.home()),
                "ASSETHUB_PORT": str(port),
                "ASSETHUB_ADMIN": admin,
                "ASSETHUB_LAKEFS_ENDPOINT": lake.endpoint,
                "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lake.access_key_id,
                "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lake.secret_access_key,
                "ASSETHUB_PREFECT_API_URL": prefect.api_url(),  # follows' triggers
            }
            with open(work / "server.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "assethub.server"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if _alive(pid_file) is None:
                tail = (work / "server.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"the Asset Hub server exited while starting:\n{tail}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the Asset Hub server did not answer within {timeout:.0f}s")
            time.sleep(0.2)
    saved = None
    token_file = work / "admin-token"
    if token_file.exists():
        current = config.load()
        if current.token is None or current.url != url:
            saved = config.save(config.ClientConfig(url, token_file.read_text().strip()))
    mlflow_url = tracking.wait()
    prefect_api = prefect.wait()
    # the worker runs jobs as the stack's admin, against this server and MLflow
    token = token_file.read_text().strip() if token_file.exists() else ""
    prefect.start_worker({"ASSETHUB_URL": url, "ASSETHUB_TOKEN": token, "MLFLOW_TRACKING_URI": mlflow_url,
                          "ASSETHUB_HOME": str(config.home())})
    return StackInfo(url, lake.endpoint, saved, mlflow_url, prefect_api.removesuffix("/api"))


def down() -> list[str]:
    """Stop the server, lakeFS and MLflow; returns what was stopped."""
    from infra import lakefs, prefect
    from infra import mlflow as tracking

    stopped = []
    if prefect.stop():
        stopped.append("prefect")
    pid_file = config.home() / "server" / "server.pid"
    pid = _alive(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _alive(pid_file) is None:
                break
            time.sleep(0.1)
        pid_file.unlink(missing_ok=True)
        stopped.append("server")
    if lakefs.stop():
        stopped.append("lakefs")
    if tracking.stop():
        stopped.append("mlflow")
    return stopped
