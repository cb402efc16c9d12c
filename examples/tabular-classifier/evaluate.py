"""Evaluate a saved tabular model on the dataset's test split.

    ASSETHUB_BASE_MODEL_DIR  the model version: <base>/model is the MLflow model
    ASSETHUB_DATASET_DIR     .csv / .tsv files; ASSETHUB_SPLIT picks the test rows
    ASSETHUB_PARAMS          {"label"}: the label column (empty: the one the model was trained on)
    ASSETHUB_METRICS_FILE    gets accuracy, loss, macro_f1, n_test (the names train.py reports)
    ASSETHUB_OUTPUT_DIR      gets report.md
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


def trained_label(source: Path) -> str:
    """The label column the model was trained on, from its MLmodel metadata ("" if none)."""
    import yaml

    meta = (yaml.safe_load((source / "MLmodel").read_text()) or {}).get("metadata") or {}
    return str(meta.get("label") or "")


def main() -> None:
    started = time.perf_counter()
    try:
        ctx = runtime.context()
        source = model_dir(ctx)
        table = data.read_table(ctx.dataset_dir)
        label = data.label_column(table, ctx.param("label", "") or trained_label(source))
        x, y = data.features_and_labels(table, label)
        _, test_rows = data.split(ctx, table)
    except (runtime.ContractError, data.DatasetError) as e:
        data.fail(str(e))

    import mlflow.sklearn

    try:
        model = mlflow.sklearn.load_model(str(source))
    except Exception as e:  # not a loadable scikit-learn model: one line, not a traceback
        data.fail(f"cannot load the MLflow model at {source}: {(str(e) or type(e).__name__).splitlines()[0]}")
    classes = [str(c) for c in model.classes_]
    test_x, test_y = x.iloc[test_rows], y.iloc[test_rows]
    unknown = sorted(set(test_y) - set(classes))
    if unknown:
        data.fail(f"test label(s) {', '.join(unknown)} are not classes of the model ({', '.join(classes)})")
    probabilities = model.predict_proba(test_x)
    metrics = data.classification_metrics(probabilities, test_y, classes)
    ctx.write_metrics(metrics)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    (ctx.output_dir / "report.md").write_text(data.report(metrics, probabilities, test_y, classes))
    print(f"test accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}  macro_f1 "
          f"{metrics['macro_f1']:.4f}  on {metrics['n_test']} rows of {source} "
          f"({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
