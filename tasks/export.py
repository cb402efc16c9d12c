"""An export's steps: convert and check in the sandbox (``tasks.export_model``), then the files that
go with the ONNX model (model card, metrics) and its lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.errors import JobFailedError, JobSpecError
from assethub.export import ExportOptions, export_card
from assethub.lineage import Lineage
from assethub.wire import RunView
from tasks.assets import Fetched
from tasks.entrypoint import job_contract, run_entrypoint
from tasks.tracking import Tracking

CONVERTER = "python -m tasks.export_model"
RESULT = "export.json"


def _no_dataset(work: Path) -> Fetched:
    """An empty dataset directory: the check then scores the input example only."""
    empty = work / "no-dataset"
    empty.mkdir(parents=True, exist_ok=True)
    return Fetched("", "", str(empty), 0, 0, "")


@task(name="convert_model", cache_policy=NO_CACHE)
def convert_model(source: str, base: Fetched, data: Fetched | None, work: str,
                  options: ExportOptions) -> dict[str, Any]:
    """Export the version in ``base`` and measure it against the original, in the sandbox (loading a
    model runs its code). What ``tasks.export_model`` reported (figures, flavor, exporter); the
    MLflow ONNX model is then in ``<work>/output/model``. A model that cannot be exported is a
    :class:`JobSpecError` with the reason; nothing is written anywhere else."""
    logger = get_run_logger()
    root = Path(work)
    (root / "converter").mkdir(parents=True, exist_ok=True)  # its working directory: nothing in it
    output = root / "output"
    contract = job_contract("evaluate", data=data or _no_dataset(root), base=base, output_dir=str(output),
                            params=options.to_params(), metrics_file=str(root / "metrics.json"),
                            tracking=Tracking("", "", ""))
    contract["ASSETHUB_JOB"] = "export"
    result = output / RESULT
    try:
        run_entrypoint(CONVERTER, str(root / "converter"), contract)
    except JobFailedError:
        reported = json.loads(result.read_text()) if result.is_file() else {}
        if reported.get("refused"):
            raise JobSpecError(f"cannot export {source} to {options.format}: {reported['refused']}; "
                               "nothing was committed") from None
        raise
    reported = json.loads(result.read_text())
    result.unlink()  # not part of the version: its figures go to the card and the lineage
    if not (output / "model" / "MLmodel").is_file():
        raise JobFailedError(f"the export of {source} wrote no MLflow model; nothing was committed")
    logger.info("exported %s with %s: %s", source, reported.get("exporter"),
                json.dumps(reported.get("figures")))
    return dict(reported)


def export_lineage(run: RunView, options: ExportOptions, reported: dict[str, Any],
                   prefect_flow_run_id: str) -> Lineage:
    """The export commit's lineage: the source version and commit (as the base model), the
    dataset its check scored, what was asked for, and the check's figures as its metrics."""
    return Lineage(job="export", run_id=run.id, dataset=run.dataset_ref, dataset_commit=run.dataset_commit,
                   command=str(reported.get("exporter") or ""), base_model=run.base_ref,
                   base_model_commit=run.base_commit, params=options.to_params(),
                   metrics={k: float(v) for k, v in dict(reported.get("figures") or {}).items()},
                   prefect_flow_run_id=prefect_flow_run_id, model_format="mlflow")


@task(name="write_export_files", cache_policy=NO_CACHE)
def write_export_files(output_dir: str, model: str, run: RunView, options: ExportOptions,
                       reported: dict[str, Any]) -> None:
    """The model card (``README.md``, with the check's figures) and ``metrics.json`` beside the
    exported model."""
    out = Path(output_dir)
    figures = {k: float(v) for k, v in dict(reported.get("figures") or {}).items()}
    (out / "metrics.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(export_card(
        model, run.base_ref, run.base_commit, options, figures, flavor=str(reported.get("flavor") or ""),
        exporter=str(reported.get("exporter") or ""), dataset=run.dataset_ref,
        dataset_commit=run.dataset_commit, run_id=run.id))
