"""Services (model serving). See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# -- services -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service as the catalog (and, for a local one, its supervisor) sees it now."""

    name: str
    model: str  # the model reference asked for, e.g. alice/model/digits/cnn:v1
    model_commit: str  # what it resolved to when published: the version served
    target: str  # local | kubernetes
    state: str  # starting | running | stopped | failed
    replicas: int  # how many it runs (or will run again when started)
    ready: int  # replicas answering now
    address: str  # http://host:port, the same across stop and start
    training_run: str  # MLflow run id of the training behind the model
    run_id: str  # Asset Hub run (job) that produced the model
    restarts: int  # replicas restarted after they died
    last_health_at: datetime | None
    last_health_ok: bool
    detail: str  # why it failed, or what to do next
    created_by: str
    created_at: datetime
    updated_at: datetime
    #: the latest events (replica restarts, health failures, alerts firing and resolving), newest
    #: first; only in a single service's view (``services show``), empty in listings
    events: tuple[ServiceEventView, ...] = ()
    #: its alert rules (webhooks shown without credentials, path or query)
    alerts: tuple[ServiceAlertView, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceEventView:
    """Something that happened to a service."""

    at: datetime
    kind: str  # replica_restart | supervisor_restart | health_failed | health_ok | alert_fired |
    # alert_resolved | webhook_failed
    detail: str


@dataclass(frozen=True, slots=True)
class ServiceAlertView:
    """An alert rule: fires when ``metric`` over the last ``window_seconds`` is above ``threshold``."""

    metric: str  # error_rate | p95 (seconds)
    threshold: float
    window_seconds: int
    webhook: str  # redacted: scheme://host[:port]/... ("" when none)
    firing: bool
    value: float | None  # the metric when it last fired or resolved
    changed_at: datetime | None
    created_by: str


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    """Request figures of one replica (or of the whole service: ``replica`` "total") over a window."""

    replica: str
    pid: int | None
    gone: bool  # the replica has exited since
    requests: int
    requests_per_second: float
    errors_4xx: int
    errors_5xx: int
    error_rate: float  # (4xx + 5xx) / requests
    p50: float | None  # latency percentiles in seconds (from the histogram); None without requests
    p95: float | None
    p99: float | None
    latency_count: int  # observations in the histogram (equal to requests)
    latency_sum: float


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """A service's request figures over the last ``window_seconds`` (``seconds``: the time they
    cover, shorter for a younger service), per replica and in total."""

    name: str
    window_seconds: float
    seconds: float
    total: ReplicaStats
    replicas: tuple[ReplicaStats, ...]


@dataclass(frozen=True, slots=True)
class ServiceUsageView:
    """A service that served a model version, and how many requests it answered (a lineage row)."""

    service: str
    requests: int
    errors: int
    first_at: datetime
    last_at: datetime
    active: bool  # False once the service was deleted
