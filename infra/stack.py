"""The stack behind ``assethub up`` / ``assethub down``: lakeFS, the Asset Hub server,
MLflow, and Prefect (server and a process worker on the pool ``local``); in the distributed
profile also PostgreSQL and the S3 object store (SeaweedFS), each piece on its production
backend or an existing service given by configuration (infra/profiles.py, docs/distributed.md).

Each runs as a :class:`~infra._process.ManagedProcess`: on loopback, with its state and its log
under ``$ASSETHUB_HOME/<component>``. The server gets the lakeFS credentials through its
environment, and the secret lakeFS's actions present to its hook (which lakeFS holds in its own
environment); the CLI gets only the admin's API token, the Prefect worker only the service
user's (``prefect``, no admin, no shares by default).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from assethub import config
from infra import lakefs, postgres, prefect, profiles, seaweedfs
from infra import mlflow as tracking
from infra._process import ManagedProcess, log
from infra.profiles import DISTRIBUTED, Settings

SERVER = ManagedProcess("server", default_port=8780, health_path="/api/v1/health",
                        log_name="server.log")

# what `assethub logs COMPONENT` knows, in the order the stack starts them
COMPONENTS: dict[str, ManagedProcess] = {
    "lakefs": lakefs.SERVER, "server": SERVER, "mlflow": tracking.SERVER,
    "prefect-server": prefect.SERVER, "prefect-worker": prefect.WORKER,
}
#: the distributed profile's own backing services (not ManagedProcess: PostgreSQL is pg_ctl's)
BACKING = ("postgres", "seaweedfs")


@dataclass(frozen=True)
class StackInfo:
    url: str
    lakefs_url: str
    config_file: Path | None
    mlflow_url: str = ""
    prefect_url: str = ""  # the Prefect UI (its API is at /api)
    logs: dict[str, Path] = field(default_factory=dict)  # component -> its log file
    profile: str = profiles.EMBEDDED
    external: dict[str, str] = field(default_factory=dict)  # component -> where (given, not started)
    s3_endpoint: str = ""


def profile() -> str:
    """The profile this home was set up with (embedded when never brought up)."""
    return profiles.saved_profile(config.home()) or profiles.EMBEDDED


def log_files() -> dict[str, Path]:
    """Each component's log file (it may not exist yet); the home's profile says which."""
    files = {name: p.log_file for name, p in COMPONENTS.items()}
    if profile() == DISTRIBUTED:
        external = profiles.saved(config.home()).get("external", {})
        files = {"postgres": postgres.log_file(), "seaweedfs": seaweedfs.SERVER.log_file, **files}
        files = {k: v for k, v in files.items() if k not in external}
    return files


def up(port: int = 8780, admin: str = "admin", timeout: float = 60,
       profile_name: str | None = None) -> StackInfo:
    """Start every component (or find it running) and point the CLI at the server.

    ``profile_name``: embedded or distributed (else ASSETHUB_PROFILE, else the home's)."""
    settings = profiles.from_env(profile=profile_name, saved=profiles.saved_profile(config.home()))
    profiles.remember(config.home(), settings)
    running = _running()
    try:
        if settings.profile == DISTRIBUTED:
            return _up_distributed(settings, port, admin, timeout)
        return _up_embedded(port, admin, timeout)
    except BaseException:
        # a piece failed (or the user pressed ^C): what this call started goes, what ran before stays
        _stop_started_since(running)
        raise


def _running() -> dict[str, bool]:
    """Which of the home's pieces run now (their processes, healthy or not)."""
    found = {name: p.pid() is not None for name, p in _STOP_ORDER.items()}
    found["postgres"] = postgres.status() is not None
    return found


# the pieces in the order they are stopped: those that use the others first
_STOP_ORDER: dict[str, ManagedProcess] = {
    "prefect-worker": prefect.WORKER, "server": SERVER, "prefect-server": prefect.SERVER,
    "mlflow": tracking.SERVER, "lakefs": lakefs.SERVER, "seaweedfs": seaweedfs.SERVER,
}


def _stop_started_since(before: dict[str, bool]) -> list[str]:
    """Stop what runs now and did not in ``before`` (the state when `up` began); their names."""
    stopped = [name for name, p in _STOP_ORDER.items()
               if not before.get(name) and p.pid() is not None and p.stop()]
    if not before.get("postgres"):
        try:
            if postgres.status() is not None and postgres.stop():
                stopped.append("postgres")
        except (OSError, SystemExit) as e:  # not installed, or pg_ctl refused: say so, keep the cause
            log("stack", f"could not stop PostgreSQL: {e}")
    if stopped:
        log("stack", f"start failed: stopped what it had started ({', '.join(stopped)})")
    return stopped


def _up_embedded(port: int, admin: str, timeout: float) -> StackInfo:
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
    url, saved = _start_server(env, port, timeout)
    mlflow_url = tracking.wait()
    prefect_api = prefect.wait()
    _start_worker(url, mlflow_url, prefect_api)
    return StackInfo(url, lake.endpoint, saved, mlflow_url, prefect_api.removesuffix("/api"), log_files())


def _start_server(env: dict[str, str], port: int, timeout: float) -> tuple[str, Path | None]:
    """The Asset Hub server; signs the CLI in as the admin (its URL, the config file written)."""
    url = SERVER.start([sys.executable, "-m", "assethub.server"], env=env, timeout=timeout, port=port)
    saved = None
    token_file = SERVER.dir / "admin-token"
    if token_file.exists():
        current = config.load()
        if current.token is None or current.url != url or not _accepted(url, current.token):
            saved = config.save(config.ClientConfig(url, token_file.read_text().strip()))
    return url, saved


def _start_worker(url: str, mlflow_url: str, prefect_api: str) -> None:
    # the worker runs jobs as the service user (never the admin), against this server and MLflow:
    # a job acts for whoever registered its run with the run's own token; a run started in the
    # Prefect UI acts as the service user, with what an admin shared with it
    service_file = SERVER.dir / "service-token"
    token = service_file.read_text().strip() if service_file.exists() else ""
    prefect.start_worker({"ASSETHUB_URL": url, "ASSETHUB_TOKEN": token, "MLFLOW_TRACKING_URI": mlflow_url,
                          "ASSETHUB_HOME": str(config.home())}, api=prefect_api)


def _up_distributed(settings: Settings, port: int, admin: str, timeout: float) -> StackInfo:
    """PostgreSQL, the S3 store, lakeFS on both, the catalog, Prefect and MLflow on PostgreSQL,
    MLflow's artifacts on S3: each ours unless the settings point at an existing one."""
    # the S3 keys and the PostgreSQL server's password go only where they are needed (lakeFS,
    # MLflow; the databases' own URLs), never on to the server, the worker or its jobs
    for secret in ("ASSETHUB_S3_ACCESS_KEY_ID", "ASSETHUB_S3_SECRET_ACCESS_KEY", "ASSETHUB_POSTGRES_URL"):
        os.environ.pop(secret, None)
    if settings.postgres_url:
        def database(name: str) -> str:
            return postgres.server_database(settings.postgres_url, name)
    else:
        postgres.start()

        def database(name: str) -> str:
            return postgres.database(name)
    if settings.s3_endpoint:
        store = seaweedfs.ObjectStore(settings.s3_endpoint, settings.s3_access_key_id,
                                      settings.s3_secret_access_key, settings.s3_region)
    else:
        store = seaweedfs.start(buckets=(settings.s3_bucket, settings.mlflow_bucket))
    # MLflow and Prefect take a while: let them come up while lakeFS and the server do
    if not settings.mlflow_tracking_uri:
        tracking.start(wait=False, backend_store_uri=database("mlflow"),
                       artifacts_destination=settings.mlflow_artifacts,
                       env=store.aws_env())
    if not settings.prefect_api_url:
        prefect.start_server(wait=False, database_url=database("prefect").replace(
            "postgresql+psycopg://", "postgresql+asyncpg://", 1))
    if settings.lakefs_endpoint:
        lake_endpoint, lake_key, lake_secret = (settings.lakefs_endpoint, settings.lakefs_access_key_id,
                                                settings.lakefs_secret_access_key)
        hook_secret = settings.hook_secret
    else:
        lake = lakefs.start(backends=lakefs.Backends(
            s3_endpoint=store.endpoint, s3_access_key_id=store.access_key_id,
            s3_secret_access_key=store.secret_access_key, s3_region=store.region,
            postgres_dsn=postgres.libpq_url(database("lakefs"))), timeout=max(timeout, 120))
        lake_endpoint, lake_key, lake_secret, hook_secret = (lake.endpoint, lake.access_key_id,
                                                             lake.secret_access_key, lake.hook_secret)
    mlflow_url = settings.mlflow_tracking_uri or tracking.SERVER.url
    prefect_api = settings.prefect_api_url or prefect.api_url()
    env = {
        "ASSETHUB_HOME": str(config.home()),
        "ASSETHUB_PORT": str(port),
        "ASSETHUB_ADMIN": admin,
        "ASSETHUB_CATALOG_URL": settings.catalog_url or database("assethub"),
        "ASSETHUB_STORAGE_NAMESPACE": settings.storage_namespace,
        "ASSETHUB_LAKEFS_ENDPOINT": lake_endpoint,
        "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lake_key,
        "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lake_secret,
        "ASSETHUB_HOOK_SECRET": hook_secret,
        "ASSETHUB_PREFECT_API_URL": prefect_api,
        "ASSETHUB_MLFLOW_UI_URL": mlflow_url,
        "ASSETHUB_PREFECT_UI_URL": prefect_api.removesuffix("/api"),
    }
    url, saved = _start_server(env, port, timeout)
    if not settings.mlflow_tracking_uri:
        tracking.wait(max(timeout, 180))
    if not settings.prefect_api_url:
        prefect.wait(max(timeout, 180))
    _start_worker(url, mlflow_url, prefect_api)
    return StackInfo(url, lake_endpoint, saved, mlflow_url, prefect_api.removesuffix("/api"), log_files(),
                     DISTRIBUTED, settings.external(), store.endpoint)


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
    """Stop Prefect, the server, lakeFS and MLflow (and in the distributed profile SeaweedFS and
    PostgreSQL); returns what was stopped. A piece given from outside has no pid here: untouched.

    The pieces stop together, each waiting out its own shutdown (one at a time, their graces
    added up): first those that use the others (Prefect stops its worker before its server),
    then what they stored in (the object store, the database), so none loses its backend while
    it still runs."""
    stopped = _together({"prefect": prefect.stop, "server": SERVER.stop, "lakefs": lakefs.stop,
                         "mlflow": tracking.stop})
    if profile() == DISTRIBUTED:
        stopped += _together({"seaweedfs": seaweedfs.stop,
                              "postgres": lambda: postgres.status() is not None and postgres.stop()})
    return stopped


def _together(stops: dict[str, Callable[[], bool]]) -> list[str]:
    """Run each stop at once; the names of those that stopped something, in the given order."""
    with ThreadPoolExecutor(max_workers=len(stops)) as pool:
        done = {name: pool.submit(stop) for name, stop in stops.items()}
        return [name for name, future in done.items() if future.result()]


def status() -> dict[str, str]:
    """Each component of the home's profile: its URL when running, "external <where>" when given
    from outside, else "not running"."""
    def of(p: ManagedProcess) -> str:
        return p.url if p.pid() is not None and p.healthy() else "not running"

    found = {name: of(p) for name, p in COMPONENTS.items()}
    if profile() == DISTRIBUTED:
        pg = postgres.status()
        found = {"postgres": pg.split("@", 1)[1] if pg else "not running",
                 "seaweedfs": of(seaweedfs.SERVER), **found}
        for name, where in profiles.saved(config.home()).get("external", {}).items():
            found[{"s3": "seaweedfs"}.get(name, name)] = f"external {where}"
    return found
