"""The supervisor of a local service, with stand-in replica processes (tests/integration/
_fake_replica.py, no MLflow): scaling on one address, 503 while stopped, a killed replica
restarted, and back-off when replicas cannot start. Every wait is on the supervisor's own
status file, the record of what it did."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub.serving.local import LocalService, bind
from tests._wait import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAKE_REPLICA = "tests.integration._fake_replica"


def _until(handle: LocalService, what: str, done: Callable[[dict[str, Any]], bool],
           timeout: float = 30) -> dict[str, Any]:
    """The supervisor's status once ``done(status)``; fails at once if the supervisor exits."""
    def check() -> dict[str, Any] | None:
        status = handle.status()
        if status and done(status):
            return status
        if handle.pid() is None:
            raise AssertionError(f"the supervisor exited while waiting for {what}:\n{handle.log_tail(30)}")
        return None

    return wait_for(what, check, timeout)


def _model_dir(tmp_path: Path) -> Path:
    """A directory of its own (the replica, sandboxed, sees only it and its ready files)."""
    model = tmp_path / "model"
    model.mkdir(mode=0o755, exist_ok=True)
    return model


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalService, str]]:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    handle = LocalService(tmp_path / "svc")
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    handle.launch(sock, {"name": "fake", "model_dir": str(_model_dir(tmp_path)),
                         "host": "127.0.0.1", "port": port,
                         "replica_module": FAKE_REPLICA}, 1)
    try:
        yield handle, f"http://127.0.0.1:{port}"
    finally:
        handle.terminate()


def _pids(handle: LocalService) -> list[int]:
    return [r["pid"] for r in handle.status().get("replicas", [])]


def _ids(handle: LocalService) -> list[str]:
    """The replicas' ids (a replica in the sandbox has pid 2 of its own PID namespace)."""
    return [r["id"] for r in handle.status().get("replicas", [])]


def test_supervisor_scales_on_one_address_and_answers_503_when_stopped(
        service: tuple[LocalService, str]) -> None:
    handle, url = service
    _until(handle, "one replica ready", lambda st: st.get("ready") == 1)
    assert httpx.get(url).json()["replica"] in _ids(handle)
    handle.set_replicas(3)
    _until(handle, "three replicas ready", lambda st: st.get("ready") == 3)
    seen = {httpx.get(url, headers={"Connection": "close"}).json()["replica"] for _ in range(60)}
    assert seen <= set(_ids(handle)) and len(seen) >= 2  # the kernel spreads connections
    handle.set_replicas(0)
    stopped_status = _until(handle, "every replica stopped",
                            lambda st: st.get("desired") == 0 and not st.get("replicas"))
    assert stopped_status["ready"] == 0
    stopped = httpx.post(url, json={})
    assert stopped.status_code == 503 and "service fake is stopped" in stopped.json()["message"]
    handle.set_replicas(1)
    _until(handle, "a replica ready again", lambda st: st.get("ready") == 1)
    assert httpx.get(url).status_code == 200


def test_supervisor_restarts_a_killed_replica(service: tuple[LocalService, str]) -> None:
    handle, url = service
    _until(handle, "one replica ready", lambda st: st.get("ready") == 1)
    victim = _pids(handle)[0]
    os.kill(victim, 9)
    status = _until(handle, "another replica ready in place of the killed one",
                    lambda st: st.get("ready") == 1 and victim not in [r["pid"] for r in st["replicas"]])
    assert status["restarts"] == 1 and status["ready"] == 1
    assert httpx.get(url).status_code == 200
    assert "exited with code -9" in handle.log_tail(20)


def test_replicas_that_cannot_start_back_off_and_say_so(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("FAKE_REPLICA_CRASH", "1")
    handle = LocalService(tmp_path / "svc")
    sock = bind("127.0.0.1", 0)
    handle.launch(sock, {"name": "broken", "model_dir": str(_model_dir(tmp_path)),
                         "host": "127.0.0.1", "port": 0,
                         "replica_module": FAKE_REPLICA}, 1)
    try:
        # the status written when a replica died while starting (none runs until the back-off ends)
        crashed = _until(handle, "the supervisor to report replicas crashing in a row",
                         lambda st: "in a row" in st.get("detail", "") and not st.get("replicas"))
        assert "replicas exit while starting" in crashed["detail"] and crashed["ready"] == 0
        backoff = re.search(r"retrying in (\d+)s", crashed["detail"])
        assert backoff, crashed["detail"]
        delay = float(backoff.group(1))
        # not restarted in a tight loop: the next attempt (and its crash) comes after the back-off
        again = _until(handle, "the next attempt after the back-off",
                       lambda st: st["restarts"] > crashed["restarts"], timeout=delay + 30)
        assert again["restarts"] == crashed["restarts"] + 1
        assert again["updated"] - crashed["updated"] >= delay - 0.1, (crashed, again)
    finally:
        handle.terminate()
    assert handle.pid() is None
