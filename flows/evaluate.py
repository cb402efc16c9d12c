"""Evaluate a model version on a dataset version; the result is kept with the model.

    python -m flows.evaluate --model alice/model/cls/net:main --dataset alice/dataset/img/digits:v1 \\
        --repo ./code
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from assethub.refs import AssetRef
from flows.cli import job_arguments, run_cli
from flows.pipeline import JobScope, open_job, require_inputs, run_command
from tasks.assets import is_editable_branch, resolve_model_commit
from tasks.results import commit_evaluation, record_evaluation, update_run, write_evaluation_files
from tasks.tracking import close_tracking


@flow(name="evaluate", log_prints=True)
def evaluate(model: str, dataset: str = "", repo: str = "", revision: str = "", subpath: str = "",
             params: dict[str, Any] | None = None, command: str = "", run_id: str = "",
             algorithm: str = "") -> dict[str, Any]:
    """Run the code's `evaluate` command on a model version and a dataset's test split.

    The metrics go to the catalog (by model and dataset commit) and, when `model` names a
    branch you may edit, into the branch as `eval/<id>.json`.

    Args:
        model: the model version, `<owner>/model/<folder>/<name>:<branch|tag|commit>`
        dataset: the dataset version, `<owner>/dataset/<folder>/<name>:<tag|branch|commit>`
            (default: the model's saved settings)
        repo: Git URL (or local path) of the code with the `evaluate` command (default: the
            model's saved settings)
        revision: branch, tag or commit of the code (default: the repository's default branch)
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        command: the command to run instead of assethub.yaml's `evaluate`
        run_id: a run registered for the worker to take over (its record says what runs)
        algorithm: an algorithm of the library (`<name>` or `<name>@<version>`) instead of `repo`
    """
    model_ref = AssetRef.coerce(model)
    # the run's branch: where its evaluation may be committed (when it is a branch one may edit)
    run = open_job("evaluate", str(model_ref.path), dataset=str(AssetRef.coerce(dataset)) if dataset else "",
                   base=str(model_ref), repo=repo, revision=revision, subpath=subpath, params=params,
                   command=command, branch=model_ref.ref, run_id=run_id, algorithm=algorithm)
    # what the run registered is what runs (the server filled in the model's settings)
    model_ref = AssetRef.coerce(run.base_ref)
    repo, revision, subpath = run.code_url, run.code_revision, run.code_subpath
    params, command = dict(run.params), run.command
    with JobScope(run) as scope:
        require_inputs(run)
        dataset_ref = AssetRef.coerce(run.dataset_ref)
        model_commit = resolve_model_commit(str(model_ref.path.at(run.base_commit)))
        ran = run_command(scope, "evaluate", model=str(model_ref.path), dataset=str(dataset_ref),
                          base=str(model_ref), repo=repo, revision=revision, subpath=subpath, params=params,
                          command=command, tags={"assethub.model_commit": model_commit}, progress={})
        evaluation_id = record_evaluation(str(model_ref.path.at(model_commit)),
                                          str(dataset_ref.path.at(run.dataset_commit)), ran.metrics, run.id)
        stored_in = "catalog"
        if is_editable_branch(str(model_ref)):
            files = write_evaluation_files(
                str(scope.work / "eval-commit"), evaluation_id, model=str(model_ref.path),
                dataset=str(dataset_ref), dataset_commit=run.dataset_commit, metrics=ran.metrics,
                code_sha=ran.code.sha, run_id=run.id, report_dir=str(ran.output))
            commit_evaluation(str(model_ref.path), model_ref.ref, model_commit, files, run_id=run.id,
                              dataset=str(dataset_ref), dataset_commit=run.dataset_commit,
                              code_sha=ran.code.sha,
                              message=f"Evaluate on {dataset_ref} ({run.dataset_commit[:12]})")
            stored_in = f"catalog and {model_ref}"
        close_tracking(ran.tracking, succeeded=True, metrics=ran.metrics)
        update_run(run.id, state="completed", metrics=ran.metrics, result_commit=model_commit)
        return {"run_id": run.id, "evaluation_id": evaluation_id, "metrics": ran.metrics,
                "model_commit": model_commit, "dataset_commit": run.dataset_commit,
                "mlflow_run_id": ran.tracking.run_id, "stored_in": stored_in}


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.evaluate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <path>:<ref>")
    job_arguments(parser, settings=True)
    return run_cli(evaluate, parser, lambda a: dict(
        model=a.model, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), command=a.command, algorithm=a.algorithm), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
