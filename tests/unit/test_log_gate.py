"""The log gate finds errors and tracebacks in component logs and honours its allow-list."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._log_gate import Allowed, scan

PREFECT = """\
21:41:07.280 | INFO    | prefect.flow_runs.worker - Worker submitting flow run 'x'
21:41:11.381 | ERROR   | Task run 'open_run-84e' - Task run failed: boom - Retries are exhausted
Traceback (most recent call last):
  File "a.py", line 1, in f
    g()
httpcore.ConnectError: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "b.py", line 2, in h
httpx.ConnectError: [Errno 111] Connection refused

21:41:12.000 | INFO    | prefect.flow_runs - Finished in state Completed()
"""
LAKEFS = 'time="2026-11-29T21:41:00Z" level=info msg="ok"\ntime="x" level=error msg="kv: lost"\n'
CLEAN = "INFO: started\nWARNING: deprecated thing\nerror_count=0 errors handled\n"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Outside the session's base directory: these provoked logs are not for the real gate."""
    with tempfile.TemporaryDirectory(prefix="log-gate-") as d:
        yield Path(d)


def _write(base: Path, rel: str, text: str) -> None:
    (base / rel).parent.mkdir(parents=True, exist_ok=True)
    (base / rel).write_text(text)


def test_errors_and_tracebacks_are_found_with_their_exception(tmp_path: Path) -> None:
    _write(tmp_path, "home/prefect-worker/server.out", PREFECT)
    _write(tmp_path, "home/lakefs/lakefs.log", LAKEFS)
    _write(tmp_path, "home/mlflow/server.out", CLEAN)
    _write(tmp_path, "home/notes.txt", "ERROR not a log file\n")
    bad, ok = scan(tmp_path, ())
    assert ok == []
    assert [(e.file.name, e.line) for e in bad] == [("lakefs.log", 2), ("server.out", 2)]
    prefect = bad[1].text
    assert "Retries are exhausted" in prefect and "httpcore.ConnectError" in prefect
    assert "httpx.ConnectError" in prefect and "Finished in state" not in prefect


def test_a_bare_traceback_is_an_error_too(tmp_path: Path) -> None:
    _write(tmp_path, "x/server.out", "starting\nTraceback (most recent call last):\n  File \"a\"\n"
           "KeyError: 'k'\nnext line\n")
    bad, _ = scan(tmp_path, ())
    assert [e.text for e in bad] == ["Traceback (most recent call last): | KeyError: 'k'"]


def test_the_allow_list_is_narrow(tmp_path: Path) -> None:
    _write(tmp_path, "home/prefect-worker/server.out", PREFECT)
    _write(tmp_path, "home/prefect/server.out", PREFECT)
    rule = Allowed("*prefect-worker/server.out", r"open_run-.*httpx\.ConnectError", "provoked on purpose")
    bad, ok = scan(tmp_path, (rule,))
    assert [str(e.file.parent.name) for e in ok] == ["prefect-worker"]
    assert [str(e.file.parent.name) for e in bad] == ["prefect"]  # same text, another component
    bad, ok = scan(tmp_path, (Allowed("*", r"something else", "no"),))
    assert len(bad) == 2 and ok == []


def test_a_traceback_that_is_a_log_records_message_carries_its_exception(tmp_path: Path) -> None:
    _write(tmp_path, "x/server.out", "20:27:20.799 | ERROR   | uvicorn.error - Traceback (most recent call "
           "last):\n  File \"a\", line 1\nAssertionError: not started\n\n20:27:20.806 | INFO | next\n")
    bad, _ = scan(tmp_path, ())
    assert len(bad) == 1 and bad[0].text.endswith("| AssertionError: not started")
