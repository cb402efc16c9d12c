"""Run the job's command in the checked-out code with the training-code contract."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.errors import JobFailedError
from assethub.runtime import JobContext, Split, environment
from tasks.assets import Fetched
from tasks.env import SECRET_VARIABLES
from tasks.tracking import Tracking

TAIL_LINES = 30
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    seconds: float
    tail: str


def command_environment(contract: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without secrets, plus the contract.

    ``python`` on PATH is this interpreter, so the command runs with the packages Asset Hub
    runs with; output is unbuffered so it streams; hash seeds are fixed for reproducibility.
    """
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("PYTHONHASHSEED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(contract)
    return env


def job_contract(kind: str, *, data: Fetched, base: Fetched | None, output_dir: str,
                 params: dict[str, Any], metrics_file: str, tracking: Tracking) -> dict[str, str]:
    """The training-code contract for the command (``ASSETHUB_*``, ``MLFLOW_*``), from what the
    fetch and tracking steps returned; the output directory is created empty."""
    out = Path(output_dir)
    out.mkdir(parents=True)
    data_dir = Path(data.dir)
    return environment(JobContext(
        job=kind, dataset_dir=data_dir, output_dir=out, base_model_dir=Path(base.dir) if base else None,
        params=params, split=Split.parse(data.split, data_dir), metrics_file=Path(metrics_file),
        mlflow_tracking_uri=tracking.uri, mlflow_run_id=tracking.run_id))


@task(name="run_entrypoint", cache_policy=NO_CACHE)
def run_entrypoint(command: str, cwd: str, contract: dict[str, str],
                   timeout: float | None = None) -> CommandResult:
    """Run ``command`` (a shell command line) in ``cwd``; its output goes to the run's log.

    A non-zero exit raises :class:`JobFailedError` with the exit code and the last lines.
    """
    logger = get_run_logger()
    logger.info("running `%s` in %s", command, cwd)
    started = time.perf_counter()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    # under a supervisor that ends the command's process group if this process dies
    proc = subprocess.Popen([sys.executable, "-I", SUPERVISOR, str(os.getpid()), command], cwd=cwd,
                            env=command_environment(contract),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", bufsize=1, start_new_session=True)
    timed_out = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            logger.info("| %s", line)
            if timeout is not None and time.perf_counter() - started > timeout:
                timed_out = True
                break
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    except BaseException:  # cancelled or interrupted: the command must not outlive the job
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    seconds = time.perf_counter() - started
    last = "\n".join(tail)
    if timed_out:
        raise JobFailedError(f"`{command}` ran past the {timeout:.0f}s time limit and was stopped; "
                             f"last lines:\n{last}", exit_code=code, tail=last)
    if code != 0:
        why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise JobFailedError(f"`{command}` {why}; last lines:\n{last}", exit_code=code, tail=last)
    logger.info("`%s` finished in %.1fs", command, seconds)
    return CommandResult(code, seconds, last)
