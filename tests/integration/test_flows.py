"""Train, continue-train, evaluate, merge and reproduce as Prefect flows, end to end: real lakeFS,
the real server, a real MLflow tracking server, Prefect's test harness, Git repositories made
from examples/, and real (small, seeded) training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assethub.client import Client
from tests.integration._jobs import EXAMPLES, JobWorld, git_repo

pytestmark = pytest.mark.integration

DIGITS = EXAMPLES / "digits-classifier"


@pytest.fixture(scope="session")
def mlflow_uri(lakefs_server: Any) -> Iterator[str]:
    from infra import mlflow

    url = mlflow.start()
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    yield url
    mlflow.stop()
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def world(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobWorld]:
    from examples.datasets import write_digits

    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("trainer")
    token = admin.create_token("trainer", name="jobs").secret
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    hub = Client(hub_server.url, token)
    hub.create_folder("trainer/dataset/images")
    hub.create_folder("trainer/model/digits")
    from assethub.service import DatasetMeta

    hub.create_asset("trainer/dataset/images/digits", dataset=DatasetMeta(
        "image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("digits")
    write_digits(data)
    hub.upload("trainer/dataset/images/digits:main", data, message="digits")
    tag = hub.publish("trainer/dataset/images/digits", "v1")
    hub.create_asset("trainer/model/digits/cnn")
    repo, sha = git_repo(Path(os.environ.get("SMOKE_REPO") or DIGITS), tmp_path_factory.mktemp("code") / "repo")
    yield JobWorld(hub, "trainer", token, "trainer/model/digits/cnn", "trainer/dataset/images/digits:v1",
                   tag.commit_id, repo, sha)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def trained(world: JobWorld) -> dict[str, Any]:
    from flows.train import train

    return train(model=world.model, dataset=world.dataset, repo=world.repo, params={"seed": 7})


def test_train_commits_an_evaluated_model_with_lineage(world: JobWorld, trained: dict[str, Any],
                                                       mlflow_uri: str) -> None:
    hub = world.hub
    branch = trained["branch"]
    assert branch.startswith("train-") and trained["model_ref"] == f"{world.model}:{branch}"
    assert hub.resolve(f"{world.model}:{branch}") == trained["commit"]
    files = {o.path for o in hub.list_objects(f"{world.model}:{branch}")}
    assert {"model/MLmodel", "README.md", "metrics.json"} <= files
    evals = [f for f in files if f.startswith("eval/")]
    assert len(evals) == 1
    # lineage in the commit metadata, and through the API
    view = hub.lineage(f"{world.model}:{branch}")
    assert view.model_commit == trained["commit"]
    lin = view.lineage
    assert lin is not None and lin.job == "train"
    assert lin.dataset == world.dataset and lin.dataset_commit == world.dataset_commit
    assert lin.code_url == world.repo and lin.code_sha == world.sha
    assert lin.params["seed"] == 7
    assert lin.metrics == trained["metrics"] and trained["metrics"]["accuracy"] > 0.5
    assert lin.mlflow_run_id == trained["mlflow_run_id"] and lin.prefect_flow_run_id
    assert [e.metrics for e in view.evaluations] == [trained["metrics"]]
    assert view.evaluations[0].dataset_commit == world.dataset_commit
    assert view.run is not None and view.run.state == "completed" and view.run.code_sha == world.sha
    # MLflow: the run links back to the lakeFS commit, and holds the model in MLflow's format
    from mlflow.tracking import MlflowClient

    ml = MlflowClient(mlflow_uri)
    run = ml.get_run(trained["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["assethub.lakefs_commit"] == trained["commit"]
    assert run.data.tags["assethub.dataset_commit"] == world.dataset_commit
    assert run.data.tags["mlflow.source.git.commit"] == world.sha
    assert run.data.params["seed"] == "7"
    assert "model" in {a.path for a in ml.list_artifacts(run.info.run_id)}
