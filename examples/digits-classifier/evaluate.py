"""Evaluate a saved digits model on the dataset's test split.

    ASSETHUB_BASE_MODEL_DIR  the model version: <base>/model is the MLflow model
    ASSETHUB_DATASET_DIR     PNG files under <class>/ or <split>/<class>/; ASSETHUB_SPLIT picks the test split
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
        _, test_images = data.split(ctx, data.find_images(ctx.dataset_dir))
        found = data.class_order({im.label for im in test_images})
        x, y_found = data.load(test_images, found)  # bad images are reported before the model loads
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
    unknown = [c for c in found if c not in classes]
    if unknown:
        data.fail(f"test class(es) {', '.join(unknown)} are not classes of the model ({', '.join(classes)})")
    y = np.array([classes.index(c) for c in found], dtype=np.int64)[y_found]
    probabilities = model.predict(x)
    metrics = data.classification_metrics(probabilities, y)
    ctx.write_metrics(metrics)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    (ctx.output_dir / "report.md").write_text(
        f"# Evaluation of {source}\n\n"
        f"Dataset: {ctx.dataset_dir} (test split of ASSETHUB_SPLIT={ctx.split}: {len(y)} images)\n\n"
        "| metric | value |\n|---|---|\n"
        + "".join(f"| {k} | {v:.6g} |\n" for k, v in sorted(metrics.items()))
        + "\n## Per class\n\n" + data.confusion_report(probabilities, y, classes) + "\n")
    print(f"test accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}  "
          f"macro_f1 {metrics['macro_f1']:.4f}  on {metrics['n_test']} images "
          f"({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
