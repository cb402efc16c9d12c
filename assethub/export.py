"""Exporting a model version to ONNX: the options, the tolerances its check must meet, the branch
it goes to and its model card. Pure decisions, no I/O and no Prefect (``flows.export`` runs the
job; ``tasks.export_model`` converts and measures, in the sandbox).

The check compares the exported model with the original on the version's input example and the
dataset's test split; its figures (:data:`FIGURES`) are the job's metrics, kept in the commit's
lineage (``assethub.metrics``) and the model card.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assethub.errors import InvalidReferenceError, JobFailedError

__all__ = ["DEFAULT_TOLERANCES", "FIGURES", "FORMATS", "QUANTIZATIONS", "ExportOptions", "check_figures",
           "export_card", "options_of", "parse_options", "require_within"]

FORMATS = ("onnx",)
#: ``--quantize``: "" (none) or onnxruntime's dynamic int8 quantisation of the weights
QUANTIZATIONS = ("", "dynamic-int8")
#: (max abs difference of outputs, largest accuracy drop) allowed by default, per quantisation:
#: a float32 export computes the same function (rounding only); int8 weights move outputs more
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {"": (1e-3, 0.0), "dynamic-int8": (0.1, 0.05)}
#: what the check measures (the exported model against the original)
FIGURES = {
    "max_abs_diff_example": "max abs difference of outputs on the version's input example",
    "max_abs_diff_test": "max abs difference of outputs on the test split",
    "accuracy_original": "accuracy of the original on the test split",
    "accuracy_exported": "accuracy of the export on the test split",
    "accuracy_delta": "exported accuracy minus the original's",
    "n_test": "test samples compared",
    "size_original_bytes": "the original model's files",
    "size_exported_bytes": "the exported .onnx file",
}


@dataclass(frozen=True)
class ExportOptions:
    format: str = "onnx"
    quantize: str = ""
    max_abs_diff: float = DEFAULT_TOLERANCES[""][0]
    max_accuracy_drop: float = DEFAULT_TOLERANCES[""][1]

    @property
    def default_branch(self) -> str:
        """``export-onnx``, ``export-onnx-int8``."""
        return f"export-{self.format}" + ("-int8" if self.quantize == "dynamic-int8" else "")

    @property
    def described(self) -> str:
        return self.format.upper() + (" quantised (dynamic int8)" if self.quantize else "")

    def to_params(self) -> dict[str, Any]:
        """The run's params (and the lineage's): what was asked for."""
        return {"format": self.format, "quantize": self.quantize, "max_abs_diff": self.max_abs_diff,
                "max_accuracy_drop": self.max_accuracy_drop}


def _tolerance(value: Any, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidReferenceError(f"{name} must be a number, not {value!r}", part=name,
                                    value=str(value)[:100]) from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise InvalidReferenceError(f"{name} must be a finite number >= 0, not {value!r}", part=name,
                                    value=str(value)[:100])
    return number


def parse_options(format: str = "onnx", quantize: str | None = "", max_abs_diff: Any = None,
                  max_accuracy_drop: Any = None) -> ExportOptions:
    """The options as given on the command line, the API or a run's params; a bad one is refused
    naming what is accepted. ``quantize`` takes ``dynamic-int8`` (``int8``, ``dynamic_int8`` too)
    or nothing (``none``)."""
    fmt = (format or "onnx").strip().lower()
    if fmt not in FORMATS:
        raise InvalidReferenceError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}",
                                    part="format", value=str(format)[:100])
    q = (quantize or "").strip().lower().replace("_", "-")
    q = {"none": "", "int8": "dynamic-int8", "dynamic": "dynamic-int8"}.get(q, q)
    if q not in QUANTIZATIONS:
        raise InvalidReferenceError(f"unknown quantisation {quantize!r}; use dynamic-int8 (or none)",
                                    part="quantize", value=str(quantize)[:100])
    diff, drop = DEFAULT_TOLERANCES[q]
    return ExportOptions(fmt, q, _tolerance(max_abs_diff, "max_abs_diff", diff),
                         _tolerance(max_accuracy_drop, "max_accuracy_drop", drop))


def options_of(params: Mapping[str, Any]) -> ExportOptions:
    """The options a run recorded in its params."""
    return parse_options(str(params.get("format") or "onnx"), str(params.get("quantize") or ""),
                         params.get("max_abs_diff"), params.get("max_accuracy_drop"))


def check_figures(figures: Mapping[str, float], options: ExportOptions) -> list[str]:
    """What is outside the tolerances, each saying by how much ([] when the export passes)."""
    problems = []
    for name in ("max_abs_diff_example", "max_abs_diff_test"):
        value = figures.get(name)
        if value is None:
            continue
        if not math.isfinite(value) or value > options.max_abs_diff:
            problems.append(f"{FIGURES[name]} is {value:.6g}, over the tolerance {options.max_abs_diff:g} "
                            f"by {value - options.max_abs_diff:.6g}")
    delta = figures.get("accuracy_delta")
    if delta is not None and -delta > options.max_accuracy_drop:
        before, after = figures.get("accuracy_original", math.nan), figures.get("accuracy_exported", math.nan)
        problems.append(f"accuracy drops by {-delta:.6g} ({before:.6g} -> {after:.6g}), over the tolerance "
                        f"{options.max_accuracy_drop:g} by {-delta - options.max_accuracy_drop:.6g}")
    if figures.get("max_abs_diff_example") is None:
        problems.append("the check measured nothing (no input example compared)")
    return problems


def require_within(figures: Mapping[str, float], options: ExportOptions, what: str) -> None:
    """Raise :class:`~assethub.errors.JobFailedError` when the export of ``what`` is outside the
    tolerances, saying by how much."""
    problems = check_figures(figures, options)
    if problems:
        raise JobFailedError(f"the {options.described} export of {what} does not answer like the "
                               f"original: {'; '.join(problems)}; nothing was committed (pass "
                               "--max-abs-diff / --max-accuracy-drop to accept more)")


def export_card(model: str, source: str, source_commit: str, options: ExportOptions,
                figures: Mapping[str, float], *, flavor: str, exporter: str, dataset: str,
                dataset_commit: str, run_id: str) -> str:
    """``README.md`` of an exported version: where it comes from, how, and the check's figures."""
    rows = "\n".join(f"| {name} | {figures[name]:.6g} | {what} |" for name, what in FIGURES.items()
                     if name in figures)
    size = ""
    if figures.get("size_original_bytes") and figures.get("size_exported_bytes"):
        size = (f"\nThe export is {figures['size_exported_bytes'] / figures['size_original_bytes']:.3g} "
                "times the original's size on disk.\n")
    data = (f"`{dataset}` (commit `{dataset_commit}`), its test split" if dataset
            else "(none: the input example only)")
    return f"""# {model.rsplit("/", 1)[-1]} ({options.described})

Exported by Asset Hub (export, run `{run_id}`) from `{source}` (commit `{source_commit}`), a
{flavor} model, with {exporter}. The lineage is also kept in the commit's metadata
(`assethub lineage {model}:<ref>`).

## Check against the original
Dataset: {data}. Tolerances: max abs difference {options.max_abs_diff:g}, accuracy drop
{options.max_accuracy_drop:g}.

| figure | value | what |
|---|---|---|
{rows}
{size}
## Use
`model/` is an MLflow ONNX model (`mlflow.onnx`): `mlflow.pyfunc.load_model("model")`, or serve
it with `assethub serve {model}:<ref>`.
"""
