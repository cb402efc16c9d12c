"""``assethub logs COMPONENT`` on a log that a real managed process wrote, in a temporary home."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assethub.cli import app
from tests._wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ASSETHUB_HOME", str(tmp_path))
    yield tmp_path


def logs(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["logs", *args])
    return result.exit_code, result.stdout, result.stderr


def test_logs_shows_what_the_component_wrote(home: Path) -> None:
    from infra import mlflow

    # a stand-in for MLflow: the managed process of the component "mlflow", logging as it runs
    mlflow.SERVER.start([sys.executable, "-u", "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                        wait=False)
    try:
        port = mlflow.SERVER.port()
        line = f"Serving HTTP on 127.0.0.1 port {port}"
        wait_for("the process to log that it serves", lambda: mlflow.SERVER.log_file.exists()
                 and line in mlflow.SERVER.log_file.read_text(), timeout=30)
    finally:
        assert mlflow.SERVER.stop()
    assert mlflow.SERVER.log_file.is_relative_to(home)
    code, out, _ = logs("mlflow")
    assert code == 0 and line in out
    with mlflow.SERVER.log_file.open("a") as f:
        f.write("one\ntwo\nthree\n")
    code, out, _ = logs("mlflow", "-n", "2")
    assert (code, out) == (0, "two\nthree\n")
    code, out, _ = logs("mlflow", "--lines", "0")
    assert code == 0 and line in out and out.endswith("three\n")


def test_an_unknown_component_names_the_known_ones(home: Path) -> None:
    code, out, err = logs("postgres")
    assert code == 2 and not out
    assert err.strip() == ("error: unknown component 'postgres'; known: lakefs, server, mlflow, "
                           "prefect-server, prefect-worker")


def test_a_component_that_never_ran_has_no_log_yet(home: Path) -> None:
    code, _, err = logs("prefect-worker")
    assert code == 3 and "no log yet" in err and "assethub up" in err
