"""What train and continue-train share: one pipeline of tasks, and the command-line front end
that every ``python -m flows.<name>`` uses. Flows only order tasks; this orders them once."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assethub.errors import AssetHubError, JobFailedError
from assethub.lineage import Lineage
from assethub.refs import AssetPath, AssetRef
from assethub.runtime import JobContext, Split, environment
from tasks.assets import fetch_dataset, fetch_model
from tasks.code import fetch_code, job_command, job_params
from tasks.entrypoint import run_entrypoint
from tasks.env import jobs_dir, redact_url, remove_tree
from tasks.results import commit_model, model_card, open_run, record_evaluation, update_run
from tasks.tracking import Tracking, finish_tracking, start_tracking

BRANCH_PREFIX = {"train": "train", "continue_train": "continue"}


def flow_run_id() -> str:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.get_id() or "")
    except Exception:  # outside a flow run
        return ""


def run_trigger() -> str:
    """What started this job: ``schedule`` (a follow's cron on the deployment), ``event`` (an
    automation reacting to new data) or ``person`` (the CLI, SDK, ``python -m flows...`` or the
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


def read_metrics(path: Path, *, required: bool) -> dict[str, float]:
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


def evaluation_record(evaluation_id: str, model: str, dataset: str, dataset_commit: str,
                      metrics: dict[str, float], code_sha: str, run_id: str) -> str:
    return json.dumps({"id": evaluation_id, "model": model, "dataset": dataset,
                       "dataset_commit": dataset_commit, "metrics": metrics, "code_sha": code_sha,
                       "run_id": run_id, "created_at": datetime.now(UTC).isoformat()},
                      indent=2, sort_keys=True) + "\n"


def _safe_finish(tracking: Tracking | None, **kwargs: Any) -> None:
    if tracking is None:
        return
    try:
        finish_tracking(tracking, **kwargs)
    except Exception as e:  # never hide the job's own error
        print(f"warning: could not close the MLflow run: {e}", file=sys.stderr)


class JobScope:
    """The bookkeeping around a job: on failure the run is marked failed (with the reason) and
    its MLflow run closed as failed; in any case the job's working directory goes away."""

    def __init__(self, run_id: str, work: Path) -> None:
        self.run_id = run_id
        self.work = work
        self.tracking: Tracking | None = None

    def __enter__(self) -> JobScope:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if error is not None:
            update_run(self.run_id, state="failed", error=_error_text(error))
            _safe_finish(self.tracking, succeeded=False)
        if not os.environ.get("ASSETHUB_KEEP_JOB_DIR"):
            remove_tree(self.work)


def run_training(kind: str, *, model: str, dataset: str, repo: str, revision: str, subpath: str,
                 params: dict[str, Any] | None, branch: str, command: str, base: str = "",
                 message: str = "") -> dict[str, Any]:
    """Train (or continue training ``base``) into a new commit on ``branch`` of ``model``.

    Order matters: refs are parsed and permissions checked (open_run) before anything is
    fetched, the code and its spec before the data; the commit is the last step, so a
    failure anywhere leaves the model's branches as they were.
    """
    model_path = AssetPath.coerce(model)
    dataset_ref = AssetRef.coerce(dataset)
    base_ref = AssetRef.coerce(base) if base else None
    run = open_run(kind, str(model_path), branch=branch, dataset=str(dataset_ref),
                   base=str(base_ref or ""), code_url=redact_url(repo), code_revision=revision,
                   code_subpath=subpath, command=command, params=params, trigger=run_trigger())
    branch = branch or f"{BRANCH_PREFIX[kind]}-{run.id[:8]}"
    work = jobs_dir() / run.id
    with JobScope(run.id, work) as scope:
        code = fetch_code(repo, revision, subpath, str(work / "code"))
        cmd = job_command(code, "train", command)
        all_params = job_params(code, params)
        prefect_id = flow_run_id()
        update_run(run.id, state="running", code_sha=code.sha, command=cmd, params=all_params,
                   branch=branch, prefect_flow_run_id=prefect_id)
        scope.tracking = tracking = start_tracking(str(model_path), f"{kind}-{run.id[:8]}", all_params, {
            "assethub.run_id": run.id, "assethub.model": str(model_path), "assethub.branch": branch,
            "assethub.dataset": str(dataset_ref), "assethub.dataset_commit": run.dataset_commit,
            "assethub.prefect_flow_run_id": prefect_id, "assethub.job": kind,
            "mlflow.source.name": code.url, "mlflow.source.git.commit": code.sha})
        update_run(run.id, mlflow_run_id=tracking.run_id)
        data = fetch_dataset(str(dataset_ref), run.dataset_commit, str(work / "data"))
        base_dir = fetch_model(str(base_ref), run.base_commit, str(work / "base")).dir if base_ref else ""
        out = work / "output"
        out.mkdir(parents=True)
        ctx = JobContext(job=kind, dataset_dir=Path(data.dir), output_dir=out,
                         base_model_dir=Path(base_dir) if base_dir else None, params=all_params,
                         split=Split.parse(data.split, Path(data.dir)),
                         metrics_file=work / "metrics.json", mlflow_tracking_uri=tracking.uri,
                         mlflow_run_id=tracking.run_id)
        run_entrypoint(cmd, code.dir, environment(ctx))
        metrics = read_metrics(ctx.metrics_file, required=False)
        lineage = Lineage(job=kind, run_id=run.id, dataset=str(dataset_ref),
                          dataset_commit=run.dataset_commit, code_url=code.url,
                          code_revision=code.revision, code_subpath=code.subpath, code_sha=code.sha,
                          command=cmd, base_model=str(base_ref or ""), base_model_commit=run.base_commit,
                          params=all_params, metrics=metrics, mlflow_run_id=tracking.run_id,
                          mlflow_experiment_id=tracking.experiment_id, prefect_flow_run_id=prefect_id)
        evaluation_id = uuid.uuid4().hex
        pinned_dataset = f"{dataset_ref.path}:{run.dataset_commit}"
        if metrics:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
            (out / "eval").mkdir(exist_ok=True)
            (out / "eval" / f"{evaluation_id}.json").write_text(evaluation_record(
                evaluation_id, str(model_path), str(dataset_ref), run.dataset_commit, metrics,
                code.sha, run.id))
        if not (out / "README.md").exists():
            (out / "README.md").write_text(model_card(str(model_path), lineage, tracking.uri))
        what = "Continue training" if base_ref else "Train"
        committed = commit_model(
            str(model_path), branch, run.base_commit or "main", str(out), lineage,
            message or f"{what} on {dataset_ref} ({run.dataset_commit[:12]}) with code {code.sha[:12]}")
        if metrics:
            record_evaluation(committed.ref, pinned_dataset, metrics, run.id, evaluation_id)
        _safe_finish(tracking, succeeded=True, metrics=metrics, model_dir=str(out / "model"), tags={
            "assethub.lakefs_commit": committed.commit, "assethub.model_ref": committed.ref})
        update_run(run.id, state="completed", metrics=metrics, result_commit=committed.commit)
        return {"run_id": run.id, "model_ref": f"{model_path}:{branch}", "branch": branch,
                "commit": committed.commit, "metrics": metrics, "mlflow_run_id": tracking.run_id,
                "dataset_commit": run.dataset_commit, "code_sha": code.sha,
                "prefect_flow_run_id": prefect_id}


def _error_text(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if isinstance(e, AssetHubError) else f"{type(e).__name__}: {text}"


# -- the command line of every flow --------------------------------------------------------------
def parse_param(item: str) -> tuple[str, Any]:
    """``key=value``: an int, a float (``1e-3`` too), true/false, or else the string as given."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--param takes key=value, not {item!r}")
    value: Any = raw
    for convert in (int, float):
        try:
            return key.strip(), convert(raw)
        except ValueError:
            pass
    if raw.strip().lower() in ("true", "false"):
        value = raw.strip().lower() == "true"
    return key.strip(), value


def job_arguments(parser: argparse.ArgumentParser, *, code_required: bool = True) -> None:
    parser.add_argument("--dataset", required=True, help="dataset reference <path>:<tag|branch|commit>")
    parser.add_argument("--repo", required=code_required, default="",
                        help="Git URL or path of the training code")
    parser.add_argument("--revision", default="main", help="branch, tag or commit of the code")
    parser.add_argument("--subpath", default="", help="directory of the code inside the repository")
    parser.add_argument("--param", action="append", type=parse_param, default=[], metavar="KEY=VALUE",
                        help="override a parameter of assethub.yaml (repeatable)")
    parser.add_argument("--command", default="", help="command to run instead of assethub.yaml's")


def main(flow: Callable[..., dict[str, Any]], parser: argparse.ArgumentParser,
         to_kwargs: Callable[[argparse.Namespace], dict[str, Any]], argv: list[str] | None = None) -> int:
    """Run ``flow`` from the command line: a summary on stderr, the result as JSON on stdout."""
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = flow(**to_kwargs(args))
    except AssetHubError as e:
        from assethub.cli import EXIT_CODES  # the same exit codes as every assethub command

        first = " ".join(str(e).split("\n", 1)[0].split())
        print(f"error: {first}", file=sys.stderr)
        if isinstance(e, JobFailedError) and e.tail:
            print(e.tail, file=sys.stderr)
        return next(code for classes, code, _ in EXIT_CODES if isinstance(e, classes))
    print(json.dumps(result, indent=None if args.json else 2, sort_keys=True, default=str))
    return 0
