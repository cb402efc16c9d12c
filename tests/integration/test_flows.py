"""Train, continue-train, evaluate, merge and reproduce as Prefect flows, end to end: real lakeFS,
the real server, a real MLflow tracking server, Prefect's test harness, Git repositories made
from examples/, and real (small, seeded) training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assethub.client import Client
from tests.integration._jobs import EXAMPLES, JobWorld, git_repo

pytestmark = pytest.mark.integration

DIGITS = EXAMPLES / "digits-classifier"
WORSE = {"lr": 0.0001}  # hobbles the digits example


@pytest.fixture(scope="session")
def world(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobWorld]:
    from tests.integration._console import small_digits

    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("trainer")
    token = admin.create_token("trainer", name="jobs").secret
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    hub = Client(hub_server.url, token)
    hub.create_folder("trainer/dataset/images")
    hub.create_folder("trainer/model/digits")
    from assethub.hub import DatasetMeta

    hub.create_asset("trainer/dataset/images/digits", dataset=DatasetMeta(
        "image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("digits")
    # 30 training and 8 test images per class: the example's default 4 epochs still learn
    # (0.86 accuracy at seed 7; WORSE stays at chance, 0.1), each epoch a fraction of a second
    small_digits(data)
    hub.upload("trainer/dataset/images/digits:main", data, message="digits")
    tag = hub.publish("trainer/dataset/images/digits", "v1")
    hub.create_asset("trainer/model/digits/cnn")
    repo, sha = git_repo(DIGITS, tmp_path_factory.mktemp("code") / "repo")
    yield JobWorld(hub, "trainer", token, "trainer/model/digits/cnn", "trainer/dataset/images/digits:v1",
                   tag.commit_id, repo, sha)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def trained(world: JobWorld) -> dict[str, Any]:
    from flows.train import train

    return train(model=world.model, dataset=world.dataset, repo=world.repo, params={"seed": 7})


def test_train_commits_an_evaluated_model_with_lineage(world: JobWorld, trained: dict[str, Any],
                                                       mlflow_uri: str) -> None:
    hub = world.hub
    branch = trained["branch"]
    assert branch.startswith("train-") and trained["model_ref"] == f"{world.model}:{branch}"
    assert hub.resolve(f"{world.model}:{branch}") == trained["commit"]
    files = {o.path for o in hub.list_objects(f"{world.model}:{branch}")}
    assert {"model/MLmodel", "README.md", "metrics.json"} <= files
    evals = [f for f in files if f.startswith("eval/")]
    assert len(evals) == 1
    # lineage in the commit metadata, and through the API
    view = hub.lineage(f"{world.model}:{branch}")
    assert view.model_commit == trained["commit"]
    lin = view.lineage
    assert lin is not None and lin.job == "train"
    assert lin.dataset == world.dataset and lin.dataset_commit == world.dataset_commit
    assert lin.code_url == world.repo and lin.code_sha == world.sha
    assert lin.params["seed"] == 7
    assert lin.metrics == trained["metrics"] and trained["metrics"]["accuracy"] > 0.5
    assert lin.mlflow_run_id == trained["mlflow_run_id"] and lin.prefect_flow_run_id
    assert [e.metrics for e in view.evaluations] == [trained["metrics"]]
    assert view.evaluations[0].dataset_commit == world.dataset_commit
    assert view.run is not None and view.run.state == "completed" and view.run.code_sha == world.sha
    # MLflow: the run links back to the lakeFS commit, and holds the model in MLflow's format
    from mlflow.tracking import MlflowClient

    ml = MlflowClient(mlflow_uri)
    run = ml.get_run(trained["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["assethub.lakefs_commit"] == trained["commit"]
    assert run.data.tags["assethub.dataset_commit"] == world.dataset_commit
    assert run.data.tags["mlflow.source.git.commit"] == world.sha
    assert run.data.params["seed"] == "7"
    assert "model" in {a.path for a in ml.list_artifacts(run.info.run_id)}
    # the training code's own per-epoch metrics landed in the job's run
    epochs = lin.params["epochs"]
    assert epochs >= 1
    per_epoch = {k: ml.get_metric_history(run.info.run_id, k) for k in run.data.metrics}
    assert any(len(h) == epochs and [m.step for m in h] == list(range(1, epochs + 1))
               for h in per_epoch.values()), per_epoch.keys()


def _branches(world: JobWorld) -> set[str]:
    return {b.name for b in world.hub.list_branches(world.model)}


def test_evaluate_stores_results_with_the_model_and_in_the_catalog(world: JobWorld,
                                                                   trained: dict[str, Any]) -> None:
    from flows.evaluate import evaluate

    ref = trained["model_ref"]
    result = evaluate(model=ref, dataset=world.dataset, repo=world.repo)
    # the same weights on the same test split: the same scores the training reported
    assert result["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    assert result["model_commit"] == trained["commit"]
    assert result["dataset_commit"] == world.dataset_commit
    # stored with the model: a new commit on the branch that points back at the model commit
    head = world.hub.get_commit(ref)
    assert head.id != trained["commit"] and head.metadata["assethub.model_commit"] == trained["commit"]
    stored = json.loads(_read(world, ref, f"eval/{result['evaluation_id']}.json"))
    assert stored["metrics"] == result["metrics"] and stored["dataset_commit"] == world.dataset_commit
    # ... and in the catalog, found from the branch head (the evaluation commit) too
    view = world.hub.lineage(ref)
    assert view.model_commit == trained["commit"]
    assert result["evaluation_id"] in {e.id for e in view.evaluations}
    # a tag is immutable: evaluating it stores the result in the catalog only
    world.hub.create_tag(world.model, "eval-me", ref=trained["commit"])
    tagged = evaluate(model=f"{world.model}:eval-me", dataset=world.dataset, repo=world.repo)
    assert tagged["stored_in"] == "catalog" and tagged["model_commit"] == trained["commit"]


def _read(world: JobWorld, ref: str, path: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        world.hub.download(ref, d, prefix=path)
        return (Path(d) / Path(path).name).read_text()


def test_failing_command_leaves_no_commit_and_says_why(world: JobWorld, mlflow_uri: str) -> None:
    from assethub.errors import JobFailedError
    from flows.train import train

    before = _branches(world)
    main = world.hub.resolve(f"{world.model}:main")
    with pytest.raises(JobFailedError) as info:
        train(model=world.model, dataset=world.dataset, repo=world.repo, branch="doomed",
              command="python -c \"import sys; print('the loss exploded'); sys.exit(3)\"")
    assert info.value.exit_code == 3 and "the loss exploded" in info.value.tail
    assert "exited with code 3" in str(info.value)
    assert _branches(world) == before and world.hub.resolve(f"{world.model}:main") == main
    run = world.hub.list_runs(world.model, limit=1)[0]
    assert run.state == "failed" and "exited with code 3" in run.error
    from mlflow.tracking import MlflowClient

    assert MlflowClient(mlflow_uri).get_run(run.mlflow_run_id).info.status == "FAILED"


def test_a_command_that_writes_no_model_commits_nothing(world: JobWorld) -> None:
    from assethub.errors import JobFailedError
    from flows.train import train

    before = _branches(world)
    with pytest.raises(JobFailedError, match=r"wrote nothing to \$ASSETHUB_OUTPUT_DIR; nothing was"):
        train(model=world.model, dataset=world.dataset, repo=world.repo, command="true")
    assert _branches(world) == before


@pytest.mark.parametrize("change, error, match", [
    ({"model": "trainer/model/digits"}, "InvalidReferenceError", "asset path"),
    ({"model": "trainer/dataset/images/digits"}, "InvalidReferenceError", "not a model"),
    ({"dataset": "trainer/dataset/images/digits:no-such-tag"}, "RefNotFoundError", "no-such-tag"),
    ({"dataset": "trainer/dataset/images/nothing:v1"}, "AssetNotFoundError", "nothing"),
    ({"repo": "/nonexistent/code.git"}, "CodeFetchError", "cannot fetch the code repository"),
    ({"revision": "no-such-branch"}, "CodeFetchError", "revision 'no-such-branch' not found"),
    ({"subpath": "missing"}, "CodeFetchError", "subpath 'missing'"),
    ({"subpath": "../outside"}, "CodeFetchError", "inside the repository"),
])
def test_bad_inputs_are_refused_before_any_work(world: JobWorld, change: dict[str, str], error: str,
                                                match: str) -> None:
    from assethub import errors
    from flows.train import train

    before = _branches(world)
    jobs = Path(os.environ["ASSETHUB_HOME"]) / "jobs"
    fetched_before = set(jobs.glob("*/data"))  # other tests may leave a killed job's directory
    args = {"model": world.model, "dataset": world.dataset, "repo": world.repo, **change}
    with pytest.raises(getattr(errors, error), match=match):
        train(**args)
    assert _branches(world) == before
    assert set(jobs.glob("*/data")) == fetched_before, "no data was fetched"


def test_code_without_assethub_yaml_needs_a_command(world: JobWorld, tmp_path: Path) -> None:
    from assethub.errors import JobSpecError
    from flows.train import train

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "train.py").write_text("print('hello')\n")
    repo, _ = git_repo(bare, tmp_path / "repo")
    with pytest.raises(JobSpecError, match=r"no assethub.yaml .*--command"):
        train(model=world.model, dataset=world.dataset, repo=repo)


def test_a_dataset_the_caller_may_not_run_is_refused(world: JobWorld, hub_server: Any) -> None:
    from assethub.errors import ForbiddenError
    from flows.train import train

    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("outsider")
    admin.create_folder("outsider/dataset/private")
    admin.create_asset("outsider/dataset/private/secret")
    admin.share("outsider/dataset/private", role="view", user="trainer")  # may look, not use
    before = _branches(world)
    with pytest.raises(ForbiddenError, match="needs 'run'"):
        train(model=world.model, dataset="outsider/dataset/private/secret:main", repo=world.repo)
    assert _branches(world) == before


def test_python_m_flows_runs_the_same_flow(world: JobWorld, prefect_api: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    done = subprocess.run([sys.executable, "-m", "flows.train", "--model", world.model, "--dataset",
                           world.dataset, "--repo", world.repo, "--param", "seed=3", "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert world.hub.lineage(result["model_ref"]).lineage.params["seed"] == 3  # type: ignore[union-attr]
    # the generic runner runs the same flow's command line; a bad revision is "not found" (3)
    bad = subprocess.run([sys.executable, "-m", "flows", "train", "--model", world.model, "--dataset",
                          world.dataset, "--repo", world.repo, "--revision", "nope"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 3 and "error: revision 'nope' not found" in bad.stderr, bad.stderr[-3000:]


@pytest.mark.attacks
def test_merge_only_when_the_metric_improves(world: JobWorld, trained: dict[str, Any]) -> None:
    from flows.merge import merge
    from flows.train import train

    hub = world.hub
    main_before = hub.resolve(f"{world.model}:main")
    # main holds no evaluated model yet: the evaluated branch goes in
    first = merge(model=world.model, source=trained["branch"], metric="accuracy")
    assert first["merged"] and "no trusted evaluation" in first["reason"]
    assert hub.resolve(f"{world.model}:main") == first["commit"] != main_before
    assert hub.lineage(f"{world.model}:main").model_commit == trained["commit"]
    # a model that is no better stays on its branch, and the run says why
    worse = train(model=world.model, dataset=world.dataset, repo=world.repo, params=WORSE)
    assert worse["metrics"]["accuracy"] < trained["metrics"]["accuracy"]
    second = merge(model=world.model, source=worse["branch"], metric="accuracy")
    assert not second["merged"] and "not better" in second["reason"]
    # the numbers compared are named by the runs that produced them
    assert second["source_by"].startswith(f"run {worse['run_id']} ")
    # main's number is the newest trusted evaluation of its commit (its training, or a later
    # evaluate run of the same version)
    evaluators = {e.run_id for e in hub.list_evaluations(world.model, commit=trained["commit"])
                  if e.trusted}
    target_run = second["target_by"].split()[1]
    assert second["target_by"].startswith("run ") and target_run in evaluators
    assert worse["run_id"] in second["reason"] and target_run in second["reason"]
    assert hub.resolve(f"{world.model}:main") == first["commit"]
    assert worse["branch"] in _branches(world)
    run = hub.get_run(second["run_id"])
    assert run.state == "completed" and run.error.startswith("not merged")
    # as a loss, lower is better: the worse accuracy is not a lower loss either
    assert not merge(model=world.model, source=worse["branch"], metric="loss",
                     higher_is_better=False)["merged"] or "loss" not in worse["metrics"]
    # the margin applies
    assert not merge(model=world.model, source=trained["branch"], metric="accuracy", margin=1.0)["merged"]
    # without a metric the merge is unconditional
    forced = merge(model=world.model, source=worse["branch"])
    assert forced["merged"] and hub.lineage(f"{world.model}:main").model_commit == worse["commit"]


def test_reproduce_gives_identical_metrics(world: JobWorld, trained: dict[str, Any]) -> None:
    from flows.reproduce import reproduce

    again = reproduce(model=f"{world.model}:{trained['commit']}")
    assert again["match"], again["differences"]
    assert again["metrics"] == trained["metrics"]
    lin = world.hub.lineage(again["model_ref"]).lineage
    assert lin is not None and lin.code_sha == world.sha and lin.dataset_commit == world.dataset_commit
    assert dict(lin.params) == dict(world.hub.lineage(trained["model_ref"]).lineage.params)  # type: ignore[union-attr]


def test_the_assethub_cli_runs_jobs_and_shows_lineage(world: JobWorld, trained: dict[str, Any],
                                                      prefect_api: str, hub_server: Any,
                                                      tmp_path: Path) -> None:
    from tests.integration.test_cli import Cli

    cli = Cli(hub_server.url, world.token, tmp_path / "cli")
    cli.env["PREFECT_API_URL"] = prefect_api
    result = cli.json("train", world.model, "--dataset", world.dataset, "--repo", world.repo,
                      "--param", "seed=5", "--branch", "cli-train")
    assert result["branch"] == "cli-train" and result["metrics"]
    ref = f"{world.model}:cli-train"
    shown = cli("lineage", ref)
    for expected in (world.dataset, world.dataset_commit, world.sha, "param seed", "MLflow run",
                     result["mlflow_run_id"], "Prefect flow run"):
        assert expected in shown, expected
    assert cli.json("lineage", ref)["lineage"]["params"]["seed"] == 5
    rows = {r["name"]: (r["left"], r["right"]) for r in cli.json("compare", trained["model_ref"], ref)}
    assert rows["param seed"] == (7, 5)
    assert rows["metric accuracy"] == (trained["metrics"]["accuracy"], result["metrics"]["accuracy"])
    assert "param seed" in cli("compare", trained["model_ref"], ref)
    ids = {r["id"] for r in cli.json("runs", world.model, "-n", "100")}
    assert {trained["run_id"], result["run_id"]} <= ids
    assert cli.json("runs", "--id", result["run_id"])[0]["state"] == "completed"
    evaluated = cli.json("evaluate", ref, "--dataset", world.dataset, "--repo", world.repo)
    assert evaluated["metrics"]["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    # a bad revision: one error line and the usual exit code, nothing created
    failed = cli.run("train", world.model, "--dataset", world.dataset, "--repo", world.repo,
                     "--revision", "nope")
    assert failed.exit_code == 3
    assert cli.fails(3, "lineage", f"{world.model}:no-such-branch")


def test_continue_train_starts_from_the_base_weights(world: JobWorld, trained: dict[str, Any]) -> None:
    from flows.continue_train import continue_train

    base = f"{world.model}:{trained['commit']}"
    # no further training: the new version must score exactly what the base scored (a fresh
    # network would be near chance), so the weights really came from the base
    same = continue_train(base=base, dataset=world.dataset, repo=world.repo, params={"epochs": 0},
                          branch="continue-zero")
    assert same["metrics"]["accuracy"] == trained["metrics"]["accuracy"]
    more = continue_train(base=base, dataset=world.dataset, repo=world.repo, params={"epochs": 1})
    assert more["branch"].startswith("continue-") and more["commit"] != trained["commit"]
    lin = world.hub.lineage(more["model_ref"]).lineage
    assert lin is not None and lin.job == "continue_train"
    assert lin.base_model == base and lin.base_model_commit == trained["commit"]
    # the new branch grows from the base version
    log = [c.id for c in world.hub.log(more["model_ref"], limit=5)]
    assert log[0] == more["commit"] and trained["commit"] in log


def test_text_example_trains_and_evaluates_on_a_ratio_split(world: JobWorld,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    from assethub.hub import DatasetMeta
    from examples.datasets import write_stdlib_docs
    from flows.evaluate import evaluate
    from flows.train import train

    hub = world.hub
    hub.create_folder("trainer/dataset/text")
    hub.create_asset("trainer/dataset/text/stdlib-docs", dataset=DatasetMeta(
        "text_classification", "json", "ratio", 0.8, None))
    data = tmp_path_factory.mktemp("stdlib-docs")
    write_stdlib_docs(data)
    hub.upload("trainer/dataset/text/stdlib-docs:main", data, message="docstrings of the standard library")
    hub.create_folder("trainer/model/text")
    hub.create_asset("trainer/model/text/topics")
    repo, _ = git_repo(EXAMPLES / "text-classifier", tmp_path_factory.mktemp("text-code") / "repo")
    result = train(model="trainer/model/text/topics", dataset="trainer/dataset/text/stdlib-docs:main",
                   repo=repo)
    assert result["metrics"]["accuracy"] > 0.5  # four topics: chance is 0.25
    scored = evaluate(model=result["model_ref"], dataset="trainer/dataset/text/stdlib-docs:main", repo=repo)
    assert scored["metrics"]["accuracy"] == pytest.approx(result["metrics"]["accuracy"])
