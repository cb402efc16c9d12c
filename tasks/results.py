"""Write a job's results back: the model commit with lineage, evaluations, merges, run records."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.client import AddFile, Client, DeleteFile
from assethub.config import service_user
from assethub.errors import AssetHubError, ForbiddenError, JobFailedError, NotFoundError
from assethub.lineage import (
    MODEL_COMMIT,
    Lineage,
    MergeDecision,
    decide_merge,
    evaluation_metadata,
    evaluation_record,
    model_card,
)
from assethub.refs import AssetPath, AssetRef
from assethub.wire import RunView
from tasks.code import Code
from tasks.env import NETWORK, client, use_job_token
from tasks.tracking import Tracking


@dataclass(frozen=True)
class Committed:
    model: str
    branch: str
    commit: str

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.commit}"


@task(name="open_run", **NETWORK)
def open_run(kind: str, model: str, *, branch: str = "", dataset: str = "", base: str = "",
             code_url: str = "", code_revision: str = "", code_subpath: str = "", command: str = "",
             params: dict[str, Any] | None = None, trigger: str = "person",
             algorithm: str = "") -> RunView:
    """Register the job; the server refuses it here if the caller may not run it. From then on
    every call of this process uses the run's own job token (acting for the caller on this
    run only), until :func:`tasks.env.drop_job_token`. A credential in ``code_url`` is kept by
    the server apart from the run, which records the URL without it."""
    hub = client()
    try:
        run, token = hub.open_run(model, kind=kind, branch=branch, dataset=dataset, base=base,
                                  code_url=code_url, code_revision=code_revision,
                                  code_subpath=code_subpath, command=command, params=params,
                                  trigger=trigger, algorithm=algorithm)
    except (ForbiddenError, NotFoundError) as e:
        raise _grant_hint(hub, e, kind, model, dataset, base) from None
    if token:  # never in the task's result (results are persisted): kept in this process only
        use_job_token(run.id, token)
    return run


@task(name="open_follow_run", **NETWORK)
def open_follow_run(follow_id: int, trigger: str) -> RunView:
    """Have the server register follow ``follow_id``'s retrain as the follow's owner (this
    process's caller is the worker's service user); its job token is used from now on."""
    run, token = client().open_follow_run(follow_id, trigger=trigger)
    use_job_token(run.id, token)
    return run


@task(name="claim_run", **NETWORK)
def claim_run(run_id: str) -> RunView:
    """Take over run ``run_id``, registered for this worker (a follow's retrain, a job handed to
    a deployment): its job token, claimed once by the service user, is used from now on."""
    run, token = client().claim_run(run_id)
    use_job_token(run.id, token)
    return run


def _grant_hint(hub: Client, error: AssetHubError, kind: str, model: str, dataset: str,
                base: str) -> AssetHubError:
    """A refusal of the worker's service user (a run started in the Prefect UI acts as it) says
    which shares an admin grants it; anyone else's refusal is left as it is."""
    service = service_user()
    try:
        if hub.whoami().name != service:
            return error
    except AssetHubError:
        return error
    def folder(p: AssetPath) -> str:
        return f"{p.owner}/{p.kind.value}/{p.folder}"

    folders = {folder(AssetPath.coerce(model)): "run" if kind == "evaluate" else "edit"}
    for ref in (dataset, base):
        if ref:
            folders.setdefault(folder(AssetRef.coerce(ref).path), "run")
    grants = " and ".join(f"`assethub share {f} --user {service} --role {role}`"
                          for f, role in folders.items())
    return ForbiddenError(f"this job runs as the worker's service user {service!r} (it was started "
                          f"without a run registered by a person, e.g. from the Prefect UI), which "
                          f"may not do it ({error}); an admin grants it with {grants}",
                          needed="share for the service user")


def update_run(run_id: str, **changes: Any) -> None:
    """Record progress; never hides the job's own error behind a bookkeeping one."""
    try:
        client().update_run(run_id, **changes)
    except AssetHubError as e:
        get_run_logger().warning("could not update run %s: %s", run_id, e)


def fail_run(run_id: str, error: BaseException) -> None:
    """Record that the job failed, and why (an Asset Hub error's own message, else its type too)."""
    text = str(error) or type(error).__name__
    update_run(run_id, state="failed",
               error=text if isinstance(error, AssetHubError) else f"{type(error).__name__}: {text}")


def flow_run_id() -> str:
    """The Prefect flow run this job runs in ("" outside one)."""
    try:
        from prefect.runtime import flow_run

        return str(flow_run.get_id() or "")
    except Exception:  # outside a flow run
        return ""


def run_trigger() -> str:
    """What started this job: ``schedule`` (a follow's cron on the deployment), ``event`` (an
    automation reacting to new data) or ``person`` (the CLI, SDK, ``python -m flows ...`` or the
    Prefect UI). Read from the root flow run, so a retrain's sub-flows say the same."""
    try:
        from prefect.client.orchestration import get_client
        from prefect.runtime import flow_run

        root = flow_run.get_root_flow_run_id() if flow_run.get_id() else None
        if not root:
            return "person"
        with get_client(sync_client=True) as c:
            run = c.read_flow_run(root)
    except Exception:  # outside a flow run, or no API to ask: a person ran it
        return "person"
    key = run.idempotency_key or ""
    if run.auto_scheduled or key.startswith("scheduled "):  # Prefect's scheduler service
        return "schedule"
    if key.startswith("automation "):  # RunDeployment of an automation (our follows' events)
        return "event"
    return "person"


def job_lineage(kind: str, run: RunView, code: Code, command: str, params: dict[str, Any],
                tracking: Tracking, *, dataset: str, base: str, metrics: dict[str, float],
                prefect_flow_run_id: str, model_format: str = "") -> Lineage:
    """The lineage of a training job's model commit, from what its steps returned."""
    return Lineage(job=kind, run_id=run.id, dataset=dataset, dataset_commit=run.dataset_commit,
                   code_url=code.url, code_revision=code.revision, code_subpath=code.subpath,
                   code_sha=code.sha, command=command, base_model=base, base_model_commit=run.base_commit,
                   params=params, metrics=metrics, mlflow_run_id=tracking.run_id,
                   mlflow_experiment_id=tracking.experiment_id, prefect_flow_run_id=prefect_flow_run_id,
                   model_format=model_format,
                   algorithm=run.algorithm,
                   algorithm_version=str(run.algorithm_version) if run.algorithm else "",
                   settings_commit=run.settings_commit)


# What Asset Hub itself adds to a training's output (the model card, the metrics and evaluation
# records): an output holding only these holds nothing the job wrote.
ADDED_FILES = ("README.md", "metrics.json")
ADDED_DIRS = ("eval",)
NOTHING_WRITTEN = "the job wrote nothing to $ASSETHUB_OUTPUT_DIR; nothing was committed"


def written_files(out: Path) -> list[Path]:
    """The files of the output directory ``out`` that the job wrote (not Asset Hub's own)."""
    return [p for p in out.rglob("*") if p.is_file()
            and p.relative_to(out).as_posix() not in ADDED_FILES
            and p.relative_to(out).parts[0] not in ADDED_DIRS]


def _logged_model_dir(tracking: Tracking, dest: Path) -> Path | None:
    """Download the MLflow model the job's code logged to its run into ``dest``; its directory,
    or None when it logged none. MLflow 3's logged models whose ``source_run_id`` is the run
    (the newest ready one), else a run artifact directory holding an ``MLmodel`` (MLflow 2)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.entities import LoggedModelStatus
    from mlflow.tracking import MlflowClient

    mlflow = MlflowClient(tracking_uri=tracking.uri)
    models = [m for m in mlflow.search_logged_models(
        experiment_ids=[tracking.experiment_id], filter_string=f"source_run_id = '{tracking.run_id}'")
        if m.status == LoggedModelStatus.READY]
    if models:
        newest = max(models, key=lambda m: m.creation_timestamp or 0)
        return Path(download_artifacts(artifact_uri=newest.artifact_location, dst_path=str(dest),
                                       tracking_uri=tracking.uri))
    for item in mlflow.list_artifacts(tracking.run_id):
        if item.is_dir and any(f.path == f"{item.path}/MLmodel"
                               for f in mlflow.list_artifacts(tracking.run_id, item.path)):
            return Path(mlflow.download_artifacts(tracking.run_id, item.path, str(dest)))
    return None


@task(name="collect_model", **NETWORK)
def collect_model(output_dir: str, tracking: Tracking) -> str:
    """Make a training's output a model version; what it holds (:data:`MODEL_FORMATS`):

    - ``mlflow``: the code wrote an MLflow model to ``model/`` (servable);
    - ``mlflow-logged``: the code logged one to its MLflow run (``mlflow.<flavor>.log_model``,
      autologging): downloaded into ``model/`` (servable);
    - ``files``: only the code's own files, committed as they are (not servable).

    An output with nothing the job wrote is refused: there is nothing to commit."""
    logger = get_run_logger()
    out = Path(output_dir)
    if (out / "model" / "MLmodel").is_file():
        return "mlflow"
    staging = out.parent / "logged-model"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        logged = _logged_model_dir(tracking, staging)
        if logged is not None and (logged / "MLmodel").is_file():
            if (out / "model").exists():
                raise JobFailedError(
                    "the job logged an MLflow model to its run and also wrote $ASSETHUB_OUTPUT_DIR/model "
                    "without an MLmodel file; the logged model is committed as model/: write your "
                    "own files elsewhere in $ASSETHUB_OUTPUT_DIR; nothing was committed")
            shutil.move(str(logged), str(out / "model"))
            logger.info("the code logged an MLflow model to run %s: committed as model/", tracking.run_id)
            return "mlflow-logged"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not written_files(out):
        raise JobFailedError(NOTHING_WRITTEN)
    logger.warning("the job wrote no MLflow model (none in $ASSETHUB_OUTPUT_DIR/model, none logged to "
                   "its MLflow run): its files are committed as they are, and the version is not servable")
    return "files"


@task(name="read_metrics", cache_policy=NO_CACHE)
def read_metrics(metrics_file: str, required: bool) -> dict[str, float]:
    """The metrics the command wrote to $ASSETHUB_METRICS_FILE (numbers only); ``required``:
    an evaluation must write some, a training may not."""
    path = Path(metrics_file)
    if not path.is_file():
        if required:
            raise JobFailedError("the command wrote no metrics to $ASSETHUB_METRICS_FILE "
                                 f"({path}); an evaluation must write a JSON object of numbers")
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise JobFailedError(f"$ASSETHUB_METRICS_FILE is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise JobFailedError("$ASSETHUB_METRICS_FILE must hold a JSON object of metric: number")
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


@task(name="write_model_files", cache_policy=NO_CACHE)
def write_model_files(output_dir: str, model: str, lineage: Lineage, mlflow_uri: str) -> str:
    """Complete a training's output before it is committed: ``metrics.json`` and
    ``eval/<id>.json`` when the command wrote metrics, and the model card ``README.md`` when it
    wrote none. The evaluation's id ("" without metrics)."""
    out = Path(output_dir)
    evaluation_id = ""
    if lineage.metrics:
        evaluation_id = uuid.uuid4().hex
        (out / "metrics.json").write_text(json.dumps(dict(lineage.metrics), indent=2, sort_keys=True) + "\n")
        (out / "eval").mkdir(exist_ok=True)
        (out / "eval" / f"{evaluation_id}.json").write_text(evaluation_record(
            evaluation_id, model=model, dataset=lineage.dataset, dataset_commit=lineage.dataset_commit,
            metrics=lineage.metrics, code_sha=lineage.code_sha, run_id=lineage.run_id,
            created_at=datetime.now(UTC)))
    if not (out / "README.md").exists():
        (out / "README.md").write_text(model_card(model, lineage, mlflow_uri))
    return evaluation_id


@task(name="write_evaluation_files", cache_policy=NO_CACHE)
def write_evaluation_files(dest: str, evaluation_id: str, *, model: str, dataset: str,
                           dataset_commit: str, metrics: dict[str, float], code_sha: str, run_id: str,
                           report_dir: str) -> str:
    """The files an evaluation adds to the model's branch under ``eval/``: ``<id>.json`` and,
    when the command wrote a report, ``<id>/`` beside it. Returns ``dest``."""
    files = Path(dest)
    files.mkdir(parents=True)
    (files / f"{evaluation_id}.json").write_text(evaluation_record(
        evaluation_id, model=model, dataset=dataset, dataset_commit=dataset_commit, metrics=metrics,
        code_sha=code_sha, run_id=run_id, created_at=datetime.now(UTC)))
    report = Path(report_dir)
    if report.is_dir() and any(report.iterdir()):
        shutil.copytree(report, files / evaluation_id)
    return str(files)


@task(name="commit_model", cache_policy=NO_CACHE)
def commit_model(model: str, branch: str, source: str, output_dir: str, lineage: Lineage,
                 message: str) -> Committed:
    """Commit the job's output as the new version on ``branch`` (created from ``source`` if new),
    atomically and with the lineage as commit metadata. The branch holds exactly the output:
    files of the previous version that the job did not write are removed in the same commit.
    """
    logger = get_run_logger()
    hub = client()
    out = Path(output_dir)
    if not written_files(out):
        raise JobFailedError(NOTHING_WRITTEN)
    created = False
    if branch not in {b.name for b in hub.list_branches(model)}:
        hub.create_branch(model, branch, source=source)
        created = True
    try:
        at = f"{model}:{branch}"
        head = hub.resolve(at)
        new = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        stale = [o.path for o in hub.list_objects(at) if o.path not in new and o.path[:10] != ".assethub/"]
        info = hub.create_commit(at, [AddFile(out, ""), *(DeleteFile(p) for p in stale)],
                                 message=message, metadata=lineage.to_metadata(), parent_commit=head)
    except BaseException:
        if created:
            try:
                hub.delete_branch(model, branch)  # a failed job leaves no new branch either
            except AssetHubError as e:
                logger.warning("could not remove branch %s after the failure: %s", branch, e)
        raise
    logger.info("committed %s:%s -> %s", model, branch, info.id[:12])
    return Committed(model, branch, info.id)


@task(name="record_evaluation", **NETWORK)
def record_evaluation(model_ref: str, dataset_ref: str, metrics: dict[str, float], run_id: str,
                      evaluation_id: str | None = None) -> str:
    """Store an evaluation in the catalog (by model commit and dataset commit); its id."""
    view = client().add_evaluation(model_ref, dataset=dataset_ref, metrics=metrics, run_id=run_id,
                                   evaluation_id=evaluation_id)
    get_run_logger().info("evaluation %s of %s: %s", view.id[:12], model_ref, json.dumps(view.metrics))
    return view.id


@task(name="commit_evaluation", cache_policy=NO_CACHE)
def commit_evaluation(model: str, branch: str, model_commit: str, report_dir: str, *, run_id: str,
                      dataset: str, dataset_commit: str, code_sha: str, message: str) -> str:
    """Add an evaluation's report to the model's branch, pointing back at the model commit."""
    metadata = evaluation_metadata(run_id=run_id, dataset=dataset, dataset_commit=dataset_commit,
                                   code_sha=code_sha)
    info = client().create_commit(f"{model}:{branch}", [AddFile(Path(report_dir), "eval")],
                                  message=message, metadata={**metadata, MODEL_COMMIT: model_commit})
    return info.id


@task(name="compare_versions", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def compare_versions(model: str, source: str, into: str, metric: str, higher_is_better: bool,
                     margin: float) -> tuple[MergeDecision, str]:
    """Whether branch ``source`` should be merged into ``into`` (see
    :func:`assethub.lineage.decide_merge`), and the commit holding the source's model."""
    hub = client()
    src = hub.lineage(f"{model}:{source}")
    dst = hub.lineage(f"{model}:{into}")
    decision = decide_merge(src, dst, metric, higher_is_better=higher_is_better, margin=margin)
    get_run_logger().info("merge %s into %s? %s: %s", source, into, decision.merge, decision.reason)
    return decision, src.model_commit


@task(name="merge_branch", cache_policy=NO_CACHE)
def merge_branch(model: str, source: str, into: str, model_commit: str, message: str) -> str:
    """Merge ``source`` into ``into``; the source's model wins where both changed files."""
    info = client().merge(model, source, into=into, strategy="source-wins", message=message,
                          metadata={MODEL_COMMIT: model_commit})
    return info.id
