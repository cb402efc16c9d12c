"""Re-run the job behind a model version from its lineage and say whether the metrics match.

    python -m flows.reproduce --model alice/model/cls/net:main
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from assethub.lineage import metric_differences, rerun_of
from assethub.refs import AssetRef
from flows.cli import run_cli
from flows.pipeline import run_training
from tasks.assets import read_lineage


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
    view = read_lineage(str(ref))
    again = rerun_of(str(ref), view.model_commit, view.lineage, repo)
    result = run_training(again.job, model=str(ref.path), dataset=again.dataset, repo=again.code_url,
                          revision=again.code_sha, subpath=again.code_subpath, params=dict(again.params),
                          branch=branch or "", command=again.command, base=again.base_model,
                          message=f"Reproduce {ref} ({view.model_commit[:12]})")
    original = dict(view.lineage.metrics) if view.lineage else {}
    differences = metric_differences(original, result["metrics"], tolerance)
    return {**result, "original_commit": view.model_commit, "original_metrics": original,
            "match": not differences,
            "differences": {k: {"original": a, "reproduced": b} for k, (a, b) in differences.items()}}


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.reproduce",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <path>:<ref>")
    parser.add_argument("--branch", default="", help="branch for the reproduction")
    parser.add_argument("--repo", default="", help="code URL (when the recorded one was redacted)")
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative tolerance for metrics")
    return run_cli(reproduce, parser, lambda a: dict(model=a.model, branch=a.branch, repo=a.repo,
                                                  tolerance=a.tolerance), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
