"""What `assethub init` writes passes its own test: `pytest` run inside the new repository (with
this environment's Python, which has Asset Hub) trains and evaluates the preset's code on a tiny
dataset through the training-code contract."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assethub.cli_init import create
from assethub.presets import PRESETS
from tests.examples.test_examples import TIMEOUT


@dataclass
class OwnTest:
    repo: Path
    proc: subprocess.Popen[bytes]
    out: Path  # its output (stdout and stderr): a file, so that no pipe fills while another is awaited


@pytest.fixture(scope="module")
def own_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, OwnTest]]:
    """Each preset's new repository, its own `pytest` started at once, side by side (each is
    mostly one process's imports: on 2 cores three together take about two's time)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASSETHUB_", "MLFLOW_", "PYTEST_")) and k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    started = {}
    for preset in (p.name for p in PRESETS):
        tmp_path = tmp_path_factory.mktemp("init")
        repo = create(tmp_path / "repo", preset).directory
        out = tmp_path / "pytest.out"
        with open(out, "wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     "--basetemp", str(tmp_path / "bt")], cwd=repo, env=env,
                                    stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started[preset] = OwnTest(repo, proc, out)
    try:
        yield started
    finally:
        for test in started.values():
            if test.proc.poll() is None:  # a test failed before it waited for its own
                test.proc.kill()
                test.proc.wait()


@pytest.mark.timeout(3 * TIMEOUT)  # a whole pytest run: a training and an evaluation, each importing MLflow
@pytest.mark.parametrize("preset", [p.name for p in PRESETS])
def test_the_new_repository_passes_its_own_test(own_tests: dict[str, OwnTest], preset: str) -> None:
    test = own_tests[preset]
    test.proc.wait(timeout=TIMEOUT * 2)
    output = test.out.read_text(errors="replace")
    assert test.proc.returncode == 0, output[-6000:]
    assert "1 passed" in output
    # the run left nothing to commit in the repository (a cache is ignored)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=test.repo, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
