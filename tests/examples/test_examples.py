"""The example training repositories (examples/digits-classifier, examples/text-classifier) under
the training-code contract: their assethub.yaml commands run as subprocesses in a copy of the
code, with the contract's environment, on the datasets examples/datasets.py writes.

No lakeFS or server is needed; MLflow is a real SQLite tracking store. Every training process
pays ~12 s of imports (torch, Lightning, MLflow), so the module trains each example twice
(to compare) and continues once, with the independent processes running side by side.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from assethub.runtime import JobContext, Split, environment
from examples.datasets import STDLIB_TOPICS, digits_test_arrays, stdlib_docs, write_digits, write_stdlib_docs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
METRICS = {"accuracy", "loss", "macro_f1", "n_test"}
TIMEOUT = 600


# --------------------------------------------------------------------------- running the code


def copy_code(example: str, dest: Path) -> Path:
    """The example as the runner sees it: a fresh copy (so that nothing is written into examples/)."""
    return Path(shutil.copytree(EXAMPLES / example, dest / example,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc")))


def command(code: Path, job: str) -> str:
    spec = yaml.safe_load((code / "assethub.yaml").read_text())
    return str(spec[job]["command"])


def job_env(ctx: JobContext) -> dict[str, str]:
    """This environment without any contract or MLflow variables of its own, plus ``ctx``'s;
    ``python`` is this interpreter (as for the runner). PYTHONHASHSEED is left random on purpose:
    results must not depend on it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASSETHUB_", "MLFLOW_")) and k != "PYTHONHASHSEED"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    # Several jobs share the cores at once here: one intra-op thread each, so that torch's OpenMP
    # threads do not spin waiting for each other (results are compared only between these runs).
    env["OMP_NUM_THREADS"] = "1"
    return {**env, **environment(ctx)}


@dataclass
class Job:
    """One run of an example's command; started at once, waited for on ``done()``."""

    code: Path
    ctx: JobContext
    kind: str = "train"
    proc: subprocess.Popen[str] | None = None
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None

    def start(self) -> Job:
        self.proc = subprocess.Popen(["/bin/sh", "-c", command(self.code, self.kind)], cwd=self.code,
                                     env=job_env(self.ctx), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        return self

    def done(self) -> Job:
        if self.returncode is None:
            assert self.proc is not None
            self.stdout, self.stderr = self.proc.communicate(timeout=TIMEOUT)
            self.returncode = self.proc.returncode
        return self

    @property
    def metrics(self) -> dict[str, float]:
        self.done()
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout[-2000:]}\n{self.stderr[-3000:]}"
        return dict(json.loads(self.ctx.metrics_file.read_text()))


def context(work: Path, name: str, dataset: Path, split: str, *, job: str = "train",
            params: dict[str, Any] | None = None, base: Path | None = None,
            mlflow: tuple[str, str] = ("", "")) -> JobContext:
    """A job's contract, laid out as the runner lays it out (metrics beside, not in, the output)."""
    (work / name).mkdir(parents=True)
    return JobContext(job=job, dataset_dir=dataset, output_dir=work / name / "output", base_model_dir=base,
                      params=params or {}, split=Split.parse(split, dataset),
                      metrics_file=work / name / "metrics.json", mlflow_tracking_uri=mlflow[0],
                      mlflow_run_id=mlflow[1])


def read_only_copy(source: Path, dest: Path) -> Path:
    """A downloaded model version: read-only, as the runner hands it to the code."""
    shutil.copytree(source, dest)
    for d, _, files in os.walk(dest):
        for name in files:
            Path(d, name).chmod(stat.S_IRUSR | stat.S_IRGRP)
        Path(d).chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    return dest


def writable(root: Path) -> None:
    for d, _, _ in os.walk(root):
        Path(d).chmod(0o755)


LOAD_BOTH = textwrap.dedent("""
    # loads both saved models in a process that has neither example on its path
    import json, sys
    import numpy as np
    import mlflow.pyfunc

    digits = mlflow.pyfunc.load_model(sys.argv[1])
    text = mlflow.pyfunc.load_model(sys.argv[2])
    x, y = np.load(sys.argv[3]), np.load(sys.argv[4])
    p = digits.predict(x)
    out = text.predict(["Return the square root of x.", "Create a TCP socket connection to host and port."])
    frame = text.predict(__import__("pandas").DataFrame({"text": ["Remove a directory tree."]}))
    print(json.dumps({
        "digits_shape": list(p.shape), "digits_dtype": str(p.dtype),
        "digits_row_sums": [round(float(s), 5) for s in p.sum(axis=1)],
        "digits_accuracy": round(float(np.mean(p.argmax(axis=1) == y)), 6),
        "text_columns": list(out.columns), "text_labels": list(out["label"]),
        "text_probabilities": list(out["probabilities"]), "frame_labels": list(frame["label"]),
        "lightning_imported": any(m.split(".")[0] in ("lightning", "pytorch_lightning") for m in sys.modules),
        "net_from": sys.modules["net"].__file__, "textnet_from": sys.modules["textnet"].__file__,
    }))
""")


# --------------------------------------------------------------------------- the shared runs


@dataclass
class Lab:
    work: Path
    digits: Path  # dataset, test_set layout (split "test")
    docs: Path  # dataset, json (split 0.8)
    code: dict[str, Path]
    mlflow_uri: str
    runs: dict[str, str] = field(default_factory=dict)  # MLflow run ids by job name
    jobs: dict[str, Job] = field(default_factory=dict)
    loaded: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(digits in the test_set layout, stdlib-docs), as examples/datasets.py writes them."""
    root = tmp_path_factory.mktemp("data")
    write_digits(root / "digits")
    write_stdlib_docs(root / "stdlib-docs")
    return root / "digits", root / "stdlib-docs"


@pytest.fixture(scope="module")
def lab(datasets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("examples")
    digits, docs = datasets
    code = {name: copy_code(name, work / "code") for name in ("digits-classifier", "text-classifier")}
    lab = Lab(work, digits, docs, code, f"sqlite:///{work / 'mlflow.db'}")
    jobs = lab.jobs
    examples = (("digits", digits, "test", {"epochs": 1}), ("text", docs, "0.8", {"epochs": 2}))

    # each example trains twice: "b" without MLflow, started first; "a" into a real MLflow run
    for n, data, split, params in examples:
        jobs[f"{n}-b"] = Job(code[f"{n}-classifier"],
                             context(work, f"{n}-b", data, split, params=params)).start()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(lab.mlflow_uri)
    experiment = client.create_experiment("examples", artifact_location=(work / "mlartifacts").as_uri())
    for n, data, split, params in examples:
        run = client.create_run(experiment, run_name=f"{n}-a")
        client.log_param(run.info.run_id, "epochs", str(params["epochs"]))  # as the runner does, first
        lab.runs[f"{n}-a"] = run.info.run_id
        jobs[f"{n}-a"] = Job(code[f"{n}-classifier"], context(
            work, f"{n}-a", data, split, params=params, mlflow=(lab.mlflow_uri, run.info.run_id))).start()
    x, y = digits_test_arrays(digits)
    import numpy as np

    np.save(work / "x.npy", x)
    np.save(work / "y.npy", y)

    # as soon as "b" has saved its model: continue from it and evaluate it (read-only, as downloaded)
    # lr=0 trains an epoch through Lightning without moving a weight; epochs=0 does not train at all
    continued = {"digits": {"epochs": 1, "lr": 0}, "text": {"epochs": 0}}
    base: dict[str, Path] = {}
    for n, data, split, _ in examples:
        if jobs[f"{n}-b"].done().returncode != 0:
            continue  # the tests say what failed
        base[n] = read_only_copy(jobs[f"{n}-b"].ctx.output_dir, work / "base" / n)
        jobs[f"{n}-continue"] = Job(code[f"{n}-classifier"], context(
            work, f"{n}-continue", data, split, job="continue_train", params=continued[n],
            base=base[n])).start()
        jobs[f"{n}-evaluate"] = Job(code[f"{n}-classifier"], context(
            work, f"{n}-evaluate", data, split, job="evaluate", base=base[n]), kind="evaluate").start()
    if len(base) == 2:  # both models, loaded in a process that has neither example on its path
        elsewhere = work / "elsewhere"
        elsewhere.mkdir()
        load = subprocess.Popen([sys.executable, "-c", LOAD_BOTH, str(base["digits"] / "model"),
                                 str(base["text"] / "model"), str(work / "x.npy"), str(work / "y.npy")],
                                cwd=elsewhere, env=job_env(context(work, "load", digits, "test")),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = load.communicate(timeout=TIMEOUT)
        assert load.returncode == 0, err[-3000:]
        lab.loaded = json.loads(out.strip().splitlines()[-1])
    for job in jobs.values():
        job.done()
    yield lab
    writable(work / "base")


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name, least", [("digits", 0.8), ("text", 0.7)])
def test_train_writes_an_mlflow_model_and_test_metrics(lab: Lab, name: str, least: float) -> None:
    job = lab.jobs[f"{name}-b"]
    metrics = job.metrics
    assert set(metrics) == METRICS
    assert metrics["accuracy"] >= least  # chance is 0.1 (digits) and about 0.3 (text)
    assert 0 < metrics["loss"] < 2 and 0 < metrics["macro_f1"] <= 1
    n_test = 360 if name == "digits" else len(Split(ratio=0.8).partition(stdlib_docs(), lambda r: r["id"])[1])
    assert metrics["n_test"] == n_test
    # exactly the model in the output (the runner adds README.md and metrics.json itself)
    out = job.ctx.output_dir
    assert sorted(p.name for p in out.iterdir()) == ["model"]
    assert (out / "model" / "MLmodel").is_file()
    # one line per epoch in the log; stderr stays free of library chatter
    epochs = [line for line in job.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == job.ctx.params["epochs"] and "test_accuracy" in epochs[-1]
    assert "Traceback" not in job.stderr and "GPU available" not in job.stderr + job.stdout


def test_training_leaves_nothing_in_the_code_directory(lab: Lab) -> None:
    for name, code in lab.code.items():
        left = {p.relative_to(code).as_posix() for p in code.rglob("*") if "__pycache__" not in p.parts}
        assert left == {p.relative_to(EXAMPLES / name).as_posix() for p in (EXAMPLES / name).rglob("*")
                        if "__pycache__" not in p.parts}, name


@pytest.mark.parametrize("name", ["digits", "text"])
def test_training_is_deterministic(lab: Lab, name: str) -> None:
    # one run logged to MLflow and one did not, at the same time, with different hash seeds
    a, b = lab.jobs[f"{name}-a"], lab.jobs[f"{name}-b"]
    assert a.metrics == b.metrics
    weights = "model/artifacts/weights.pt"
    assert (a.ctx.output_dir / weights).read_bytes() == (b.ctx.output_dir / weights).read_bytes()


@pytest.mark.parametrize("name", ["digits", "text"])
def test_params_and_per_epoch_metrics_land_in_the_jobs_mlflow_run(lab: Lab, name: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(lab.mlflow_uri)
    job = lab.jobs[f"{name}-a"]
    run = client.get_run(lab.runs[f"{name}-a"])
    assert run.info.status == "RUNNING"  # the run is the runner's to close
    assert len(client.search_runs([run.info.experiment_id])) == 2  # no run of its own
    params = run.data.params
    assert params["epochs"] == str(job.ctx.params["epochs"]) and params["seed"] == "42"
    assert {"lr", "batch_size", "n_train", "n_test"} <= set(params)
    assert params["n_test"] == str(job.metrics["n_test"])
    epochs = job.ctx.params["epochs"]
    for metric in ("train_loss", "test_loss", "test_accuracy"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert [m.step for m in history] == list(range(1, epochs + 1)), metric
    last = client.get_metric_history(run.info.run_id, "test_accuracy")[-1].value
    assert last == pytest.approx(job.metrics["accuracy"], abs=1e-6)  # the last epoch scored the saved model


@pytest.mark.parametrize("name", ["digits", "text"])
def test_evaluate_reports_what_train_reported(lab: Lab, name: str) -> None:
    trained, evaluated = lab.jobs[f"{name}-b"], lab.jobs[f"{name}-evaluate"]
    assert evaluated.metrics == trained.metrics
    report = (evaluated.ctx.output_dir / "report.md").read_text()
    assert f"| accuracy | {trained.metrics['accuracy']:.6g} |" in report


def test_continue_train_starts_from_the_base_weights(lab: Lab) -> None:
    # lr=0: an epoch of Lightning training that cannot move a weight; a network that did not start
    # from the base's weights would score like a fresh one (about 0.1)
    base = lab.jobs["digits-b"].metrics
    job = lab.jobs["digits-continue"]
    assert job.metrics == base
    assert "continuing from the base model's weights" in job.stdout
    epoch = next(line for line in job.stdout.splitlines() if line.startswith("epoch 1/1"))
    assert f"test_loss {base['loss']:.4f}" in epoch  # the first step already sees the base's loss
    # epochs=0: the base model saved again, unchanged
    text = lab.jobs["text-continue"]
    assert text.metrics == lab.jobs["text-b"].metrics
    weights = "model/artifacts/weights.pt"
    before = (lab.jobs["text-b"].ctx.output_dir / weights).read_bytes()
    assert (text.ctx.output_dir / weights).read_bytes() == before


def test_saved_models_load_anywhere_and_predict(lab: Lab) -> None:
    got = lab.loaded
    assert got["digits_shape"] == [360, 10] and got["digits_dtype"] == "float32"
    assert set(got["digits_row_sums"]) == {1.0}
    assert got["digits_accuracy"] == lab.jobs["digits-b"].metrics["accuracy"]
    assert got["text_columns"] == ["label", "probabilities"]
    assert got["text_labels"] == ["math", "network"] and got["frame_labels"] == ["files"]
    for probabilities in got["text_probabilities"]:
        assert sorted(probabilities) == sorted(STDLIB_TOPICS)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # the model's own copy of the network code was used, and Lightning was not needed
    assert "/model/code/" in got["net_from"] and "/model/code/" in got["textnet_from"]
    assert not got["lightning_imported"]


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets that are not what the examples expect."""
    root = tmp_path_factory.mktemp("bad")
    png = root / "one.png"
    from PIL import Image

    Image.new("L", (32, 32)).save(png)
    made = {name: root / name for name in ("empty", "loose", "deep", "broken-png", "bad-json", "no-label")}
    made["empty"].mkdir()
    made["loose"].mkdir()
    shutil.copy(png, made["loose"] / "0001.png")
    (made["deep"] / "a" / "b" / "c").mkdir(parents=True)
    shutil.copy(png, made["deep"] / "a" / "b" / "c" / "0001.png")
    (made["broken-png"] / "test" / "3").mkdir(parents=True)
    (made["broken-png"] / "train" / "3").mkdir(parents=True)
    (made["broken-png"] / "test" / "3" / "x.png").write_bytes(b"not a png")
    shutil.copy(png, made["broken-png"] / "train" / "3" / "y.png")
    made["bad-json"].mkdir()
    (made["bad-json"] / "data.jsonl").write_text('{"id": "1", "text": "fine", "label": "a"}\n{"id": "2", \n')
    made["no-label"].mkdir()
    (made["no-label"] / "data.jsonl").write_text('{"id": "1", "text": "no label here"}\n')
    made["code"] = root / "code"
    for name in ("digits-classifier", "text-classifier"):
        copy_code(name, made["code"])
    return made


NOT_IN_CLASS_FOLDER = "is not in a <class>/ or <split>/<class>/ folder"


@pytest.mark.parametrize("kind, example, dataset, split, message", [
    ("train", "digits-classifier", "empty", "test", "no PNG files under <class>/ or <split>/"),
    ("train", "digits-classifier", "missing", "test", "is not a directory"),
    ("evaluate", "digits-classifier", "broken-png", "test", "test/3/x.png is not a readable PNG image"),
    ("train", "text-classifier", "bad-json", "0.8", "data.jsonl is not valid JSON Lines"),
    ("evaluate", "text-classifier", "no-label", "0.8", "data.jsonl line 1: 'label' is missing"),
])
def test_a_bad_dataset_fails_with_one_clear_line(bad: dict[str, Path], tmp_path: Path, kind: str,
                                                 example: str, dataset: str, split: str,
                                                 message: str) -> None:
    base = None
    if kind == "evaluate":  # a model directory that passes evaluate.py's first check, not a real model:
        base = tmp_path / "base"  # the data must be found wanting before the model is loaded
        (base / "model").mkdir(parents=True)
        (base / "model" / "MLmodel").write_text("flavors: {}\n")
    ctx = context(tmp_path, "job", bad.get(dataset, tmp_path / dataset), split, job=kind, base=base)
    job = Job(bad["code"] / example, ctx, kind=kind).start().done()
    assert job.returncode == 2
    lines = job.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], job.stderr
    assert not ctx.metrics_file.exists()


@pytest.mark.parametrize("example, job, params, base, message", [
    ("digits-classifier", "continue_train", {}, None, "continue_train needs ASSETHUB_BASE_MODEL_DIR"),
    ("text-classifier", "continue_train", {}, "empty", "holds no MLflow model (expected model/MLmodel)"),
    ("text-classifier", "train", {"epochs": "many"}, None, "parameter epochs='many' is not a int"),
    ("digits-classifier", "train", {"lr": -1}, None, "lr must be 0 or more"),
])
def test_bad_params_or_base_fail_with_one_clear_line(bad: dict[str, Path], tmp_path: Path, example: str,
                                                     job: str, params: dict[str, Any], base: str | None,
                                                     message: str) -> None:
    ctx = context(tmp_path, "job", bad["empty"], "0.8", job=job, params=params,
                  base=bad[base] if base else None)
    done = Job(bad["code"] / example, ctx).start().done()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_evaluate_needs_a_model(bad: dict[str, Path], tmp_path: Path) -> None:
    for example in ("digits-classifier", "text-classifier"):
        ctx = context(tmp_path, example, bad["empty"], "0.8", job="evaluate")
        done = Job(bad["code"] / example, ctx, kind="evaluate").start().done()
        assert done.returncode == 2 and "ASSETHUB_BASE_MODEL_DIR is not set" in done.stderr


# --------------------------------------------------------------------------- data, in-process


def _module(example: str, name: str) -> ModuleType:
    qualified = f"{example.replace('-', '_')}_{name}"  # two examples, two modules named `data`
    spec = importlib.util.spec_from_file_location(qualified, EXAMPLES / example / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_digits_split_by_ratio_or_test_set(tmp_path: Path) -> None:
    from assethub.dataset_formats import validate_layout

    data = _module("digits-classifier", "data")
    assert write_digits(tmp_path / "flat", layout="flat") == 1797
    assert validate_layout(tmp_path / "flat", "dir").examples_per_split == {"all": 1797}
    images = data.find_images(tmp_path / "flat")
    assert len(images) == 1797 and {im.label for im in images} == {str(i) for i in range(10)}
    ctx = context(tmp_path, "ratio", tmp_path / "flat", "0.8")
    train, test = data.split(ctx, images)
    assert 0.15 < len(test) / 1797 < 0.25 and not {im.key for im in train} & {im.key for im in test}
    assert data.split(ctx, list(reversed(images)))[1] == list(reversed(test))  # by key, not position
    assert data.class_order({"10", "9", "2"}) == ["2", "9", "10"]
    with pytest.raises(ValueError, match="layout"):
        write_digits(tmp_path / "x", layout="nested")


def test_data_in_the_wrong_layout_is_named(bad: dict[str, Path], tmp_path: Path) -> None:
    """The checks behind the one-line errors above, for the cases not run as a job there."""
    digits, text = _module("digits-classifier", "data"), _module("text-classifier", "data")
    for root, message in ((bad["loose"], f"0001.png {NOT_IN_CLASS_FOLDER}"),
                          (bad["deep"], f"a/b/c/0001.png {NOT_IN_CLASS_FOLDER}"),
                          (bad["bad-json"], "no PNG files under <class>/ or <split>/<class>/ folders")):
        with pytest.raises(digits.DatasetError, match=re.escape(message)):
            digits.find_images(root)
    images = digits.find_images(bad["broken-png"])
    with pytest.raises(digits.DatasetError, match="the test split is empty"):
        digits.split(context(tmp_path, "nowhere", bad["broken-png"], "nowhere"), images)
    with pytest.raises(digits.DatasetError, match="the training split is empty"):
        digits.split(context(tmp_path, "all-test", bad["broken-png"], "."), images)
    for root in (bad["empty"], bad["loose"]):
        with pytest.raises(text.DatasetError, match=r"no \.jsonl or \.json files with"):
            text.read_records(root)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "data.jsonl").write_text('{"text": 3, "label": "a"}\n')
    with pytest.raises(text.DatasetError, match=r"data\.jsonl line 1: 'text' is missing"):
        text.read_records(tmp_path / "ds")


def test_text_split_by_ratio_or_test_file(tmp_path: Path) -> None:
    data = _module("text-classifier", "data")
    root = tmp_path / "ds"
    root.mkdir()
    (root / "README.md").write_text("# not data\n")
    lines = [json.dumps({"text": f"t{i}", "label": "a"}) for i in range(5)]
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    (root / "test.json").write_text(json.dumps([{"id": "x", "text": "u", "label": 1}]))
    records = data.read_records(root)
    assert [r.id for r in records] == ["x", *(f"train.jsonl:{i}" for i in range(1, 6))]
    assert records[0].label == "1"
    train, test = data.split(context(tmp_path, "by-file", root, "test.json"), records)
    assert [r.id for r in test] == ["x"] and len(train) == 5


def test_stdlib_docs_are_deterministic_and_valid(tmp_path: Path) -> None:
    from assethub.dataset_formats import validate_layout

    n = write_stdlib_docs(tmp_path / "docs")
    records = [json.loads(line) for line in (tmp_path / "docs" / "data.jsonl").read_text().splitlines()]
    assert len(records) == n > 800 and records == stdlib_docs()
    assert len({r["id"] for r in records}) == n and len({r["text"] for r in records}) == n
    counts = {label: sum(r["label"] == label for r in records) for label in STDLIB_TOPICS}
    assert min(counts.values()) > 100, counts
    assert all(len(r["text"]) >= 40 for r in records)
    assert validate_layout(tmp_path / "docs", "json").examples_per_split == {"all": n}


def test_digits_dataset_is_valid(datasets: tuple[Path, Path]) -> None:
    from assethub.dataset_formats import validate_layout

    digits = datasets[0]
    summary = validate_layout(digits, "dir")
    assert summary.splits == ("train", "test") and summary.examples_per_split == {"train": 1437, "test": 360}
    assert summary.classes == tuple(str(i) for i in range(10))
    x, y = digits_test_arrays(digits)
    assert x.shape == (360, 1, 32, 32) and str(x.dtype) == "float32" and x.min() >= 0 and x.max() <= 1
    assert sorted(set(y.tolist())) == list(range(10))
    assert "BSD-3-Clause" in (digits / "README.md").read_text()


def test_datasets_command_line(tmp_path: Path) -> None:
    script = str(EXAMPLES / "datasets.py")
    done = subprocess.run([sys.executable, script, "stdlib-docs", str(tmp_path / "docs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"wrote {len(stdlib_docs())} records" in done.stdout
    wrong = subprocess.run([sys.executable, script, "digits", str(tmp_path / "d"), "--layout", "nested"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "invalid choice: 'nested'" in wrong.stderr
    assert not (tmp_path / "d").exists()
