"""Publishing steps: check a model version can be served, start its service, smoke-test it."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from assethub.errors import NotServableError, ObjectNotFoundError, PredictionError
from assethub.refs import AssetRef
from tasks.env import NETWORK, client, job_dir, remove_tree

# What MLflow writes next to a model saved with an input example: a request body for its
# scoring server, which is exactly what a smoke test needs.
SERVING_EXAMPLE = "serving_input_example.json"


@task(name="resolve_servable_model", **NETWORK)
def resolve_servable_model(model: str) -> dict[str, Any]:
    """The commit ``model`` points at, checked to hold an MLflow model; refuses one without."""
    ref = AssetRef.coerce(model)
    hub = client()
    commit = hub.resolve(ref)
    try:
        hub.stat(ref.path.at(commit), "model/MLmodel")
    except ObjectNotFoundError:
        raise NotServableError(f"{ref} (commit {commit[:12]}) has no MLflow model: no model/MLmodel",
                               ref=str(ref), reason="no model/MLmodel") from None
    lineage = hub.lineage(ref.path.at(commit))
    get_run_logger().info("%s is commit %s (model files from %s, training run %s)", ref, commit[:12],
                          lineage.model_commit[:12],
                          lineage.lineage.mlflow_run_id if lineage.lineage else "unknown")
    return {"ref": str(ref), "commit": commit, "pinned": str(ref.path.at(commit)),
            "model_commit": lineage.model_commit}


def serving_example(model_dir: Path) -> dict[str, Any] | None:
    """The model's own example request (MLflow's serving_input_example.json), if it was saved."""
    path = model_dir / "model" / SERVING_EXAMPLE
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text()))


@task(name="fetch_serving_example", **NETWORK)
def fetch_serving_example(model: str) -> dict[str, Any] | None:
    """The example request saved with the model version ``model`` (pin it to a commit), read from
    the version fetched (through the content cache) into a scratch directory removed afterwards."""
    ref = AssetRef.coerce(model)
    work = job_dir(f"publish-{uuid.uuid4().hex[:8]}")
    try:
        client().download(ref, work / "model")
        example = serving_example(work / "model")
    finally:
        remove_tree(work)
    get_run_logger().info("%s: %s", ref, "an example request" if example else "no example request saved")
    return example


@task(name="start_service", retries=0)
def start_service(model: str, name: str, replicas: int) -> dict[str, Any]:
    """Publish ``model`` as service ``name`` on the server; returns once its replicas answer."""
    view = client().services.create(model, name=name, replicas=replicas)
    get_run_logger().info("service %s: %s at %s, %d of %d replicas ready", name, view.state,
                          view.address, view.ready, view.replicas)
    if view.state != "running":
        raise RuntimeError(f"service {name} is {view.state}: {view.detail}")
    return {"name": view.name, "address": view.address, "model_commit": view.model_commit}


@task(name="smoke_test", **NETWORK)
def smoke_test(name: str, example: dict[str, Any] | None) -> dict[str, Any]:
    """Send the model's example request through the server; the answer's shape and latency."""
    logger = get_run_logger()
    if example is None:
        logger.warning("the model was saved without an input example: only its health is checked")
        view = client().services.get(name)
        return {"ok": view.ready > 0, "checked": "health", "latency_ms": None}
    started = time.perf_counter()
    try:
        answer = client().services.predict(name, example)
    except PredictionError as e:
        raise RuntimeError(f"the model refused its own input example: {e.reason}") from e
    latency = (time.perf_counter() - started) * 1000
    predictions = answer.get("predictions") if isinstance(answer, dict) else answer
    count = len(predictions) if isinstance(predictions, list) else 1
    logger.info("smoke test: %d prediction(s) in %.0f ms", count, latency)
    return {"ok": True, "checked": "prediction", "predictions": count, "latency_ms": round(latency, 1)}


@task(name="remove_service", **NETWORK)
def remove_service(name: str) -> None:
    """Take down a service that failed its smoke test (so no broken service stays published)."""
    client().services.delete(name)
    get_run_logger().warning("service %s deleted: it failed its smoke test", name)


@task(name="describe_service", **NETWORK)
def describe_service(name: str) -> dict[str, Any]:
    """The service as the catalog records it: address, model version, training run, state
    (times in ISO 8601)."""
    view = dataclasses.asdict(client().services.get(name))
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in view.items()}
