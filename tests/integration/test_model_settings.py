"""Models keep their job settings (``.assethub/job.yaml`` on main), end to end on the real stack:
`assethub configure` writes them as a commit (checked field by field, a credential in the URL
kept apart), `assethub train MODEL` alone runs a real job from them, every option still
overrides, lineage names the settings commit, and merging a training into main keeps them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assethub.client import Client
from tests.integration._jobs import EXAMPLES, JobWorld, git_repo
from tests.integration.test_cli import Cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobWorld]:
    from assethub.hub import DatasetMeta
    from tests.integration._console import small_digits

    name = f"cfg{uuid.uuid4().hex[:6]}"
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user(name)
    token = admin.create_token(name, name="jobs").secret
    hub = Client(hub_server.url, token)
    hub.create_folder(f"{name}/dataset/images")
    hub.create_folder(f"{name}/model/digits")
    hub.create_asset(f"{name}/dataset/images/digits", dataset=DatasetMeta(
        "image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("cfg-digits")
    small_digits(data)  # 30 training and 8 test images per class: the tests check settings, not skill
    hub.upload(f"{name}/dataset/images/digits:main", data, message="digits")
    tag = hub.publish(f"{name}/dataset/images/digits", "v1")
    hub.create_asset(f"{name}/model/digits/cnn")
    repo, sha = git_repo(EXAMPLES / "digits-classifier", tmp_path_factory.mktemp("cfg-code") / "repo")
    yield JobWorld(hub, name, token, f"{name}/model/digits/cnn", f"{name}/dataset/images/digits:v1",
                   tag.commit_id, repo, sha)


@pytest.fixture
def cli(world: JobWorld, hub_server: Any, prefect_api: str, tmp_path: Path) -> Cli:
    c = Cli(hub_server.url, world.token, tmp_path / "cli")
    c.env["PREFECT_API_URL"] = prefect_api
    return c


def test_settings_are_checked_kept_clean_and_a_commit(world: JobWorld, cli: Cli, hub_server: Any,
                                                      tmp_path: Path) -> None:
    model = f"{world.user}/model/digits/settings-{uuid.uuid4().hex[:6]}"
    world.hub.create_asset(model)
    assert "has no job settings" in cli("configure", model)
    view = cli.json("configure", model, "--repo", "https://bob:s3cret@git.example.org/ml/x.git",
                    "--revision", "dev", "--dataset", world.dataset, "--param", "epochs=2",
                    "--param", "lr=0.5", "--gpu", "1")
    assert view["settings"] == {"repo": "https://git.example.org/ml/x.git", "revision": "dev",
                                "dataset": world.dataset, "params": {"epochs": 2, "lr": 0.5},
                                "resources": {"gpu": 1}}
    world.hub.download(f"{model}:main", tmp_path / "saved", prefix=".assethub/job.yaml")
    stored = (tmp_path / "saved" / "job.yaml").read_text()
    assert "git.example.org/ml/x.git" in stored and "s3cret" not in stored
    assert "git.example.org" in cli("git-credentials", "ls")  # the credential went to the user's store
    head = world.hub.log(f"{model}:main", limit=1)[0]
    assert head.id == view["commit"] and head.message.startswith("Job settings")
    # params merge; an algorithm replaces the code fields; unset removes
    changed = cli.json("configure", model, "--param", "epochs=3", "--unset", "revision")
    assert changed["settings"]["params"] == {"epochs": 3, "lr": 0.5} and "revision" not in changed["settings"]
    assert [c.id for c in world.hub.log(f"{model}:main", limit=2)][1] == view["commit"], "one commit each"
    shown = cli("configure", model)
    for expected in ("repo", "git.example.org/ml/x.git", "params epochs", "resources gpu"):
        assert expected in shown, (expected, shown)
    # checked field by field, nothing written when refused
    for args, code, words in (
            (("--dataset", model + ":main"), 2, "not a dataset"),
            (("--dataset", "no-colon"), 2, ""),
            (("--algorithm", "image-classification/digits-cnn", "--repo", "x"), 2, "not both"),
            (("--algorithm", "tabular/no-such-algo"), 3, "algorithm not found"),
            (("--unset", "colour"), 2, "unknown job setting"),
            (("--cpu", "5000"), 2, "cpu")):
        line = cli.fails(code, "configure", model, *args)
        assert words in line, (args, line)
    assert world.hub.job_settings(model).commit == changed["commit"]
    # others: a viewer reads them, only an editor changes them
    admin = Client(hub_server.url, hub_server.admin_token)
    viewer = f"view{uuid.uuid4().hex[:6]}"
    admin.create_user(viewer)
    viewer_cli = Cli(hub_server.url, admin.create_token(viewer, name="t").secret, tmp_path / viewer)
    assert "not found" in viewer_cli.fails(3, "configure", model)
    world.hub.share(f"{world.user}/model/digits", role="view", user=viewer)
    assert viewer_cli.json("configure", model)["settings"]["params"]["epochs"] == 3
    assert "needs 'edit'" in viewer_cli.fails(5, "configure", model, "--param", "epochs=9")


def test_a_model_with_settings_trains_by_its_name_alone(world: JobWorld, cli: Cli) -> None:
    model = world.model
    saved = cli.json("configure", model, "--repo", world.repo, "--dataset", world.dataset,
                     "--param", "epochs=1", "--param", "seed=3", "--cpu", "1")
    result = cli.json("train", model)  # nothing else: the settings say what runs
    lin = world.hub.lineage(result["model_ref"]).lineage
    assert lin is not None and lin.settings_commit == saved["commit"]
    assert lin.code_sha == world.sha and lin.dataset_commit == world.dataset_commit
    assert lin.params["epochs"] == 1 and lin.params["seed"] == 3
    run = world.hub.get_run(result["run_id"])
    assert run.settings_commit == saved["commit"] and run.resources == {"cpu": 1}
    shown = cli("lineage", result["model_ref"])
    assert saved["commit"] in shown and "cpu=1" in shown
    # every option still overrides (the server resolves what runs when the run is registered)
    over = world.hub.create_run(model, kind="train", code_revision=world.sha, params={"seed": 4},
                                command="python train.py --fast")
    assert (over.code_url, over.code_revision, over.dataset_ref) == (world.repo, world.sha, world.dataset)
    assert over.params == {"epochs": 1, "seed": 4} and over.command == "python train.py --fast"
    other = world.hub.create_run(model, kind="evaluate", base=result["model_ref"], code_url="/elsewhere",
                                 dataset=f"{world.dataset.split(':')[0]}:main")
    assert (other.code_url, other.code_revision) == ("/elsewhere", "") and other.dataset_ref.endswith(":main")
    for r in (over, other):
        world.hub.update_run(r.id, state="failed", error="not run: only its registration was checked")
    # a training's merge into main keeps the settings; a settings change keeps main's lineage
    cli("merge", model, result["branch"], "--metric", "accuracy")  # the merge flow
    after = world.hub.job_settings(model)
    assert after.settings == saved["settings"]
    assert world.hub.stat(f"{model}:main", ".assethub/job.yaml").size > 0
    assert world.hub.stat(f"{model}:{result['branch']}", ".assethub/job.yaml").size > 0
    cli("configure", model, "--param", "seed=5")
    main = world.hub.lineage(f"{model}:main")
    assert main.model_commit == result["commit"] and main.lineage is not None
    assert main.lineage.run_id == result["run_id"]


def test_a_job_with_nothing_to_run_says_the_three_ways(world: JobWorld, hub_server: Any,
                                                       prefect_api: str) -> None:
    model = f"{world.user}/model/digits/bare-{uuid.uuid4().hex[:6]}"
    world.hub.create_asset(model)
    env = {**os.environ, "ASSETHUB_URL": hub_server.url, "ASSETHUB_TOKEN": world.token,
           "PREFECT_API_URL": prefect_api}

    def train(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flows", "train", "--model", model, *args],
                              env=env, capture_output=True, text=True, timeout=600)

    failed = train("--dataset", world.dataset)
    assert failed.returncode == 2, failed.stderr[-3000:]
    for way in ("--repo", "--algorithm", f"assethub configure {model}"):
        assert way in failed.stderr, failed.stderr[-3000:]
    no_data = train("--repo", world.repo)
    assert no_data.returncode == 2 and "no dataset" in no_data.stderr, no_data.stderr[-3000:]
    assert [b.name for b in world.hub.list_branches(model)] == ["main"], "nothing was committed"
    assert {r.state for r in world.hub.list_runs(model)} == {"failed"}
