"""The pure parts of `assethub export`: options, tolerances, the check's verdict, the model card."""

from __future__ import annotations

import math

import pytest

from assethub.errors import InvalidReferenceError, JobFailedError
from assethub.export import (
    DEFAULT_TOLERANCES,
    check_figures,
    export_card,
    options_of,
    parse_options,
    require_within,
)
from assethub.launcher import _checked

PASSING = {"max_abs_diff_example": 1e-5, "max_abs_diff_test": 2e-5, "accuracy_original": 0.9,
           "accuracy_exported": 0.9, "accuracy_delta": 0.0, "n_test": 80.0}


@pytest.mark.parametrize("given, expected", [
    ("", ""), (None, ""), ("none", ""), ("dynamic-int8", "dynamic-int8"), ("int8", "dynamic-int8"),
    ("DYNAMIC_INT8", "dynamic-int8"), ("dynamic", "dynamic-int8")])
def test_quantize_spellings(given: str | None, expected: str) -> None:
    assert parse_options("onnx", given).quantize == expected


@pytest.mark.parametrize("fmt, quantize, part", [("tflite", "", "format"), ("onnx", "int4", "quantize"),
                                                 ("onnx", "static-int8", "quantize")])
def test_unknown_options_are_refused_naming_what_is_accepted(fmt: str, quantize: str, part: str) -> None:
    with pytest.raises(InvalidReferenceError) as e:
        parse_options(fmt, quantize)
    assert e.value.part == part and ("onnx" in str(e.value) or "dynamic-int8" in str(e.value))


def test_defaults_depend_on_the_quantisation_and_branches_say_it() -> None:
    plain, int8 = parse_options(), parse_options(quantize="int8")
    assert (plain.max_abs_diff, plain.max_accuracy_drop) == DEFAULT_TOLERANCES[""]
    assert (int8.max_abs_diff, int8.max_accuracy_drop) == DEFAULT_TOLERANCES["dynamic-int8"]
    assert plain.default_branch == "export-onnx" and int8.default_branch == "export-onnx-int8"
    assert options_of(int8.to_params()) == int8  # what a run records is what runs


@pytest.mark.parametrize("value", [-1, "x", math.inf, math.nan, True])
def test_bad_tolerances_are_refused(value: object) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_options(max_abs_diff=value)


def test_tolerances_may_be_given_as_text_or_zero() -> None:
    options = parse_options(max_abs_diff="0", max_accuracy_drop=0.01)
    assert options.max_abs_diff == 0.0 and options.max_accuracy_drop == 0.01


def test_an_export_within_its_tolerances_passes() -> None:
    assert check_figures(PASSING, parse_options()) == []
    require_within(PASSING, parse_options(), "m:v1")


def test_a_difference_over_the_tolerance_says_by_how_much() -> None:
    figures = {**PASSING, "max_abs_diff_test": 0.0035}
    (problem,) = check_figures(figures, parse_options(max_abs_diff=0.001))
    assert "0.0035" in problem and "over the tolerance 0.001 by 0.0025" in problem


def test_an_accuracy_drop_over_the_tolerance_says_by_how_much() -> None:
    figures = {**PASSING, "accuracy_exported": 0.85, "accuracy_delta": -0.05}
    with pytest.raises(JobFailedError) as e:
        require_within(figures, parse_options(quantize="int8", max_accuracy_drop=0.02), "m:v1")
    assert "accuracy drops by 0.05 (0.9 -> 0.85)" in str(e.value) and "by 0.03" in str(e.value)
    assert "nothing was committed" in str(e.value)
    # an accuracy gain is no problem
    assert check_figures({**PASSING, "accuracy_delta": 0.05}, parse_options()) == []


def test_a_check_that_measured_nothing_or_nan_fails() -> None:
    assert check_figures({}, parse_options())
    assert check_figures({**PASSING, "max_abs_diff_example": math.nan}, parse_options())


def test_without_a_test_split_only_the_example_is_checked() -> None:
    assert check_figures({"max_abs_diff_example": 0.0}, parse_options()) == []


def test_the_model_card_carries_the_figures_and_the_source() -> None:
    card = export_card("a/model/f/net", "a/model/f/net:main", "c0ffee" * 4, parse_options(quantize="int8"),
                       {**PASSING, "size_original_bytes": 1000.0, "size_exported_bytes": 250.0},
                       flavor="pytorch", exporter="torch", dataset="a/dataset/f/d:v1", dataset_commit="d00d",
                       run_id="r1")
    assert "c0ffee" * 4 in card and "quantised (dynamic int8)" in card
    assert "| max_abs_diff_test | 2e-05 |" in card
    assert "0.25 times the original's size" in card and "`a/dataset/f/d:v1` (commit `d00d`)" in card


def test_the_launcher_checks_an_exports_parameters_before_registering_it() -> None:
    p = _checked("export", {"model": "a/model/f/net:main", "quantize": "int8"}, "local")
    assert p["branch"] == "export-onnx-int8" and p["quantize"] == "dynamic-int8" and p["max_abs_diff"] == 0.1
    with pytest.raises(InvalidReferenceError):
        _checked("export", {"model": "a/model/f/net:main", "branch": "main"}, "local")
    with pytest.raises(InvalidReferenceError):
        _checked("export", {"model": "a/model/f/net:main", "repo": "x"}, "local")  # not an export's
    with pytest.raises(InvalidReferenceError):
        _checked("export", {"model": "a/model/f/net:main"}, "gpu")  # exports run on the local pool
