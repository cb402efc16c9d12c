"""The pure parts of jobs: the runtime contract, lineage metadata, job specs, parameters, merge
decisions, URL redaction and the command's environment. No server, no Prefect run."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assethub import runtime
from assethub.hub import EvaluationView, LineageView
from assethub.lineage import (
    MODEL_COMMIT,
    Lineage,
    decide_merge,
    metric_differences,
    model_commit_of,
    rerun_of,
)


# -- runtime ---------------------------------------------------------------------------------
def test_split_parses_a_ratio_or_a_test_set_path(tmp_path: Path) -> None:
    assert runtime.Split.parse("0.9").ratio == 0.9
    assert runtime.Split.parse("").ratio == runtime.DEFAULT_SPLIT_RATIO
    test = runtime.Split.parse("test", tmp_path)
    assert test.test_path == tmp_path / "test"
    assert test.is_test("test/3/0001.png") and not test.is_test("train/3/0001.png")
    assert test.is_test(str(tmp_path / "test" / "a.png")) and not test.is_test("tests/a.png")
    for bad in ("1.5", "0", "nan"):
        with pytest.raises(runtime.ContractError):
            runtime.Split.parse(bad)


def test_ratio_split_is_deterministic_stable_and_near_the_ratio() -> None:
    split = runtime.Split(ratio=0.8)
    items = [f"class{i % 10}/{i:05d}.png" for i in range(5000)]
    train, test = split.partition(items)
    assert split.partition(items) == (train, test)
    assert 0.77 < len(train) / len(items) < 0.83
    # adding items does not move the old ones between splits
    train2, test2 = split.partition(items + [f"new/{i}.png" for i in range(500)])
    assert set(test) <= set(test2) and set(train) <= set(train2)


def test_context_reads_the_contract_and_types_params(tmp_path: Path) -> None:
    ctx = runtime.JobContext("train", tmp_path / "d", tmp_path / "o", None,
                             {"epochs": "3", "lr": 0.1, "fast": "yes"}, runtime.Split(ratio=0.9),
                             tmp_path / "m.json", "http://mlflow", "abc")
    again = runtime.context(runtime.environment(ctx))
    assert again == ctx
    assert again.param("epochs", 1) == 3 and again.param("lr", 1.0) == 0.1
    assert again.param("fast", False) is True and again.param("missing", "x") == "x"
    with pytest.raises(runtime.ContractError, match="not a int"):
        runtime.JobContext("train", tmp_path, tmp_path, None, {"epochs": "many"},
                           runtime.Split(ratio=0.5), tmp_path / "m").param("epochs", 1)
    again.write_metrics({"accuracy": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {"accuracy": 0.5}
    with pytest.raises(runtime.ContractError, match="finite"):
        again.write_metrics({"loss": float("nan")})


def test_context_outside_a_job_says_what_is_missing() -> None:
    with pytest.raises(runtime.ContractError, match="ASSETHUB_DATASET_DIR is not set"):
        runtime.context({})
    with pytest.raises(runtime.ContractError, match="ASSETHUB_PARAMS"):
        runtime.context({"ASSETHUB_DATASET_DIR": "/d", "ASSETHUB_OUTPUT_DIR": "/o",
                         "ASSETHUB_PARAMS": "{oops"})
    with pytest.raises(runtime.ContractError, match="ASSETHUB_JOB"):
        runtime.context({"ASSETHUB_JOB": "dance"})


# -- lineage ---------------------------------------------------------------------------------
def test_lineage_round_trips_through_commit_metadata() -> None:
    lin = Lineage(job="train", run_id="r", dataset="a/dataset/f/d:v1", dataset_commit="c" * 64,
                  code_url="https://x/y.git", code_sha="s" * 40, params={"lr": 0.1, "epochs": 2},
                  metrics={"accuracy": 0.9}, mlflow_run_id="m")
    meta = lin.to_metadata()
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["assethub.dataset_commit"] == "c" * 64
    assert Lineage.from_metadata(meta) == lin
    assert Lineage.from_metadata({"author": "bob"}) is None


def test_model_commit_of_follows_evaluation_and_merge_commits_back() -> None:
    train = {"assethub.job": "train"}
    assert model_commit_of([("t", train)]) == "t"
    assert model_commit_of([("e", {"assethub.job": "evaluate", MODEL_COMMIT: "t"}), ("t", train)]) == "t"
    assert model_commit_of([("m", {MODEL_COMMIT: "t", "author": "x"}), ("old", train)]) == "t"
    assert model_commit_of([("u", {"author": "bob"}), ("t", train)]) == "u"  # a manual upload
    assert model_commit_of([]) is None


# -- job spec, params, URLs, environment ----------------------------------------------------------
def test_job_spec_is_checked(tmp_path: Path) -> None:
    from assethub.errors import JobSpecError
    from tasks.code import load_spec

    assert load_spec(tmp_path, "here") == {}
    (tmp_path / "assethub.yaml").write_text("train: python t.py\nparams: {epochs: 2}\n")
    assert load_spec(tmp_path, "here")["train"] == {"command": "python t.py"}
    for text, match in (("train: [1, 2]", "'train' needs a 'command'"),
                        ("trian: {command: x}", "unknown key"),
                        ("params: 3", "'params' must be a mapping"), ("train: {command: x", "not valid YAML"),
                        ("- a list", "must be a mapping")):
        (tmp_path / "assethub.yaml").write_text(text)
        with pytest.raises(JobSpecError, match=match):
            load_spec(tmp_path, "here")


def test_urls_lose_their_credentials() -> None:
    from tasks.env import redact_url

    assert redact_url("https://user:s3cret@git.example.org/a/b.git") == "https://***@git.example.org/a/b.git"
    assert redact_url("https://tok@git.example.org:8443/x") == "https://***@git.example.org:8443/x"
    assert redact_url("/srv/code.git") == "/srv/code.git"
    assert redact_url("git@github.com:a/b.git") == "git@github.com:a/b.git"


def test_the_command_gets_the_contract_but_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.entrypoint import command_environment

    monkeypatch.setenv("ASSETHUB_TOKEN", "ah_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = command_environment({"ASSETHUB_DATASET_DIR": "/d"})
    assert "ASSETHUB_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["ASSETHUB_DATASET_DIR"] == "/d" and env["PYTHONUNBUFFERED"] == "1"


def test_transient_failures_are_retried_and_refusals_are_not() -> None:
    from assethub import errors
    from tasks.env import is_transient

    assert is_transient(errors.StorageUnavailableError("down"))
    assert is_transient(errors.CodeFetchError("x", transient=True))
    assert not is_transient(errors.CodeFetchError("revision not found"))
    assert not is_transient(errors.ForbiddenError("no", needed="run"))
    assert not is_transient(None)


# -- merge decisions -------------------------------------------------------------------------
def _view(commit: str, *evals: tuple[str, dict[str, float], int]) -> LineageView:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return LineageView("m:x", commit, commit, None, tuple(
        EvaluationView(f"e{i}", "m", commit, "d:v1", ds, metrics, "", "u", t0 + timedelta(minutes=age))
        for i, (ds, metrics, age) in enumerate(evals)), None)


def test_merge_decision() -> None:
    src = _view("s", ("d1", {"acc": 0.9, "loss": 0.3}, 1))
    dst = _view("t", ("d1", {"acc": 0.8, "loss": 0.5}, 0))
    assert decide_merge(src, dst, "acc").merge
    assert not decide_merge(src, dst, "acc", margin=0.2).merge
    assert decide_merge(src, dst, "loss", higher_is_better=False).merge
    assert not decide_merge(dst, src, "loss", higher_is_better=False).merge
    assert not decide_merge(src, dst, "f1").merge  # the source was never scored on it
    assert decide_merge(src, _view("t"), "acc").merge  # nothing to beat
    assert not decide_merge(src, _view("s"), "acc").merge  # the same model
    assert decide_merge(src, dst, "").merge
    # on a shared dataset commit, that one decides, whatever else was scored
    src2 = _view("s", ("d1", {"acc": 0.7}, 1), ("d2", {"acc": 0.99}, 5))
    dst2 = _view("t", ("d1", {"acc": 0.8}, 0))
    d = decide_merge(src2, dst2, "acc")
    assert not d.merge and "on dataset commit d1" in d.reason
    # no shared dataset commit: newest of each, and the reason says they differ
    d = decide_merge(_view("s", ("d2", {"acc": 0.9}, 1)), _view("t", ("d1", {"acc": 0.8}, 0)), "acc")
    assert d.merge and "different dataset commits" in d.reason


def test_a_merge_decision_uses_only_trusted_evaluations_and_names_who_produced_them() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def ev(commit: str, acc: float, run_id: str, by: str, age: int, trusted: bool = True) -> EvaluationView:
        return EvaluationView(f"e{age}", "m", commit, "d:v1", "d1", {"acc": acc}, run_id, by,
                              t0 + timedelta(minutes=age), trusted)

    def version(commit: str, *evals: EvaluationView) -> LineageView:
        return LineageView("m:x", commit, commit, None, evals, None)

    src = version("s", ev("s", 0.7, "r" * 32, "alice", 1), ev("s", 0.99, "", "mallory", 2, trusted=False))
    dst = version("t", ev("t", 0.8, "", "bob", 0))
    d = decide_merge(src, dst, "acc")  # the untrusted 0.99, though newer, is not compared
    assert not d.merge and (d.source_value, d.target_value) == (0.7, 0.8)
    assert (d.source_by, d.target_by) == (f"run {'r' * 32} (alice)", "user bob")
    assert f"0.7 (by run {'r' * 32} (alice)) vs 0.8 (by user bob)" in d.reason
    # only untrusted numbers on the source: nothing to merge on, and the reason says why
    d = decide_merge(version("s", ev("s", 0.99, "", "mallory", 2, trusted=False)), dst, "acc")
    assert not d.merge and "no trusted evaluation" in d.reason and "1 untrusted" in d.reason
    # only untrusted numbers on the target: there is nothing trusted to beat
    d = decide_merge(src, version("t", ev("t", 0.95, "", "mallory", 0, trusted=False)), "acc")
    assert d.merge and d.source_by == f"run {'r' * 32} (alice)" and d.target_by == ""


def test_reproduction_compares_every_metric() -> None:
    assert metric_differences({"a": 1.0}, {"a": 1.0}) == {}
    assert metric_differences({"a": 1.0}, {"a": 1.0 + 1e-9}) == {"a": (1.0, 1.0 + 1e-9)}
    assert metric_differences({"a": 1.0}, {"a": 1.0 + 1e-9}, tolerance=1e-6) == {}
    assert metric_differences({"a": 1.0}, {"b": 1.0}) == {"a": (1.0, None), "b": (None, 1.0)}


def test_reproduction_reruns_the_recorded_inputs_pinned_to_their_commits() -> None:
    from assethub.errors import JobSpecError

    lin = Lineage(job="continue_train", dataset="a/dataset/f/d:v1", dataset_commit="c" * 64,
                  code_url="https://x/y.git", code_sha="s" * 40, code_subpath="sub", command="python t.py",
                  base_model="a/model/f/m:main", base_model_commit="b" * 64, params={"lr": 0.1})
    again = rerun_of("a/model/f/m:v2", "m" * 64, lin)
    assert again.dataset == "a/dataset/f/d:" + "c" * 64 and again.base_model == "a/model/f/m:" + "b" * 64
    assert (again.job, again.code_url, again.code_sha, again.code_subpath, again.command) \
        == ("continue_train", "https://x/y.git", "s" * 40, "sub", "python t.py")
    assert dict(again.params) == {"lr": 0.1}
    redacted = Lineage(job="train", dataset="a/dataset/f/d:v1", dataset_commit="c" * 64,
                       code_url="https://***@x/y.git", code_sha="s" * 40)
    assert rerun_of("r", "m", redacted, repo="https://tok@x/y.git").code_url == "https://tok@x/y.git"
    assert rerun_of("r", "m", redacted, repo="https://tok@x/y.git").base_model == ""
    with pytest.raises(JobSpecError, match="credentials removed; pass --repo"):
        rerun_of("r", "m", redacted)
    for not_trained in (None, Lineage(job="evaluate")):
        with pytest.raises(JobSpecError, match="not made by a training job"):
            rerun_of("a/model/f/m:main", "m" * 64, not_trained)


# -- the file-writing steps (their plain functions, .fn(): no Prefect run) ----------------------
def test_metrics_are_read_from_the_file_the_command_wrote(tmp_path: Path) -> None:
    from assethub.errors import JobFailedError
    from tasks.results import read_metrics

    f = tmp_path / "metrics.json"
    assert read_metrics.fn(str(f), required=False) == {}
    with pytest.raises(JobFailedError, match="wrote no metrics"):
        read_metrics.fn(str(f), required=True)
    f.write_text('{"accuracy": 0.9, "epochs": 3, "ok": true, "note": "x"}')
    assert read_metrics.fn(str(f), required=True) == {"accuracy": 0.9, "epochs": 3.0}
    for bad, match in (("{oops", "not JSON"), ("[1, 2]", "JSON object")):
        f.write_text(bad)
        with pytest.raises(JobFailedError, match=match):
            read_metrics.fn(str(f), required=False)


def test_a_training_output_gets_metrics_an_evaluation_record_and_a_model_card(tmp_path: Path) -> None:
    from tasks.results import write_model_files

    lin = Lineage(job="train", run_id="r1", dataset="a/dataset/f/d:v1", dataset_commit="c" * 64,
                  code_url="https://x/y.git", code_sha="s" * 40, command="python t.py",
                  params={"epochs": 2}, metrics={"accuracy": 0.75}, mlflow_run_id="ml1")
    out = tmp_path / "out"
    out.mkdir()
    evaluation_id = write_model_files.fn(str(out), "a/model/f/net", lin, "http://mlflow")
    assert json.loads((out / "metrics.json").read_text()) == {"accuracy": 0.75}
    record = json.loads((out / "eval" / f"{evaluation_id}.json").read_text())
    assert record["id"] == evaluation_id and record["run_id"] == "r1" and record["model"] == "a/model/f/net"
    assert record["dataset_commit"] == "c" * 64 and record["metrics"] == {"accuracy": 0.75}
    card = (out / "README.md").read_text()
    assert card.startswith("# net\n") and "| epochs | 2 |" in card and "| accuracy | 0.75 |" in card
    assert "`ml1` (http://mlflow)" in card
    # no metrics: no evaluation; a README the job wrote is kept
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    (quiet / "README.md").write_text("mine\n")
    assert write_model_files.fn(str(quiet), "a/model/f/net", Lineage(job="train"), "") == ""
    assert sorted(p.name for p in quiet.iterdir()) == ["README.md"]
    assert (quiet / "README.md").read_text() == "mine\n"


def test_an_evaluation_report_goes_beside_its_record(tmp_path: Path) -> None:
    from tasks.results import write_evaluation_files

    report = tmp_path / "report"
    (report / "plots").mkdir(parents=True)
    (report / "plots" / "confusion.png").write_bytes(b"png")
    files = Path(write_evaluation_files.fn(
        str(tmp_path / "eval"), "e1", model="a/model/f/net", dataset="a/dataset/f/d:v1",
        dataset_commit="c" * 64, metrics={"accuracy": 0.5}, code_sha="s" * 40, run_id="r1",
        report_dir=str(report)))
    assert json.loads((files / "e1.json").read_text())["metrics"] == {"accuracy": 0.5}
    assert (files / "e1" / "plots" / "confusion.png").read_bytes() == b"png"


@pytest.mark.parametrize("module, name, required", [
    # the dataset and the code may come from the model's job settings or an algorithm
    ("flows.train", "train", {"model"}),
    ("flows.continue_train", "continue_train", {"base"}),
    ("flows.evaluate", "evaluate", {"model"}),
    ("flows.merge", "merge", {"model", "source"}),
    ("flows.reproduce", "reproduce", {"model"}),
    ("flows.retrain", "retrain", set()),  # model, dataset and repo; or a follow's id alone
    ("flows.publish_service", "publish_service", {"model", "name"}),
])
def test_flows_have_typed_described_parameters_for_the_prefect_form(module: str, name: str,
                                                                    required: set[str]) -> None:
    import importlib

    flow = getattr(importlib.import_module(module), name)
    schema = flow.parameters.model_dump()
    assert set(schema["required"]) == required
    for param, spec in schema["properties"].items():
        assert spec.get("description"), f"{name}.{param} has no description for the UI form"
        assert "type" in spec or "anyOf" in spec, f"{name}.{param} is untyped"


def test_relay_socket_dirs_of_gone_processes_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tasks.entrypoint import RELAY_DIR_PREFIX, sweep_relay_dirs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid runs nothing now
    dead = tmp_path / f"{RELAY_DIR_PREFIX}{gone.pid}-abc"
    (dead / "mlflow.sock").parent.mkdir()
    (dead / "mlflow.sock").write_text("")
    alive = tmp_path / f"{RELAY_DIR_PREFIX}{os.getpid()}-def"
    alive.mkdir()
    old_style = tmp_path / f"{RELAY_DIR_PREFIX}xyz"  # no pid in its name: not judged
    old_style.mkdir()
    other = tmp_path / "something-else"
    other.mkdir()
    assert sweep_relay_dirs(tmp_path) == [dead]
    assert not dead.exists() and alive.is_dir() and old_style.is_dir() and other.is_dir()
