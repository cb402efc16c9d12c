"""The server side of services: who may publish and use them, the catalog, the model cache, the
local runtime, health checks, and re-attaching to running services when the server starts.

One :class:`ServiceManager` per server process, next to its :class:`~assethub.hub.Hub`. Every
operation takes the caller first; publishing, changing, deleting and predicting need ``run`` on
the model's folder, seeing a service needs ``view``. A caller who may not view the model is told
the service does not exist. Every change (and every refusal) goes to the audit log.

Local services: model files come from the model's lakeFS commit into a cache keyed by commit
(``<work>/services/models/<repository>/<commit>``); a detached supervisor per service holds the
address and runs the replicas (see :mod:`assethub.serving.supervisor`). Services outlive the
server: when it starts again, it finds each running supervisor by its pid file, or starts a new
one on the same port. A monitor thread checks health every few seconds, records it, and brings
back a supervisor that died.

Monitoring: each supervisor keeps its replicas' request counts and a rolling window of them in
``metrics.json`` (see :mod:`assethub.serving.metrics`); :meth:`ServiceManager.stats` and
:meth:`ServiceManager.metrics` read it for anyone who may view the model. The monitor thread also
records the supervisor's events (replica restarts) and health changes as service events,
evaluates the alert rules (:meth:`ServiceManager.set_alert`: audit log, events, an optional
webhook called in the background) and keeps each service's request count for the lineage of the
version it serves (``service_usage``, kept after the service is deleted).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import ipaddress
import json
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assethub import sandbox
from assethub.catalog import Run, Service, ServiceAlert, ServiceEvent, ServiceUsage
from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AuthenticationError,
    ForbiddenError,
    InvalidReferenceError,
    NotAllowedError,
    NotFoundError,
    NotServableError,
    ObjectNotFoundError,
    PortInUseError,
    PredictionError,
    ServiceUnavailableError,
)
from assethub.hub import Hub, Principal
from assethub.refs import AssetKind, AssetRef
from assethub.serving import (
    HOSTS_SETTING,
    TARGETS,
    ServiceView,
    allowed_hosts,
    check_host,
    metrics,
    validate_replicas,
    validate_service_name,
)
from assethub.serving.k8s import KubernetesSettings, render, to_yaml
from assethub.serving.local import LocalService, bind
from assethub.serving.supervisor import read_json
from assethub.wire import ReplicaStats, ServiceAlertView, ServiceEventView, ServiceStats

log = logging.getLogger("assethub.serving")

#: the catalog leadership whose holder supervises the local services (one server among replicas)
SUPERVISION_LEADER = "assethub.services-supervision"
_LONG_QUOTE = re.compile(r"'[^']{60,}'")
#: the principal alerts are recorded as in the audit log (the server's monitor, not a user)
MONITOR = Principal("assethub-monitor", is_admin=False)
ALERT_METRICS = ("error_rate", "p95")
SHOWN_EVENTS = 20
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_ATTEMPTS = 4  # the first call and three retries, 0.5 s, 1 s and 2 s apart


def redact_url(url: str) -> str:
    """A webhook's address without what may be a secret in it (user, password, path, query):
    ``https://hooks.example.com/...``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}/..." if parts.scheme else "(invalid URL)"


def check_webhook(url: str) -> str:
    """``url`` if it can be a webhook (http or https, a host, no spaces); InvalidReferenceError
    naming the redacted address if not."""
    try:
        parts = urlsplit(url)
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 2000
              and not any(c.isspace() for c in url))
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        ok = False
    if not ok:
        raise InvalidReferenceError(f"invalid webhook {redact_url(url)}: use an http:// or https:// "
                                    "URL with a host", part="webhook", value=redact_url(url))
    return url


#: the server's setting (its environment) listing the webhook hosts on loopback, link-local or
#: private networks that alerts may call, comma-separated (``host`` or ``host:port``); ``*`` any
WEBHOOK_HOSTS_SETTING = "ASSETHUB_WEBHOOK_HOSTS"


def webhook_refusal(url: str, allowed: Collection[str]) -> str:
    """Why the server may not call ``url`` ("" when it may): a host that resolves to a loopback,
    link-local, private or otherwise internal address (the stack's own services, a cloud's
    metadata endpoint) is called only when :data:`WEBHOOK_HOSTS_SETTING` lists it, so that
    whoever may set an alert cannot make the server send requests inside its own network."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if "*" in allowed or host in allowed or f"{host}:{port}" in allowed:
        return ""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return f"its host {host[:80]!r} does not resolve"
    for address in found:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return (f"its host {host[:80]!r} is an internal address ({ip}): the server calls such a "
                    f"webhook only when its administrator allows it ({WEBHOOK_HOSTS_SETTING}={host[:80]})")
    return ""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def model_reason(body: bytes) -> str:
    """What MLflow's scoring server said was wrong, without the echoed input or stack trace."""
    try:
        import json

        data = json.loads(body)
        message = str(data.get("message") or data) if isinstance(data, dict) else str(data)
    except ValueError:
        message = body.decode(errors="replace")
    message = _LONG_QUOTE.sub("'...'", message)  # MLflow repeats the whole input in quotes
    message = " ".join(message.split())
    return message[:1000] + ("..." if len(message) > 1000 else "")


class ServiceManager:
    """Services of one server: catalog rows, their local processes, their health."""

    #: the catalog leadership whose holder (one server among replicas) supervises local services
    leadership = SUPERVISION_LEADER

    def __init__(self, hub: Hub, *, work_dir: Path | None = None,
                 kubernetes: KubernetesSettings | None = None, health_interval: float = 5.0,
                 ready_timeout: float = 180.0, hosts: Collection[str] | None = None,
                 webhook_hosts: Collection[str] | None = None) -> None:
        self.hub = hub
        self.dir = (work_dir or hub.tmp_dir.parent) / "services"
        self.models_dir = self.dir / "models"
        self.kubernetes = kubernetes or KubernetesSettings.from_env()
        # addresses beyond loopback that services may listen on: the server's setting only
        self.hosts = frozenset(hosts) if hosts is not None else allowed_hosts(os.environ.get(HOSTS_SETTING))
        # internal webhook hosts alerts may call: given, else the server's setting when called
        self._webhook_hosts = frozenset(webhook_hosts) if webhook_hosts is not None else None
        self.health_interval = health_interval
        self.ready_timeout = ready_timeout
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._handles: dict[int, LocalService] = {}
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._http: httpx.AsyncClient | None = None
        self._event_cursor: dict[int, float] = {}  # service id -> time of its last supervisor event read

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Re-attach to (or restart) the catalog's local services, then watch them."""
        self._stop.clear()
        self._monitor = threading.Thread(target=self._watch, name="services-monitor", daemon=True)
        self._monitor.start()

    async def aclose(self) -> None:
        """Stop watching; services keep running (a restarted server takes them over)."""
        self._stop.set()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._monitor is not None:
            self._monitor.join(timeout=10)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def _local(self, row: Service) -> LocalService:
        handle = self._handles.get(row.id)
        if handle is None:
            handle = self._handles[row.id] = LocalService(self.dir / str(row.id))
        return handle

    # -- views and permissions ---------------------------------------------------------------
    @staticmethod
    def _model_ref(row: Service) -> str:
        """The served model's reference with its current path (it is kept by id); as recorded
        once the model is gone."""
        if row.model is None:
            return row.model_ref
        f = row.model.folder
        return f"{f.owner}/{f.kind}/{f.name}/{row.model.name}:{row.model_ref.rpartition(':')[2]}"

    def _view(self, row: Service, run_id: str = "") -> ServiceView:
        ready, restarts = 0, 0
        if row.target == "local":
            status = self._local(row).status()
            if status.get("pid"):
                ready, restarts = int(status.get("ready") or 0), int(status.get("restarts") or 0)
        address = (self.kubernetes.address(row.name) if row.target == "kubernetes"
                   else f"http://{row.host}:{row.port}")
        return ServiceView(row.name, self._model_ref(row), row.model_commit, row.target, row.state,
                           row.replicas, ready, address, row.training_run, run_id, restarts,
                           _aware(row.last_health_at), bool(row.last_health_ok), row.detail,
                           row.created_by, _aware(row.created_at) or row.created_at,
                           _aware(row.updated_at) or row.updated_at)

    def _run_id(self, s: Session, row: Service) -> str:
        if not row.training_run:
            return ""
        return s.scalar(select(Run.id).where(Run.mlflow_run_id == row.training_run).limit(1)) or ""

    def _allowed(self, who: Principal, row: Service, needed: str) -> None:
        """Raise unless ``who`` holds ``needed`` on the service's model (hidden: not found)."""
        try:
            if row.model is None:  # deleted: its path may name a newer model, not this one's
                raise NotFoundError("asset", row.model_ref)
            self.hub.check(who, AssetRef.parse(self._model_ref(row)).path, needed)
        except NotFoundError:
            # a deleted model leaves its services to their creator and admins (to delete them)
            if not (who.is_admin or (who.name and who.name == row.created_by)):
                raise NotFoundError("service", row.name) from None

    def _row(self, s: Session, who: Principal, name: str, needed: str) -> Service:
        row = s.scalar(select(Service).where(Service.name == name))
        if row is None:
            raise NotFoundError("service", str(name)[:80])
        self._allowed(who, row, needed)
        return row

    def list(self, who: Principal) -> list[ServiceView]:
        """Services whose model the caller may view, by name."""
        self.hub.require_user(who)
        out = []
        with self.hub.catalog.session() as s:
            for row in s.scalars(select(Service).order_by(Service.name)):
                try:
                    self._allowed(who, row, "view")
                except (NotFoundError, ForbiddenError):
                    continue
                out.append(self._view(row, self._run_id(s, row)))
        return out

    def get(self, who: Principal, name: str) -> ServiceView:
        """The service, with its latest events and its alert rules."""
        self.hub.require_user(who)
        with self.hub.catalog.session() as s:
            row = self._row(s, who, name, "view")
            view = self._view(row, self._run_id(s, row))
            events = tuple(ServiceEventView(_aware(e.at) or e.at, e.kind, e.detail) for e in s.scalars(
                select(ServiceEvent).where(ServiceEvent.service_id == row.id)
                .order_by(ServiceEvent.id.desc()).limit(SHOWN_EVENTS)))
            alerts = tuple(self._alert_view(a) for a in self._alerts(s, row))
        from dataclasses import replace

        return replace(view, events=events, alerts=alerts)

    # -- monitoring ----------------------------------------------------------------------------
    def _metrics_doc(self, row: Service) -> dict[str, Any]:
        if row.target != "local":
            raise NotAllowedError(f"service {row.name} runs on Kubernetes: its metrics are in the "
                                  "cluster (scrape its pods), not on this server")
        return read_json(self._local(row).dir / "metrics.json")

    def stats(self, who: Principal, name: str, window: str | float = "5m") -> ServiceStats:
        """Requests/s, error rate and latency percentiles over the last ``window`` (e.g. 30s,
        5m, 1h), per replica and in total; for anyone who may view the model."""
        self.hub.require_user(who)
        seconds = metrics.parse_window(window)
        with self.hub.catalog.session() as s:
            row = self._row(s, who, name, "view")
            doc = self._metrics_doc(row)
        figures = metrics.window_stats(doc, seconds, time.time())
        return ServiceStats(name, seconds, figures["seconds"],
                            ReplicaStats("total", None, False, **figures["total"]),
                            tuple(ReplicaStats(**r) for r in figures["replicas"]))

    def metrics(self, who: Principal, name: str) -> bytes:
        """The service's counters in the Prometheus text format (per replica, since it was
        created); for anyone who may view the model."""
        self.hub.require_user(who)
        with self.hub.catalog.session() as s:
            row = self._row(s, who, name, "view")
            doc, model = self._metrics_doc(row), self._model_ref(row)
        return metrics.prometheus_text(name, model, doc)

    @staticmethod
    def _alerts(s: Session, row: Service) -> builtins.list[ServiceAlert]:
        return list(s.scalars(select(ServiceAlert).where(ServiceAlert.service_id == row.id)
                              .order_by(ServiceAlert.metric)))

    @staticmethod
    def _alert_view(a: ServiceAlert) -> ServiceAlertView:
        return ServiceAlertView(a.metric, a.threshold, a.window_seconds,
                                redact_url(a.webhook) if a.webhook else "", bool(a.firing), a.value,
                                _aware(a.changed_at), a.created_by)

    def alerts(self, who: Principal, name: str) -> builtins.list[ServiceAlertView]:
        """The service's alert rules (webhooks redacted); for anyone who may view the model."""
        self.hub.require_user(who)
        with self.hub.catalog.session() as s:
            return [self._alert_view(a) for a in self._alerts(s, self._row(s, who, name, "view"))]

    def set_alert(self, who: Principal, name: str, *, metric: str, threshold: float,
                  window: str | float = "5m", webhook: str = "") -> ServiceAlertView:
        """Alert when ``metric`` (error_rate: 0-1; p95: seconds) over ``window`` is above
        ``threshold``; replaces the service's rule on that metric. Needs 'run' on the model
        (who may change the service): the webhook is the server calling out."""
        with self.hub.audited(who, "service.alert.set", f"{name} ({metric})"):
            me = self.hub.require_user(who)
            if metric not in ALERT_METRICS:
                raise InvalidReferenceError(f"an alert is on {' or '.join(ALERT_METRICS)}, not "
                                            f"{str(metric)[:40]!r}", part="metric", value=str(metric)[:40])
            if (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                    or not math.isfinite(threshold) or threshold < 0
                    or (metric == "error_rate" and threshold >= 1)):
                raise InvalidReferenceError(
                    "an error-rate threshold is a fraction from 0 to below 1 (0.05 = 5%), a p95 one "
                    f"seconds above 0, not {threshold!r}", part="threshold", value=str(threshold)[:40])
            seconds = metrics.parse_window(window)
            if webhook:
                check_webhook(webhook)
                refused = webhook_refusal(webhook, self.webhook_hosts())
                if refused:
                    raise NotAllowedError(f"webhook {redact_url(webhook)} refused: {refused}")
            with self._lock(name), self.hub.catalog.session() as s:
                row = self._row(s, who, name, "run")
                if row.target != "local":
                    raise NotAllowedError(f"service {name} runs on Kubernetes: this server does not "
                                          "see its requests, so it cannot alert on them")
                rule = s.scalar(select(ServiceAlert).where(ServiceAlert.service_id == row.id,
                                                           ServiceAlert.metric == metric))
                if rule is None:
                    rule = ServiceAlert(service_id=row.id, metric=metric)
                    s.add(rule)
                rule.threshold, rule.window_seconds = float(threshold), int(seconds)
                rule.webhook, rule.firing, rule.value, rule.changed_at = webhook, False, None, None
                rule.created_by, rule.created_at = me, _now()
                s.flush()
                return self._alert_view(rule)

    def clear_alert(self, who: Principal, name: str, metric: str | None = None) -> int:
        """Remove the service's rule on ``metric`` (None: all of them); how many were removed."""
        with self.hub.audited(who, "service.alert.clear", f"{name} ({metric or 'all'})"):
            self.hub.require_user(who)
            with self._lock(name), self.hub.catalog.session() as s:
                row = self._row(s, who, name, "run")
                rules = [a for a in self._alerts(s, row) if metric is None or a.metric == metric]
                for a in rules:
                    s.delete(a)
                return len(rules)

    def _event(self, s: Session, row: Service, kind: str, detail: str, at: datetime | None = None) -> None:
        s.add(ServiceEvent(service_id=row.id, kind=kind, detail=detail[:4000], at=at or _now()))

    def _record_events(self, s: Session, row: Service, status: dict[str, Any]) -> None:
        """The supervisor's new events (replica restarts) into the catalog."""
        cursor = self._event_cursor.get(row.id)
        if cursor is None:
            last = s.scalar(select(ServiceEvent.at).where(ServiceEvent.service_id == row.id,
                                                          ServiceEvent.kind == "replica_restart")
                            .order_by(ServiceEvent.id.desc()).limit(1))
            cursor = _aware(last).timestamp() if last is not None else 0.0  # type: ignore[union-attr]
        for e in status.get("events") or []:
            at = e.get("at") if isinstance(e, dict) else None
            if isinstance(at, int | float) and at > cursor and e.get("kind") == "replica_restart":
                self._event(s, row, "replica_restart", str(e.get("detail") or "")[:500],
                            datetime.fromtimestamp(at, UTC))
                cursor = at
        self._event_cursor[row.id] = cursor

    def _record_usage(self, s: Session, row: Service, doc: dict[str, Any], *, ended: bool = False) -> None:
        """The service's request count since it was created, for the lineage of its version."""
        total = metrics.lifetime_counters(doc) if doc else None
        usage = s.scalar(select(ServiceUsage).where(ServiceUsage.service_id == row.id,
                                                    ServiceUsage.ended_at.is_(None)))
        if usage is None:
            if total is None or total["requests"] == 0:
                return
            usage = ServiceUsage(service_id=row.id, service_name=row.name, model_id=row.model_id,
                                 model_commit=row.model_commit, requests=0, errors=0)
            s.add(usage)
        if total is not None and total["requests"] > usage.requests:
            usage.requests = total["requests"]
            usage.errors = total["4xx"] + total["5xx"]
            usage.last_at = _now()
        if ended:
            usage.ended_at = _now()

    def _evaluate_alerts(self, s: Session, row: Service, doc: dict[str, Any],
                         after: builtins.list[Callable[[], None]]) -> None:
        """Fire or resolve the service's alert rules; what goes beyond the session (the audit
        record, the webhook) is appended to ``after``, to run once the session is committed."""
        now = time.time()
        for rule in self._alerts(s, row):
            figures = metrics.window_stats(doc, float(rule.window_seconds), now)["total"]
            value = figures["error_rate"] if rule.metric == "error_rate" else figures["p95"]
            above = value is not None and figures["requests"] > 0 and value > rule.threshold
            if above == bool(rule.firing):
                continue
            rule.firing, rule.value, rule.changed_at = above, value, _now()
            state = "fired" if above else "resolved"
            shown = f"{value:.4g}" if value is not None else "no requests"
            detail = (f"{rule.metric} over {rule.window_seconds}s is {shown} "
                      f"({'above' if above else 'not above'} {rule.threshold:g}; "
                      f"{figures['requests']} requests)")
            self._event(s, row, f"alert_{state}", detail)
            log.warning("service %s: alert %s: %s", row.name, state, detail)
            after.append(functools.partial(self.hub.record, MONITOR, f"service.alert.{state}",
                                           row.name, "ok", detail))
            if rule.webhook:
                body = {"service": row.name, "model": self._model_ref(row), "alert": rule.metric,
                        "state": "firing" if above else "resolved", "value": value,
                        "threshold": rule.threshold, "window_seconds": rule.window_seconds,
                        "requests": figures["requests"], "at": _now().isoformat()}
                after.append(threading.Thread(
                    target=self._call_webhook, args=(row.id, row.name, rule.webhook, body),
                    name=f"webhook-{row.name}", daemon=True).start)

    def webhook_hosts(self) -> frozenset[str]:
        """The internal hosts webhooks may call (:data:`WEBHOOK_HOSTS_SETTING`)."""
        if self._webhook_hosts is not None:
            return self._webhook_hosts
        return allowed_hosts(os.environ.get(WEBHOOK_HOSTS_SETTING))

    def _call_webhook(self, service_id: int, name: str, url: str, body: dict[str, Any]) -> None:
        """POST ``body`` to ``url``, retried with backoff, each try with a timeout; a failure is
        recorded as an event (the address redacted) and never reaches the service. The address
        is checked again before each try (its name may resolve elsewhere by now)."""
        why = ""
        for attempt in range(WEBHOOK_ATTEMPTS):
            if attempt and self._stop.wait(0.5 * 2 ** (attempt - 1)):
                return  # the server is stopping
            refused = webhook_refusal(url, self.webhook_hosts())
            if refused:
                why = f"refused: {refused}"
                break
            try:
                r = httpx.post(url, content=json.dumps(body).encode(), timeout=WEBHOOK_TIMEOUT,
                               headers={"Content-Type": "application/json"}, follow_redirects=False)
                if 200 <= r.status_code < 300:
                    return
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
        what = f"webhook {redact_url(url)} for the {body['alert']} alert ({body['state']})"
        detail = (f"{what} not called: {why}" if why.startswith("refused") else
                  f"{what} failed {WEBHOOK_ATTEMPTS} times (last: {why}); given up")
        log.warning("service %s: %s", name, detail)
        with contextlib.suppress(Exception), self.hub.catalog.session() as s:
            row = s.get(Service, service_id)
            if row is not None:
                self._event(s, row, "webhook_failed", detail)

    # -- publishing --------------------------------------------------------------------------
    def _servable(self, ref: AssetRef, commit: str) -> None:
        """Refuse a version without an MLflow pyfunc model, before anything starts."""
        pinned = ref.path.at(commit)
        try:
            text = self.hub.storage.read_bytes(pinned, "model/MLmodel")
        except ObjectNotFoundError:
            raise NotServableError(
                f"{ref} (commit {commit[:12]}) is not servable: it holds no MLflow model (no "
                "model/MLmodel file). Have the training code write one: save it into "
                "$ASSETHUB_OUTPUT_DIR/model with mlflow.<flavor>.save_model (e.g. "
                "mlflow.sklearn.save_model(model, os.environ['ASSETHUB_OUTPUT_DIR'] + '/model')), or "
                "log it to the job's MLflow run with mlflow.<flavor>.log_model (MLFLOW_RUN_ID is "
                "set), and train again; or commit an MLflow model under model/ yourself",
                ref=str(ref), reason="no model/MLmodel") from None
        try:
            flavors = (yaml.safe_load(text) or {}).get("flavors") or {}
        except yaml.YAMLError:
            flavors = {}
        if "python_function" not in flavors:
            raise NotServableError(
                f"{ref}: model/MLmodel has no python_function flavor (flavors: "
                f"{', '.join(flavors) or 'none'}), so MLflow's scoring server cannot serve it",
                ref=str(ref), reason="no python_function flavor")

    def _fetch(self, ref: AssetRef, commit: str) -> Path:
        """The model directory of ``commit``, downloaded once (shared by every service of it)."""
        repo = self.hub.storage.repository(ref.path)
        target = self.models_dir / repo / commit
        with self._fetch_lock:
            if (target / "MLmodel").is_file():
                return target
            tmp = target.with_name(f".{commit}.partial")
            shutil.rmtree(tmp, ignore_errors=True)
            self.hub.storage.download(ref.path.at(commit), tmp, prefix="model")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        return target

    def _training_run(self, who: Principal, ref: AssetRef) -> str:
        try:
            lineage = self.hub.lineage(who, ref).lineage
        except AssetHubError:
            return ""
        return lineage.mlflow_run_id if lineage is not None else ""

    def create(self, who: Principal, model: AssetRef | str, *, name: str, replicas: int = 1,
               port: int = 0, host: str = "127.0.0.1", target: str = "local",
               wait: bool = True) -> ServiceView:
        """Publish the model version ``model`` as service ``name``: running locally, or (target
        ``kubernetes``) recorded and rendered as manifests; see :meth:`manifests`."""
        with self.hub.audited(who, "service.create", f"{name} ({model})"):
            me = self.hub.require_user(who)
            validate_service_name(name)
            validate_replicas(replicas)
            if target not in TARGETS:
                raise InvalidReferenceError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}",
                                            part="target", value=str(target)[:40])
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise InvalidReferenceError(f"port must be 0 (any free port) to 65535, not {port!r}",
                                            part="port", value=str(port))
            if target == "local":
                check_host(host, self.hosts)
                if replicas:
                    sandbox.from_settings()  # no sandbox for its code: refused now, not in a status
            ref = AssetRef.coerce(model)
            if ref.path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{ref.path} is a dataset: only models are served",
                                            part="model", value=str(ref))
            model_id = self._model_id(who, ref)  # checks the caller's 'run' on it
            commit = self.hub.storage.resolve(ref)
            self._servable(ref, commit)
            with self.hub.catalog.session() as s:
                if s.scalar(select(Service.id).where(Service.name == name)) is not None:
                    raise AlreadyExistsError("service", name, "choose another --name, or delete it first")
            training_run = self._training_run(who, ref)
            with self._lock(name):
                if target == "kubernetes":
                    return self._create_kubernetes(me, ref, model_id, commit, name, replicas,
                                                   training_run)
                model_dir = self._fetch(ref, commit)
                sock = bind(host, port, name=name)
                try:
                    with self.hub.catalog.session() as s:
                        row = Service(name=name, model_id=model_id, model_ref=str(ref), model_commit=commit,
                                      replicas=max(replicas, 1), host=host,
                                      port=sock.getsockname()[1],
                                      state="starting" if replicas else "stopped", target="local",
                                      training_run=training_run, created_by=me)
                        s.add(row)
                        s.flush()
                        row_id = row.id
                except IntegrityError:
                    sock.close()
                    raise AlreadyExistsError("service", name) from None
                except BaseException:
                    sock.close()
                    raise
                with self.hub.catalog.session() as s:
                    created = s.get(Service, row_id)
                    assert created is not None
                    row = created
                    self._local(row).launch(sock, self._spec(row, model_dir), replicas)
                    if wait:
                        self._await(row, replicas)
                    return self._view(row, self._run_id(s, row))

    def _model_id(self, who: Principal, ref: AssetRef) -> int:
        """The id of the model ``ref`` names, on which ``who`` needs ``run``: a service refers to
        its model by it."""
        with self.hub.catalog.session() as s:
            return self.hub.permissions.asset(s, who, ref.path, "run").id

    def _create_kubernetes(self, me: str, ref: AssetRef, model_id: int, commit: str, name: str,
                           replicas: int, training_run: str) -> ServiceView:
        with self.hub.catalog.session() as s:
            row = Service(name=name, model_id=model_id, model_ref=str(ref), model_commit=commit,
                          replicas=replicas,
                          host=f"{name}.{self.kubernetes.namespace}.svc.cluster.local", port=80,
                          state="stopped", target="kubernetes", training_run=training_run,
                          detail="rendered for Kubernetes: apply the manifests (`assethub services "
                                 f"manifests {name} | kubectl apply -f -`); this server does not run it",
                          created_by=me)
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise AlreadyExistsError("service", name) from None
            return self._view(row, self._run_id(s, row))

    def _spec(self, row: Service, model_dir: Path) -> dict[str, Any]:
        return {"name": row.name, "model_dir": str(model_dir), "host": row.host, "port": row.port,
                "model_ref": self._model_ref(row), "model_commit": row.model_commit}

    def _await(self, row: Service, replicas: int) -> None:
        """Wait until ``replicas`` replicas serve (or 0 run); record the state it reached."""
        handle = self._local(row)
        if replicas == 0:
            status = handle.wait(lambda st: st.get("desired") == 0 and not st.get("replicas"), 60)
        else:
            status = handle.wait(lambda st: st.get("desired") == replicas and (
                st.get("ready", 0) >= replicas or bool(st.get("detail"))), self.ready_timeout)
        self._record_state(row, status, handle.pid() is not None)

    def _record_state(self, row: Service, status: dict[str, Any], alive: bool) -> None:
        desired, ready = int(status.get("desired") or 0), int(status.get("ready") or 0)
        if not alive:
            row.state = "failed"
            row.detail = "the service's supervisor is not running; see its logs"
        elif desired == 0:
            row.state, row.detail = "stopped", ""
        elif ready >= 1:
            row.state = "running"
            row.detail = "" if ready >= desired else f"{ready} of {desired} replicas ready"
        elif status.get("detail"):
            row.state, row.detail = "failed", str(status["detail"])
        else:
            row.state = "starting"
            row.detail = f"0 of {desired} replicas ready yet"

    # -- changing ----------------------------------------------------------------------------
    def _change(self, who: Principal, name: str, action: str, replicas: int | None) -> ServiceView:
        """Scale a local service to ``replicas`` (None: back to its recorded count)."""
        with self.hub.audited(who, f"service.{action}", f"{name}" + (
                f" ({replicas})" if action == "scale" else "")):
            self.hub.require_user(who)
            if replicas is not None:
                validate_replicas(replicas)
            with self._lock(name), self.hub.catalog.session() as s:
                row = self._row(s, who, name, "run")
                if row.target != "local":
                    if action == "scale" and replicas is not None:
                        row.replicas = replicas
                        return self._view(row, self._run_id(s, row))
                    raise NotAllowedError(
                        f"service {name} runs on Kubernetes: apply its manifests with kubectl "
                        f"(`kubectl scale deployment/{name} --replicas N` to scale it there)")
                wanted = row.replicas if replicas is None else replicas
                if wanted > 0:
                    sandbox.from_settings()  # refused when its code cannot be sandboxed
                    row.replicas = wanted
                handle = self._local(row)
                if handle.pid() is None:
                    self._relaunch(row, wanted)
                else:
                    handle.set_replicas(wanted)
                self._await(row, wanted)
                row.updated_at = _now()
                return self._view(row, self._run_id(s, row))

    def scale(self, who: Principal, name: str, replicas: int) -> ServiceView:
        """Run ``replicas`` replicas on the same address (0 stops the service, keeping it)."""
        return self._change(who, name, "scale", replicas)

    def stop(self, who: Principal, name: str) -> ServiceView:
        """Zero replicas; the address stays reserved and answers 503 until started again."""
        return self._change(who, name, "stop", 0)

    def start(self, who: Principal, name: str) -> ServiceView:
        """Run the service again with its recorded number of replicas, on the same address."""
        return self._change(who, name, "start", None)

    def delete(self, who: Principal, name: str) -> None:
        """Stop the service's processes, free its address and forget it."""
        with self.hub.audited(who, "service.delete", name):
            self.hub.require_user(who)
            with self._lock(name), self.hub.catalog.session() as s:
                row = self._row(s, who, name, "run")
                if row.target == "local":
                    handle = self._local(row)
                    handle.terminate()
                    self._record_usage(s, row, read_json(handle.dir / "metrics.json"), ended=True)
                    shutil.rmtree(handle.dir, ignore_errors=True)
                    self._handles.pop(row.id, None)
                s.delete(row)

    def logs(self, who: Principal, name: str, *, lines: int = 200) -> str:
        """The last ``lines`` lines of the service's log (replicas and supervisor)."""
        self.hub.require_user(who)
        with self.hub.catalog.session() as s:
            row = self._row(s, who, name, "run")
            if row.target != "local":
                return f"service {name} runs on Kubernetes: `kubectl logs deployment/{name}`"
            return self._local(row).log_tail(max(1, min(lines, 10_000)))

    def manifests(self, who: Principal, name: str) -> str:
        """Kubernetes manifests (YAML) serving the service's model version at its pinned commit."""
        self.hub.require_user(who)
        with self.hub.catalog.session() as s:
            row = self._row(s, who, name, "run")
            path = AssetRef.parse(self._model_ref(row)).path
            return to_yaml(render(row.name, model_ref=self._model_ref(row), commit=row.model_commit,
                                  repository=self.hub.storage.repository(path),
                                  replicas=row.replicas, training_run=row.training_run,
                                  settings=self.kubernetes))

    # -- predicting --------------------------------------------------------------------------
    def authorize_predict(self, who: Principal, name: str) -> tuple[str, str]:
        """(the service's address, its state), if the caller may send it requests."""
        try:
            self.hub.require_user(who)
            with self.hub.catalog.session() as s:
                row = self._row(s, who, name, "run")
                if row.target != "local":
                    raise NotAllowedError(f"service {name} runs on Kubernetes, not on this server: "
                                          f"send requests to it in the cluster ({self._view(row).address})")
                return f"http://{row.host}:{row.port}", row.state
        except (NotFoundError, ForbiddenError, AuthenticationError) as exc:
            # refusals are audited; predictions themselves are too many to log one by one
            self.hub.record(who, "service.predict", str(name)[:80], "denied", str(exc))
            raise

    async def predict(self, who: Principal, name: str, body: bytes,
                      content_type: str = "application/json") -> tuple[bytes, str]:
        """The model's answer to ``body`` (MLflow's scoring protocol) and its content type."""
        from starlette.concurrency import run_in_threadpool

        address, state = await run_in_threadpool(self.authorize_predict, who, name)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5),
                                           limits=httpx.Limits(max_keepalive_connections=32))
        try:
            response = await self._http.post(f"{address}/invocations", content=body,
                                              headers={"Content-Type": content_type})
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(
                f"service {name} does not answer at {address} (state: {state}): "
                f"{type(exc).__name__}; see `assethub services logs {name}`", name=name) from None
        if response.status_code == 200:
            return response.content, response.headers.get("content-type", "application/json")
        reason = model_reason(response.content)
        if response.status_code == 503:
            raise ServiceUnavailableError(f"service {name} is stopped: start it with "
                                          f"`assethub services start {name}`", name=name)
        if 400 <= response.status_code < 500:
            raise PredictionError(f"service {name} refused the input: {reason}", name=name,
                                  reason=reason)
        raise ServiceUnavailableError(f"service {name} failed on this input (HTTP "
                                      f"{response.status_code}): {reason}", name=name)

    # -- keeping services alive --------------------------------------------------------------
    def _relaunch(self, row: Service, replicas: int) -> None:
        """A new supervisor on the service's recorded port (its old one is gone)."""
        check_host(row.host, self.hosts)  # the setting may have narrowed since it was made
        if row.model is None:
            raise NotAllowedError(f"the model of service {row.name} ({row.model_ref}) was deleted: "
                                  f"it cannot start again; delete it (`assethub services delete {row.name}`)")
        ref = AssetRef.parse(self._model_ref(row))
        model_dir = self._fetch(ref, row.model_commit)
        try:
            sock = bind(row.host, row.port, name=row.name)
        except PortInUseError as exc:
            row.state, row.detail = "failed", str(exc)
            raise
        self._local(row).launch(sock, self._spec(row, model_dir), replicas)
        log.info("service %s: supervisor started on %s:%s", row.name, row.host, row.port)

    def check_all(self) -> None:
        """One pass: re-attach or restart supervisors, check health, record states."""
        with self.hub.catalog.session() as s:
            ids = list(s.scalars(select(Service.id).where(Service.target == "local")))
        for service_id in ids:
            if self._stop.is_set():
                return
            try:
                self._check(service_id)
            except Exception:  # one broken service does not stop the others' checks
                log.exception("checking service %s failed", service_id)

    def _check(self, service_id: int) -> None:
        with self.hub.catalog.session() as s:
            row = s.get(Service, service_id)
            if row is None:
                return
            name = row.name
        lock = self._lock(name)
        if not lock.acquire(timeout=0.1):
            return  # an operation on it is under way; check next time
        after: list[Callable[[], None]] = []  # once the session is committed (SQLite: one writer)
        try:
            self._check_locked(service_id, after)
        finally:
            lock.release()
        for action in after:
            action()

    def _check_locked(self, service_id: int, after: builtins.list[Callable[[], None]]) -> None:
        with self.hub.catalog.session() as s:
            row = s.get(Service, service_id)
            if row is None:
                return
            handle = self._local(row)
            if handle.pid() is None:
                wanted = 0 if row.state == "stopped" else row.replicas
                try:
                    self._relaunch(row, wanted)
                except AssetHubError as exc:
                    row.state, row.detail = "failed", str(exc)
                    return
                with open(handle.log_file, "a") as out:
                    out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} server: the supervisor was not "
                              f"running; started a new one with {wanted} replica(s)\n")
                self._event(s, row, "supervisor_restart", "the service's supervisor was not "
                            f"running; started a new one with {wanted} replica(s)")
                return
            status = handle.status()
            if not status:
                return  # just started: nothing to read yet
            self._record_state(row, status, True)
            self._record_events(s, row, status)
            if int(status.get("desired") or 0) > 0:
                ok = False
                with contextlib.suppress(httpx.HTTPError):
                    ok = httpx.get(f"http://{row.host}:{row.port}/ping", timeout=5).status_code == 200
                if ok != bool(row.last_health_ok) and (row.last_health_at is not None or not ok):
                    self._event(s, row, "health_ok" if ok else "health_failed",
                                "answers /ping again" if ok else
                                f"no answer to /ping at {row.host}:{row.port} ({row.state})")
                row.last_health_at, row.last_health_ok = _now(), ok
            doc = read_json(handle.dir / "metrics.json")
            self._record_usage(s, row, doc)
            self._evaluate_alerts(s, row, doc, after)

    def _watch(self) -> None:
        """Check the services every ``health_interval`` while this server leads the service
        supervision among the replicas on the catalog (:attr:`leadership`, a PostgreSQL
        advisory lock; always on SQLite): two servers never restart the same supervisor; the
        others try to take over every ``health_interval``."""
        lost = ""
        while not self._stop.is_set():
            try:
                with self.hub.catalog.leadership(self.leadership) as leading:
                    while not self._stop.is_set() and leading():
                        lost = ""
                        try:
                            self.check_all()
                        except Exception:
                            log.exception("service checks failed")
                        self._stop.wait(self.health_interval)
            except Exception as e:  # the catalog away: no supervision from here until it is back
                why = f"{type(e).__name__}: {e}"
                if why != lost:
                    log.warning("cannot take the lead of the service supervision (%s); retrying", why)
                lost = why
            self._stop.wait(self.health_interval)
