"""Evaluate a model version on a dataset version; the result is kept with the model.

    python -m flows.evaluate --model alice/model/cls/net:main --dataset alice/dataset/img/digits:v1 \\
        --repo ./code
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path
from typing import Any

from prefect import flow

from assethub.lineage import PREFIX
from assethub.refs import AssetRef
from assethub.runtime import JobContext, Split, environment
from flows._job import (
    JobScope,
    _safe_finish,
    evaluation_record,
    flow_run_id,
    job_arguments,
    main,
    read_metrics,
    run_trigger,
)
from tasks.assets import fetch_dataset, fetch_model
from tasks.code import fetch_code, job_command, job_params
from tasks.entrypoint import run_entrypoint
from tasks.env import client, jobs_dir, redact_url
from tasks.results import commit_evaluation, open_run, record_evaluation, update_run
from tasks.tracking import start_tracking


@flow(name="evaluate", log_prints=True)
def evaluate(model: str, dataset: str, repo: str, revision: str = "main", subpath: str = "",
             params: dict[str, Any] | None = None, command: str = "") -> dict[str, Any]:
    """Run the code's `evaluate` command on a model version and a dataset's test split.

    The metrics go to the catalog (by model and dataset commit) and, when `model` names a
    branch you may edit, into the branch as `eval/<id>.json`.

    Args:
        model: the model version, `<owner>/model/<folder>/<name>:<branch|tag|commit>`
        dataset: the dataset version, `<owner>/dataset/<folder>/<name>:<tag|branch|commit>`
        repo: Git URL (or local path) of the code with the `evaluate` command
        revision: branch, tag or commit of the code
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        command: the command to run instead of assethub.yaml's `evaluate`
    """
    model_ref = AssetRef.coerce(model)
    dataset_ref = AssetRef.coerce(dataset)
    run = open_run("evaluate", str(model_ref.path), dataset=str(dataset_ref), base=str(model_ref),
                   code_url=redact_url(repo), code_revision=revision, code_subpath=subpath,
                   command=command, params=params, trigger=run_trigger())
    hub = client()
    with JobScope(run.id, jobs_dir() / run.id) as scope:
        work = scope.work
        code = fetch_code(repo, revision, subpath, str(work / "code"))
        cmd = job_command(code, "evaluate", command)
        all_params = job_params(code, params)
        prefect_id = flow_run_id()
        model_commit = hub.lineage(model_ref.path.at(run.base_commit)).model_commit
        update_run(run.id, state="running", code_sha=code.sha, command=cmd, params=all_params,
                   prefect_flow_run_id=prefect_id)
        name = f"evaluate-{run.id[:8]}"
        tracking = scope.tracking = start_tracking(str(model_ref.path), name, all_params, {
            "assethub.run_id": run.id, "assethub.model": str(model_ref.path), "assethub.job": "evaluate",
            "assethub.model_commit": model_commit, "assethub.dataset": str(dataset_ref),
            "assethub.dataset_commit": run.dataset_commit, "assethub.prefect_flow_run_id": prefect_id,
            "mlflow.source.name": code.url, "mlflow.source.git.commit": code.sha})
        update_run(run.id, mlflow_run_id=tracking.run_id)
        data = fetch_dataset(str(dataset_ref), run.dataset_commit, str(work / "data"))
        weights = fetch_model(str(model_ref), run.base_commit, str(work / "model"))
        report = work / "report"
        report.mkdir(parents=True)
        ctx = JobContext(job="evaluate", dataset_dir=Path(data.dir), output_dir=report,
                         base_model_dir=Path(weights.dir), params=all_params,
                         split=Split.parse(data.split, Path(data.dir)), metrics_file=work / "metrics.json",
                         mlflow_tracking_uri=tracking.uri, mlflow_run_id=tracking.run_id)
        run_entrypoint(cmd, code.dir, environment(ctx))
        metrics = read_metrics(ctx.metrics_file, required=True)
        evaluation_id = uuid.uuid4().hex
        record_evaluation(f"{model_ref.path}:{model_commit}", f"{dataset_ref.path}:{run.dataset_commit}",
                          metrics, run.id, evaluation_id)
        stored_in = "catalog"
        if (model_ref.ref in {b.name for b in hub.list_branches(model_ref.path)}
                and hub.role(model_ref.path) in ("edit", "owner")):
            files = work / "eval-commit"
            files.mkdir()
            (files / f"{evaluation_id}.json").write_text(evaluation_record(
                evaluation_id, str(model_ref.path), str(dataset_ref), run.dataset_commit, metrics,
                code.sha, run.id))
            if any(report.iterdir()):
                shutil.copytree(report, files / evaluation_id)  # the command's report beside the metrics
            meta = {PREFIX + "job": "evaluate", PREFIX + "run_id": run.id,
                    PREFIX + "dataset": str(dataset_ref), PREFIX + "dataset_commit": run.dataset_commit,
                    PREFIX + "code_sha": code.sha}
            commit_evaluation(str(model_ref.path), model_ref.ref, model_commit, str(files), meta,
                              f"Evaluate on {dataset_ref} ({run.dataset_commit[:12]})")
            stored_in = f"catalog and {model_ref}"
        _safe_finish(tracking, succeeded=True, metrics=metrics)
        update_run(run.id, state="completed", metrics=metrics, result_commit=model_commit)
        return {"run_id": run.id, "evaluation_id": evaluation_id, "metrics": metrics,
                "model_commit": model_commit, "dataset_commit": run.dataset_commit,
                "mlflow_run_id": tracking.run_id, "stored_in": stored_in}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <path>:<ref>")
    job_arguments(parser)
    return main(evaluate, parser, lambda a: dict(
        model=a.model, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), command=a.command), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
