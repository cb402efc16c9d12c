"""Typed job parameters: declarations, conversion of text values, refusals that say why."""

from __future__ import annotations

import pytest

from assethub.errors import JobSpecError
from assethub.params import ParamError, declare, env_vars, resolve

SPEC = {
    "epochs": {"type": "int", "default": 3, "min": 1, "max": 100},
    "lr": {"type": "float", "default": 0.001, "min": 0},
    "augment": {"type": "bool", "default": False},
    "optimizer": {"type": "choice", "choices": ["adam", "sgd"], "default": "adam"},
    "run-name": {"type": "str", "default": ""},
    "batch_size": 32,
    "seed": {"type": "int"},
}


def test_defaults_fill_in_and_text_is_converted() -> None:
    declared = declare(SPEC)
    assert declared["batch_size"].type == "int"
    assert declared["seed"].required
    got = resolve(declared, {"epochs": "5", "lr": "1e-3", "augment": "true", "optimizer": "sgd",
                             "seed": 7})
    assert got == {"epochs": 5, "lr": 0.001, "augment": True, "optimizer": "sgd", "run-name": "",
                   "batch_size": 32, "seed": 7}
    assert isinstance(got["lr"], float)


@pytest.mark.parametrize(("given", "said"), [
    ({"epochs": "three", "seed": 1}, "parameter 'epochs' must be an int, not 'three'"),
    ({"epochs": 2.5, "seed": 1}, "must be an int"),
    ({"epochs": True, "seed": 1}, "must be an int"),
    ({"epochs": 0, "seed": 1}, "must be at least 1"),
    ({"epochs": 101, "seed": 1}, "must be at most 100"),
    ({"optimizer": "rmsprop", "seed": 1}, "must be one of 'adam', 'sgd'"),
    ({"augment": "maybe", "seed": 1}, "must be a bool"),
    ({"lr": "nan", "seed": 1}, "must be a float"),
    ({"epochz": 3, "seed": 1}, "unknown parameter 'epochz'"),
    ({}, "parameter 'seed' is required"),
])
def test_bad_values_are_refused_with_what_was_expected(given: dict, said: str) -> None:
    with pytest.raises(ParamError, match=said.replace("(", r"\(").replace(")", r"\)")) as e:
        resolve(declare(SPEC), given)
    assert isinstance(e.value, JobSpecError)  # a bad input (exit code 2, HTTP 400)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ParamError) as e:
        resolve(declare(SPEC), {"epochs": "x", "nope": 1})
    text = str(e.value)
    assert "'epochs'" in text and "'nope'" in text and "'seed' is required" in text


def test_nothing_declared_passes_values_as_given() -> None:
    assert resolve(declare(None), {"anything": "1"}) == {"anything": "1"}


@pytest.mark.parametrize(("spec", "said"), [
    ({"a": {"type": "number"}}, "type must be one of"),
    ({"a": {"type": "int", "default": "x"}}, "the default does not fit"),
    ({"a": {"type": "choice"}}, "needs 'choices'"),
    ({"a": {"type": "str", "choices": ["x"]}}, "only for type choice"),
    ({"a": {"type": "int", "min": 5, "max": 1}}, "min is above max"),
    ({"a": {"type": "int", "deflaut": 1}}, "unknown key"),
    ({"a": [1, 2]}, "plain default must be"),
    ({"bad name!": 1}, "a name is"),
])
def test_bad_declarations_are_refused(spec: dict, said: str) -> None:
    with pytest.raises(ParamError, match=said):
        declare(spec, "assethub.yaml")


def test_choices_of_numbers_accept_their_text() -> None:
    declared = declare({"size": {"type": "choice", "choices": [8, 16]}})
    assert resolve(declared, {"size": "16"}) == {"size": 16}


def test_parameters_as_upper_case_variables() -> None:
    env = env_vars({"epochs": 3, "batch-size": 8, "augment": False, "lr": 0.5, "PATH": "/x",
                    "assethub_output_dir": "/x", "tags": ["a"]})
    assert env == {"EPOCHS": "3", "BATCH_SIZE": "8", "AUGMENT": "false", "LR": "0.5", "TAGS": '["a"]'}
