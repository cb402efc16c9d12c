"""`assethub init` output trains as created, in a real job on the real stack (lakeFS, the server,
MLflow, Prefect, Git); and the presets' Prefect deployments carry typed forms, read back through
Prefect's API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assethub.client import Client
from tests.integration._prefect_world import on_prefect

pytestmark = pytest.mark.integration

MODEL = "initiator/model/tables/iris"
DATASET = "initiator/dataset/tables/iris"


@pytest.fixture(scope="module")
def hub(hub_server: Any, mlflow_uri: str, prefect_api: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """User ``initiator`` with the iris table published as ``v1`` and a model asset to train into."""
    from assethub.hub import DatasetMeta
    from examples.datasets import write_table

    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("initiator")
    token = admin.create_token("initiator", name="jobs").secret
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    hub = Client(hub_server.url, token)
    hub.create_folder("initiator/dataset/tables")
    hub.create_asset(DATASET, dataset=DatasetMeta("tabular", "single_text", "ratio", 0.8, None))
    data = tmp_path_factory.mktemp("iris")
    write_table(data, "iris")
    hub.upload(f"{DATASET}:main", data, message="iris")
    hub.publish(DATASET, "v1")
    hub.create_folder("initiator/model/tables")
    hub.create_asset(MODEL)
    yield hub
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_a_new_repository_trains_and_evaluates_as_created(hub: Client, tmp_path: Path) -> None:
    from assethub import cli
    from flows.evaluate import evaluate
    from flows.train import train

    repo = tmp_path / "iris-model"
    made = CliRunner().invoke(cli.app, ["init", str(repo)], prog_name="assethub")
    assert made.exit_code == 0, made.output
    assert f"assethub train MODEL --repo {repo}" in made.stdout
    head = (repo / ".git" / "refs" / "heads" / "main").read_text().strip()

    # what the next steps say, with nothing else: the default branch, the default params
    result = train(model=MODEL, dataset=f"{DATASET}:v1", repo=str(repo))
    assert result["metrics"]["accuracy"] > 0.8  # three species: chance is 1/3
    files = {o.path for o in hub.list_objects(result["model_ref"])}
    assert {"model/MLmodel", "README.md", "metrics.json"} <= files
    lineage = hub.lineage(result["model_ref"]).lineage
    assert lineage is not None and lineage.code_sha == head and lineage.code_url == str(repo)
    assert lineage.params["model"] == "random_forest" and lineage.params["n_estimators"] == 100

    scored = evaluate(model=result["model_ref"], dataset=f"{DATASET}:v1", repo=str(repo))
    assert scored["metrics"] == result["metrics"]


def test_each_preset_has_a_train_deployment_with_a_typed_form(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client

    from assethub.presets import PRESETS
    from deployments import deploy_presets, ensure_pools, preset_deployment

    with on_prefect(prefect_api):
        ensure_pools()
        names = deploy_presets()
        assert names == [preset_deployment(p) for p in PRESETS]
        with get_client(sync_client=True) as c:
            read = {p.name: c.read_deployment_by_name(preset_deployment(p)) for p in PRESETS}
    tabular = read["tabular-classification/sklearn-forest"]
    assert tabular.work_pool_name == "local" and "sklearn-forest" in tabular.name
    props = tabular.parameter_openapi_schema["properties"]
    params = props["params"]
    assert params["type"] == "object" and params["additionalProperties"] is False
    fields = params["properties"]
    assert fields["model"]["enum"] == ["random_forest", "logistic_regression"]
    assert fields["model"]["default"] == "random_forest" and fields["model"]["type"] == "string"
    assert fields["n_estimators"] == {"title": "n_estimators", "type": "integer", "minimum": 1,
                                      "maximum": 5000, "default": 100,
                                      "description": "trees in the forest (random_forest)"}
    assert fields["c"]["type"] == "number" and fields["label"]["type"] == "string"
    # the form starts from the preset: its algorithm, or its code in this project
    if "algorithm" in props:
        assert props["algorithm"]["default"] == "tabular-classification/sklearn-forest"
    else:
        assert tabular.parameters["subpath"] == "examples/tabular-classifier"
        assert props["subpath"]["default"] == "examples/tabular-classifier"
        assert len(tabular.parameters["revision"]) == 40
        assert "repo" not in tabular.parameter_openapi_schema.get("required", [])
    assert tabular.parameters["params"]["n_estimators"] == 100
    digits = read["image-classification/digits-cnn"].parameter_openapi_schema["properties"]["params"]
    assert digits["properties"]["epochs"]["minimum"] == 0 and digits["properties"]["lr"]["type"] == "number"
    # the other deployments keep the free-form params
    with on_prefect(prefect_api), get_client(sync_client=True) as c:
        flow_id = read["image-classification/digits-cnn"].flow_id
        others = [d for d in c.read_deployments() if d.flow_id == flow_id and d.name == "local"]
    for d in others:
        assert "properties" not in d.parameter_openapi_schema["properties"]["params"]
