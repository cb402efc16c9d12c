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
