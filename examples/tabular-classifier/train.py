"""Train a scikit-learn classifier on the rows of the dataset's CSV table(s).

Run by Asset Hub with the training-code contract (see README.md):

    ASSETHUB_DATASET_DIR   .csv / .tsv files with a header; one column is the label
    ASSETHUB_SPLIT         a training ratio (rows are hashed), or the test set's path (e.g. test.csv)
    ASSETHUB_OUTPUT_DIR    gets model/, an MLflow model (scikit-learn flavor)
    ASSETHUB_BASE_MODEL_DIR  set (continue_train): refit the base model's pipeline on this data
    ASSETHUB_PARAMS        {"model", "n_estimators", "max_depth", "c", "label", "seed"}
    ASSETHUB_METRICS_FILE  gets the test metrics: accuracy, loss, macro_f1, n_test
    MLFLOW_TRACKING_URI + MLFLOW_RUN_ID  set: params and the test metrics go into that run
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import data

from assethub import runtime

MODELS = ("random_forest", "logistic_regression")
DEFAULTS: dict[str, Any] = {"model": "random_forest", "n_estimators": 100, "max_depth": 0, "c": 1.0,
                            "label": "", "seed": 42}


def settings(ctx: runtime.JobContext) -> dict[str, Any]:
    """The parameters, typed and checked (Asset Hub checks them too; this is for runs by hand)."""
    p = {name: ctx.param(name, default) for name, default in DEFAULTS.items()}
    if p["model"] not in MODELS:
        raise data.DatasetError(f"model must be one of {', '.join(MODELS)}, not {p['model']!r}")
    if p["n_estimators"] < 1 or p["max_depth"] < 0 or p["c"] <= 0:
        raise data.DatasetError("n_estimators must be at least 1, max_depth 0 or more and c above 0")
    return p


def model_dir(ctx: runtime.JobContext) -> Path | None:
    """The MLflow model to continue from (``<base>/model``), or None for a fresh start."""
    if ctx.base_model_dir is None:
        if ctx.job == "continue_train":
            raise data.DatasetError("ASSETHUB_JOB=continue_train needs ASSETHUB_BASE_MODEL_DIR")
        return None
    for candidate in (ctx.base_model_dir / "model", ctx.base_model_dir):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise data.DatasetError(f"ASSETHUB_BASE_MODEL_DIR={ctx.base_model_dir} holds no MLflow model "
                            "(expected model/MLmodel)")


def pipeline(p: dict[str, Any], x: Any) -> Any:
    """An unfitted pipeline: numbers imputed (and scaled for the linear model), text one-hot encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in x.columns if x[c].dtype.kind in "biuf"]
    other = [c for c in x.columns if c not in numeric]
    steps: list[Any] = [SimpleImputer(strategy="median")]
    if p["model"] == "logistic_regression":
        steps.append(StandardScaler())
    columns = ColumnTransformer([
        ("numeric", make_pipeline(*steps), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                      OneHotEncoder(handle_unknown="ignore")), other),
    ])
    if p["model"] == "random_forest":
        estimator: Any = RandomForestClassifier(n_estimators=p["n_estimators"],
                                                max_depth=p["max_depth"] or None, random_state=p["seed"],
                                                n_jobs=1)
    else:
        estimator = LogisticRegression(C=p["c"], max_iter=1000, random_state=p["seed"])
    return Pipeline([("columns", columns), ("estimator", estimator)])


def log_to_run(ctx: runtime.JobContext, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Params and metrics into the job's MLflow run, when it has one (the run is the runner's)."""
    if not (ctx.mlflow_tracking_uri and ctx.mlflow_run_id):
        return
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(ctx.mlflow_tracking_uri)
    logged = client.get_run(ctx.mlflow_run_id).data.params  # the runner's; MLflow refuses a change
    now = int(time.time() * 1000)
    client.log_batch(ctx.mlflow_run_id,
                     params=[Param(k, str(v)) for k, v in params.items() if k not in logged],
                     metrics=[Metric(f"test_{k}", float(v), now, 1) for k, v in metrics.items()])


def requirements() -> list[str]:
    """What the saved model needs to load, pinned to this environment (given, so that MLflow does
    not spend seconds inferring them in a subprocess)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy",
                                                    "cloudpickle")]


def save(model: Any, x: Any, classes: list[str], label: str, out: Path) -> Path:
    """``out``/model as an MLflow scikit-learn model with a signature and an input example."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.sklearn
    from mlflow.models import infer_signature

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    target = out / "model"
    if target.exists():
        shutil.rmtree(target)
    example = x.head(3)
    mlflow.sklearn.save_model(model, str(target), signature=infer_signature(x, model.predict(x)),
                              input_example=example, serialization_format="cloudpickle",
                              pip_requirements=requirements(),
                              metadata={"classes": classes, "label": label, "task": "tabular",
                                        "input": "a table of the feature columns",
                                        "output": "the predicted label per row"})
    return target


def main() -> None:
    started = time.perf_counter()
    try:
        ctx = runtime.context()
        p = settings(ctx)
        base = model_dir(ctx)
        table = data.read_table(ctx.dataset_dir)
        label = data.label_column(table, p["label"])
        x, y = data.features_and_labels(table, label)
        train_rows, test_rows = data.split(ctx, table)
    except (runtime.ContractError, data.DatasetError) as e:
        data.fail(str(e))
    classes = data.class_order(y.iloc[train_rows])
    print(f"dataset: {len(train_rows)} training and {len(test_rows)} test rows, {x.shape[1]} feature "
          f"column(s), label {label!r} with {len(classes)} classes; split {ctx.split}", flush=True)

    if base is not None:
        import mlflow.sklearn
        from sklearn.base import clone

        estimator = mlflow.sklearn.load_model(str(base)).named_steps["estimator"]
        kind = "logistic_regression" if type(estimator).__name__ == "LogisticRegression" else "random_forest"
        model = pipeline({**p, "model": kind}, x)  # this table's columns, the base's estimator
        model.steps[-1] = ("estimator", clone(estimator))
        print(f"refitting the base model's estimator ({base}) on this data", flush=True)
    else:
        model = pipeline(p, x)
    name = type(model.named_steps["estimator"]).__name__
    print(f"fitting {name} (seed {p['seed']})", flush=True)
    model.fit(x.iloc[train_rows], y.iloc[train_rows])
    target = save(model, x.iloc[train_rows], [str(c) for c in model.classes_], label, ctx.output_dir)

    import mlflow.sklearn  # score the saved model, exactly as evaluate.py will

    saved = mlflow.sklearn.load_model(str(target))
    test_x, test_y = x.iloc[test_rows], y.iloc[test_rows]
    classes = [str(c) for c in saved.classes_]
    metrics = data.classification_metrics(saved.predict_proba(test_x), test_y, classes)
    ctx.write_metrics(metrics)
    log_to_run(ctx, {**DEFAULTS, **ctx.params, "label": label, "job": ctx.job, "estimator": name,
                     "n_train": len(train_rows), "n_test": len(test_rows)}, metrics)
    print(f"test accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}  macro_f1 "
          f"{metrics['macro_f1']:.4f}  on {metrics['n_test']} rows; model saved to {target} "
          f"({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
