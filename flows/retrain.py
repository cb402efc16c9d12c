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

from assethub.refs import AssetPath, AssetRef
from assethub.wire import RunView
from flows.cli import job_arguments, run_cli
from flows.continue_train import continue_train
from flows.evaluate import evaluate
from flows.merge import merge
from flows.train import train
from tasks.env import drop_job_token
from tasks.results import fail_run, flow_run_id, open_follow_run, open_run, run_trigger, update_run
from tasks.retrain import RetrainPlan, claim_branch, plan_retrain, release_claim


@flow(name="retrain", log_prints=True)
def retrain(model: str = "", dataset: str = "", repo: str = "", revision: str = "", subpath: str = "",
            params: dict[str, Any] | None = None, metric: str = "accuracy", higher_is_better: bool = True,
            margin: float = 0.0, command: str = "", follow_id: int = 0) -> dict[str, Any]:
    """If `dataset`'s main is not what `model`'s main was trained on, train on it (continuing from
    main's weights when main has a model), evaluate main on the same data, and merge the new
    version into main only if `metric` improves by more than `margin`.

    Args:
        model: the model asset, `<owner>/model/<folder>/<name>` (not with `follow_id`)
        dataset: the dataset asset followed, `<owner>/dataset/<folder>/<name>` (its `main` is used)
        repo: Git URL (or local path) of the training code
        revision: branch, tag or commit of the code ("": the repository's default branch)
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        metric: the evaluation metric that must improve for the merge
        higher_is_better: whether a larger metric is better (accuracy) or worse (loss)
        margin: how much the metric must improve by
        command: the training command instead of assethub.yaml's `train`
        follow_id: a follow whose retrain this is (its automation and schedule pass it): the
            server registers the run as the follow's owner with the follow's settings, and the
            job acts with that run's token (the worker's service user only)
    """
    logger = get_run_logger()
    if follow_id:
        run = open_follow_run(follow_id, run_trigger())
        return _retrain_run(run)
    path = str(AssetPath.coerce(model))
    plan = plan_retrain(path, dataset)
    if plan.up_to_date:
        logger.info("nothing to do: %s", plan.up_to_date)
        return {"retrained": False, "merged": False, "reason": plan.up_to_date, "branch": "", "run_id": ""}
    branch = plan.branch
    if not claim_branch(path, branch, plan.main_commit):  # the claim: one retrain per commit
        reason = f"branch {branch} exists: dataset commit {plan.dataset_commit[:12]} is retrained already"
        logger.info("nothing to do: %s", reason)
        return {"retrained": False, "merged": False, "reason": reason, "branch": branch, "run_id": ""}
    pinned = f"{plan.dataset}:{plan.dataset_commit}"
    base = f"{path}:{plan.main_commit}" if plan.has_model else ""
    try:
        run = open_run("retrain", path, branch=branch, dataset=pinned, base=base, code_url=repo,
                       code_revision=revision, code_subpath=subpath, command=command, trigger=run_trigger(),
                       params={"metric": metric, "higher_is_better": higher_is_better, "margin": margin,
                               **(params or {})})
    except BaseException:
        release_claim(path, branch, plan.main_commit)
        raise
    return _retrain_run(run, plan, claimed=True)


def _retrain_run(run: RunView, plan: RetrainPlan | None = None, claimed: bool = False) -> dict[str, Any]:
    """The retrain of ``run`` (its job token in use): plan and claim unless done, train,
    evaluate main, merge if better; the run records the outcome."""
    logger = get_run_logger()
    path, settings = run.model, dict(run.params)
    metric = str(settings.pop("metric", "accuracy"))
    higher_is_better = bool(settings.pop("higher_is_better", True))
    margin = float(settings.pop("margin", 0.0))
    params = settings or None
    repo, revision, subpath, command = run.code_url, run.code_revision, run.code_subpath, run.command
    trained: dict[str, Any] | None = None
    try:
        if plan is None:  # a follow's run: the dataset commit is the run's
            plan = plan_retrain(path, run.dataset_ref, run.dataset_commit)
            reason = plan.up_to_date
            if not reason and not claim_branch(path, run.branch, plan.main_commit):
                reason = (f"branch {run.branch} exists: dataset commit {run.dataset_commit[:12]} "
                          "is retrained already")
            claimed = not reason
            if reason:
                logger.info("nothing to do: %s", reason)
                update_run(run.id, state="completed", error=f"nothing to do: {reason}")
                return {"retrained": False, "merged": False, "reason": reason, "branch": "", "run_id": run.id}
        branch, pinned = run.branch, run.dataset_ref
        dataset = str(AssetRef.coerce(pinned).path)
        base = f"{path}:{plan.main_commit}" if plan.has_model else ""
        update_run(run.id, state="running", prefect_flow_run_id=flow_run_id())
        job = dict(dataset=pinned, repo=repo, revision=revision, subpath=subpath, params=params,
                   branch=branch, command=command,
                   message=f"Retrain on {dataset} main ({run.dataset_commit[:12]})")
        if plan.has_model:
            trained = continue_train(base=base, model=path, **job)
            # main's model on the same data: the comparison is then like for like
            evaluate(model=base, dataset=pinned, repo=repo, revision=revision, subpath=subpath, params=params)
        else:
            trained = train(model=path, **job)
        merged = merge(model=path, source=branch, into="main", metric=metric,
                       higher_is_better=higher_is_better, margin=margin)
        why = ("merged into main: " if merged["merged"] else "kept on its branch, not merged: ") \
            + str(merged["reason"])
        update_run(run.id, state="completed", metrics=trained.get("metrics") or {},
                   result_commit=merged["commit"] or trained["commit"],
                   error="" if merged["merged"] else why)
        logger.info("retrain of %s on %s: %s", path, pinned, why)
        return {"retrained": True, "merged": bool(merged["merged"]), "reason": why, "branch": branch,
                "run_id": run.id, "commit": trained["commit"], "merge_commit": merged["commit"],
                "dataset_commit": run.dataset_commit, "metrics": trained.get("metrics") or {}}
    except BaseException as e:
        if trained is None and claimed and plan is not None:
            release_claim(path, run.branch, plan.main_commit)  # with the run's token: still live
        fail_run(run.id, e)
        raise
    finally:
        drop_job_token(run.id)  # the run ended: so did its token


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.retrain",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model asset <owner>/model/<folder>/<name>")
    job_arguments(parser)
    parser.add_argument("--metric", default="accuracy", help="metric that must improve for the merge")
    parser.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    parser.add_argument("--margin", type=float, default=0.0, help="required improvement")
    return run_cli(retrain, parser, lambda a: dict(
        model=a.model, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), metric=a.metric, higher_is_better=not a.lower_is_better, margin=a.margin,
        command=a.command), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
