"""The one pipeline of the jobs that run training code: train, continue-train and evaluate (and
so reproduce and retrain, which run those).

Each job opens its run first (the server checks permissions and pins the refs to commits), then
fetches the code, starts tracking while its inputs download, runs the command and reads its
metrics (:func:`run_command`). A training then commits its model (:func:`run_training`); an
evaluation records its scores (``flows.evaluate``). Flows only order tasks; this orders them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.futures import wait

from assethub.errors import InvalidReferenceError, JobSpecError
from assethub.refs import AssetPath, AssetRef
from assethub.wire import RunView
from tasks.assets import fetch_dataset, fetch_model
from tasks.code import Code, fetch_code, job_command, job_params, job_time_limit
from tasks.entrypoint import job_contract, run_entrypoint
from tasks.env import discard_job_dir, drop_job_token, job_dir
from tasks.results import (
    claim_run,
    collect_model,
    commit_model,
    fail_run,
    flow_run_id,
    job_lineage,
    open_run,
    read_metrics,
    record_evaluation,
    run_trigger,
    update_run,
    write_model_files,
)
from tasks.tracking import Tracking, close_tracking, start_tracking

BRANCH_PREFIX = {"train": "train", "continue_train": "continue"}


class JobScope:
    """The bookkeeping around a job: on failure the run is marked failed (with the reason) and
    its MLflow run closed as failed; in any case the job's working directory goes away."""

    def __init__(self, run: RunView) -> None:
        self.run = run
        self.work = job_dir(run.id)
        self.tracking: Tracking | None = None

    def __enter__(self) -> JobScope:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        try:
            if error is not None:
                fail_run(self.run.id, error)
                close_tracking(self.tracking, succeeded=False)
            discard_job_dir(self.work)
        finally:
            drop_job_token(self.run.id)  # the run ended: so did its token


@dataclass(frozen=True)
class Ran:
    """A job whose command ran: what the steps up to it returned."""

    code: Code
    command: str
    params: dict[str, Any]
    prefect_flow_run_id: str
    tracking: Tracking
    output: Path  # $ASSETHUB_OUTPUT_DIR: the model (training) or the report (evaluation)
    metrics: dict[str, float]


def open_job(kind: str, model: str, *, dataset: str, base: str, repo: str, revision: str, subpath: str,
             params: dict[str, Any] | None, command: str, branch: str = "", run_id: str = "",
             algorithm: str = "") -> RunView:
    """Register the job; refused here, before any work, if the caller may not run it. With
    ``run_id``, take over that run instead (registered for the worker, whose service user
    claims it). Either way the run's record, not the arguments, says what the job does: the
    server completed what was left empty from the model's job settings and the algorithm."""
    if run_id:
        run = claim_run(run_id)
        if run.kind != kind:
            drop_job_token(run.id)
            raise InvalidReferenceError(f"run {run_id} is a {run.kind} run, not {kind}",
                                        part="run_id", value=run_id)
        return run
    return open_run(kind, model, branch=branch, dataset=dataset, base=base, code_url=repo,
                    code_revision=revision, code_subpath=subpath, command=command, params=params,
                    trigger=run_trigger(), algorithm=algorithm)


def require_inputs(run: RunView) -> None:
    """Refuse, before any work, a run that names no code or no dataset (none given, none in
    the model's settings), saying the ways to give them."""
    if not run.code_url:
        raise JobSpecError(
            f"nothing to run for {run.model}: no code was given. Pass the training code (--repo URL), "
            "use an algorithm of the library (--algorithm NAME, see `assethub algorithms ls`), or save "
            f"the model's job settings (`assethub configure {run.model} --repo URL` or --algorithm NAME)")
    if not run.dataset_ref:
        raise JobSpecError(f"no dataset for {run.model}: pass --dataset <path>:<ref>, or save a default "
                           f"one with `assethub configure {run.model} --dataset <path>:<ref>`")


def run_command(scope: JobScope, kind: str, *, model: str, dataset: str, base: str, repo: str,
                revision: str, subpath: str, params: dict[str, Any] | None, command: str,
                tags: dict[str, str], progress: dict[str, Any]) -> Ran:
    """Fetch the code (and its spec) before the data; start the MLflow run while the dataset and
    the base model download, pinned at the run's commits; run the command, read its metrics.

    ``tags`` go on the MLflow run, ``progress`` into the run record, with the job's own."""
    run, work = scope.run, scope.work
    # the URL as the run recorded it: a credential that was in it is the server's now
    code = fetch_code(run.code_url, revision, subpath, str(work / "code"), run.id,
                      run.owner or run.created_by)
    job = "evaluate" if kind == "evaluate" else "train"
    cmd = job_command(code, job, command)
    all_params = job_params(code, params)
    prefect_id = flow_run_id()
    update_run(run.id, state="running", code_revision=code.revision, code_sha=code.sha, command=cmd,
               params=all_params, prefect_flow_run_id=prefect_id, **progress)
    # The MLflow run is started while the inputs download: its first use in a process imports
    # MLflow (seconds), and a download mostly waits on the server.
    started = start_tracking.submit(model, f"{kind}-{run.id[:8]}", all_params, {
        "assethub.run_id": run.id, "assethub.model": model, "assethub.job": kind,
        "assethub.dataset": dataset, "assethub.dataset_commit": run.dataset_commit,
        "assethub.prefect_flow_run_id": prefect_id, "mlflow.source.name": code.url,
        "mlflow.source.git.commit": code.sha, **tags})
    inputs = [fetch_dataset.submit(dataset, run.dataset_commit, str(work / "data"))]
    if base:
        inputs.append(fetch_model.submit(base, run.base_commit, str(work / "base")))
    wait([started, *inputs])  # all of them, so that none still writes when the scope cleans up
    scope.tracking = tracking = started.result()  # before an input's failure: the run is closed failed
    update_run(run.id, mlflow_run_id=tracking.run_id)
    data = inputs[0].result()
    weights = inputs[1].result() if base else None
    output, metrics_file = work / "output", work / "metrics.json"
    contract = job_contract(kind, data=data, base=weights, output_dir=str(output), params=all_params,
                            metrics_file=str(metrics_file), tracking=tracking)
    run_entrypoint(cmd, code.dir, contract, timeout=job_time_limit(code, job))
    metrics = read_metrics(str(metrics_file), required=kind == "evaluate")
    return Ran(code, cmd, all_params, prefect_id, tracking, output, metrics)


def run_training(kind: str, *, model: str, dataset: str, repo: str, revision: str, subpath: str,
                 params: dict[str, Any] | None, branch: str, command: str, base: str = "",
                 message: str = "", run_id: str = "", algorithm: str = "") -> dict[str, Any]:
    """Train (or continue training ``base``) into a new commit on ``branch`` of ``model``.

    Order matters: refs are parsed and permissions checked (open_run) before anything is
    fetched, the code and its spec before the data; the commit is the last step, so a
    failure anywhere leaves the model's branches as they were.
    """
    model_path = str(AssetPath.coerce(model))
    base_ref = str(AssetRef.coerce(base)) if base else ""
    run = open_job(kind, model_path, dataset=str(AssetRef.coerce(dataset)) if dataset else "", base=base_ref,
                   repo=repo, revision=revision, subpath=subpath, params=params, command=command,
                   branch=branch, run_id=run_id, algorithm=algorithm)
    # what the run registered is what runs (the server filled in the model's settings)
    model_path, base_ref = run.model, run.base_ref
    repo, revision, subpath = run.code_url, run.code_revision, run.code_subpath
    params, command = dict(run.params), run.command
    branch = run.branch or branch or f"{BRANCH_PREFIX[kind]}-{run.id[:8]}"  # the server names it
    with JobScope(run) as scope:
        require_inputs(run)
        dataset_ref = AssetRef.coerce(run.dataset_ref)
        ran = run_command(scope, kind, model=model_path, dataset=str(dataset_ref), base=base_ref, repo=repo,
                          revision=revision, subpath=subpath, params=params, command=command,
                          tags={"assethub.branch": branch}, progress={"branch": branch})
        model_format = collect_model(str(ran.output), ran.tracking)  # before Asset Hub adds its files
        lineage = job_lineage(kind, run, ran.code, ran.command, ran.params, ran.tracking,
                              dataset=str(dataset_ref), base=base_ref, metrics=ran.metrics,
                              prefect_flow_run_id=ran.prefect_flow_run_id, model_format=model_format)
        evaluation_id = write_model_files(str(ran.output), model_path, lineage, ran.tracking.uri)
        what = "Continue training" if base_ref else "Train"
        committed = commit_model(
            model_path, branch, run.base_commit or "main", str(ran.output), lineage,
            message or f"{what} on {dataset_ref} ({run.dataset_commit[:12]}) with code {ran.code.sha[:12]}")
        if evaluation_id:
            record_evaluation(committed.ref, str(dataset_ref.path.at(run.dataset_commit)), ran.metrics,
                              run.id, evaluation_id)
        # a model the code logged to the run is there already: not logged a second time
        close_tracking(ran.tracking, succeeded=True, metrics=ran.metrics,
                       model_dir=str(ran.output / "model") if model_format == "mlflow" else "",
                       tags={"assethub.lakefs_commit": committed.commit, "assethub.model_ref": committed.ref})
        update_run(run.id, state="completed", metrics=ran.metrics, result_commit=committed.commit)
        return {"run_id": run.id, "model_ref": f"{model_path}:{branch}", "branch": branch,
                "commit": committed.commit, "metrics": ran.metrics, "mlflow_run_id": ran.tracking.run_id,
                "dataset_commit": run.dataset_commit, "code_sha": ran.code.sha,
                "prefect_flow_run_id": ran.prefect_flow_run_id}
