"""Merge a model branch into another (``main``), optionally only if its evaluation is better.

    python -m flows.merge --model alice/model/cls/net --source train-1a2b3c4d --metric accuracy
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from assethub.refs import AssetPath
from flows.cli import run_cli
from tasks.env import drop_job_token
from tasks.results import compare_versions, fail_run, merge_branch, open_run, run_trigger, update_run


@flow(name="merge", log_prints=True)
def merge(model: str, source: str, into: str = "main", metric: str = "", higher_is_better: bool = True,
          margin: float = 0.0) -> dict[str, Any]:
    """Merge branch `source` of `model` into `into`; with `metric`, only if the source's
    evaluation beats the target's by more than `margin` (trusted evaluations only: those a job of
    the model or an editor recorded; the result names the run or user behind each number).

    Args:
        model: the model asset, `<owner>/model/<folder>/<name>`
        source: the branch to merge (e.g. a `train-...` branch)
        into: the branch to merge into
        metric: the evaluation metric that must improve (empty: merge unconditionally)
        higher_is_better: whether a larger metric is better (accuracy) or worse (loss)
        margin: how much the metric must improve by
    """
    path = AssetPath.coerce(model)
    run = open_run("merge", str(path), branch=source,
                   params={"into": into, "metric": metric, "higher_is_better": higher_is_better,
                           "margin": margin}, trigger=run_trigger())
    try:
        update_run(run.id, state="running")
        decision, model_commit = compare_versions(str(path), source, into, metric, higher_is_better, margin)
        commit = ""
        if decision.merge:
            commit = merge_branch(str(path), source, into, model_commit,
                                  f"Merge {source} into {into}: {decision.reason}")
        scores = {k: v for k, v in (("source_" + metric, decision.source_value),
                                    ("target_" + metric, decision.target_value)) if v is not None}
        update_run(run.id, state="completed", metrics=scores, result_commit=commit,
                   error="" if decision.merge else f"not merged: {decision.reason}")
        # the reason names the run (or user) behind each number; so do these
        return {"run_id": run.id, "merged": decision.merge, "reason": decision.reason, "commit": commit,
                "source_value": decision.source_value, "target_value": decision.target_value,
                "source_by": decision.source_by, "target_by": decision.target_by}
    except BaseException as e:
        fail_run(run.id, e)
        raise
    finally:
        drop_job_token(run.id)  # the run ended: so did its token


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.merge",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model asset <owner>/model/<folder>/<name>")
    parser.add_argument("--source", required=True, help="branch to merge")
    parser.add_argument("--into", default="main", help="branch to merge into")
    parser.add_argument("--metric", default="", help="merge only if this evaluation metric improves")
    parser.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    parser.add_argument("--margin", type=float, default=0.0, help="required improvement")
    return run_cli(merge, parser, lambda a: dict(
        model=a.model, source=a.source, into=a.into, metric=a.metric,
        higher_is_better=not a.lower_is_better, margin=a.margin), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
