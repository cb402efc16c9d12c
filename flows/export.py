"""Export a model version to ONNX (optionally int8), checked against the original, on a new branch.

    python -m flows.export --model alice/model/cls/net:main --format onnx --quantize dynamic-int8
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow
from prefect.futures import wait

from assethub.errors import InvalidReferenceError
from assethub.export import options_of, parse_options, require_within
from assethub.refs import AssetRef
from flows.pipeline import JobScope, open_job
from tasks.assets import fetch_dataset, fetch_model
from tasks.export import convert_model, export_lineage, write_export_files
from tasks.results import commit_model, flow_run_id, update_run


@flow(name="export", log_prints=True)
def export(model: str, format: str = "onnx", quantize: str = "", branch: str = "", dataset: str = "",
           max_abs_diff: float | None = None, max_accuracy_drop: float | None = None,
           run_id: str = "") -> dict[str, Any]:
    """Export a model version's MLflow model to ONNX and commit it, as an MLflow ONNX model, on a
    new branch of the same model.

    PyTorch models go through torch's exporter, scikit-learn models through skl2onnx; any other
    flavor is refused with the reason, and nothing is committed. The export is checked against
    the original on the version's input example and the dataset's test split (max abs difference
    of outputs, accuracy of each); outside the tolerances nothing is committed either.

    Args:
        model: the version to export, `<owner>/model/<folder>/<name>:<branch|tag|commit>`
        format: the format to export to: onnx
        quantize: `dynamic-int8` to quantise the weights to int8 (onnxruntime), or empty
        branch: the branch to commit to (default `export-onnx`, `export-onnx-int8`)
        dataset: the dataset version whose test split the check scores (default: the one the
            version was trained on, at that commit)
        max_abs_diff: the largest difference of outputs accepted (default 1e-3; int8 0.1)
        max_accuracy_drop: the largest accuracy drop accepted (default 0; int8 0.05)
        run_id: a run registered for the worker to take over (its record says what runs)
    """
    options = parse_options(format, quantize, max_abs_diff, max_accuracy_drop)
    source = AssetRef.coerce(model)
    target = branch or options.default_branch
    if target == "main":
        raise InvalidReferenceError("an export goes to a new branch, not main (merge it afterwards)",
                                    part="branch", value=target)
    run = open_job("export", str(source.path), dataset=str(AssetRef.coerce(dataset)) if dataset else "",
                   base=str(source), repo="", revision="", subpath="", params=options.to_params(),
                   command="", branch=target, run_id=run_id)
    # what the run registered is what runs (a worker's run: its record)
    options, source = options_of(run.params), AssetRef.coerce(run.base_ref)
    target = run.branch or options.default_branch
    with JobScope(run) as scope:
        prefect_id = flow_run_id()
        update_run(run.id, state="running", prefect_flow_run_id=prefect_id)
        inputs = [fetch_model.submit(str(source), run.base_commit, str(scope.work / "base"))]
        if run.dataset_ref:
            inputs.append(fetch_dataset.submit(run.dataset_ref, run.dataset_commit, str(scope.work / "data")))
        wait(inputs)  # all of them, so that none still writes when the scope cleans up
        base = inputs[0].result()
        data = inputs[1].result() if run.dataset_ref else None
        reported = convert_model(str(source), base, data, str(scope.work), options)
        figures = dict(reported.get("figures") or {})
        require_within(figures, options, f"{source} ({run.base_commit[:12]})")
        output = scope.work / "output"
        write_export_files(str(output), str(source.path), run, options, reported)
        lineage = export_lineage(run, options, reported, prefect_id)
        committed = commit_model(
            str(source.path), target, run.base_commit, str(output), lineage,
            f"Export {source} ({run.base_commit[:12]}) to {options.described}")
        update_run(run.id, state="completed", metrics=lineage.metrics, result_commit=committed.commit)
        return {"run_id": run.id, "model_ref": f"{source.path}:{target}", "branch": target,
                "commit": committed.commit, "metrics": dict(lineage.metrics), "source": str(source),
                "source_commit": run.base_commit, "dataset": run.dataset_ref,
                "dataset_commit": run.dataset_commit, "flavor": reported.get("flavor", ""),
                "exporter": reported.get("exporter", ""), "prefect_flow_run_id": prefect_id}


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    from flows.cli import run_cli

    parser = argparse.ArgumentParser(prog=prog or "python -m flows.export",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model version <path>:<ref>")
    parser.add_argument("--format", default="onnx", help="export format: onnx")
    parser.add_argument("--quantize", default="", help="dynamic-int8 to quantise the weights (default: none)")
    parser.add_argument("--branch", default="", help="branch to commit to (default export-onnx[-int8])")
    parser.add_argument("--dataset", default="", help="dataset version whose test split the check scores "
                        "(default: the version's training dataset)")
    parser.add_argument("--max-abs-diff", type=float, default=None, help="largest output difference accepted")
    parser.add_argument("--max-accuracy-drop", type=float, default=None,
                        help="largest accuracy drop accepted")
    return run_cli(export, parser, lambda a: dict(
        model=a.model, format=a.format, quantize=a.quantize, branch=a.branch, dataset=a.dataset,
        max_abs_diff=a.max_abs_diff, max_accuracy_drop=a.max_accuracy_drop), argv)


if __name__ == "__main__":
    raise SystemExit(cli())
