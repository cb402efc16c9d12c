"""Continue training a model version on a dataset version, into a new branch.

    python -m flows.continue_train --base alice/model/cls/net:main \\
        --dataset alice/dataset/img/digits:v2 --repo ./code --param epochs=1
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from assethub.refs import AssetRef
from flows.cli import job_arguments, run_cli
from flows.pipeline import run_training


@flow(name="continue-train", log_prints=True)
def continue_train(base: str, dataset: str = "", repo: str = "", revision: str = "", subpath: str = "",
                   params: dict[str, Any] | None = None, branch: str = "", command: str = "",
                   message: str = "", model: str = "", run_id: str = "",
                   algorithm: str = "") -> dict[str, Any]:
    """Start from the weights of `base` and train more; the result is a new branch.

    Args:
        base: the model version to continue from, `<owner>/model/<folder>/<name>:<ref>`
        dataset: the dataset version, `<owner>/dataset/<folder>/<name>:<tag|branch|commit>`
            (default: the model's saved settings)
        repo: Git URL (or local path) of the training code (default: the model's saved settings)
        revision: branch, tag or commit of the code (default: the repository's default branch)
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        branch: the branch to create (default: `continue-<run>`), from the base version
        command: the command to run instead of assethub.yaml's `train`
        message: the commit message
        model: the model asset to write (default: the base's own asset)
        run_id: a run registered for the worker to take over (its record says what runs)
        algorithm: an algorithm of the library (`<name>` or `<name>@<version>`) instead of `repo`
    """
    base_ref = AssetRef.coerce(base)
    return run_training("continue_train", model=model or str(base_ref.path), dataset=dataset, repo=repo,
                        revision=revision, subpath=subpath, params=params, branch=branch,
                        command=command, base=str(base_ref), message=message, run_id=run_id,
                        algorithm=algorithm)


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.continue_train",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--base", "--model", dest="base", required=True,
                        help="model version to continue from, <path>:<ref>")
    job_arguments(parser, settings=True)
    parser.add_argument("--branch", default="", help="new branch name (default: continue-<run>)")
    parser.add_argument("--message", default="", help="commit message")
    return run_cli(continue_train, parser, lambda a: dict(
        base=a.base, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), branch=a.branch, command=a.command, message=a.message,
        algorithm=a.algorithm), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
