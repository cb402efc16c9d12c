"""The typed Prefect forms of the preset deployments, as pure functions (the deployments read
back from a real Prefect server are in tests/integration/test_init.py); and the examples'
choice of Lightning device from the job's DEVICE."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from assethub.params import declare
from assethub.presets import PRESETS, preset
from deployments import param_schema, params_schema, preset_deployment, preset_form

FLOW_SCHEMA = {  # the part of the train flow's schema that the form changes
    "title": "Parameters", "type": "object", "required": ["model", "dataset", "repo"],
    "properties": {
        "repo": {"title": "repo", "type": "string", "position": 2},
        "revision": {"title": "revision", "type": "string", "default": "main", "position": 3},
        "subpath": {"title": "subpath", "type": "string", "default": "", "position": 4},
        "params": {"title": "params", "anyOf": [{"type": "object"}, {"type": "null"}], "default": None,
                   "position": 5},
    },
}


def test_each_declared_type_becomes_its_json_schema_type() -> None:
    params = declare({
        "epochs": {"type": "int", "default": 3, "min": 1, "max": 9, "help": "passes"},
        "lr": {"type": "float", "default": 0.1, "min": 0},
        "augment": {"type": "bool", "default": False},
        "optimizer": {"type": "choice", "choices": ["adam", "sgd"], "default": "adam"},
        "size": {"type": "choice", "choices": [32, 64], "default": 32},
        "mixed": {"type": "choice", "choices": [1, "auto"], "default": "auto"},
        "name": {"type": "str"},
    })
    got = {name: param_schema(p) for name, p in params.items()}
    assert got["epochs"] == {"title": "epochs", "description": "passes", "type": "integer", "minimum": 1,
                             "maximum": 9, "default": 3}
    assert got["lr"]["type"] == "number" and got["lr"]["minimum"] == 0 and "maximum" not in got["lr"]
    assert got["augment"]["type"] == "boolean" and got["augment"]["default"] is False
    assert got["optimizer"] == {"title": "optimizer", "description": params["optimizer"].describe(),
                                "enum": ["adam", "sgd"], "type": "string", "default": "adam"}
    assert got["size"]["type"] == "integer" and got["size"]["enum"] == [32, 64]
    assert "type" not in got["mixed"] and got["mixed"]["enum"] == [1, "auto"]
    whole = params_schema(params)
    assert whole["required"] == ["name"] and whole["additionalProperties"] is False
    assert whole["default"] == {"epochs": 3, "lr": 0.1, "augment": False, "optimizer": "adam", "size": 32,
                                "mixed": "auto"}


def test_a_preset_form_fills_in_the_presets_code_when_the_flow_takes_no_algorithm() -> None:
    tabular = preset("sklearn-forest")
    schema, values = preset_form(FLOW_SCHEMA, tabular, ("/srv/assethub", "a" * 40))
    props = schema["properties"]
    assert props["params"]["position"] == 5 and set(props["params"]["properties"]) == {
        "model", "n_estimators", "max_depth", "c", "label", "seed"}
    assert values == {"params": props["params"]["default"], "repo": "/srv/assethub", "revision": "a" * 40,
                      "subpath": "examples/tabular-classifier"}
    assert props["subpath"]["default"] == "examples/tabular-classifier"
    assert schema["required"] == ["model", "dataset"]
    assert FLOW_SCHEMA["required"] == ["model", "dataset", "repo"]  # the flow's own schema is left alone
    assert preset_deployment(tabular) == "train/sklearn-forest"


def test_a_preset_form_names_the_algorithm_when_the_flow_takes_one() -> None:
    with_algorithm = {**FLOW_SCHEMA, "properties": {**FLOW_SCHEMA["properties"],
                                                    "algorithm": {"type": "string", "default": ""}}}
    schema, values = preset_form(with_algorithm, preset("digits-cnn"), ("/srv/assethub", "b" * 40))
    name = "image-classification/digits-cnn"
    assert values["algorithm"] == schema["properties"]["algorithm"]["default"] == name
    assert "repo" not in values and schema["required"] == ["model", "dataset", "repo"]


def test_every_preset_has_a_distinct_deployment() -> None:
    names = [preset_deployment(p) for p in PRESETS]
    assert len(set(names)) == len(PRESETS) and all(n.startswith("train/") for n in names)


def _lightning_device(example: str):  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2] / "examples" / example
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location(f"{example.replace('-', '_')}_train", root / "train.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("data", None)  # the two examples each have a `data` module
    return module.lightning_device


@pytest.mark.parametrize("example", ["digits-classifier", "text-classifier"])
@pytest.mark.parametrize("env, expected", [
    ({}, ("cpu", 1)),
    ({"DEVICE": "cpu", "ASSETHUB_GPUS": "2"}, ("cpu", 1)),
    ({"DEVICE": "cuda"}, ("gpu", 1)),
    ({"ASSETHUB_DEVICE": "cuda", "ASSETHUB_GPUS": "2"}, ("gpu", 2)),
    ({"DEVICE": "CUDA", "ASSETHUB_GPUS": "two"}, ("gpu", 1)),
])
def test_the_examples_train_on_the_jobs_device(example: str, env: dict[str, str],
                                               expected: tuple[str, int]) -> None:
    assert _lightning_device(example)(env) == expected
