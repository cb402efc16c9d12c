"""Re-run the job behind a model version from its lineage and say whether the metrics match.

    python -m flows.reproduce --model alice/model/cls/net:main
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from prefect import flow

from assethub.errors import JobSpecError
from assethub.lineage import TRAINING_JOBS
from assethub.refs import AssetRef
from flows._job import main, run_training
from tasks.env import client


def compare_metrics(original: dict[str, float], again: dict[str, float],
                    tolerance: float = 0.0) -> dict[str, tuple[float | None, float | None]]:
    """The metrics that differ (by more than ``tolerance``, relative), as (original, again)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for name in sorted(set(original) | set(again)):
        a, b = original.get(name), again.get(name)
        if a is None or b is None or not math.isclose(a, b, rel_tol=tolerance, abs_tol=0.0):
            out[name] = (a, b)
    return out


@flow(name="reproduce", log_prints=True)
def reproduce(model: str, branch: str = "", repo: str = "", tolerance: float = 0.0) -> dict[str, Any]:
    """Train again with the same dataset commit, code commit, command, params and base model as
    the version `model`, into a new branch, and compare the metrics.

    Args:
        model: the model version to reproduce, `<owner>/model/<folder>/<name>:<ref>`
        branch: the branch for the reproduction (default: `reproduce-<run>`)
        repo: the code's URL, when the recorded one had credentials removed
        tolerance: relative difference allowed between metrics (0: identical)
    """
    ref = AssetRef.coerce(model)
    view = client().lineage(ref)
    lin = view.lineage
    if lin is None or lin.job not in TRAINING_JOBS:
        raise JobSpecError(f"{ref} (commit {view.model_commit[:12]}) was not made by a training job: "
                           "there is no lineage to reproduce")
    if "***@" in lin.code_url and not repo:
        raise JobSpecError(f"the recorded code URL {lin.code_url} had credentials removed; pass --repo")
    dataset = f"{AssetRef.parse(lin.dataset).path}:{lin.dataset_commit}"
    base = f"{AssetRef.parse(lin.base_model).path}:{lin.base_model_commit}" if lin.base_model else ""
    result = run_training(lin.job, model=str(ref.path), dataset=dataset, repo=repo or lin.code_url,
                          revision=lin.code_sha, subpath=lin.code_subpath, params=dict(lin.params),
                          branch=branch or "", command=lin.command, base=base,
                          message=f"Reproduce {ref} ({view.model_commit[:12]})")
    differences = compare_metrics(dict(lin.metrics), result["metrics"], tolerance)
    return {**result, "original_commit": view.model_commit, "original_metrics": dict(lin.metrics),
            "match": not differences,
            "differences": {k: {"original": a, "reproduced": b} for k, (a, b) in differences.items()}}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <path>:<ref>")
    parser.add_argument("--branch", default="", help="branch for the reproduction")
    parser.add_argument("--repo", default="", help="code URL (when the recorded one was redacted)")
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative tolerance for metrics")
    return main(reproduce, parser, lambda a: dict(model=a.model, branch=a.branch, repo=a.repo,
                                                  tolerance=a.tolerance), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
