"""Evaluate a saved text classifier on the dataset's test split.

    ASSETHUB_BASE_MODEL_DIR  the model version: <base>/model is the MLflow model
    ASSETHUB_DATASET_DIR     .jsonl/.json files of {"id", "text", "label"} records
    ASSETHUB_SPLIT           picks the test split (a training ratio, or the test set's path)
    ASSETHUB_METRICS_FILE    gets accuracy, loss, macro_f1, n_test (the names train.py reports)
    ASSETHUB_OUTPUT_DIR      gets report.md

The model is loaded through MLflow's pyfunc interface only, as a service would load it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import data

from assethub import runtime


def model_dir(ctx: runtime.JobContext) -> Path:
    if ctx.base_model_dir is None:
        raise data.DatasetError("ASSETHUB_BASE_MODEL_DIR is not set: evaluation needs the model to evaluate")
    for candidate in (ctx.base_model_dir / "model", ctx.base_model_dir):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise data.DatasetError(f"ASSETHUB_BASE_MODEL_DIR={ctx.base_model_dir} holds no MLflow model "
                            "(expected model/MLmodel)")


def main() -> None:
    started = time.perf_counter()
    try:
        ctx = runtime.context()
        source = model_dir(ctx)
        _, test_set = data.split(ctx, data.read_records(ctx.dataset_dir))
    except (runtime.ContractError, data.DatasetError) as e:
        data.fail(str(e))

    import mlflow.pyfunc
    import numpy as np

    try:
        model = mlflow.pyfunc.load_model(str(source))
    except Exception as e:  # not a loadable MLflow model: one line, not a traceback
        data.fail(f"cannot load the MLflow model at {source}: {(str(e) or type(e).__name__).splitlines()[0]}")
    classes = list((model.metadata.metadata or {}).get("classes") or [])
    if not classes:
        data.fail(f"the model at {source} records no classes in its MLmodel metadata")
    unknown = sorted({r.label for r in test_set} - set(classes))
    if unknown:
        data.fail(f"test label(s) {', '.join(unknown)} are not classes of the model ({', '.join(classes)})")
    y = np.array([classes.index(r.label) for r in test_set])
    probabilities = data.probabilities(model, [r.text for r in test_set], classes)
    metrics = data.classification_metrics(probabilities, y)
    ctx.write_metrics(metrics)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    (ctx.output_dir / "report.md").write_text(
        f"# Evaluation of {source}\n\n"
        f"Dataset: {ctx.dataset_dir} (test split of ASSETHUB_SPLIT={ctx.split}: {len(y)} texts)\n\n"
        "| metric | value |\n|---|---|\n"
        + "".join(f"| {k} | {v:.6g} |\n" for k, v in sorted(metrics.items()))
        + "\n## Per class\n\n" + data.confusion_report(probabilities, y, classes) + "\n")
    print(f"test accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}  "
          f"macro_f1 {metrics['macro_f1']:.4f}  on {metrics['n_test']} texts "
          f"({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
