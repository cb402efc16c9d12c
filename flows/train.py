"""Train a model from a dataset version and a Git repository of training code.

    python -m flows.train --model alice/model/cls/net --dataset alice/dataset/img/digits:v1 \\
        --repo https://example.org/code.git --revision master --param epochs=3
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from flows.cli import job_arguments, run_cli
from flows.pipeline import run_training


@flow(name="train", log_prints=True)
def train(model: str, dataset: str = "", repo: str = "", revision: str = "", subpath: str = "",
          params: dict[str, Any] | None = None, branch: str = "", command: str = "",
          message: str = "", run_id: str = "", algorithm: str = "") -> dict[str, Any]:
    """Train a new model version on a new branch of `model`, evaluated on the dataset's test split.

    Args:
        model: the model asset to write, `<owner>/model/<folder>/<name>`
        dataset: the dataset version, `<owner>/dataset/<folder>/<name>:<tag|branch|commit>`
            (default: the model's saved settings)
        repo: Git URL (or local path) of the training code (default: the model's saved settings)
        revision: branch, tag or commit of the code (default: the repository's default branch)
        subpath: directory of the code inside the repository
        params: parameters overriding assethub.yaml's defaults
        branch: the model branch to commit to (default: a new `train-<run>` branch)
        command: the command to run instead of assethub.yaml's `train`
        message: the commit message
        run_id: a run registered for the worker to take over (its record says what runs)
        algorithm: an algorithm of the library (`<name>` or `<name>@<version>`) instead of `repo`
    """
    return run_training("train", model=model, dataset=dataset, repo=repo, revision=revision,
                        subpath=subpath, params=params, branch=branch, command=command, message=message,
                        run_id=run_id, algorithm=algorithm)


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.train",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model asset <owner>/model/<folder>/<name>")
    job_arguments(parser, settings=True)
    parser.add_argument("--branch", default="", help="model branch to commit to (default: new)")
    parser.add_argument("--message", default="", help="commit message")
    return run_cli(train, parser, lambda a: dict(
        model=a.model, dataset=a.dataset, repo=a.repo, revision=a.revision, subpath=a.subpath,
        params=dict(a.param), branch=a.branch, command=a.command, message=a.message,
        algorithm=a.algorithm), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
