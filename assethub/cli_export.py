"""``assethub export MODEL:REF --format onnx [--quantize dynamic-int8] [--branch NAME]``.

The export runs as the Prefect flow ``flows/export.py`` (in a child process, as ``assethub
evaluate`` runs its flow; or on a worker with ``--deployment``): registered as you, the model
loaded and converted in the job's sandbox, checked against the original, committed on a new branch.
"""

# No `from __future__ import annotations`: Typer reads the signature.

from typing import Annotated

import typer

from assethub.cli_jobs import DeploymentOpt, JsonOpt, _job_result, launch


def register(app: typer.Typer) -> None:
    @app.command()
    def export(model: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
               format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
               quantize: Annotated[str, typer.Option(
                   "--quantize", help="dynamic-int8: quantise the weights to int8 (onnxruntime).")] = "",
               branch: Annotated[str, typer.Option(
                   "--branch", "-b", help="Branch to commit to (default export-onnx[-int8]).")] = "",
               dataset: Annotated[str, typer.Option(
                   "--dataset", "-D", help="Dataset version whose test split the check scores "
                   "(default: the one the version was trained on).")] = "",
               max_abs_diff: Annotated[float | None, typer.Option(
                   "--max-abs-diff",
                   help="Largest difference of outputs accepted (default 1e-3; int8 0.1).")] = None,
               max_accuracy_drop: Annotated[float | None, typer.Option(
                   "--max-accuracy-drop",
                   help="Largest accuracy drop accepted (default 0; int8 0.05).")] = None,
               as_json: JsonOpt = False, deployment: DeploymentOpt = False) -> None:
        """Export a model version to ONNX, checked against the original, on a new branch."""
        from assethub.export import parse_options

        options = parse_options(format, quantize, max_abs_diff, max_accuracy_drop)  # bad options: exit 2
        args = ["--model", model, "--format", options.format, "--quantize", options.quantize,
                "--branch", branch, "--dataset", dataset, "--max-abs-diff", str(options.max_abs_diff),
                "--max-accuracy-drop", str(options.max_accuracy_drop)]
        values = dict(model=model, format=options.format, quantize=options.quantize, branch=branch,
                      dataset=dataset, max_abs_diff=options.max_abs_diff,
                      max_accuracy_drop=options.max_accuracy_drop)
        result = launch("export", args, deployment="export/local" if deployment else "", parameters=values)
        _job_result(result, as_json)
