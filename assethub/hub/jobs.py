"""Jobs: runs (train, continue-train, evaluate, merge, retrain), evaluations, and lineage.

A run is registered before its job starts, with every permission it needs checked then; the job
reports its progress on it. An evaluation records metrics of a model commit on a dataset commit.
Lineage reads a model version's commit metadata and the catalog's runs and evaluations.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub.catalog import Catalog, Evaluation, Follow, Group, JobToken, Membership, Run, ServiceUsage
from assethub.config import service_user
from assethub.errors import (
    ForbiddenError,
    InvalidReferenceError,
    NotFoundError,
    RefNotFoundError,
)
from assethub.hub._rows import asset_path, asset_ref, aware
from assethub.hub.algorithms import Algorithms
from assethub.hub.audit import AuditLog
from assethub.hub.git_credentials import GitCredentials
from assethub.hub.identity import (
    RUN_ENDED,
    Principal,
    find_user,
    new_job_token,
    refuse_job_token,
    require_admin,
    require_user,
)
from assethub.hub.permissions import Permissions, not_found
from assethub.hub.settings import JobSettings
from assethub.lineage import Lineage, model_commit_of
from assethub.params import declare, resolve
from assethub.refs import AssetKind, AssetPath, AssetRef
from assethub.storage import Storage
from assethub.wire import EvaluationView, LineageView, RunView, ServiceUsageView

RUN_KINDS = ("train", "continue_train", "evaluate", "merge", "retrain", "export")
RUN_TRIGGERS = ("person", "schedule", "event")  # who or what started a job
RUN_STATES = ("pending", "running", "completed", "failed", "crashed")
_RUN_FIELDS = ("state", "branch", "base_commit", "dataset_commit", "code_revision", "code_sha", "command",
               "params", "metrics", "result_commit", "mlflow_run_id", "prefect_flow_run_id", "error")
#: the user the Prefect worker acts as (not an admin; what it may do are ordinary shares)
SERVICE_USER = service_user()
#: the longest a job token lives, whatever its run does (ASSETHUB_JOB_TOKEN_HOURS)
JOB_TOKEN_LIFETIME = timedelta(hours=float(os.environ.get("ASSETHUB_JOB_TOKEN_HOURS", "24")))
# the branch a training writes when it names none: <prefix>-<run id[:8]>
_NEW_BRANCH = {"train": "train", "continue_train": "continue"}
# the steps a retrain's job token may open as runs of their own
_RETRAIN_STEPS = ("train", "continue_train", "evaluate", "merge")
# What a job needs on each asset it names: it commits to the model it trains, uses the rest.
#: the runs whose job may record an evaluation of their model (with a job token)
EVALUATING_JOBS = ("evaluate", "train", "continue_train")
_JOB_NEEDS = {"train": "edit", "continue_train": "edit", "evaluate": "run", "merge": "edit",
              "retrain": "edit", "export": "edit"}


# the jobs whose empty fields come from the model's settings and the algorithm
_RESOLVED_KINDS = ("train", "continue_train", "evaluate")


@dataclass(frozen=True)
class Resolved:
    """What a job runs, as the caller gave it and then completed (:meth:`Jobs._resolve_job`)."""

    code_url: str
    code_revision: str
    code_subpath: str
    command: str
    dataset: str
    params: dict[str, Any]
    algorithm: str = ""
    algorithm_version: int = 0
    settings_commit: str = ""
    resources: dict[str, Any] = field(default_factory=dict)


def _run_view(r: Run) -> RunView:
    """The run with its assets' current paths (as recorded, for an asset that is gone)."""
    return RunView(r.id, r.kind, r.state, asset_path(r.model, r.model_path), r.branch,
                   asset_ref(r.base, r.base_ref), r.base_commit,
                   asset_ref(r.dataset, r.dataset_ref), r.dataset_commit, r.code_url, r.code_revision,
                   r.code_subpath, r.code_sha, r.command, dict(r.params or {}), dict(r.metrics or {}),
                   r.result_commit, r.mlflow_run_id, r.prefect_flow_run_id, r.error, r.created_by,
                   aware(r.created_at) or r.created_at, aware(r.finished_at), r.trigger or "person",
                   r.owner or r.created_by, r.settings_commit or "", r.algorithm or "",
                   r.algorithm_version or 0, dict(r.resources or {}))


def _evaluation_view(e: Evaluation) -> EvaluationView:
    return EvaluationView(e.id, asset_path(e.model, e.model_path), e.model_commit,
                          asset_ref(e.dataset, e.dataset_ref), e.dataset_commit,
                          dict(e.metrics or {}), e.run_id, e.created_by,
                          aware(e.created_at) or e.created_at, bool(e.trusted))


def _check_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k or len(k) > 250:
            raise InvalidReferenceError(f"invalid metric name {k!r}", part="metric", value=str(k))
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidReferenceError(f"metric {k!r} must be a finite number, not {v!r}",
                                        part="metric", value=str(v))
        out[k] = float(v)
    return out


def _hex_id(value: str | None) -> str:
    if value is None:
        return uuid.uuid4().hex
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidReferenceError("an id is 32 lowercase hex digits", part="id", value=value[:64])
    return value


class Jobs:
    """Runs, evaluations and lineage, checked against the caller's roles on the assets."""

    def __init__(self, catalog: Catalog, storage: Storage, audit: AuditLog,
                 permissions: Permissions, git_credentials: GitCredentials, *,
                 service_user: str = SERVICE_USER,
                 job_token_lifetime: timedelta = JOB_TOKEN_LIFETIME,
                 algorithms: Algorithms | None = None, settings: JobSettings | None = None) -> None:
        self.algorithms = algorithms or Algorithms(catalog, audit, git_credentials)
        self.settings = settings or JobSettings(storage, audit, permissions, git_credentials,
                                                self.algorithms)
        self.service_user = service_user
        self.job_token_lifetime = job_token_lifetime
        self.catalog = catalog
        self.storage = storage
        self.audit = audit
        self.permissions = permissions
        self.git_credentials = git_credentials

    def create_run(self, who: Principal, *, kind: str, model: AssetPath | str, branch: str = "",
                   dataset: str = "", base: str = "", code_url: str = "", code_revision: str = "",
                   code_subpath: str = "", command: str = "",
                   params: dict[str, Any] | None = None, trigger: str = "person",
                   owner: str = "", deferred: bool = False, algorithm: str = "") -> RunView:
        """:meth:`open_run` without the job token (a deferred run's is claimed later)."""
        return self.open_run(who, kind=kind, model=model, branch=branch, dataset=dataset, base=base,
                             code_url=code_url, code_revision=code_revision,
                             code_subpath=code_subpath, command=command, params=params,
                             trigger=trigger, owner=owner, deferred=deferred, algorithm=algorithm)[0]

    def open_run(self, who: Principal, *, kind: str, model: AssetPath | str, branch: str = "",
                 dataset: str = "", base: str = "", code_url: str = "", code_revision: str = "",
                 code_subpath: str = "", command: str = "",
                 params: dict[str, Any] | None = None, trigger: str = "person",
                 owner: str = "", deferred: bool = False,
                 algorithm: str = "") -> tuple[RunView, str | None]:
        """Register a job before it starts: every permission it needs is checked here. Returns
        the run and its job token (shown once; None for a ``deferred`` run, whose token the
        service user claims once with :meth:`claim_run`).

        A job token acts as the run's owner on that run only (:mod:`assethub.server.routes.
        _job_scope` holds what it may call); it is revoked when the run ends and lives at most
        ``job_token_lifetime``. A retrain's job token may open its steps (train,
        continue-train, evaluate, merge on the same model and dataset commit), each getting
        its own token.

        The model needs ``edit`` (the job commits to it; ``run`` for an evaluation), the dataset
        and the base model ``run``. A refused job leaves no record but the audit event.
        ``owner`` is the user the job acts for (its git credentials and code mirror): the
        caller, or whoever an admin names (a follow's owner, for a retrain). Credentials in
        ``code_url`` are kept for the caller and the URL is recorded without them.

        For train, continue-train and evaluate, what the caller leaves empty comes from the
        model's job settings on main (code, revision, subpath, the kind's command, dataset,
        params under the given ones, algorithm), then from the ``algorithm`` (``name`` or
        ``name@N``, which the caller must be able to see): its code, its command, and its
        declared params, which the given ones are checked against here (400 before any work).
        """
        target = f"{model} ({kind})"
        with self.audit.audited(who, "run.create", target):
            me = require_user(who)
            if kind not in RUN_KINDS:
                raise InvalidReferenceError(f"unknown job kind {kind!r}; use one of {', '.join(RUN_KINDS)}",
                                            part="kind", value=kind)
            if trigger not in RUN_TRIGGERS:
                raise InvalidReferenceError(f"unknown trigger {trigger!r}; use one of "
                                            f"{', '.join(RUN_TRIGGERS)}", part="trigger", value=trigger)
            parent = self._parent_run(who, kind, owner) if who.job_run_id else None
            if parent is not None:
                trigger = parent.trigger or "person"  # a step was started by what started its retrain
            if owner and owner != me:
                if not who.is_admin or who.job_run_id:
                    raise ForbiddenError("only an admin may start a job for another user", needed="admin")
                with self.catalog.session() as s:
                    find_user(s, owner)
            model_path = AssetPath.coerce(model)
            if model_path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{model_path} is not a model: jobs write models",
                                            part="model", value=str(model_path))
            job = Resolved(code_url, code_revision, code_subpath, command, dataset, dict(params or {}),
                           algorithm)
            if kind in _RESOLVED_KINDS:
                with self.catalog.session() as s:  # the settings are read only by who may use the model
                    self.permissions.asset(s, who, model_path, _JOB_NEEDS[kind])
                job = self._resolve_job(who, kind, model_path, job)
            dataset, params = job.dataset, job.params
            code_url, code_revision, code_subpath, command = (job.code_url, job.code_revision,
                                                              job.code_subpath, job.command)
            dataset_ref = AssetRef.coerce(dataset) if dataset else None
            if dataset_ref is not None and not dataset_ref.path.is_dataset:
                raise InvalidReferenceError(f"{dataset_ref.path} is not a dataset",
                                            part="dataset", value=str(dataset_ref))
            base_ref = AssetRef.coerce(base) if base else None
            if base_ref is not None and base_ref.path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{base_ref.path} is not a model",
                                            part="base", value=str(base_ref))
            if kind == "export":
                dataset_ref = self._export_dataset(who, model_path, base_ref, dataset_ref)
            with self.catalog.session() as s:  # the assets' ids: what the run refers to
                model_id = self.permissions.asset(s, who, model_path, _JOB_NEEDS[kind]).id
                dataset_id, base_id = (self.permissions.asset(s, who, ref.path, "run").id
                                       if ref is not None else None
                                       for ref in (dataset_ref, base_ref))
            # the refs must exist now: a typo fails before any work starts
            dataset_commit = self.storage.resolve(dataset_ref) if dataset_ref else ""
            base_commit = self.storage.resolve(base_ref) if base_ref else ""
            if parent is not None:
                self._check_step(parent, model_path, dataset_ref, dataset_commit, base_ref)
            code_url = self.git_credentials.adopt_url(who, code_url)  # kept apart, never recorded
            secret, token_hash = new_job_token()
            run_id = uuid.uuid4().hex
            if not branch and kind in _NEW_BRANCH:  # named here: a job token writes only it
                branch = f"{_NEW_BRANCH[kind]}-{run_id[:8]}"
            with self.catalog.session() as s:
                r = Run(id=run_id, kind=kind, state="pending", model_id=model_id,
                        dataset_id=dataset_id, base_id=base_id, model_path=str(model_path),
                        branch=branch, base_ref=str(base_ref or ""), base_commit=base_commit,
                        dataset_ref=str(dataset_ref or ""), dataset_commit=dataset_commit,
                        code_url=code_url, code_revision=code_revision, code_subpath=code_subpath,
                        command=command, params=dict(params or {}), metrics={}, created_by=me,
                        trigger=trigger, owner=owner if owner and owner != me else "",
                        settings_commit=job.settings_commit, algorithm=job.algorithm,
                        algorithm_version=job.algorithm_version, resources=dict(job.resources))
                s.add(r)
                s.flush()
                s.add(JobToken(run_id=r.id, token_hash=token_hash, deferred=deferred,
                               expires_at=datetime.now(UTC) + self.job_token_lifetime))
                s.flush()
                return _run_view(r), None if deferred else secret

    def _export_dataset(self, who: Principal, model: AssetPath, base: AssetRef | None,
                        dataset: AssetRef | None) -> AssetRef | None:
        """An export's source version (in the model it writes to) and the dataset its check scores:
        the one given, else the one the source was trained on, at the commit it was trained on
        (none for a version no job made: the check uses its input example only)."""
        if base is None or base.path != model:
            raise InvalidReferenceError(f"an export reads a version of {model} itself "
                                        f"(base {base or 'none'})",
                                        part="base", value=str(base or ""))
        if dataset is not None:
            return dataset
        lineage = self.lineage(who, base).lineage
        if lineage is None or not lineage.dataset or not lineage.dataset_commit:
            return None
        return AssetRef.coerce(lineage.dataset).path.at(lineage.dataset_commit)

    def _resolve_job(self, who: Principal, kind: str, model: AssetPath, given: Resolved) -> Resolved:
        """``given`` completed from the model's settings on main, then from the algorithm."""
        settings_commit, saved = self.settings.read(model)
        job = replace(given, settings_commit=settings_commit if saved else "",
                      resources=dict(saved.get("resources") or {}))
        own_code = bool(given.code_url or given.algorithm)
        if not own_code:
            if saved.get("algorithm"):
                job = replace(job, algorithm=saved["algorithm"])
            elif saved.get("repo"):
                job = replace(job, code_url=saved["repo"], code_revision=given.code_revision or
                              saved.get("revision", ""), code_subpath=given.code_subpath or
                              saved.get("subpath", ""))
        setting = "evaluate_command" if kind == "evaluate" else "train_command"
        if not job.command and saved.get(setting) and not given.algorithm:
            job = replace(job, command=saved[setting])
        if not job.dataset and saved.get("dataset"):
            job = replace(job, dataset=saved["dataset"])
        job = replace(job, params={**dict(saved.get("params") or {}), **given.params})
        if job.algorithm:
            if given.code_url:
                raise InvalidReferenceError("name either an algorithm or a code repository, not both",
                                            part="algorithm", value=job.algorithm)
            algo = self.algorithms.resolve_algorithm(who, job.algorithm)
            v = algo.current
            declared = declare(v.params, f"algorithm {algo.name}@{v.version}")
            params = resolve(declared, job.params, where=f"algorithm {algo.name}@{v.version}")
            command = job.command or (v.evaluate_command if kind == "evaluate" else v.train_command)
            job = replace(job, code_url=v.code_url, code_revision=v.code_revision,
                          code_subpath=v.code_subpath, command=command, params=params,
                          algorithm=algo.name, algorithm_version=v.version,
                          resources=job.resources or dict(v.resources))
        return job

    def _parent_run(self, who: Principal, kind: str, owner: str) -> Run:
        """The retrain whose job token opens a step, if it may; else 403."""
        with self.catalog.session() as s:
            parent = s.get(Run, who.job_run_id)
            if parent is None or parent.kind != "retrain" or kind not in _RETRAIN_STEPS:
                raise ForbiddenError(f"a job token may only act on its run ({who.job_run_id}): only a "
                                     "retrain's token opens runs, for its train, continue-train, "
                                     "evaluate and merge steps", needed="job scope")
            if owner and owner != who.name:
                raise ForbiddenError(f"a job token may only act on its run ({who.job_run_id}), for its "
                                     "owner only", needed="job scope")
            s.expunge(parent)
            return parent

    @staticmethod
    def _check_step(parent: Run, model: AssetPath, dataset: AssetRef | None, dataset_commit: str,
                    base: AssetRef | None) -> None:
        """A retrain's step works on the retrain's model and pinned dataset commit only."""
        same_data = dataset is None or (parent.dataset_ref and str(dataset.path) ==
                                        str(AssetRef.coerce(parent.dataset_ref).path)
                                        and dataset_commit == parent.dataset_commit)
        if str(model) != parent.model_path or not same_data or (
                base is not None and str(base.path) != parent.model_path):
            raise ForbiddenError(f"a job token may only act on its run ({parent.id}): a retrain's "
                                 f"steps use its model {parent.model_path} and dataset commit "
                                 f"{parent.dataset_commit[:12]}", needed="job scope")

    def open_follow_run(self, who: Principal, follow_id: int, *,
                        trigger: str = "event") -> tuple[RunView, str]:
        """Register a follow's retrain as the follow's owner (its rights checked now) on the
        dataset's main as it is now, for the service user that runs it; the run and its job
        token. The retrain's branch is ``retrain-<dataset commit[:12]>``."""
        with self.audit.audited(who, "run.follow", str(follow_id)):
            me = require_user(who)
            refuse_job_token(who, "starting a follow's retrain")
            if me != self.service_user:
                raise ForbiddenError(f"only the service user {self.service_user} starts a follow's "
                                     "retrains", needed="service user")
            with self.catalog.session() as s:
                follow = s.get(Follow, follow_id) if 0 < follow_id < 2**31 else None
                if follow is None:
                    raise NotFoundError("follow", str(follow_id))
                owner = find_user(s, follow.created_by)
                if owner.disabled:
                    raise ForbiddenError(f"the follow's owner {owner.name} is disabled", needed="owner")
                groups = s.scalars(select(Group.name).join(Membership)
                                   .where(Membership.user_id == owner.id)).all()
                acting = Principal(owner.name, owner.is_admin, frozenset(groups))
                # the follow refers to its assets by id: their paths now, after any rename
                model, dataset = asset_path(follow.model, ""), asset_path(follow.dataset, "")
                settings = dict(follow.settings)
        with self.catalog.session() as s:
            self.permissions.asset(s, acting, AssetPath.parse(dataset), "run")
        commit = self.storage.resolve(AssetPath.parse(dataset).at("main"))
        run, secret = self.open_run(
            acting, kind="retrain", model=model, branch="retrain-" + commit[:12],
            dataset=f"{dataset}:{commit}", code_url=str(settings.get("repo") or ""),
            code_revision=str(settings.get("revision") or ""),
            code_subpath=str(settings.get("subpath") or ""), command=str(settings.get("command") or ""),
            params={"metric": settings.get("metric", "accuracy"),
                    "higher_is_better": settings.get("higher_is_better", True),
                    "margin": settings.get("margin", 0.0), **dict(settings.get("params") or {})},
            trigger=trigger)
        assert secret is not None
        return run, secret

    def claim_run(self, who: Principal, run_id: str) -> tuple[RunView, str]:
        """The job token of a deferred run, once, to the service user that runs it."""
        with self.audit.audited(who, "run.claim", run_id[:64]):
            me = require_user(who)
            refuse_job_token(who, "claiming a run")
            if me != self.service_user:
                raise ForbiddenError(f"only the service user {self.service_user} claims runs",
                                     needed="service user")
            secret, token_hash = new_job_token()
            with self.catalog.session() as s:
                r = s.get(Run, run_id) if len(run_id) <= 32 else None
                token = s.scalar(select(JobToken).where(JobToken.run_id == run_id)) if r else None
                if r is None or token is None:
                    raise NotFoundError("run", run_id[:64])
                if not token.deferred or token.claimed_at is not None or r.state != "pending":
                    raise ForbiddenError(f"run {run_id} is not waiting to be claimed (a run is claimed "
                                         "once, while pending, and only if it was handed to the worker)",
                                         needed="pending deferred run")
                token.token_hash, token.claimed_at = token_hash, datetime.now(UTC)
                s.flush()
                return _run_view(r), secret

    def job_run(self, run_id: str) -> RunView:
        """The run a job token is bound to (for the server's check of what the token may do)."""
        with self.catalog.session() as s:
            r = s.get(Run, run_id)
            if r is None:
                raise NotFoundError("run", run_id)
            return _run_view(r)

    @staticmethod
    def _revoke(s: Session, run_id: str) -> None:
        token = s.scalar(select(JobToken).where(JobToken.run_id == run_id))
        if token is not None and token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)

    def _find_run(self, s: Session, who: Principal, run_id: str) -> Run:
        r = s.get(Run, run_id) if len(run_id) <= 32 else None
        if r is None:
            raise NotFoundError("run", run_id[:64])
        if r.model is None:  # its model was deleted: the run is left to who started it, and admins
            if not (who.is_admin or (who.name and who.name == r.created_by)):
                raise not_found(who, NotFoundError("run", run_id))
            return r
        try:
            self.permissions.asset(s, who, AssetPath.parse(asset_path(r.model, "")), "view")
        except NotFoundError:
            raise not_found(who, NotFoundError("run", run_id)) from None
        return r

    def update_run(self, /, who: Principal, run_id: str, **changes: Any) -> RunView:
        """Record a job's progress; only whoever started it (or an admin) may."""
        with self.audit.audited(who, "run.update", run_id[:64]):
            me = require_user(who)
            unknown = set(changes) - set(_RUN_FIELDS)
            if unknown:
                raise InvalidReferenceError(f"cannot change {', '.join(sorted(unknown))} of a run",
                                            part="run field", value=sorted(unknown)[0])
            if "state" in changes and changes["state"] not in RUN_STATES:
                raise InvalidReferenceError(f"unknown run state {changes['state']!r}; use one of "
                                            f"{', '.join(RUN_STATES)}", part="state",
                                            value=str(changes["state"]))
            if "metrics" in changes:
                changes["metrics"] = _check_metrics(dict(changes["metrics"] or {}))
            with self.catalog.session() as s:
                r = self._find_run(s, who, run_id)
                if who.job_run_id is not None and (who.job_run_id != r.id or changes.get(
                        "branch", r.branch) != r.branch):
                    raise ForbiddenError(f"a job token may only act on its run ({who.job_run_id}), "
                                         "and not move it to another branch", needed="job scope")
                if r.created_by != me and not who.is_admin:
                    raise ForbiddenError(f"run {run_id} was started by {r.created_by}", needed="owner")
                for name, value in changes.items():
                    setattr(r, name, value)
                if changes.get("state") in RUN_ENDED:
                    r.finished_at = datetime.now(UTC)
                    self._revoke(s, r.id)  # the job token ends with its run
                s.flush()
                return _run_view(r)

    def get_run(self, who: Principal, run_id: str) -> RunView:
        with self.catalog.session() as s:
            return _run_view(self._find_run(s, who, run_id))

    def list_runs(self, who: Principal, *, model: AssetPath | str | None = None,
                  state: str | None = None, kind: str | None = None, limit: int = 50) -> list[RunView]:
        """Runs, newest first: of one model (which you may view), or those you started."""
        me = require_user(who)
        with self.catalog.session() as s:
            q = select(Run).order_by(Run.created_at.desc(), Run.id).limit(max(1, min(limit, 1000)))
            if model is not None:
                path = AssetPath.coerce(model)
                q = q.where(Run.model_id == self.permissions.asset(s, who, path, "view").id)
            elif not who.is_admin:
                q = q.where(Run.created_by == me)
            if state:
                q = q.where(Run.state == state)
            if kind:
                q = q.where(Run.kind == kind)
            return [_run_view(r) for r in s.scalars(q)]

    def record_crashes(self, who: Principal,
                       ended: Callable[[Sequence[str]], Mapping[str, str]], *,
                       never_started_after: float | None = None) -> list[RunView]:
        """Mark ``crashed`` the pending and running runs whose flow run ended without them, and
        (with ``never_started_after``, seconds) the pending runs that got no flow run at all in
        that long: their job never started.

        ``ended`` is given the Prefect flow-run ids of the open runs and returns, for each flow
        run that crashed, was cancelled, failed or lost its worker, why (those still going are
        left out); the reason becomes the run's error. A crashed retrain's claim, its branch
        while it holds no job commit, is deleted so that the next trigger retries. Returns the
        runs marked.
        """
        require_admin(who)
        with self.catalog.session() as s:
            open_runs = {r.prefect_flow_run_id: r.id for r in s.scalars(
                select(Run).where(Run.state.in_(("pending", "running")), Run.prefect_flow_run_id != ""))}
            stale: dict[str, str] = {}
            if never_started_after is not None:
                before = datetime.now(UTC) - timedelta(seconds=never_started_after)
                stale = {r.id: (f"its job never started: pending for more than "
                                f"{never_started_after:.0f} s without a flow run") for r in s.scalars(
                    select(Run).where(Run.state == "pending", Run.prefect_flow_run_id == "",
                                      Run.created_at < before))}
        reasons = dict(ended(sorted(open_runs))) if open_runs else {}
        crashed = {open_runs[f]: why for f, why in reasons.items() if f in open_runs} | stale
        marked = []
        for run_id, reason in sorted(crashed.items()):
            with self.audit.audited(who, "run.crashed", run_id):
                with self.catalog.session() as s:
                    r = s.get(Run, run_id)
                    if r is None or r.state not in ("pending", "running"):
                        continue  # the job recorded its end meanwhile
                    if run_id in stale and (r.state != "pending" or r.prefect_flow_run_id):
                        continue  # it started meanwhile
                    r.state, r.error, r.finished_at = "crashed", reason[:10_000], datetime.now(UTC)
                    self._revoke(s, r.id)
                    s.flush()
                    view = _run_view(r)
                    model_gone = r.model is None  # its path may name a newer model now
                marked.append(view)
                if view.kind == "retrain" and view.branch and not view.result_commit and not model_gone:
                    self._release_claim(view)
        return marked

    def _release_claim(self, run: RunView) -> None:
        """Delete a retrain's branch unless a job committed on it (then it is kept, as the flow
        keeps it: that work is done)."""
        try:
            head = self.storage.get_commit(AssetPath.parse(run.model).at(run.branch))
        except (NotFoundError, RefNotFoundError):
            return  # released already, or the job never made it
        if Lineage.from_metadata(head.metadata) is None:
            self.storage.delete_branch(run.model, run.branch)

    def add_evaluation(self, who: Principal, model: AssetRef | str, *, dataset: str,
                       metrics: dict[str, Any], run_id: str = "",
                       evaluation_id: str | None = None) -> EvaluationView:
        """Record metrics of a model version on a dataset version (both resolved to commits).

        Merges trust these numbers, so only two kinds of caller may record them: a job
        (``who.job_run_id``) whose run is an evaluate, train or continue-train run of this
        model, still going (the evaluation names that run); or a user with ``edit`` on the
        model, optionally naming a run of that model that produced the numbers. ``run`` alone
        may start an evaluation job but not post its numbers.
        """
        ref = AssetRef.coerce(model)
        with self.audit.audited(who, "evaluation.add", str(ref)):
            me = require_user(who)
            dataset_ref = AssetRef.coerce(dataset)
            clean = _check_metrics(metrics)
            with self.catalog.session() as s:
                if who.job_run_id is not None:
                    if run_id and run_id != who.job_run_id:
                        raise ForbiddenError(f"a job token may only act on its run ({who.job_run_id}): "
                                             "it records evaluations for that run only",
                                             needed="job scope")
                    model_id = self.permissions.asset(s, who, ref.path, "run").id
                    run_id = self._evaluating_job(s, who.job_run_id, ref.path, model_id)
                else:
                    model_id = self._require_edit_to_evaluate(s, who, ref.path)
                    if run_id:
                        self._producing_run(s, run_id, ref.path, model_id)
                dataset_id = self.permissions.asset(s, who, dataset_ref.path, "view").id
            model_commit = self.storage.resolve(ref)
            dataset_commit = self.storage.resolve(dataset_ref)
            with self.catalog.session() as s:
                e = Evaluation(id=_hex_id(evaluation_id), model_id=model_id, dataset_id=dataset_id,
                               model_path=str(ref.path),
                               model_commit=model_commit, dataset_ref=str(dataset_ref),
                               dataset_commit=dataset_commit, metrics=clean, run_id=run_id,
                               created_by=me, trusted=True)
                s.add(e)
                s.flush()
                return _evaluation_view(e)

    @staticmethod
    def _evaluating_job(s: Session, job_run_id: str, model: AssetPath, model_id: int) -> str:
        """``job_run_id`` if that run may record evaluations of ``model``, else 403."""
        r = s.get(Run, job_run_id) if len(job_run_id) <= 32 else None
        if r is None or r.model_id != model_id or r.kind not in EVALUATING_JOBS:
            raise ForbiddenError(f"this job (run {job_run_id[:32]}) may not record evaluations of "
                                 f"{model}: only an evaluate, train or continue-train run of that "
                                 "model may", needed="edit")
        if r.state not in ("pending", "running"):
            raise ForbiddenError(f"run {r.id} has ended ({r.state}); it can no longer record "
                                 "evaluations", needed="edit")
        return r.id

    def _require_edit_to_evaluate(self, s: Session, who: Principal, model: AssetPath) -> int:
        """The model's id when ``who`` holds ``edit`` on it, else 403 saying why."""
        try:
            return self.permissions.asset(s, who, model, "edit").id
        except ForbiddenError:
            raise ForbiddenError(
                f"recording an evaluation of {model} needs 'edit' on it: merges trust evaluations. "
                f"With 'run', evaluate it with `assethub evaluate {model}:<ref> ...`: that job "
                "records its own result", needed="edit") from None

    @staticmethod
    def _producing_run(s: Session, run_id: str, model: AssetPath, model_id: int) -> None:
        r = s.get(Run, run_id) if len(run_id) <= 32 else None
        if r is None or r.model_id != model_id:
            raise InvalidReferenceError(f"run {run_id[:64]} is no run of {model}: name the run that "
                                        "produced these metrics, or none", part="run_id",
                                        value=run_id[:64])

    def list_evaluations(self, who: Principal, model: AssetPath | str, *,
                         commit: str | None = None) -> list[EvaluationView]:
        path = AssetPath.coerce(model)
        with self.catalog.session() as s:
            model_id = self.permissions.asset(s, who, path, "view").id
            q = select(Evaluation).where(Evaluation.model_id == model_id)
            if commit:
                q = q.where(Evaluation.model_commit == commit)
            return [_evaluation_view(e) for e in s.scalars(q.order_by(Evaluation.created_at.desc()))]

    def lineage(self, who: Principal, ref: AssetRef | str) -> LineageView:
        """What produced the model version at ``ref``, and how it scored."""
        r = self.permissions.ref(who, ref, "view")
        history = list(self.storage.log(r, limit=50))
        head = history[0].id if history else self.storage.resolve(r)
        model_commit = model_commit_of((c.id, c.metadata) for c in history) or head
        info = next((c for c in history if c.id == model_commit), None)
        if info is None:
            info = self.storage.get_commit(r.path.at(model_commit))
        lineage = Lineage.from_metadata(info.metadata)
        with self.catalog.session() as s:
            model_id = self.permissions.asset(s, who, r.path, "view").id
            evals = s.scalars(select(Evaluation).where(Evaluation.model_id == model_id,
                                                       Evaluation.model_commit == model_commit)
                              .order_by(Evaluation.created_at.desc()))
            evaluations = tuple(_evaluation_view(e) for e in evals)
            run = s.get(Run, lineage.run_id) if lineage and lineage.run_id else None
            run_view = _run_view(run) if run is not None else None
            # the services that served this version (published at its model commit or at the
            # commit asked about), with the requests they answered
            usage = tuple(ServiceUsageView(u.service_name, u.requests, u.errors,
                                           aware(u.first_at) or u.first_at,
                                           aware(u.last_at) or u.last_at, u.ended_at is None)
                          for u in s.scalars(select(ServiceUsage).where(
                              ServiceUsage.model_id == model_id,
                              ServiceUsage.model_commit.in_({model_commit, head}))
                              .order_by(ServiceUsage.requests.desc(), ServiceUsage.id)))
        return LineageView(str(r), head, model_commit, lineage, evaluations, run_view, services=usage)

