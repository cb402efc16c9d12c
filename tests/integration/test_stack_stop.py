"""Stopping a managed process (infra/_process.py) when its parent is not the one stopping it:
a server that a test process restarted is stopped by `assethub down`, another process, and
exits as a zombie of the test process until that one reaps it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ASSETHUB_HOME", str(tmp_path))
    yield tmp_path


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_server_that_exited_unreaped_is_not_running(home: Path) -> None:
    from infra._process import ManagedProcess

    web = ManagedProcess("web", default_port=18950, health_path="/")
    web.start([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"], timeout=60)
    pid = web.pid()
    assert pid is not None
    # stopped by someone else: this process, its parent, does not reap it (a zombie now)
    os.kill(pid, signal.SIGTERM)
    wait_for("the server to exit", lambda: _state(pid) == "Z", timeout=60)
    try:
        assert web.pid() is None
        assert web.stop() is False  # nothing left to wait for (it waited out its grace)
    finally:
        os.waitpid(pid, 0)


def test_up_that_fails_stops_what_it_started_and_says_why(
        home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`assethub up` whose server cannot start (its port is taken) leaves nothing running behind:
    lakeFS, MLflow and Prefect, started before the server failed, are stopped again."""
    import socket

    from infra import lakefs, prefect, stack
    from infra import mlflow as tracking

    monkeypatch.setenv("ASSETHUB_CONFIG", str(tmp_path_factory.mktemp("cfg") / "config.json"))
    monkeypatch.delenv("ASSETHUB_PROFILE", raising=False)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(SystemExit, match="server exited while starting"):
            stack.up(port=taken.getsockname()[1], timeout=60)
    finally:
        taken.close()
    started = {"lakefs": lakefs.SERVER, "mlflow": tracking.SERVER, "prefect-server": prefect.SERVER,
               "server": stack.SERVER, "prefect-worker": prefect.WORKER}
    assert {name: p.pid() for name, p in started.items()} == dict.fromkeys(started)
    # they had started: each left its log behind
    assert all(p.log_file.exists() for name, p in started.items() if name != "prefect-worker")
    assert stack.status() == dict.fromkeys(stack.COMPONENTS, "not running")
