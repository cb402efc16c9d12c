"""Merge a model branch into another (``main``), optionally only if its evaluation is better.

    python -m flows.merge --model alice/model/cls/net --source train-1a2b3c4d --metric accuracy
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.refs import AssetPath
from assethub.service import EvaluationView, LineageView
from flows._job import _error_text, main, run_trigger
from tasks.env import client
from tasks.results import merge_branch, open_run, update_run


@dataclass(frozen=True)
class Decision:
    merge: bool
    reason: str
    source_value: float | None = None
    target_value: float | None = None


def _scores(view: LineageView, metric: str) -> dict[str, EvaluationView]:
    """The newest evaluation having ``metric``, per dataset commit."""
    out: dict[str, EvaluationView] = {}
    for e in sorted(view.evaluations, key=lambda e: e.created_at):
        if metric in e.metrics:
            out[e.dataset_commit] = e
    return out


def decide(source: LineageView, target: LineageView, metric: str, *, higher_is_better: bool = True,
           margin: float = 0.0) -> Decision:
    """Whether ``source`` should replace ``target``: on ``metric``, by more than ``margin``,
    compared on the same dataset version when both were evaluated on one."""
    if source.model_commit == target.model_commit:
        return Decision(False, "the source holds the same model as the target")
    if not metric:
        return Decision(True, "no metric given: merge unconditionally")
    src, dst = _scores(source, metric), _scores(target, metric)
    if not src:
        return Decision(False, f"the source has no evaluation with '{metric}': run `assethub evaluate` "
                               "on it first")
    if not dst:
        best = max(src.values(), key=lambda e: e.created_at)
        return Decision(True, f"the target has no evaluation with '{metric}'", best.metrics[metric])
    common = [d for d in src if d in dst]
    if common:
        newest = max(common, key=lambda d: src[d].created_at)
        s, t, note = src[newest].metrics[metric], dst[newest].metrics[metric], \
            f"on dataset commit {newest[:12]}"
    else:
        s_e = max(src.values(), key=lambda e: e.created_at)
        t_e = max(dst.values(), key=lambda e: e.created_at)
        s, t = s_e.metrics[metric], t_e.metrics[metric]
        note = (f"on different dataset commits ({s_e.dataset_commit[:12]} vs {t_e.dataset_commit[:12]}): "
                "evaluate both on one dataset version for a fair comparison")
    gain = (s - t) if higher_is_better else (t - s)
    better = gain > margin
    verdict = "better" if better else "not better"
    return Decision(better, f"{metric} {s:.6g} vs {t:.6g} {note}: {verdict} by the margin {margin:g}", s, t)


@task(name="compare_versions", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def compare_versions(model: str, source: str, into: str, metric: str, higher_is_better: bool,
                     margin: float) -> tuple[Decision, str]:
    hub = client()
    src = hub.lineage(f"{model}:{source}")
    dst = hub.lineage(f"{model}:{into}")
    decision = decide(src, dst, metric, higher_is_better=higher_is_better, margin=margin)
    get_run_logger().info("merge %s into %s? %s: %s", source, into, decision.merge, decision.reason)
    return decision, src.model_commit


@flow(name="merge", log_prints=True)
def merge(model: str, source: str, into: str = "main", metric: str = "", higher_is_better: bool = True,
          margin: float = 0.0) -> dict[str, Any]:
    """Merge branch `source` of `model` into `into`; with `metric`, only if the source's
    evaluation beats the target's by more than `margin`.

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
        return {"run_id": run.id, "merged": decision.merge, "reason": decision.reason, "commit": commit,
                "source_value": decision.source_value, "target_value": decision.target_value}
    except BaseException as e:
        update_run(run.id, state="failed", error=_error_text(e))
        raise


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.merge", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model asset <owner>/model/<folder>/<name>")
    parser.add_argument("--source", required=True, help="branch to merge")
    parser.add_argument("--into", default="main", help="branch to merge into")
    parser.add_argument("--metric", default="", help="merge only if this evaluation metric improves")
    parser.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    parser.add_argument("--margin", type=float, default=0.0, help="required improvement")
    return main(merge, parser, lambda a: dict(
        model=a.model, source=a.source, into=a.into, metric=a.metric,
        higher_is_better=not a.lower_is_better, margin=a.margin), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
