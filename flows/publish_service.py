"""Publish a model version as an HTTP prediction service, smoke-tested, recorded in the catalog.

    python -m flows.publish_service --model alice/model/digits/cnn:v1 --name digits --replicas 2
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from flows.cli import run_cli
from tasks.serving import (
    describe_service,
    fetch_serving_example,
    remove_service,
    resolve_servable_model,
    smoke_test,
    start_service,
)


@flow(name="publish-service", log_prints=True)
def publish_service(model: str, name: str, replicas: int = 1) -> dict[str, Any]:
    """Serve a model version over HTTP with MLflow's scoring server, on the Asset Hub server.

    Resolves the reference to a commit, fetches the model (cached) for its example request,
    starts the service, sends it that example and records the service; a service that fails
    its smoke test is taken down again.

    Args:
        model: the model version, `<owner>/model/<folder>/<name>:<branch|tag|commit>`
        name: the service's name (lowercase letters, digits and '-')
        replicas: how many replicas answer requests (worker processes on one address)
    """
    resolved = resolve_servable_model(model)
    example = fetch_serving_example(resolved["pinned"])
    started = start_service(model, name, replicas)
    try:
        check = smoke_test(name, example)
    except Exception:
        remove_service(name)
        raise
    service = describe_service(name)
    return {**service, "smoke_test": check, "resolved_commit": resolved["commit"],
            "address": started["address"]}


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m flows.publish_service",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <owner>/model/<folder>/<name>:<ref>")
    parser.add_argument("--name", required=True, help="service name")
    parser.add_argument("--replicas", type=int, default=1, help="replicas (default 1)")
    return run_cli(publish_service, parser, lambda a: dict(model=a.model, name=a.name, replicas=a.replicas),
                argv)


if __name__ == "__main__":
    raise SystemExit(cli())
