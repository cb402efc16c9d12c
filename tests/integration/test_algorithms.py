"""The algorithm library end to end on the real stack: register, list, show, update (a new
version), delete and share through the CLI and the API as non-admins; who may see, use and
change what; the presets the server registers at start; the digits preset trained and
evaluated by name (real jobs, lineage recording the algorithm); bad params refused with 400
before any run exists."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assethub.client import Client
from tests.integration._api import API, message
from tests.integration.test_cli import Cli

pytestmark = pytest.mark.integration

DIGITS_CNN = "image-classification/digits-cnn"
PARAMS = {"epochs": {"type": "int", "default": 3, "min": 1, "help": "passes"},
          "optimizer": {"type": "choice", "choices": ["adam", "sgd"], "default": "adam"}}


def _user(hub_server: Any, tmp_path: Path, prefix: str) -> tuple[str, Cli, Client]:
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user(name)
    token = admin.create_token(name, name="t").secret
    return name, Cli(hub_server.url, token, tmp_path / name), Client(hub_server.url, token)


@pytest.fixture(scope="module")
def presets(hub_server: Any) -> dict[str, str]:
    """The presets registered as `assethub up`'s server registers them at start."""
    from assethub.server.presets import register_presets

    home = Path(hub_server.hub.uploads_dir).parents[1]  # the server's home (its work dir's parent)
    first = register_presets(hub_server.hub, "admin", home)
    again = register_presets(hub_server.hub, "admin", home)  # idempotent: same content, same commit
    assert set(again.values()) == {"present"}, again
    return first


def test_register_list_show_update_delete_as_a_user(hub_server: Any, tmp_path: Path) -> None:
    name, cli, _ = _user(hub_server, tmp_path, "algo")
    algo = f"tabular/forest-{name}"
    params = tmp_path / "assethub.yaml"
    params.write_text("params:\n  epochs: {type: int, default: 3, min: 1, help: passes}\n"
                      "  optimizer: {type: choice, choices: [adam, sgd], default: adam}\n")
    out = cli("algorithms", "register", algo, "--repo", "https://git.example.org/ml/forest.git",
              "--revision", "v1", "--task-type", "tabular", "--params", str(params),
              "--train-command", "python train.py", "--evaluate-command", "python evaluate.py",
              "--gpu", "1", "--description", "a random forest on a CSV")
    assert f"registered {algo}@1" in out
    listed = {a["name"]: a for a in cli.json("algorithms", "ls", "--task-type", "tabular")}
    assert listed[algo]["latest"] == 1 and listed[algo]["owner"] == name
    assert [a["name"] for a in cli.json("algorithms", "ls", "--query", "random forest")] == [algo]
    shown = cli("algorithms", "show", algo)
    for expected in ("param epochs", "int, default 3, 1..", "choice of adam|sgd", "python train.py",
                     "gpu=1", "git.example.org/ml/forest.git @ v1"):
        assert expected in shown, (expected, shown)
    assert "2" in cli("algorithms", "update", algo, "--revision", "v2", "--description", "better")
    view = cli.json("algorithms", "show", algo)
    assert view["latest"] == 2 and [v["version"] for v in view["versions"]] == [1, 2]
    assert view["current"]["code_revision"] == "v2" and view["current"]["train_command"] == "python train.py"
    assert cli.json("algorithms", "show", f"{algo}@1")["current"]["code_revision"] == "v1"
    assert "not found" in cli.fails(3, "algorithms", "show", f"{algo}@9")
    assert "already exists" in cli.fails(6, "algorithms", "register", algo, "--repo", "x",
                                         "--task-type", "tabular")
    assert "task type" in cli.fails(2, "algorithms", "register", f"tabular/bad-{name}", "--repo", "x",
                                    "--task-type", "cooking")
    assert "<task type>/<name>" in cli.fails(2, "algorithms", "register", "no-slash", "--repo", "x",
                                             "--task-type", "tabular")
    cli("algorithms", "delete", algo)
    assert "not found" in cli.fails(3, "algorithms", "show", algo)


def test_shares_decide_who_sees_uses_and_changes(hub_server: Any, tmp_path: Path) -> None:
    owner, cli, _ = _user(hub_server, tmp_path, "own")
    other, other_cli, _ = _user(hub_server, tmp_path, "oth")
    third, third_cli, _ = _user(hub_server, tmp_path, "thr")
    algo = f"tabular/private-{owner}"
    cli("algorithms", "register", algo, "--repo", "https://git.example.org/x.git", "--task-type", "tabular")
    # private: to anyone else it does not exist
    assert algo not in {a["name"] for a in other_cli.json("algorithms", "ls")}
    for args in (("show", algo), ("update", algo, "--revision", "x"), ("delete", algo),
                 ("share", algo, "--user", other, "--role", "edit")):
        assert "not found" in other_cli.fails(3, "algorithms", *args), args
    # view: see and use, not change
    cli("algorithms", "share", algo, "--user", other, "--role", "view")
    assert other_cli.json("algorithms", "show", algo)["role"] == "view"
    for args in (("update", algo, "--revision", "x"), ("delete", algo),
                 ("share", algo, "--user", third, "--role", "view")):
        assert "needs 'edit'" in other_cli.fails(5, "algorithms", *args), args
    assert cli.json("algorithms", "show", algo)["latest"] == 1
    # edit: update and share too
    cli("algorithms", "share", algo, "--user", other, "--role", "edit")
    other_cli("algorithms", "update", algo, "--revision", "v2")
    assert cli.json("algorithms", "show", algo)["latest"] == 2
    # public: every user sees it; private again: gone for them
    assert "not found" in third_cli.fails(3, "algorithms", "show", algo)
    cli("algorithms", "update", algo, "--public")
    assert third_cli.json("algorithms", "show", algo)["public"] is True
    cli("algorithms", "update", algo, "--private")
    assert "not found" in third_cli.fails(3, "algorithms", "show", algo)
    cli("algorithms", "unshare", algo, "--user", other)
    assert "not found" in other_cli.fails(3, "algorithms", "show", algo)
    assert cli.json("algorithms", "show", algo)["latest"] == 2, "updating public made no version"


def test_presets_are_visible_to_all_and_only_admins_change_them(hub_server: Any, tmp_path: Path,
                                                               presets: dict[str, str]) -> None:
    assert DIGITS_CNN in presets
    _, cli, _ = _user(hub_server, tmp_path, "pre")
    listed = {a["name"]: a for a in cli.json("algorithms", "ls")}
    assert listed[DIGITS_CNN]["preset"] is True
    assert "text-classification/ngram-mlp" in listed
    view = cli.json("algorithms", "show", DIGITS_CNN)
    current = view["current"]
    assert current["code_subpath"] == "digits-classifier" and len(current["code_revision"]) == 40
    assert current["params"]["epochs"]["type"] == "int" and current["train_command"] == "python train.py"
    assert "needs 'edit'" in cli.fails(5, "algorithms", "update", DIGITS_CNN, "--revision", "x")
    assert "needs 'edit'" in cli.fails(5, "algorithms", "delete", DIGITS_CNN)
    assert cli.json("algorithms", "show", DIGITS_CNN)["latest"] == view["latest"]
    # nobody but an admin makes one
    from tests.integration._api import Api

    api = Api(hub_server.url, hub_server.admin_token)
    api.tokens["u"] = cli.env["ASSETHUB_TOKEN"]
    r = api.call("u", "POST", "/algorithms", json={"name": "tabular/fake-preset", "code_url": "x",
                                                    "task_type": "tabular", "preset": True})
    assert r.status_code == 403 and "admin" in message(r)


# -- jobs by name -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits(hub_server: Any, mlflow_uri: str, prefect_api: str, presets: dict[str, str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, str, str, str]]:
    """A user with a digits dataset (published) and an empty model; (client, token, model, dataset)."""
    from assethub.hub import DatasetMeta
    from tests.integration._console import small_digits

    name = f"lib{uuid.uuid4().hex[:6]}"
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user(name)
    token = admin.create_token(name, name="jobs").secret
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    hub = Client(hub_server.url, token)
    hub.create_folder(f"{name}/dataset/images")
    hub.create_folder(f"{name}/model/digits")
    hub.create_asset(f"{name}/dataset/images/digits", dataset=DatasetMeta(
        "image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("lib-digits")
    small_digits(data)  # 30 training and 8 test images per class: the same steps, fewer files
    hub.upload(f"{name}/dataset/images/digits:main", data, message="digits")
    hub.publish(f"{name}/dataset/images/digits", "v1")
    hub.create_asset(f"{name}/model/digits/cnn")
    yield hub, token, f"{name}/model/digits/cnn", f"{name}/dataset/images/digits:v1"
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize(("params", "match"), [
    ({"epochs": "many"}, "epochs"),
    ({"no_such_param": 1}, "no_such_param"),
    ({"epochs": -1}, "epochs"),
])
def test_bad_params_for_an_algorithm_are_refused_before_any_run(
        hub_server: Any, digits: tuple[Client, str, str, str], params: dict[str, Any], match: str) -> None:
    from tests.integration._api import Api

    hub, token, model, dataset = digits
    api = Api(hub_server.url, hub_server.admin_token)
    api.tokens["u"] = token
    before = hub.list_runs(model, limit=1000)
    r = api.call("u", "POST", "/runs", json={"kind": "train", "model": model, "dataset": dataset,
                                             "algorithm": DIGITS_CNN, "params": params})
    assert r.status_code == 400, r.text
    assert match in message(r) and "digits-cnn" in message(r)
    assert hub.list_runs(model, limit=1000) == before, "no run was registered"


def test_out_of_choices_and_an_invisible_algorithm_are_refused(hub_server: Any, tmp_path: Path,
                                                               digits: tuple[Client, str, str, str]) -> None:
    from tests.integration._api import Api

    hub, token, model, dataset = digits
    owner, _, owner_client = _user(hub_server, tmp_path, "chc")
    algo = f"tabular/choices-{owner}"
    owner_client.register_algorithm(algo, code_url="https://git.example.org/x.git", task_type="tabular",
                                    params=PARAMS)
    api = Api(hub_server.url, hub_server.admin_token)
    api.tokens["u"] = token
    body = {"kind": "train", "model": model, "dataset": dataset, "algorithm": algo,
            "params": {"optimizer": "rmsprop"}}
    r = api.call("u", "POST", "/runs", json=body)
    assert r.status_code == 404 and "algorithm" in message(r)  # private: as if missing
    owner_client.share_algorithm(algo, role="view", user=hub.whoami().name)
    r = api.call("u", "POST", "/runs", json=body)
    assert r.status_code == 400 and "rmsprop" in message(r) and "adam" in message(r), r.text
    r = api.call("u", "POST", "/runs", json={**body, "algorithm": algo + "@7"})
    assert r.status_code == 404
    assert hub.list_runs(model, limit=1000) == []


def test_the_digits_preset_trains_and_evaluates_by_name(digits: tuple[Client, str, str, str]) -> None:
    from flows.evaluate import evaluate
    from flows.train import train

    hub, _, model, dataset = digits
    version = hub.get_algorithm(DIGITS_CNN).latest
    trained = train(model=model, dataset=dataset, algorithm=DIGITS_CNN, params={"epochs": 1})
    lin = hub.lineage(trained["model_ref"]).lineage
    assert lin is not None and lin.algorithm == DIGITS_CNN and lin.algorithm_version == str(version)
    assert lin.params["epochs"] == 1 and lin.params["batch_size"] == 64  # the declared default
    assert lin.code_subpath == "digits-classifier" and lin.command == "python train.py"
    run = hub.get_run(trained["run_id"])
    assert (run.algorithm, run.algorithm_version) == (DIGITS_CNN, version)
    evaluated = evaluate(model=trained["model_ref"], dataset=dataset, algorithm=f"{DIGITS_CNN}@{version}")
    assert evaluated["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    assert hub.get_run(evaluated["run_id"]).algorithm == DIGITS_CNN


def test_the_api_names_algorithms_by_two_segments(hub_server: Any) -> None:
    import httpx

    r = httpx.get(f"{hub_server.url}{API}/algorithms/{DIGITS_CNN}")
    assert r.status_code == 401  # signed in only
