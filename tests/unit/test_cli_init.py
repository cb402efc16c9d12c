"""`assethub init`: what it writes, and what it refuses before writing anything (no server).
That the repository it writes passes its own test is in tests/examples/test_init_templates.py;
that it trains in a real job, in tests/integration/test_init.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from assethub import cli
from assethub.cli_init import DEFAULT_PRESET, create
from assethub.presets import PRESETS

NO_GIT_CONFIG = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["init", *args], prog_name="assethub", env=env)
    return result.exit_code, result.stdout, result.stderr


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_list_shows_every_preset_and_the_default() -> None:
    code, out, _ = invoke("--list")
    assert code == 0
    for p in PRESETS:
        assert p.name in out
    assert f"{DEFAULT_PRESET}  (default)" in out


def test_init_writes_the_tabular_preset_as_one_commit_on_main(tmp_path: Path) -> None:
    repo = tmp_path / "churn"
    code, out, err = invoke(str(repo), "--name", "churn-model", env=NO_GIT_CONFIG)
    assert code == 0, err
    files = set(git(repo, "ls-files").splitlines())
    assert {"assethub.yaml", "train.py", "evaluate.py", "data.py", "README.md", "tests/test_train.py",
            ".gitignore"} <= files
    assert git(repo, "status", "--porcelain") == ""  # everything is committed
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    assert git(repo, "log", "-1", "--format=%an <%ae>") == "Asset Hub <assethub@localhost>"
    spec = yaml.safe_load((repo / "assethub.yaml").read_text())
    assert spec["name"] == "churn-model" and spec["params"]["model"]["type"] == "choice"
    readme = (repo / "README.md").read_text()
    assert readme.startswith("# churn-model\n") and DEFAULT_PRESET in readme
    assert f"assethub train MODEL --repo {repo}" in readme and "train/local" in readme
    assert "| `n_estimators` | int, default 100, 1..5000 |" in readme
    # the next steps name the command that trains it
    assert f"cd {repo} && pytest" in out and f"assethub train MODEL --repo {repo} --dataset" in out
    compile((repo / "tests" / "test_train.py").read_text(), "test_train.py", "exec")


def test_the_author_comes_from_git_config(tmp_path: Path) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n")
    made = tmp_path / "repo"
    code, _, err = invoke(str(made), env={"GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1"})
    assert code == 0, err
    assert git(made, "log", "-1", "--format=%an <%ae>|%cn") == "Ada Lovelace <ada@example.org>|Ada Lovelace"


@pytest.mark.parametrize("preset", [p.name for p in PRESETS])
def test_every_preset_makes_a_repository(tmp_path: Path, preset: str) -> None:
    made = create(tmp_path / "r", preset)
    assert made.preset.name == preset and "tests/test_train.py" in made.files
    assert not any("__pycache__" in f for f in made.files)


def test_a_directory_that_is_not_empty_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = invoke(str(tmp_path))
    assert code == 2 and "exists and is not empty: give a new or empty directory" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_empty_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = invoke(str(tmp_path / "empty"), "--preset", "ngram-mlp", env=NO_GIT_CONFIG)
    assert code == 0, err
    assert (tmp_path / "empty" / "textnet.py").is_file()


@pytest.mark.parametrize("args, message", [
    (["--preset", "resnet"], "no preset 'resnet'; the presets are image-classification/digits-cnn"),
    (["--name", "no spaces"], "name 'no spaces' must be letters, digits"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path, args: list[str],
                                                            message: str) -> None:
    code, _, err = invoke(str(tmp_path / "new"), *args)
    assert code == 2 and message in err, err
    assert not (tmp_path / "new").exists()


def test_a_directory_is_needed() -> None:
    code, _, err = invoke()
    assert code == 2 and "give the new repository's directory" in err
