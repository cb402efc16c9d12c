"""Retrain a model when its dataset's ``main`` moved; merge the result only if it is better.

    python -m flows.retrain --model alice/model/cls/net --dataset alice/dataset/img/digits \\
        --repo https://example.org/code.git --metric accuracy --margin 0.01

One retrain per (model, dataset commit): its branch ``retrain-<dataset commit[:12]>`` is
created first, atomically, so a second trigger for the same commit finds it and does nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow, get_run_logger

from assethub.errors import AlreadyExistsError, AssetHubError
from assethub.refs import AssetPath, AssetRef
from flows._job import _error_text, flow_run_id, job_arguments, main, run_trigger
from flows.continue_train import continue_train
from flows.evaluate import evaluate
from flows.merge import merge
from flows.train import train
from tasks.env import client, redact_url
from tasks.results import open_run, update_run

PREFIX = "retrain-"


def branch_for(dataset_commit: str) -> str:
    return PREFIX + dataset_commit[:12]


@flow(name="retrain", log_prints=True)
def retrain(model: str, dataset: str, repo: str, revision: str = "main", subpath: str = "",
            params: dict[str, Any] | None = None, metric: str = "accuracy", higher_is_better: bool = True,
            margin: float = 0.0, command: str = "") -> dict[str, Any]:
    """If `dataset`'s main is not what `model`'s main was trained on, train on it (continuing from
    main's weights when main has a model), evaluate main on the same data, and merge the new
    version into main only if `metric` improves by more than `margin`.

    Args:
        model: the model asset, `<owner>/model/<folder>/<name>`
        dataset: the dataset asset followed, `<owner>/dataset/<folder>/<name>` (its `main` is used)
        repo: Git URL (or local path) of the training code
        revision: branch, tag or commit of the code
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        metric: the evaluation metric that must improve for the merge
        higher_is_better: whether a larger metric is better (accuracy) or worse (loss)
        margin: how much the metric must improve by
        command: the training command instead of assethub.yaml's `train`
    """
    logger = get_run_logger()
    hub = client()
    path = AssetPath.coerce(model)
    data = AssetRef.coerce(dataset).path  # a ref given is ignored: main is what is followed
    dataset_commit = hub.resolve(data.at("main"))
    main_commit = hub.resolve(path.at("main"))
    has_model = any(o.path == "model/MLmodel"
                    for o in hub.list_objects(path.at(main_commit), prefix="model/"))
    if has_model:
        lin = hub.lineage(path.at(main_commit)).lineage
        if lin is not None and lin.dataset_commit == dataset_commit:
            reason = f"main was trained on the dataset's main ({dataset_commit[:12]}) already"
            logger.info("nothing to do: %s", reason)
            return {"retrained": False, "merged": False, "reason": reason, "branch": "", "run_id": ""}
    branch = branch_for(dataset_commit)
    try:
        hub.create_branch(path, branch, source=main_commit)  # the claim: one retrain per commit
    except AlreadyExistsError:
        reason = f"branch {branch} exists: dataset commit {dataset_commit[:12]} is retrained already"
        logger.info("nothing to do: %s", reason)
        return {"retrained": False, "merged": False, "reason": reason, "branch": branch, "run_id": ""}
    pinned = f"{data}:{dataset_commit}"
    run = open_run("retrain", str(path), branch=branch, dataset=pinned,
                   base=f"{path}:{main_commit}" if has_model else "", code_url=redact_url(repo),
                   code_revision=revision,
                   code_subpath=subpath, command=command, trigger=run_trigger(),
                   params={"metric": metric, "higher_is_better": higher_is_better, "margin": margin,
                           **(params or {})})
    trained: dict[str, Any] | None = None
    try:
        update_run(run.id, state="running", prefect_flow_run_id=flow_run_id())
        job = dict(dataset=pinned, repo=repo, revision=revision, subpath=subpath, params=params,
                   branch=branch, command=command,
                   message=f"Retrain on {data} main ({dataset_commit[:12]})")
        if has_model:
            trained = continue_train(base=f"{path}:{main_commit}", model=str(path), **job)
            # main's model on the same data: the comparison is then like for like
            evaluate(model=f"{path}:{main_commit}", dataset=pinned, repo=repo, revision=revision,
                     subpath=subpath, params=params)
        else:
            trained = train(model=str(path), **job)
        merged = merge(model=str(path), source=branch, into="main", metric=metric,
                       higher_is_better=higher_is_better, margin=margin)
        why = ("merged into main: " if merged["merged"] else "kept on its branch, not merged: ") \
            + str(merged["reason"])
        update_run(run.id, state="completed", metrics=trained.get("metrics") or {},
                   result_commit=merged["commit"] or trained["commit"],
                   error="" if merged["merged"] else why)
        logger.info("retrain of %s on %s: %s", path, pinned, why)
        return {"retrained": True, "merged": bool(merged["merged"]), "reason": why, "branch": branch,
                "run_id": run.id, "commit": trained["commit"], "merge_commit": merged["commit"],
                "dataset_commit": dataset_commit, "metrics": trained.get("metrics") or {}}
    except BaseException as e:
        update_run(run.id, state="failed", error=_error_text(e))
        if trained is None:
            _release(path, branch, main_commit)
        raise


def _release(path: AssetPath, branch: str, claimed_at: str) -> None:
    """Drop the claim of a retrain that committed nothing, so that it can run again."""
    try:
        hub = client()
        if hub.resolve(path.at(branch)) == claimed_at:
            hub.delete_branch(path, branch)
    except AssetHubError as e:
        get_run_logger().warning("could not remove branch %s after the failure: %s", branch, e)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model asset <owner>/model/<folder>/<name>")
    job_arguments(parser)
    parser.add_argument("--metric", default="accuracy", help="metric that must improve for the merge")
    parser.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    parser.add_argument("--margin", type=float, default=0.0, help="required improvement")
    return main(retrain, parser, lambda a: dict(
        model=a.model, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), metric=a.metric, higher_is_better=not a.lower_is_better, margin=a.margin,
        command=a.command), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
