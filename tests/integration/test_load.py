"""``assethub.load`` and MLflow's ``assethub://`` artifact repository against the real server and
lakeFS: the digits example trained by its own code and committed as a model version loads as a pyfunc
model that scores the digits test set as its evaluation did; a scikit-learn model loads as its
native object; a second load moves no bytes; a stranger is refused; MLflow's own loaders read
``assethub://`` URIs through the plugin, and logging artifacts there commits them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import assethub
from assethub import errors
from assethub.client import Client
from tests.integration._jobs import EXAMPLES

# the module's first test waits for a real (small) training: on a busy 2-core machine, minutes
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
TRAIN_PER_CLASS = 40  # training images kept per class: a quick training, the whole test split


@dataclass
class World:
    url: str
    owner: Client
    owner_token: str
    viewer: Client
    stranger: Client
    digits: str  # the trained digits model version (<model>:<branch>)
    accuracy: float  # what its evaluation recorded on the test split
    x_test: np.ndarray
    y_test: np.ndarray
    forest: str  # a scikit-learn model version
    iris: Any  # (x, y) it was trained on
    meter: Any


def _user(admin: Client, url: str, name: str, cache: Path) -> tuple[Client, str]:
    admin.create_user(name)
    secret = admin.create_token(name, name="load").secret
    return Client(url, secret, cache_dir=cache), secret


def _train_digits(data: Path, out: Path) -> float:
    """The digits example's own train command, run as a job runs it (its contract's variables):
    an MLflow model in ``out/model`` and metrics in ``out/metrics.json``; its accuracy."""
    from assethub.runtime import JobContext, Split, environment

    ctx = JobContext(job="train", dataset_dir=data, output_dir=out, base_model_dir=None,
                     params={"epochs": 3, "seed": 3}, split=Split.parse("test", data),
                     metrics_file=out / "metrics.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSETHUB_", "MLFLOW_"))}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    done = subprocess.run(["/bin/sh", "-c", "python train.py"], cwd=EXAMPLES / "digits-classifier",
                          env={**env, **environment(ctx)}, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert done.returncode == 0, f"train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return float(json.loads((out / "metrics.json").read_text())["accuracy"])


@pytest.fixture(scope="module")
def world(hub_server: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The digits example trained by its own code (as a job runs it; the Prefect flow around it
    is test_flows' subject) and committed as a model version; a scikit-learn model too."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from examples.datasets import digits_test_arrays, write_digits

    s = uuid.uuid4().hex[:6]
    admin = Client(hub_server.url, hub_server.admin_token)
    owner, token = _user(admin, hub_server.url, f"ld{s}", tmp_path_factory.mktemp("c-owner"))
    viewer, _ = _user(admin, hub_server.url, f"ldview{s}", tmp_path_factory.mktemp("c-viewer"))
    stranger, _ = _user(admin, hub_server.url, f"ldother{s}", tmp_path_factory.mktemp("c-stranger"))
    me = f"ld{s}"
    owner.create_folder(f"{me}/dataset/images")
    owner.create_folder(f"{me}/model/m")
    owner.share(f"{me}/model/m", role="view", user=f"ldview{s}")
    owner.create_asset(f"{me}/dataset/images/digits")
    data = tmp_path_factory.mktemp("digits")
    write_digits(data)
    for label in (data / "train").iterdir():
        for extra in sorted(label.iterdir())[TRAIN_PER_CLASS:]:
            extra.unlink()
    out = tmp_path_factory.mktemp("trained")
    accuracy = _train_digits(data, out)
    owner.create_asset(f"{me}/model/m/cnn")
    owner.create_branch(f"{me}/model/m/cnn", "trained")
    owner.upload(f"{me}/model/m/cnn:trained", out, message="the digits example, trained")
    x, y = digits_test_arrays(data)

    # a scikit-learn model, trained here and committed in MLflow's format under model/
    iris = load_iris()
    forest = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    saved = tmp_path_factory.mktemp("forest")
    mlflow.sklearn.save_model(forest, str(saved / "model"))
    owner.create_asset(f"{me}/model/m/iris")
    owner.upload(f"{me}/model/m/iris:main", saved, message="a logistic regression on iris")
    return World(hub_server.url, owner, token, viewer, stranger, f"{me}/model/m/cnn:trained",
                 accuracy, x, y, f"{me}/model/m/iris:main", (iris.data, iris.target),
                 hub_server.hub.versions.proxied_bytes)


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    scores = np.concatenate([np.asarray(model.predict(x[i:i + 100])) for i in range(0, len(x), 100)])
    return float((scores.argmax(axis=1) == y).mean())


def test_load_returns_a_ready_pyfunc_model_cached_by_commit(world: World) -> None:
    model = assethub.load(world.digits, client=world.viewer)
    assert _accuracy(model, world.x_test, world.y_test) == pytest.approx(world.accuracy, abs=0.01)
    # the same commit again: the model's directory is there, no byte comes from the server
    before = world.meter.snapshot()["down"]
    again = assethub.load(world.digits, client=world.viewer)
    assert world.meter.snapshot()["down"] == before
    assert _accuracy(again, world.x_test[:50], world.y_test[:50]) == \
        _accuracy(model, world.x_test[:50], world.y_test[:50])


def test_load_a_native_flavor(world: World) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = world.iris
    native = assethub.load(world.forest, flavor="sklearn", client=world.viewer)
    assert isinstance(native, LogisticRegression) and (native.predict(x) == y).mean() > 0.9
    pyfunc = assethub.load(world.forest, client=world.viewer)
    assert list(pyfunc.predict(x[:5])) == list(native.predict(x[:5]))
    with pytest.raises(errors.NotServableError, match="python_function"):
        assethub.load(world.digits, flavor="pytorch", client=world.viewer)


def test_load_is_refused_as_the_api_refuses(world: World) -> None:
    with pytest.raises(errors.AssetNotFoundError):  # not shared: as if it did not exist
        assethub.load(world.digits, client=world.stranger)
    with pytest.raises(errors.AuthenticationError):
        assethub.load(world.digits, client=Client(world.url, "", cache_dir=world.viewer.cache.root))
    with pytest.raises(errors.InvalidReferenceError, match="dataset"):
        assethub.load(world.digits.replace("/model/m/cnn", "/dataset/images/digits"),
                      client=world.owner)
    with pytest.raises(errors.NotServableError, match="no MLflow model"):
        assethub.load(f"{world.digits.split(':')[0]}:main", client=world.owner)  # only a README


def test_mlflow_loads_assethub_uris_through_the_plugin(world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    monkeypatch.setenv("ASSETHUB_URL", world.url)
    monkeypatch.setenv("ASSETHUB_TOKEN", world.owner_token)
    model, ref = world.digits.split(":")
    for uri in (f"assethub://{model}@{ref}/model", f"assethub://{model}@{ref}"):
        loaded = mlflow.pyfunc.load_model(uri)
        assert _accuracy(loaded, world.x_test, world.y_test) == pytest.approx(world.accuracy, abs=0.01)
    forest, ref = world.forest.split(":")
    x, y = world.iris
    assert (mlflow.sklearn.load_model(f"assethub://{forest}@{ref}/model").predict(x) == y).mean() > 0.9


def test_the_plugin_lists_logs_and_refuses(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    monkeypatch.setenv("ASSETHUB_URL", world.url)
    monkeypatch.setenv("ASSETHUB_TOKEN", world.owner_token)
    forest, ref = world.forest.split(":")
    repo = get_artifact_repository(f"assethub://{forest}@{ref}")
    assert type(repo).__name__ == "AssetHubArtifactRepository"
    listed = {f.path: f.is_dir for f in repo.list_artifacts()}
    assert listed["model"] is True and not any(d for p, d in listed.items() if p != "model")
    assert "model/MLmodel" in {f.path for f in repo.list_artifacts("model")}
    # logging artifacts: one commit on the branch
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "notes.txt").write_text("notes")
    (tmp_path / "extra" / "card.md").write_text("card")
    commits = len(world.owner.log(world.forest))
    repo.log_artifacts(str(tmp_path / "extra"), "docs")
    assert len(world.owner.log(world.forest)) == commits + 1
    assert {"docs/notes.txt", "docs/card.md"} <= {o.path for o in world.owner.list_objects(world.forest)}
    # a stranger's MLflow sees nothing
    monkeypatch.setenv("ASSETHUB_TOKEN", world.stranger.create_token(name="ml").secret)
    import mlflow.pyfunc

    with pytest.raises((FileNotFoundError, MlflowException)):
        mlflow.pyfunc.load_model(f"assethub://{forest}@{ref}/model")
