"""Jobs: runs, evaluations, lineage, follows, Git credentials. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assethub.lineage import Lineage
from assethub.wire._services import ServiceUsageView

# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunView:
    """A job run (train, continue-train, evaluate, merge, retrain) and its results."""

    id: str
    kind: str
    state: str
    model: str
    branch: str
    base_ref: str
    base_commit: str
    dataset_ref: str
    dataset_commit: str
    code_url: str
    code_revision: str
    code_subpath: str
    code_sha: str
    command: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    result_commit: str
    mlflow_run_id: str
    prefect_flow_run_id: str
    error: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    trigger: str = "person"  # what started it: person | schedule | event
    owner: str = ""  # the user the job acts for (its git credentials, its code mirror)
    #: the commit of the model's main whose .assethub/job.yaml filled what the caller left out
    settings_commit: str = ""
    algorithm: str = ""  # the algorithm of the library that gave the code ("" = none)
    algorithm_version: int = 0
    resources: dict[str, Any] = field(default_factory=dict)  # {cpu: N, gpu: N} asked for


@dataclass(frozen=True, slots=True)
class EvaluationView:
    """How a model version scored on a dataset version."""

    id: str
    model: str
    model_commit: str
    dataset_ref: str
    dataset_commit: str
    metrics: dict[str, Any]
    run_id: str  # the run that produced it ("" when an editor recorded it by hand)
    created_by: str
    created_at: datetime
    #: recorded by a job of the model or an editor of it; merge decisions use only these
    #: (evaluations stored before that rule are not)
    trusted: bool = True

    @property
    def produced_by(self) -> str:
        """Who produced the numbers: ``run <id> (<user>)`` or ``user <name>``."""
        return f"run {self.run_id} ({self.created_by})" if self.run_id else f"user {self.created_by}"


@dataclass(frozen=True, slots=True)
class LineageView:
    """A model version and what produced it: the commit asked about, the commit that holds its
    model files (an evaluation or merge commit points back to it), the job's lineage and the
    evaluations of that model."""

    ref: str
    commit: str
    model_commit: str
    lineage: Lineage | None
    evaluations: tuple[EvaluationView, ...]
    run: RunView | None
    #: what the version holds (see assethub.lineage.MODEL_FORMATS), from its lineage; "" when no
    #: job made it
    model_format: str = ""
    #: whether ``assethub serve`` can serve it; None when not known from the lineage (a commit no
    #: job made: servable if it holds model/MLmodel)
    servable: bool | None = None
    #: the services that served this version and the requests they answered (also deleted ones)
    services: tuple[ServiceUsageView, ...] = ()

    def __post_init__(self) -> None:
        if self.lineage is not None and self.lineage.job:
            if not self.model_format:
                object.__setattr__(self, "model_format", self.lineage.model_format or "mlflow")
            if self.servable is None:
                object.__setattr__(self, "servable", self.lineage.servable)


@dataclass(frozen=True, slots=True)
class FollowView:
    """A follow: retrain ``model`` when ``dataset``'s main moves, with its settings and triggers."""

    id: int
    model: str
    dataset: str
    settings: dict[str, Any]
    created_by: str
    created_at: datetime
    triggers: dict[str, str]
    #: why the follow no longer retrains ("" while active); its owner resumes it
    paused: str = ""


@dataclass(frozen=True, slots=True)
class GitCredentialView:
    """That a user keeps a Git credential for a host; the credential itself is never sent."""

    host: str
    created_at: datetime
    updated_at: datetime
