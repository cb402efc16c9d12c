"""``assethub export``: a model version to ONNX (and int8) through ``flows.export`` on the real
server, lakeFS and MLflow, the model loaded in the job's sandbox: the digits CNN trained through
``flows.train`` and a scikit-learn model answer within the tolerances their commits record and
are served; a model that cannot be exported, an export outside its tolerances and a viewer are
refused, with nothing committed.

The digits model is the session's (one epoch on 30 images per class, shared with the serving
tests); exports take 20-60 s each on this machine (torch's exporter, the sandbox's imports).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assethub import errors
from assethub.client import Client
from assethub.export import parse_options
from tests.integration._serving_world import World as ServingWorld
from tests.integration._serving_world import acting_as

# a training, then exports that each import torch, MLflow and onnxruntime in a sandbox: minutes
# on a loaded 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

CONSTANT_MODEL = '''
import mlflow.pyfunc
from mlflow.models import set_model


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


set_model(Constant())
'''


@dataclass
class World:
    hub: Client  # the model's owner
    viewer: Client  # may view the model's folder, not edit it
    url: str
    token: str
    viewer_token: str
    me: str
    model: str  # the digits CNN asset
    trained: dict[str, Any]
    x_test: np.ndarray
    y_test: np.ndarray
    data: Path


@pytest.fixture(scope="module")
def world(world: ServingWorld) -> Iterator[World]:
    """The session's trained digits model (_serving_world.py), seen by this module: its owner
    exports, its viewer may not."""
    admin = world.admin
    viewer_token = admin.create_token(world.viewer.whoami().name, name="export").secret
    with acting_as(world.url, world.token):  # the flows run here act as the model's owner
        yield World(world.hub, Client(world.url, viewer_token), world.url, world.token, viewer_token,
                    world.owner, world.model.rsplit(":", 1)[0], world.trained, world.x_test, world.y_test,
                    world.data)
    for service in admin.services.list():
        if service.name.startswith("exp-"):
            admin.services.delete(service.name)


def _branches(hub: Client, model: str) -> set[str]:
    return {b.name for b in hub.list_branches(model)}


def _card(hub: Client, ref: str) -> str:
    return b"".join(hub.cat(ref, "README.md")).decode()


def _check_recorded(hub: Client, model: str, branch: str, source_commit: str,
                    quantize: str) -> dict[str, float]:
    """The export's lineage and model card: where it comes from, and figures within its tolerances."""
    tolerances = parse_options("onnx", quantize)
    view = hub.lineage(f"{model}:{branch}")
    assert view.lineage is not None and view.lineage.job == "export"
    assert view.model_commit == view.commit  # the export commit holds its own model
    assert view.lineage.base_model_commit == source_commit and view.servable
    assert view.lineage.params["quantize"] == quantize
    figures = dict(view.lineage.metrics)
    assert figures["max_abs_diff_example"] <= tolerances.max_abs_diff
    assert figures["max_abs_diff_test"] <= tolerances.max_abs_diff
    assert figures["accuracy_delta"] >= -tolerances.max_accuracy_drop
    assert figures["accuracy_exported"] == pytest.approx(figures["accuracy_original"]
                                                         + figures["accuracy_delta"])
    card = _card(hub, f"{model}:{branch}")
    assert source_commit in card and f"{figures['max_abs_diff_test']:.6g}" in card
    mlmodel = b"".join(hub.cat(f"{model}:{branch}", "model/MLmodel")).decode()
    assert "onnx:" in mlmodel and "python_function:" in mlmodel
    return figures


def test_a_viewer_cannot_export(world: World) -> None:
    from flows.export import export

    before = _branches(world.hub, world.model)
    # the REST route (the SDK), against the real server
    with pytest.raises(errors.ForbiddenError):
        world.viewer.export(world.trained["model_ref"], format="onnx")
    # the flow, as the viewer
    os.environ["ASSETHUB_TOKEN"] = world.viewer_token
    try:
        with pytest.raises(errors.ForbiddenError):
            export(model=world.trained["model_ref"], format="onnx", branch="viewer-export")
    finally:
        os.environ["ASSETHUB_TOKEN"] = world.token
    assert _branches(world.hub, world.model) == before
    # a bad option is a clear 400 before anything is registered
    with pytest.raises(errors.InvalidReferenceError) as bad:
        world.hub.export(world.trained["model_ref"], quantize="int4")
    assert bad.value.part == "quantize" and "dynamic-int8" in str(bad.value)


@pytest.fixture(scope="module")
def onnx_export(world: World) -> dict[str, Any]:
    from flows.export import export

    return dict(export(model=world.trained["model_ref"], format="onnx"))


@pytest.mark.parametrize("quantize", ["", "dynamic-int8"])
def test_the_digits_cnn_exported_to_onnx_and_int8_answers_within_tolerance(
        world: World, onnx_export: dict[str, Any], quantize: str) -> None:
    from flows.export import export

    result = onnx_export if not quantize else export(model=world.trained["model_ref"], format="onnx",
                                                     quantize=quantize)
    assert result["branch"] == ("export-onnx-int8" if quantize else "export-onnx")
    assert result["source_commit"] == world.trained["commit"]
    # the check scored the dataset the CNN was trained on, at that commit: its whole test split
    assert result["dataset_commit"] == world.trained["dataset_commit"]
    figures = _check_recorded(world.hub, world.model, result["branch"], world.trained["commit"], quantize)
    assert figures["n_test"] == len(world.y_test)
    # the original scores what its own evaluation recorded
    assert figures["accuracy_original"] == pytest.approx(world.trained["metrics"]["accuracy"], abs=1e-6)
    # the run is recorded as a completed export run, with the commit it made
    run = world.hub.get_run(result["run_id"])
    assert run.kind == "export" and run.state == "completed" and run.result_commit == result["commit"]


def test_an_exported_version_is_served_and_answers_the_same_classes(
        world: World, onnx_export: dict[str, Any]) -> None:
    import assethub

    ref = f"{world.model}:{onnx_export['branch']}"
    view = world.hub.services.create(ref, name=f"exp-{uuid.uuid4().hex[:6]}", replicas=1)
    try:
        x = world.x_test[:40]
        answer = world.hub.services.predict(view.name, {"inputs": x.tolist()})
        predictions = answer["predictions"]
        if isinstance(predictions, dict):  # MLflow's ONNX pyfunc answers {output name: values}
            (predictions,) = predictions.values()
        served = np.asarray(predictions, dtype=np.float32).argmax(axis=1)
        original = np.asarray(assethub.load(world.trained["model_ref"]).predict(x)).argmax(axis=1)
        assert (served == original).all()
    finally:
        world.hub.services.delete(view.name)


def _sklearn_model(dest: Path) -> Path:
    """An iris classifier saved as an MLflow scikit-learn model, with the columns and class names
    of examples/datasets.py's iris table."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from examples.datasets import _column

    iris = load_iris(as_frame=True)
    x = iris.data.rename(columns=_column)
    y = iris.target_names[iris.target]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    mlflow.sklearn.save_model(model, str(dest / "model"), signature=infer_signature(x, model.predict(x)),
                              input_example=pd.DataFrame(x.iloc[:5]), serialization_format="cloudpickle",
                              pip_requirements=["scikit-learn"])  # not inferred: that takes seconds
    return dest


def test_a_scikit_learn_model_exports_through_skl2onnx(world: World, tmp_path: Path) -> None:
    from examples.datasets import write_table
    from flows.export import export

    model = f"{world.me}/model/digits/iris"
    world.hub.create_asset(model)
    world.hub.upload(f"{model}:main", _sklearn_model(tmp_path / "sk"), message="an iris classifier")
    # its check scores the iris table's test rows (a ratio split of the rows)
    from assethub.hub import DatasetMeta

    dataset = f"{world.me}/dataset/images/iris"
    world.hub.create_asset(dataset, dataset=DatasetMeta("tabular", "single_text", "ratio",
                                                        0.5, None))
    write_table(tmp_path / "iris", "iris")
    world.hub.upload(f"{dataset}:main", tmp_path / "iris", message="iris")
    result = export(model=f"{model}:main", format="onnx", dataset=f"{dataset}:main")
    assert result["flavor"] == "sklearn" and result["exporter"].startswith("skl2onnx")
    source = world.hub.resolve(f"{model}:main")
    figures = _check_recorded(world.hub, model, "export-onnx", source, "")
    assert 0 < figures["n_test"] < 150 and figures["accuracy_original"] > 0.8


def test_a_model_that_cannot_be_exported_is_refused_with_the_reason_and_nothing_committed(
        world: World, tmp_path: Path) -> None:
    import mlflow.pyfunc

    from flows.export import export

    model = f"{world.me}/model/digits/constant"
    world.hub.create_asset(model)
    code = tmp_path / "constant_model.py"
    code.write_text(CONSTANT_MODEL)
    mlflow.pyfunc.save_model(str(tmp_path / "v" / "model"), python_model=str(code),
                             input_example=np.zeros((2, 3), dtype=np.float32), pip_requirements=["mlflow"])
    world.hub.upload(f"{model}:main", tmp_path / "v", message="a custom pyfunc model")
    before = _branches(world.hub, model)
    head = world.hub.resolve(f"{model}:main")
    with pytest.raises(errors.JobSpecError) as refused:
        export(model=f"{model}:main", format="onnx")
    message = str(refused.value)
    assert "custom pyfunc model (Constant" in message and "no torch module" in message
    assert "nothing was committed" in message
    assert _branches(world.hub, model) == before and world.hub.resolve(f"{model}:main") == head
    (run,) = [r for r in world.hub.list_runs(model=model) if r.kind == "export"]
    assert run.state == "failed" and "no torch module" in run.error


def test_an_export_outside_its_tolerance_is_refused_saying_by_how_much(world: World) -> None:
    from flows.export import export

    before = _branches(world.hub, world.model)
    with pytest.raises(errors.JobFailedError) as refused:
        export(model=world.trained["model_ref"], quantize="dynamic-int8", branch="int8-exact",
               max_abs_diff=0.0)
    message = str(refused.value)
    assert "over the tolerance 0 by" in message and "nothing was committed" in message
    assert _branches(world.hub, world.model) == before
