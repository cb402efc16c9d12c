"""The console's background statistics computations (assethub.console.data.Computations): the
Compute button's POST starts one and returns; the page polls its state."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from assethub import errors
from assethub.console.data import Computations
from assethub.refs import AssetPath

PATH = AssetPath.parse("alice/dataset/images/digits")


class SlowStats:
    """Stands in for DatasetStatistics: each computation waits for ``release``."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        self.fail = fail

    def stats(self, who: Any, ref: Any, *, compute: bool = True, progress: Any = None) -> object:
        self.calls.append(str(ref))
        progress(1, 3)  # the version fetched, one file of three read
        assert self.release.wait(30)
        if self.fail is not None:
            raise self.fail
        return object()


def _ended(c: Computations, commit: str) -> tuple[float | None, str | None]:
    deadline = time.monotonic() + 30
    while True:
        c._lock.acquire()
        run = c._runs.get((str(PATH), commit))
        c._lock.release()
        if run is None or run[1].done() or time.monotonic() > deadline:
            return c.state(PATH, commit)
        time.sleep(0.01)


def test_a_computation_runs_once_per_commit_and_is_forgotten_once_it_ended_well() -> None:
    fake = SlowStats()
    c = Computations(fake)  # type: ignore[arg-type]
    assert c.state(PATH, "a" * 64) == (None, None)
    c.start(object(), PATH, "a" * 64)  # type: ignore[arg-type]
    c.start(object(), PATH, "a" * 64)  # type: ignore[arg-type]  # already running: not again
    deadline = time.monotonic() + 30
    while (running := c.state(PATH, "a" * 64)[0]) is not None and running["read"] is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)  # the thread has not reported yet
    assert running is not None and running["seconds"] >= 0
    assert (running["read"], running["files"]) == (1, 3) and c.state(PATH, "a" * 64)[1] is None
    fake.release.set()
    assert _ended(c, "a" * 64) == (None, None)
    assert fake.calls == [f"{PATH}:{'a' * 64}"]
    assert c.state(PATH, "a" * 64) == (None, None)


def test_a_failure_is_said_once_with_the_hubs_message() -> None:
    fake = SlowStats(fail=errors.InvalidReferenceError("no such split rule", part="split", value="x"))
    c = Computations(fake)  # type: ignore[arg-type]
    c.start(object(), PATH, "b" * 64)  # type: ignore[arg-type]
    fake.release.set()
    assert _ended(c, "b" * 64) == (None, "no such split rule")
    assert c.state(PATH, "b" * 64) == (None, None)  # said once: the Compute button is back


def test_an_unexpected_error_is_named_without_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[tuple[Any, ...]] = []
    monkeypatch.setattr("assethub.console.data.log", SimpleNamespace(exception=lambda *a: logged.append(a)))
    fake = SlowStats(fail=RuntimeError("/srv/secret/path exploded"))
    c = Computations(fake)  # type: ignore[arg-type]
    c.start(object(), PATH, "c" * 64)  # type: ignore[arg-type]
    fake.release.set()
    running, failed = _ended(c, "c" * 64)
    assert running is None and failed is not None and "RuntimeError" in failed and "secret" not in failed
    assert logged and logged[0][0].startswith("computing the statistics")  # the details: the log
