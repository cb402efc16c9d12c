"""MLflow: one run per job, created before the command starts so its own logging lands there."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from tasks.env import NETWORK, home, tracking_uri


@dataclass(frozen=True)
class Tracking:
    uri: str
    run_id: str
    experiment_id: str


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient  # heavy: only when a job runs

    return MlflowClient(tracking_uri=uri)


@task(name="start_tracking", **NETWORK)
def start_tracking(experiment: str, run_name: str, params: dict[str, Any],
                   tags: dict[str, str]) -> Tracking:
    """Create the job's MLflow run in the experiment named after the model; log its params."""
    from mlflow.entities import Param, RunTag

    uri = tracking_uri()
    mlflow = _client(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if not uri.startswith(("http://", "https://", "databricks")):
            # a local store: keep artifacts under the Asset Hub home, not in the working dir
            digest = hashlib.sha256(experiment.encode()).hexdigest()[:16]
            location = (home() / "mlflow" / "artifacts" / digest).as_uri()
        try:
            experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
        except Exception:  # created meanwhile by a concurrent job
            exp = mlflow.get_experiment_by_name(experiment)
            if exp is None:
                raise
            experiment_id = exp.experiment_id
    else:
        experiment_id = exp.experiment_id
    run = mlflow.create_run(experiment_id, run_name=run_name, tags=tags)
    mlflow.log_batch(run.info.run_id, params=[Param(str(k)[:250], str(v)[:6000]) for k, v in params.items()],
                     tags=[RunTag("mlflow.runName", run_name)])
    get_run_logger().info("MLflow run %s in experiment %r at %s", run.info.run_id, experiment, uri)
    return Tracking(uri, run.info.run_id, experiment_id)


@task(name="finish_tracking", **NETWORK)
def finish_tracking(tracking: Tracking, *, succeeded: bool, tags: dict[str, str] | None = None,
                    metrics: dict[str, float] | None = None, model_dir: str = "") -> None:
    """Tag the run with where its results went, log the model (MLflow format), close the run."""
    from mlflow.entities import Metric, RunTag

    mlflow = _client(tracking.uri)
    now = int(time.time() * 1000)
    mlflow.log_batch(tracking.run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                     tags=[RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()])
    if model_dir and Path(model_dir, "MLmodel").is_file():
        mlflow.log_artifacts(tracking.run_id, model_dir, "model")
    mlflow.set_terminated(tracking.run_id, "FINISHED" if succeeded else "FAILED")


def close_tracking(tracking: Tracking | None, *, succeeded: bool, tags: dict[str, str] | None = None,
                   metrics: dict[str, float] | None = None, model_dir: str = "") -> None:
    """:func:`finish_tracking`, where MLflow failing is a warning: it must never hide the job's
    own error, nor fail a job whose results are committed."""
    if tracking is None:
        return
    try:
        finish_tracking(tracking, succeeded=succeeded, tags=tags, metrics=metrics, model_dir=model_dir)
    except Exception as e:
        print(f"warning: could not close the MLflow run: {e}", file=sys.stderr)
