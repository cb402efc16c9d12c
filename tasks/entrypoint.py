"""Run the job's command in the checked-out code with the training-code contract."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub import sandbox
from assethub.errors import JobFailedError, JobSpecError
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
    device, gpus = job_device()
    return environment(JobContext(
        job=kind, dataset_dir=data_dir, output_dir=out, base_model_dir=Path(base.dir) if base else None,
        params=params, split=Split.parse(data.split, data_dir), metrics_file=Path(metrics_file),
        mlflow_tracking_uri=tracking.uri, mlflow_run_id=tracking.run_id, device=device, gpus=gpus))


def _visible_gpus(environ: Mapping[str, str], dev: Path) -> int:
    """How many NVIDIA GPUs this machine shows: CUDA_VISIBLE_DEVICES when set (``""`` or ``-1``:
    none), else the ``/dev/nvidia<N>`` devices. Without importing torch (seconds, and GPU
    memory) in the flow's process."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return 0 if not ids or ids[0].startswith("-") else len(ids)
    with contextlib.suppress(OSError):
        return sum(1 for p in dev.glob("nvidia*") if p.name[len("nvidia"):].isdigit())
    return 0


def job_device(environ: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> tuple[str, int]:
    """The job's ``DEVICE`` and GPU count, from the work pool: the worker's setting
    ``ASSETHUB_DEVICE`` (``cuda`` / ``cpu``; the ``gpu`` pool's job template sets ``cuda``) when
    set, else ``cuda`` when the machine has an NVIDIA GPU, else ``cpu``. The GPU count is the
    pool's allotment, ``ASSETHUB_GPUS`` (the ``gpu`` pool's template sets it from the job's
    ``gpu_count``), when set; else the GPUs the machine shows."""
    environ = os.environ if environ is None else environ
    setting = environ.get("ASSETHUB_DEVICE", "").strip().lower()
    if setting not in ("", "cuda", "cpu"):
        raise JobSpecError(f"ASSETHUB_DEVICE={setting!r} (the worker's setting): use cuda or cpu")
    gpus = _visible_gpus(environ, dev)
    device = setting or ("cuda" if gpus else "cpu")
    if device != "cuda":
        return device, 0
    allotted = environ.get("ASSETHUB_GPUS", "").strip()
    if allotted:
        if not allotted.isdigit() or int(allotted) < 1:
            raise JobSpecError(f"ASSETHUB_GPUS={allotted!r} (the work pool's setting): "
                               "a GPU count of 1 or more")
        return device, int(allotted)
    return device, max(gpus, 1)


# harmless settings of this process that the sandboxed command gets too (nothing secret)
PASSED_THROUGH = ("LANG", "LC_ALL", "TZ", "MLFLOW_ENABLE_TELEMETRY", "DO_NOT_TRACK",
                  "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
INSIDE_PATH = "/usr/local/bin:/usr/bin:/bin"


def job_timeout(timeout: float | None = None) -> float | None:
    """The time limit of a job's command in seconds: the setting ASSETHUB_JOB_TIMEOUT_SECONDS
    (the admin's cap; none when unset or 0), or ``timeout`` (the code's own, assethub.yaml's
    ``timeout``) when that is shorter."""
    raw = os.environ.get("ASSETHUB_JOB_TIMEOUT_SECONDS", "").strip()
    cap: float | None = None
    if raw:
        try:
            cap = float(raw)
        except ValueError:
            raise JobSpecError(f"ASSETHUB_JOB_TIMEOUT_SECONDS={raw!r} is not a number of seconds") from None
    limits = [x for x in (cap, timeout) if x is not None and x > 0]
    return min(limits) if limits else None


@dataclass
class Prepared:
    argv: list[str]
    env: dict[str, str]  # the supervisor's (and so bwrap's)
    relay: sandbox.MlflowRelay | None = None
    cleanup: tuple[Path, ...] = ()


def sandbox_environment(contract: Mapping[str, str], home: Path, uid: int) -> dict[str, str]:
    """The whole environment of a sandboxed command: the contract, PATH (this interpreter's
    environment first), HOME (in the job's directory) and a few harmless settings."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), INSIDE_PATH]), HOME=str(home),
               PYTHONHASHSEED="0", PYTHONUNBUFFERED="1", USER=str(uid), LOGNAME=str(uid))
    env.setdefault("LANG", "C.UTF-8")
    env.update(contract)
    return env


def _inside_tracking_uri(uri: str) -> tuple[str, int] | None:
    """The tracking URI as the sandbox sees it (its own loopback, where the relay listens), and
    that port; None when the URI is not an HTTP server (a file store cannot be shared safely)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = parts.port or 5000
    return urlunsplit(("http", f"127.0.0.1:{port}", parts.path, "", "")), port


RELAY_DIR_PREFIX = "ah-mlflow-"


def sweep_relay_dirs(root: Path | None = None) -> list[Path]:
    """Remove the MLflow relay's socket directories (``ah-mlflow-<pid>-*``) of flow processes
    that are gone: a run's own clean-up removes its directory, but a process killed outright
    (SIGKILL, the machine's OOM killer) cannot. Only this user's directories, and only those of
    a pid that no longer runs (a live or unknown owner's stays). What it removed."""
    root = Path(tempfile.gettempdir()) if root is None else root
    removed: list[Path] = []
    for d in root.glob(f"{RELAY_DIR_PREFIX}*-*"):
        pid = d.name[len(RELAY_DIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or d.is_symlink() or d.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its process is gone
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        except OSError:  # gone meanwhile, or another user's process (EPERM): not ours to judge
            continue
    return removed


def prepare_sandboxed(box: sandbox.Sandbox, command: str, cwd: str, contract: Mapping[str, str],
                      logger: Any) -> Prepared:
    """bwrap's argv and environment for ``command``: the code, dataset and base model read-only,
    the output directory, the metrics file and a home directory writable, MLflow through a relay
    that lets through only this job's run."""
    contract = dict(contract)
    output = Path(contract["ASSETHUB_OUTPUT_DIR"])
    metrics = Path(contract["ASSETHUB_METRICS_FILE"])
    home = output.parent / "home"
    home.mkdir(exist_ok=True)
    created_metrics = not metrics.exists()
    if created_metrics:
        metrics.touch()  # a file bound in must exist; an empty one is removed after the run
    box.give(output, home, metrics)
    mounts = [sandbox.Mount(Path(cwd)), sandbox.Mount(output, writable=True),
              sandbox.Mount(home, writable=True), sandbox.Mount(metrics, writable=True)]
    for name in ("ASSETHUB_DATASET_DIR", "ASSETHUB_BASE_MODEL_DIR"):
        if contract.get(name):
            mounts.append(sandbox.Mount(Path(contract[name])))
    if contract.get("ASSETHUB_DEVICE") == "cuda":  # the GPUs, as devices (bwrap's /dev has none)
        mounts += sandbox.gpu_mounts()
    inner = ["/bin/sh", "-c", command]
    relay, cleanup = None, [metrics] if created_metrics else []
    uri, run_id = contract.get("MLFLOW_TRACKING_URI", ""), contract.get("MLFLOW_RUN_ID", "")
    inside = _inside_tracking_uri(uri) if uri and run_id else None
    if inside is not None:
        sweep_relay_dirs()
        # 0700, short (a socket path is short), named by this process: swept once it is gone
        sock_dir = Path(tempfile.mkdtemp(prefix=f"{RELAY_DIR_PREFIX}{os.getpid()}-"))
        sock = sock_dir / "mlflow.sock"
        relay = sandbox.MlflowRelay(uri, run_id, sock).start()
        box.give(sock)
        sock.chmod(0o600)
        cleanup.append(sock_dir)
        mounts.append(sandbox.Mount(sock, sandbox.MLFLOW_SOCKET, writable=True))
        contract["MLFLOW_TRACKING_URI"] = inside[0]
        inner = [sys.executable, "-I", "-m", "assethub.sandbox", "forward", str(inside[1]),
                 str(sandbox.MLFLOW_SOCKET), "--", *inner]
    elif uri:
        logger.warning("MLflow at %s is not an HTTP tracking server: the sandboxed command cannot "
                       "log to it (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID are not set for it)", uri)
        contract.pop("MLFLOW_TRACKING_URI", None)
        contract.pop("MLFLOW_RUN_ID", None)
    env = sandbox_environment(contract, home, box.uid)
    # the supervisor (outside) keeps Prefect's ids of the flow run (which processes are the job's);
    # the command does not get them
    ids = {k: v for k, v in os.environ.items() if k.startswith("PREFECT__") and k.endswith("_ID")}
    return Prepared(box.argv(inner, mounts=mounts, cwd=cwd, unset=sorted(ids)), {**env, **ids},
                    relay, tuple(cleanup))


@contextlib.contextmanager
def prepared_command(command: str, cwd: str, contract: Mapping[str, str], logger: Any) -> Iterator[Prepared]:
    """How to run ``command``: in the sandbox unless ASSETHUB_SANDBOX=off (refused clearly when
    the sandbox is on but cannot work here); the relay stops and the scaffolding goes after."""
    box = sandbox.from_settings()
    if box is None:
        logger.warning("ASSETHUB_SANDBOX=off: the command runs unsandboxed, as this process's user")
        yield Prepared(["/bin/sh", "-c", command], command_environment(contract))
        return
    prepared = prepare_sandboxed(box, command, cwd, contract, logger)
    try:
        yield prepared
    finally:
        if prepared.relay is not None:
            prepared.relay.stop()
        for p in prepared.cleanup:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() and p.stat().st_size == 0:
                p.unlink()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


@task(name="run_entrypoint", cache_policy=NO_CACHE)
def run_entrypoint(command: str, cwd: str, contract: dict[str, str],
                   timeout: float | None = None) -> CommandResult:
    """Run ``command`` (a shell command line) in ``cwd``; its output goes to the run's log.

    It runs in the sandbox (:mod:`assethub.sandbox`) unless ASSETHUB_SANDBOX=off. ``timeout``
    (default: ASSETHUB_JOB_TIMEOUT_SECONDS) limits its time: past it, the command is killed and
    the job fails saying so. A non-zero exit raises :class:`JobFailedError` with the exit code
    and the last lines.
    """
    logger = get_run_logger()
    limit = job_timeout(timeout)
    logger.info("running `%s` in %s", command, cwd)
    with prepared_command(command, cwd, contract, logger) as prepared:
        started = time.perf_counter()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        # under a supervisor that ends the command's process group if this process dies
        proc = subprocess.Popen([sys.executable, "-I", SUPERVISOR, str(os.getpid()), "--", *prepared.argv],
                                cwd=cwd, env=prepared.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill_group(proc)

        timer = threading.Timer(limit, expire) if limit is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                logger.info("| %s", line)
            code = proc.wait()
        except BaseException:  # cancelled or interrupted: the command must not outlive the job
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
    timed_out = expired.is_set()
    seconds = time.perf_counter() - started
    last = "\n".join(tail)
    if timed_out:
        raise JobFailedError(f"`{command}` ran past its time limit of {limit:g}s and was killed; "
                             f"last lines:\n{last}", exit_code=code, tail=last)
    if code != 0:
        why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise JobFailedError(f"`{command}` {why}; last lines:\n{last}", exit_code=code, tail=last)
    logger.info("`%s` finished in %.1fs", command, seconds)
    return CommandResult(code, seconds, last)
