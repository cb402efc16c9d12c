"""examples/tabular-classifier under the training-code contract: its assethub.yaml commands run as
subprocesses in a copy of the code, with the contract's environment, on the CSV tables
examples/datasets.py writes (scikit-learn's iris and wine). No server; MLflow is a real SQLite
tracking store. The independent runs start together (each pays a few seconds of imports)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assethub.runtime import Split
from examples.datasets import TABLES, write_table
from tests.examples.test_examples import (
    EXAMPLES,
    METRICS,
    TIMEOUT,
    Job,
    context,
    copy_code,
    job_env,
    read_only_copy,
    writable,
)

NAME = "tabular-classifier"
IRIS_COLUMNS = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
PREDICT = textwrap.dedent("""
    # the saved model, loaded through pyfunc in a process without the example on its path
    import json, sys
    import mlflow.pyfunc, pandas as pd

    model = mlflow.pyfunc.load_model(sys.argv[1])
    rows = pd.DataFrame({"sepal_length_cm": [5.1, 6.7], "sepal_width_cm": [3.5, 3.0],
                         "petal_length_cm": [1.4, 5.2], "petal_width_cm": [0.2, 2.3]})
    inputs = [c.name for c in model.metadata.get_input_schema().inputs]
    print(json.dumps({"predictions": [str(p) for p in model.predict(rows)], "inputs": inputs,
                      "example": json.loads(open(sys.argv[1] + "/serving_input_example.json").read())}))
""")


@dataclass
class Lab:
    work: Path
    iris: Path
    code: Path
    mlflow_uri: str
    run_id: str = ""
    jobs: dict[str, Job] = field(default_factory=dict)
    predicted: dict[str, Any] = field(default_factory=dict)


def iris_rows() -> list[str]:
    return ["data.csv:" + str(i) for i in range(1, 151)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("tabular")
    iris, wine, two_files = work / "data" / "iris", work / "data" / "wine", work / "data" / "two-files"
    write_table(iris, "iris")
    write_table(wine, "wine")
    two_files.mkdir(parents=True)  # a train.csv + test.csv dataset, split by the test file's path
    lines = (iris / "data.csv").read_text().splitlines()
    (two_files / "train.csv").write_text("\n".join([lines[0], *lines[1::2]]) + "\n")
    (two_files / "test.csv").write_text("\n".join([lines[0], *lines[2::2]]) + "\n")
    lab = Lab(work, iris, copy_code(NAME, work / "code"), f"sqlite:///{work / 'mlflow.db'}")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(lab.mlflow_uri)
    experiment = client.create_experiment("tabular", artifact_location=(work / "mlartifacts").as_uri())
    run = client.create_run(experiment, run_name="iris-a")
    client.log_param(run.info.run_id, "n_estimators", "30")  # as the runner does, first
    lab.run_id = run.info.run_id
    jobs = lab.jobs
    jobs["iris-b"] = Job(lab.code, context(work, "iris-b", iris, "0.8", params={"n_estimators": 30})).start()
    jobs["iris-a"] = Job(lab.code, context(work, "iris-a", iris, "0.8", params={"n_estimators": 30},
                                           mlflow=(lab.mlflow_uri, lab.run_id))).start()
    jobs["wine"] = Job(lab.code, context(work, "wine", wine, "0.8",
                                         params={"model": "logistic_regression", "c": 0.5})).start()
    jobs["two-files"] = Job(lab.code, context(work, "two-files", two_files, "test.csv",
                                              params={"n_estimators": 10, "max_depth": 3})).start()
    if jobs["iris-b"].done().returncode == 0:
        base = read_only_copy(jobs["iris-b"].ctx.output_dir, work / "base")
        jobs["evaluate"] = Job(lab.code, context(work, "evaluate", iris, "0.8", job="evaluate", base=base),
                               kind="evaluate").start()
        jobs["continue"] = Job(lab.code, context(work, "continue", wine, "0.8", job="continue_train",
                                                 base=base)).start()
        elsewhere = work / "elsewhere"
        elsewhere.mkdir()
        done = subprocess.run([sys.executable, "-c", PREDICT, str(base / "model")], cwd=elsewhere,
                              env=job_env(context(work, "load", iris, "0.8")), capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        lab.predicted = json.loads(done.stdout.strip().splitlines()[-1])
    for job in jobs.values():
        job.done()
    yield lab
    writable(work / "base")


def test_train_writes_an_mlflow_model_and_test_metrics(lab: Lab) -> None:
    job = lab.jobs["iris-b"]
    metrics = job.metrics
    assert set(metrics) == METRICS
    assert metrics["accuracy"] >= 0.85  # three species: chance is 1/3
    assert metrics["n_test"] == len(Split(ratio=0.8).partition(iris_rows())[1])
    assert sorted(p.name for p in job.ctx.output_dir.iterdir()) == ["model"]
    assert "sklearn" in (job.ctx.output_dir / "model" / "MLmodel").read_text()
    assert "RandomForestClassifier" in job.stdout and "Traceback" not in job.stderr
    assert "Warning" not in job.stderr, job.stderr


def test_the_same_seed_trains_the_same_model(lab: Lab) -> None:
    assert lab.jobs["iris-a"].metrics == lab.jobs["iris-b"].metrics


def test_params_and_metrics_land_in_the_jobs_mlflow_run(lab: Lab) -> None:
    from mlflow.tracking import MlflowClient

    job = lab.jobs["iris-a"]
    run = MlflowClient(lab.mlflow_uri).get_run(lab.run_id)
    assert run.info.status == "RUNNING"  # the runner's to close
    assert run.data.params["n_estimators"] == "30" and run.data.params["label"] == "label"
    assert run.data.params["estimator"] == "RandomForestClassifier"
    assert run.data.metrics["test_accuracy"] == pytest.approx(job.metrics["accuracy"])


def test_logistic_regression_on_wine(lab: Lab) -> None:
    job = lab.jobs["wine"]
    assert job.metrics["accuracy"] >= 0.85 and "LogisticRegression" in job.stdout


def test_a_test_file_is_the_test_split(lab: Lab) -> None:
    job = lab.jobs["two-files"]
    assert job.metrics["n_test"] == 75 and "75 training and 75 test rows" in job.stdout


def test_evaluate_reports_what_train_reported(lab: Lab) -> None:
    trained, evaluated = lab.jobs["iris-b"], lab.jobs["evaluate"]
    assert evaluated.metrics == trained.metrics
    report = (evaluated.ctx.output_dir / "report.md").read_text()
    assert f"| accuracy | {trained.metrics['accuracy']:.6g} |" in report and "| setosa |" in report


def test_continue_train_refits_the_base_estimator(lab: Lab) -> None:
    job = lab.jobs["continue"]
    assert "refitting the base model's estimator" in job.stdout and "RandomForestClassifier" in job.stdout
    wine_rows = [f"data.csv:{i}" for i in range(1, 179)]
    assert job.metrics["n_test"] == len(Split(ratio=0.8).partition(wine_rows)[1])


def test_the_saved_model_takes_a_table_of_named_columns(lab: Lab) -> None:
    got = lab.predicted
    assert got["inputs"] == IRIS_COLUMNS
    assert got["predictions"] == ["setosa", "virginica"]
    assert got["example"]["dataframe_split"]["columns"] == IRIS_COLUMNS


def test_training_leaves_nothing_in_the_code_directory(lab: Lab) -> None:
    left = {p.relative_to(lab.code).as_posix() for p in lab.code.rglob("*") if "__pycache__" not in p.parts}
    assert left == {p.relative_to(EXAMPLES / NAME).as_posix() for p in (EXAMPLES / NAME).rglob("*")
                    if "__pycache__" not in p.parts}


# --------------------------------------------------------------------------- bad input


def _table(root: Path, name: str, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files, split, params, message", [
    ({"README.md": "# nothing\n"}, "0.8", {}, "no rows in .csv or .tsv files under"),
    ({"data.csv": "a,b\n1,2\n3,4\n"}, "0.8", {}, "no label column: name one with the label param"),
    ({"data.csv": "a,b\n1,x\n"}, "0.8", {"label": "species"}, "no column 'species' (the label param)"),
    ({"a.csv": "x,label\n1,p\n", "b.csv": "y,label\n2,q\n"}, "0.8", {},
     "b.csv has the columns y, label; a.csv has x, label"),
    ({"data.csv": "x,target\n1,p\n2,\n"}, "0.8", {}, "data.csv:2: the label column 'target' is empty"),
    ({"data.csv": "x,label\n1,p\n2,q\n"}, "missing.csv", {}, "the test split is empty"),
    ({"data.csv": "x,label\n1,p\n"}, "0.8", {"model": "svm"}, "model must be one of random_forest"),
])
def test_a_bad_table_fails_with_one_clear_line(tmp_path: Path, files: dict[str, str], split: str,
                                               params: dict[str, Any], message: str) -> None:
    root = tmp_path / "ds"
    for name, text in files.items():
        _table(root, name, text)
    code = copy_code(NAME, tmp_path / "code")
    ctx = context(tmp_path, "job", root, split, params=params)
    job = Job(code, ctx).start().done()
    lines = job.stderr.strip().splitlines()
    assert job.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), job.stderr
    assert message in lines[0]
    assert not ctx.metrics_file.exists()


def test_evaluate_needs_a_model(tmp_path: Path) -> None:
    code = copy_code(NAME, tmp_path / "code")
    data = _table(tmp_path / "ds", "data.csv", "x,label\n1,p\n")
    ctx = context(tmp_path, "job", data, "0.8", job="evaluate")
    done = Job(code, ctx, kind="evaluate").start().done()
    assert done.returncode == 2 and "ASSETHUB_BASE_MODEL_DIR is not set" in done.stderr


# --------------------------------------------------------------------------- the datasets


@pytest.mark.parametrize("name, rows, classes", [("iris", 150, ["setosa", "versicolor", "virginica"]),
                                                 ("wine", 178, ["class_0", "class_1", "class_2"])])
def test_tables_are_single_text_datasets_with_a_label_column(tmp_path: Path, name: str, rows: int,
                                                            classes: list[str]) -> None:
    import pandas as pd

    from assethub.dataset_formats import validate_layout

    assert write_table(tmp_path, name) == rows
    summary = validate_layout(tmp_path, "single_text")
    assert summary.examples_per_split == {"all": rows + 1}  # the header is a line too
    frame = pd.read_csv(tmp_path / "data.csv")
    assert len(frame) == rows and sorted(frame["label"].unique()) == classes
    assert all(c.replace("_", "").isalnum() and c == c.lower() for c in frame.columns)
    assert "BSD-3-Clause" in (tmp_path / "README.md").read_text()


def test_tables_from_the_command_line(tmp_path: Path) -> None:
    script = str(EXAMPLES / "datasets.py")
    done = subprocess.run([sys.executable, script, "wine", str(tmp_path / "wine")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and "wrote 178 rows" in done.stdout
    assert set(TABLES) == {"iris", "wine"}
    with pytest.raises(ValueError, match="table must be one of iris, wine"):
        write_table(tmp_path / "x", "boston")
