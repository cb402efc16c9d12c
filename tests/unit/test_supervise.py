"""The training command's supervisor: the command and what it started end with the job's
process, even when that is killed with SIGKILL; the command's exit status passes through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests._wait import wait_for

SUPERVISOR = str(Path(__file__).parents[2] / "tasks" / "supervise.py")


def _group_alive(pgid: int) -> set[int]:
    """Processes of group ``pgid`` still running (a zombie has finished)."""
    alive = set()
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.add(int(entry.name))
    return alive


@pytest.mark.parametrize(("command", "code"), [("exit 3", 3), ("true", 0), ("kill -9 $$", -9),
                                                 ("kill -15 $$", -15)])
def test_the_command_s_exit_status_passes_through(command: str, code: int) -> None:
    assert subprocess.run([sys.executable, "-I", SUPERVISOR, str(os.getpid()), command]).returncode == code


def test_a_killed_job_process_takes_the_command_and_its_children_along(tmp_path: Path) -> None:
    started = tmp_path / "started"
    # the job's process as tasks.entrypoint starts the command: in a session of its own
    parent = subprocess.Popen([sys.executable, "-c", f"""
import os, subprocess, sys
p = subprocess.Popen([sys.executable, "-I", {SUPERVISOR!r}, str(os.getpid()),
                      "sleep 300 & sleep 301 & touch {started}; wait"], start_new_session=True)
print(p.pid, flush=True)
p.wait()
"""], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    group = int(parent.stdout.readline())
    wait_for("the command to start its children", started.exists, timeout=60)
    assert len(_group_alive(group)) >= 4  # supervisor, shell, two sleeps
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_for("the command's process group to end", lambda: not _group_alive(group), timeout=60)
