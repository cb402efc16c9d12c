"""Bring your own training code (issue 13), end to end on the real stack: a plain repository
whose default branch is ``master`` (no assethub.yaml, pandas + scikit-learn + joblib) trains with
no revision into a stored version that is not servable; the same code logging its model with
``mlflow.sklearn.log_model`` (through the sandbox's MLflow relay) becomes servable and answers;
bad params are refused before any work; the remote's default branch moving is followed.

Jobs are tiny (iris, 150 rows): seconds each.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assethub import errors
from assethub.client import Client

pytestmark = pytest.mark.integration

# the plain repository of the issue: pandas, scikit-learn, joblib; no assethub.yaml
TRAIN_JOBLIB = '''\
import os
import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression

data = pd.read_csv(os.path.join(os.environ["ASSETHUB_DATASET_DIR"], "iris.csv"))
model = LogisticRegression(max_iter=int(os.environ.get("MAX_ITER", "100")))
model.fit(data.drop(columns="species"), data["species"])
out = os.environ["ASSETHUB_OUTPUT_DIR"]
joblib.dump(model, os.path.join(out, "model.joblib"))
with open(os.path.join(out, "device.txt"), "w") as f:
    f.write(os.environ["DEVICE"] + " " + os.environ["ASSETHUB_DEVICE"] + " " + os.environ["ASSETHUB_GPUS"])
print("trained on", len(data), "rows")
'''
# the same code, logging its model to the job's MLflow run instead
TRAIN_MLFLOW = '''\
import os
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

data = pd.read_csv(os.path.join(os.environ["ASSETHUB_DATASET_DIR"], "iris.csv"))
x, y = data.drop(columns="species"), data["species"]
model = LogisticRegression(max_iter=200).fit(x, y)
with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"]):
    mlflow.sklearn.log_model(model, name="model", input_example=x.head(3))
print("logged")
'''
# typed params (subpath typed/): checked before any work
TYPED_SPEC = '''\
train: {command: "python ../train.py"}
params:
  max_iter: {type: int, default: 100, min: 1}
  solver: {type: choice, choices: [lbfgs, newton-cg], default: lbfgs}
'''
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def _repo(dest: Path, files: dict[str, str], branch: str = "master") -> str:
    """A Git repository whose only (and so default) branch is ``branch``; its HEAD sha."""
    dest.mkdir(parents=True)
    for name, text in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    _git(dest, "init", "-q", "-b", branch)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "training code")
    return _git(dest, "rev-parse", "HEAD")


@dataclass
class World:
    hub: Client
    url: str
    token: str
    user: str
    dataset: str  # <path>:v1
    dataset_commit: str
    repo: str
    sha: str
    tmp: Path

    def model(self) -> str:
        """A new model asset (each test writes its own)."""
        path = f"{self.user}/model/iris/m{uuid.uuid4().hex[:6]}"
        self.hub.create_asset(path)
        return path


@pytest.fixture(scope="module")
def world(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from sklearn.datasets import load_iris

    from assethub.hub import DatasetMeta

    user = f"byo{uuid.uuid4().hex[:6]}"
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user(user)
    token = admin.create_token(user, name="jobs").secret
    hub = Client(hub_server.url, token)
    hub.create_folder(f"{user}/dataset/tables")
    hub.create_folder(f"{user}/model/iris")
    hub.create_asset(f"{user}/dataset/tables/iris", dataset=DatasetMeta("tabular", "dir", "ratio", 0.8))
    tmp = tmp_path_factory.mktemp("byo")
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    (tmp / "data").mkdir()
    frame.to_csv(tmp / "data" / "iris.csv", index=False)
    hub.upload(f"{user}/dataset/tables/iris:main", tmp / "data", message="iris")
    tag = hub.publish(f"{user}/dataset/tables/iris", "v1")
    sha = _repo(tmp / "plain", {"train.py": TRAIN_JOBLIB, "train_mlflow.py": TRAIN_MLFLOW,
                                "typed/assethub.yaml": TYPED_SPEC})
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    try:
        yield World(hub, hub_server.url, token, user, f"{user}/dataset/tables/iris:v1", tag.commit_id,
                    str(tmp / "plain"), sha, tmp)
    finally:
        for service in admin.services.list():
            if service.model.startswith(f"{user}/"):
                admin.services.delete(service.name)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _file(w: World, ref: str, path: str) -> str:
    dest = w.tmp / uuid.uuid4().hex
    w.hub.download(ref, dest, prefix=path)
    return (dest / path).read_text()


def test_a_plain_repository_trains_with_no_revision_into_a_stored_version_that_is_not_servable(
        world: World) -> None:
    from flows.train import train

    model = world.model()
    result = train(model=model, dataset=world.dataset, repo=world.repo, command="python train.py",
                   params={"max_iter": 300})
    ref = f"{model}:{result['commit']}"
    files = {o.path for o in world.hub.list_objects(ref)}
    assert {"model.joblib", "device.txt", "README.md"} <= files and "model/MLmodel" not in files
    assert _file(world, ref, "device.txt") == "cpu cpu 0"  # no GPU here, none set by the pool
    view = world.hub.lineage(ref)
    lin = view.lineage
    assert lin is not None
    assert (lin.code_revision, lin.code_sha, lin.code_url) == ("master", world.sha, world.repo)
    assert world.hub.get_run(result["run_id"]).code_revision == "master"  # the run record names it too
    assert (lin.dataset, lin.dataset_commit) == (world.dataset, world.dataset_commit)
    assert lin.run_id == result["run_id"] and lin.mlflow_run_id == result["mlflow_run_id"]
    assert lin.command == "python train.py" and dict(lin.params) == {"max_iter": 300}
    assert (view.model_format, view.servable, lin.model_format) == ("files", False, "files")
    card = _file(world, ref, "README.md")
    assert "not servable" in card and "mlflow.sklearn.save_model" in card and "`master`" in card
    run = world.hub.get_run(result["run_id"])
    assert run.state == "completed" and run.code_sha == world.sha and run.result_commit == result["commit"]
    # serving it is refused, saying what to add
    with pytest.raises(errors.NotServableError) as refused:
        world.hub.services.create(ref, name=f"plain{uuid.uuid4().hex[:6]}")
    assert "$ASSETHUB_OUTPUT_DIR/model" in str(refused.value) and "log_model" in str(refused.value)
    # the CLI's lineage says so too
    from assethub.cli import app

    shown = CliRunner().invoke(app, ["lineage", ref], env={
        "ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "not servable" in shown.stdout and "master" in shown.stdout


def test_the_same_code_logging_its_model_to_the_run_is_servable_and_answers(world: World) -> None:
    from mlflow.tracking import MlflowClient

    from flows.publish_service import publish_service
    from flows.train import train
    from tasks.env import tracking_uri

    model = world.model()
    result = train(model=model, dataset=world.dataset, repo=world.repo, command="python train_mlflow.py")
    ref = f"{model}:{result['commit']}"
    files = {o.path for o in world.hub.list_objects(ref)}
    assert "model/MLmodel" in files
    view = world.hub.lineage(ref)
    assert (view.model_format, view.servable) == ("mlflow-logged", True)
    assert "logged it to its MLflow run" in _file(world, ref, "README.md")
    # logged once, by the code (in the sandbox, through the relay): not a second time as run artifacts
    mlflow = MlflowClient(tracking_uri())
    assert "model" not in {a.path for a in mlflow.list_artifacts(result["mlflow_run_id"])}
    [logged] = mlflow.search_logged_models(
        experiment_ids=[view.lineage.mlflow_experiment_id if view.lineage else ""],
        filter_string=f"source_run_id = '{result['mlflow_run_id']}'")
    assert logged.name == "model"
    name = f"iris{uuid.uuid4().hex[:6]}"
    served = publish_service(model=ref, name=name, replicas=1)
    assert served["smoke_test"]
    answer = world.hub.services.predict(name, {"dataframe_split": {
        "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}})
    assert [int(p) for p in answer["predictions"]] == [0, 2]
    world.hub.services.delete(name)


@pytest.mark.parametrize("params, match", [
    ({"max_iter": "many"}, "max_iter"),
    ({"epochs": 3}, "unknown parameter 'epochs'"),
    ({"solver": "adam"}, "solver"),
])
def test_bad_params_are_refused_before_any_work(world: World, params: dict[str, Any], match: str) -> None:
    from flows.train import train

    model = world.model()
    with pytest.raises(errors.JobSpecError, match=match):
        train(model=model, dataset=world.dataset, repo=world.repo, subpath="typed", params=params)
    [run] = world.hub.list_runs(model)
    assert run.state == "failed" and match.split("'")[0] in run.error
    assert run.mlflow_run_id == "" and run.result_commit in ("", None), "no tracking, no data, no commit"
    assert [b.name for b in world.hub.list_branches(model)] == ["main"]


def test_bad_params_through_the_flows_command_line_exit_2(world: World,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from flows.train import cli

    model = world.model()
    code = cli(["--model", model, "--dataset", world.dataset, "--repo", world.repo, "--subpath", "typed",
                "--param", "solver=adam"])
    assert code == 2
    assert "solver" in capsys.readouterr().err
    assert [r.mlflow_run_id for r in world.hub.list_runs(model)] == [""]


def test_a_default_branch_that_moves_after_the_mirror_exists_is_followed(world: World) -> None:
    from flows.train import train

    remote = world.tmp / f"moving{uuid.uuid4().hex[:6]}"
    first = _repo(remote, {"which.txt": "master\n"})
    command = "cp which.txt \"$ASSETHUB_OUTPUT_DIR/\""
    model = world.model()
    one = train(model=model, dataset=world.dataset, repo=str(remote), command=command)
    assert one["code_sha"] == first  # the mirror is made now, its HEAD master
    _git(remote, "checkout", "-q", "-b", "trunk")
    (remote / "which.txt").write_text("trunk\n")
    _git(remote, "commit", "-q", "-am", "trunk")
    trunk = _git(remote, "rev-parse", "HEAD")  # the remote's HEAD is trunk now; master stays
    two = train(model=model, dataset=world.dataset, repo=str(remote), command=command)
    assert two["code_sha"] == trunk
    lin = world.hub.lineage(f"{model}:{two['commit']}").lineage
    assert lin is not None and lin.code_revision == "trunk"
    assert _file(world, f"{model}:{two['commit']}", "which.txt") == "trunk\n"
    # an explicit branch still means that branch
    three = train(model=model, dataset=world.dataset, repo=str(remote), revision="master", command=command)
    assert three["code_sha"] == first
    assert world.hub.get_run(three["run_id"]).code_revision == "master"
