"""The Asset Hub server: settings, wiring and the ``assethub server`` entry point.

:func:`build_hub` is the composition root: it makes the catalog and storage and wires the
protocols the core defines to their implementations, which live above the core and are found
through entry points (:mod:`assethub.plugins`) — the follow triggers to Prefect's
(``deployments.triggers``) unless ``ASSETHUB_FOLLOW_TRIGGERS`` names another (or ``none``), and
the job launcher to Prefect's (``deployments.launcher``) unless ``ASSETHUB_JOB_LAUNCHER`` does.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assethub import config
from assethub.hub import CatalogLocator, Hub, Limits, Principal
from assethub.server.app import create_app
from assethub.triggers import LakeFSHook, TriggersUnavailable

__all__ = ["ServerSettings", "build_hub", "create_app", "serve"]


@dataclass(frozen=True)
class ServerSettings:
    """Where the server keeps its state and how it reaches lakeFS (never sent to clients)."""

    home: Path
    catalog_url: str
    lakefs_endpoint: str
    lakefs_access_key_id: str
    lakefs_secret_access_key: str
    host: str = "127.0.0.1"
    port: int = 8780
    admin: str = "admin"
    follow_triggers: str = ""  # an ``assethub.follow_triggers`` entry point; "" the installed one
    job_launcher: str = ""  # an ``assethub.job_launchers`` entry point; "" the installed one
    # the most one uploaded file / one imported archive may hold (ASSETHUB_MAX_UPLOAD_BYTES,
    # ASSETHUB_MAX_ARCHIVE_BYTES, ASSETHUB_MAX_ARCHIVE_FILES)
    limits: Limits = field(default_factory=Limits)
    # the secret lakeFS's actions present to the hook (lakeFS holds it in its environment as
    # assethub.triggers.HOOK_SECRET_ENV); "": no actions are installed and the hook refuses all
    hook_secret: str = field(default="", repr=False)
    # how lakeFS reaches this server (its actions call the hook there); "": the bind address
    hook_url: str = ""
    # where new repositories keep their objects (ASSETHUB_STORAGE_NAMESPACE): lakeFS's local
    # blockstore, or a bucket and prefix of its S3 blockstore (``s3://assethub-data/repos``)
    storage_namespace: str = "local://assethub"

    def hook_base_url(self) -> str:
        """Where lakeFS's actions call this server: ``hook_url``, else the address it binds
        (a wildcard bind is reached on loopback). Never taken from a request."""
        if self.hook_url:
            return self.hook_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @classmethod
    def from_env(cls) -> ServerSettings:
        home = config.home()
        missing = [k for k in ("ASSETHUB_LAKEFS_ENDPOINT", "ASSETHUB_LAKEFS_ACCESS_KEY_ID",
                               "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY") if not os.environ.get(k)]
        if missing:
            raise SystemExit(f"set {', '.join(missing)} (or use `assethub up`, which does)")
        return cls(
            home=home,
            catalog_url=os.environ.get("ASSETHUB_CATALOG_URL")
            or f"sqlite:///{home / 'server' / 'catalog.db'}",
            lakefs_endpoint=os.environ["ASSETHUB_LAKEFS_ENDPOINT"],
            lakefs_access_key_id=os.environ["ASSETHUB_LAKEFS_ACCESS_KEY_ID"],
            lakefs_secret_access_key=os.environ["ASSETHUB_LAKEFS_SECRET_ACCESS_KEY"],
            host=os.environ.get("ASSETHUB_HOST", "127.0.0.1"),
            port=int(os.environ.get("ASSETHUB_PORT", "8780")),
            admin=os.environ.get("ASSETHUB_ADMIN", "admin"),
            follow_triggers=os.environ.get("ASSETHUB_FOLLOW_TRIGGERS", ""),
            job_launcher=os.environ.get("ASSETHUB_JOB_LAUNCHER", ""),
            limits=Limits(**{name: int(os.environ[f"ASSETHUB_{name.upper()}"])
                             for name in ("max_upload_bytes", "max_archive_bytes", "max_archive_files")
                             if os.environ.get(f"ASSETHUB_{name.upper()}")}),
            hook_secret=os.environ.get("ASSETHUB_HOOK_SECRET", ""),
            hook_url=os.environ.get("ASSETHUB_HOOK_URL", ""),
            storage_namespace=os.environ.get("ASSETHUB_STORAGE_NAMESPACE") or "local://assethub",
        )


def build_hub(settings: ServerSettings) -> Hub:
    from assethub import plugins
    from assethub.catalog import Catalog
    from assethub.storage import Storage

    work = settings.home / "server"
    work.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.catalog_url)
    catalog.migrate()
    storage = Storage(settings.lakefs_endpoint, settings.lakefs_access_key_id,
                      settings.lakefs_secret_access_key, cache_dir=work / "cache",
                      namespace_root=settings.storage_namespace,
                      locate=CatalogLocator(catalog))  # the catalog owns path -> repository
    return Hub(catalog, storage, work_dir=work, limits=settings.limits,
               follow_triggers=plugins.follow_triggers(settings.follow_triggers),
               lakefs_hook=LakeFSHook(settings.hook_base_url(), settings.hook_secret),
               job_launcher=plugins.job_launcher(settings.job_launcher))


#: how often the server looks for runs whose flow run ended without them (ASSETHUB_CRASH_CHECK_SECONDS)
CRASH_CHECK_SECONDS = 20.0
#: a running flow run silent this long (no heartbeat) lost its worker (ASSETHUB_WORKER_LOST_SECONDS):
#: a beat missed at the workers' PREFECT_FLOWS_HEARTBEAT_FREQUENCY (30 s as `assethub up` starts
#: them), so with the check every 20 s a lost worker's run is recorded within a minute of its end
WORKER_LOST_SECONDS = 50.0
#: a run pending this long with no flow run never started (ASSETHUB_NEVER_STARTED_SECONDS)
NEVER_STARTED_SECONDS = 3600.0


#: the advisory locks that make one server among the replicas on a catalog do the work
CRASH_CHECK_LEADER = "assethub.record-crashes"
CLEANUP_LEADER = "assethub.cleanup-stale-writes"


def record_crashes_every(hub: Hub, seconds: float, stop: threading.Event, *,
                         lost_after: float | None = WORKER_LOST_SECONDS,
                         never_started_after: float | None = NEVER_STARTED_SECONDS) -> None:
    """Until ``stop`` is set, every ``seconds``: mark ``crashed`` the pending and running runs
    whose flow run crashed, was cancelled or failed, or whose worker was lost (no heartbeat for
    ``lost_after`` s), as the follow triggers' orchestrator tells (a run's flow run is the
    orchestrator's), and the runs pending ``never_started_after`` s without a flow run; their
    retrain claims are released. Without an orchestrator only the latter; an error is logged and
    the next round tries again.

    With several servers on one catalog only one of them does it: the one holding the
    catalog's leadership :data:`CRASH_CHECK_LEADER` (a PostgreSQL advisory lock); the others
    try to take it every ``seconds``, so when the leader dies another takes over."""
    triggers = hub.follow_triggers
    system = Principal("assethub-server", is_admin=True)
    log = logging.getLogger(__name__)

    def ended(ids: Sequence[str]) -> Mapping[str, str]:
        try:
            return triggers.ended_flow_runs(ids, lost_after)
        except TriggersUnavailable:  # no orchestrator to ask
            return {}

    last = ""

    def note(e: Exception, what: str) -> None:
        nonlocal last
        why = f"{type(e).__name__}: {e}"
        if why != last:  # once per cause, not every round of an outage
            log.warning("%s failed (%s); retrying every %.0f s", what, why, seconds)
        last = why

    while not stop.is_set():
        try:
            with hub.catalog.leadership(CRASH_CHECK_LEADER) as leading:
                while leading() and not stop.wait(seconds):
                    try:
                        hub.record_crashes(system, ended, never_started_after=never_started_after)
                        last = ""
                    except Exception as e:  # an orchestrator or lakeFS away for a while
                        note(e, "recording crashed runs")
        except Exception as e:  # the catalog away: no leader here until it is back
            note(e, "taking the lead for recording crashed runs")
        if stop.wait(seconds):
            return


def cleanup_stale_writes_once(hub: Hub) -> int:
    """Sweep dead writers' hidden branches, unless another server on the catalog is at it."""
    with hub.catalog.leadership(CLEANUP_LEADER) as leading:
        return hub.cleanup_stale_writes() if leading() else 0


def serve(settings: ServerSettings | None = None) -> None:
    """Run the server in the foreground; prints the bootstrap admin token once, if created."""
    import uvicorn

    settings = settings or ServerSettings.from_env()
    hub = build_hub(settings)
    secret = hub.ensure_admin(settings.admin)
    if secret:
        token_file = settings.home / "server" / "admin-token"
        token_file.write_text(secret)
        token_file.chmod(0o600)
        print(f"created admin user {settings.admin!r}; its token is in {token_file}", flush=True)
    # the service user the Prefect worker acts as (not an admin; an admin shares what it may use)
    service_file = settings.home / "server" / "service-token"
    service = hub.ensure_service_user(hub.jobs.service_user, new_token=not service_file.exists())
    if service:
        service_file.write_text(service)
        service_file.chmod(0o600)
    # the training code that ships with Asset Hub, as admin presets of the algorithm library
    try:
        from assethub.server.presets import register_presets

        for name, what in register_presets(hub, settings.admin, settings.home).items():
            logging.getLogger(__name__).info("preset algorithm %s: %s", name, what)
    except (OSError, subprocess.CalledProcessError) as e:  # no git here: the server runs without them
        logging.getLogger(__name__).warning("the preset algorithms were not registered: %s", e)
    # Writers killed mid-upload leave hidden branches behind; sweep old ones once at start.
    threading.Thread(target=cleanup_stale_writes_once, args=(hub,), daemon=True, name="cleanup").start()
    seconds = float(os.environ.get("ASSETHUB_CRASH_CHECK_SECONDS", CRASH_CHECK_SECONDS))
    lost_after = float(os.environ.get("ASSETHUB_WORKER_LOST_SECONDS", WORKER_LOST_SECONDS))
    never_started = float(os.environ.get("ASSETHUB_NEVER_STARTED_SECONDS", NEVER_STARTED_SECONDS))
    threading.Thread(target=record_crashes_every, args=(hub, seconds, threading.Event()),
                     kwargs={"lost_after": lost_after, "never_started_after": never_started},
                     daemon=True, name="crashes").start()
    uvicorn.run(create_app(hub), host=settings.host, port=settings.port, log_level="warning",
                access_log=False)
