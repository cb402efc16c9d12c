"""What `assethub init` writes passes its own test: `pytest` run inside the new repository (with
this environment's Python, which has Asset Hub) trains and evaluates the preset's code on a tiny
dataset through the training-code contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assethub.cli_init import create
from assethub.presets import PRESETS
from tests.examples.test_examples import TIMEOUT


@pytest.mark.timeout(3 * TIMEOUT)  # a whole pytest run: a training and an evaluation, each importing MLflow
@pytest.mark.parametrize("preset", [p.name for p in PRESETS])
def test_the_new_repository_passes_its_own_test(tmp_path: Path, preset: str) -> None:
    repo = create(tmp_path / "repo", preset).directory
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASSETHUB_", "MLFLOW_", "PYTEST_")) and k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--basetemp", str(tmp_path / "bt")], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT * 2, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    # the run left nothing to commit in the repository (a cache is ignored)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
