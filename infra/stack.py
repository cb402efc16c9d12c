"""The embedded stack behind ``assethub up`` / ``assethub down``: lakeFS, the Asset Hub server,
MLflow, and Prefect (server and a process worker on the pool ``local``).

Each runs as a :class:`~infra._process.ManagedProcess`: on loopback, with its state and its log
under ``$ASSETHUB_HOME/<component>``. The server gets the lakeFS credentials through its
environment, and the secret lakeFS's actions present to its hook (which lakeFS holds in its own
environment); the CLI gets only the admin's API token, the Prefect worker only the service
user's (``prefect``, no admin, no shares by default).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from assethub import config
from infra import lakefs, prefect
from infra import mlflow as tracking
from infra._process import ManagedProcess

SERVER = ManagedProcess("server", default_port=8780, health_path="/api/v1/health",
                        log_name="server.log")

# what `assethub logs COMPONENT` knows, in the order the stack starts them
COMPONENTS: dict[str, ManagedProcess] = {
    "lakefs": lakefs.SERVER, "server": SERVER, "mlflow": tracking.SERVER,
    "prefect-server": prefect.SERVER, "prefect-worker": prefect.WORKER,
}


@dataclass(frozen=True)
class StackInfo:
    url: str
    lakefs_url: str
    config_file: Path | None
    mlflow_url: str = ""
    prefect_url: str = ""  # the Prefect UI (its API is at /api)
    logs: dict[str, Path] = field(default_factory=dict)  # component -> its log file


def log_files() -> dict[str, Path]:
    """Each component's log file (it may not exist yet)."""
    return {name: p.log_file for name, p in COMPONENTS.items()}


def up(port: int = 8780, admin: str = "admin", timeout: float = 60) -> StackInfo:
    """Start every component (or find it running) and point the CLI at the server."""
    mlflow_ui = tracking.start(wait=False)  # it takes a while: let it come up while lakeFS and the server do
    prefect.start_server(wait=False)
    lake = lakefs.start()
    env = {
        "ASSETHUB_HOME": str(config.home()),
        "ASSETHUB_PORT": str(port),
        "ASSETHUB_ADMIN": admin,
        "ASSETHUB_LAKEFS_ENDPOINT": lake.endpoint,
        "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lake.access_key_id,
        "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lake.secret_access_key,
        "ASSETHUB_HOOK_SECRET": lake.hook_secret,  # lakeFS has it in its environment too
        "ASSETHUB_PREFECT_API_URL": prefect.api_url(),  # follows' triggers
        # where the web console links to (runs' pages in the other products' UIs)
        "ASSETHUB_MLFLOW_UI_URL": mlflow_ui,
        "ASSETHUB_PREFECT_UI_URL": prefect.api_url().removesuffix("/api"),
    }
    url = SERVER.start([sys.executable, "-m", "assethub.server"], env=env, timeout=timeout, port=port)
    saved = None
    token_file = SERVER.dir / "admin-token"
    if token_file.exists():
        current = config.load()
        if current.token is None or current.url != url or not _accepted(url, current.token):
            saved = config.save(config.ClientConfig(url, token_file.read_text().strip()))
    mlflow_url = tracking.wait()
    prefect_api = prefect.wait()
    # the worker runs jobs as the service user (never the admin), against this server and MLflow:
    # a job acts for whoever registered its run with the run's own token; a run started in the
    # Prefect UI acts as the service user, with what an admin shared with it
    service_file = SERVER.dir / "service-token"
    token = service_file.read_text().strip() if service_file.exists() else ""
    prefect.start_worker({"ASSETHUB_URL": url, "ASSETHUB_TOKEN": token, "MLFLOW_TRACKING_URI": mlflow_url,
                          "ASSETHUB_HOME": str(config.home())})
    return StackInfo(url, lake.endpoint, saved, mlflow_url, prefect_api.removesuffix("/api"), log_files())


def _accepted(url: str, token: str) -> bool:
    """Whether the server knows the saved token: after `make clean-stack` (a new home, a new
    admin) the saved one is stale, and the CLI would answer "unknown API token" until `login`."""
    import httpx

    try:
        r = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError:
        return True  # cannot tell: keep what the user saved
    return r.status_code != 401


def down() -> list[str]:
    """Stop Prefect, the server, lakeFS and MLflow; returns what was stopped."""
    stopped = []
    if prefect.stop():
        stopped.append("prefect")
    if SERVER.stop():
        stopped.append("server")
    if lakefs.stop():
        stopped.append("lakefs")
    if tracking.stop():
        stopped.append("mlflow")
    return stopped
