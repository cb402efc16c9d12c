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
