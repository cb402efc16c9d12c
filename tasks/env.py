"""Where jobs find the server, MLflow and their working space, and which failures are worth a
retry; shared by every task (and public: the flows' pipeline uses the job directories)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from prefect.cache_policies import NO_CACHE

from assethub.client import Client
from assethub.config import home

__all__ = ["NETWORK", "SECRET_VARIABLES", "client", "current_job_run", "discard_job_dir",
           "drop_job_token", "home", "is_transient", "job_dir", "jobs_dir", "make_read_only",
           "redact_url", "remove_tree", "retry_if_transient", "tracking_uri", "use_job_token"]

# Never handed to the training command: it is user code and needs none of these.
SECRET_VARIABLES = ("ASSETHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY", "PREFECT_API_KEY",
                    "ASSETHUB_HOOK_SECRET", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


# The job tokens of the runs this process works in, innermost last (a retrain's steps run in
# its process, each with its own). Process-wide, not per thread: tasks run in worker threads.
_job_tokens: list[tuple[str, str]] = []


def client() -> Client:
    """The SDK client: with the job token of the run this process works in, once it opened or
    claimed one (:func:`use_job_token`); before that, ASSETHUB_URL / ASSETHUB_TOKEN or
    `assethub login` (the person or the service user that starts the job)."""
    if _job_tokens:
        return Client(token=_job_tokens[-1][1], timeout=600.0)
    return Client(timeout=600.0)


def use_job_token(run_id: str, token: str) -> None:
    """From now on :func:`client` acts with run ``run_id``'s job token."""
    _job_tokens.append((run_id, token))


def drop_job_token(run_id: str) -> None:
    """Forget run ``run_id``'s job token (its run ended): the enclosing run's applies again."""
    _job_tokens[:] = [(r, t) for r, t in _job_tokens if r != run_id]


def current_job_run() -> str:
    """The run whose job token :func:`client` uses ("" for none)."""
    return _job_tokens[-1][0] if _job_tokens else ""


def jobs_dir() -> Path:
    d = home() / "jobs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def job_dir(name: str) -> Path:
    """A job's own working directory (not created): its code, inputs and output go there."""
    return jobs_dir() / name


def discard_job_dir(path: Path) -> None:
    """Remove a finished job's directory, unless ASSETHUB_KEEP_JOB_DIR asks to keep it."""
    if not os.environ.get("ASSETHUB_KEEP_JOB_DIR"):
        remove_tree(path)


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI; else the embedded stack's tracking server when it runs; else a
    local SQLite store under the Asset Hub home."""
    from infra import mlflow as tracking

    uri = os.environ.get("MLFLOW_TRACKING_URI", "") or tracking.status() or ""
    if uri:
        return uri
    (home() / "mlflow").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home() / 'mlflow' / 'local.db'}"


def redact_url(url: str) -> str:
    """The URL without a password or token in it, fit for logs and lineage."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def make_read_only(root: Path) -> None:
    for d, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            mode = os.stat(p).st_mode
            if mode & _WRITE:  # files from the download cache are hard links to read-only blobs
                os.chmod(p, mode & ~_WRITE)
    for d, _, _ in os.walk(root, topdown=False):
        Path(d).chmod(0o555)


def remove_tree(root: Path) -> None:
    """Remove a job's directory, read-only parts included."""
    if not root.exists():
        return
    for d, _, _ in os.walk(root):
        Path(d).chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def is_transient(exc: BaseException | None) -> bool:
    """Whether trying again may help: the network, not the request, failed."""
    from assethub.errors import CodeFetchError, StorageUnavailableError, TransferError

    if isinstance(exc, CodeFetchError):
        return exc.transient
    return isinstance(exc, StorageUnavailableError | TransferError | ConnectionError | TimeoutError
                      | httpx.TransportError)


def retry_if_transient(task: object, task_run: object, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry network failures, never a refusal or a bad input."""
    data = getattr(state, "data", None)
    if not isinstance(data, BaseException):
        try:
            data = state.result(raise_on_failure=False)
        except Exception as e:
            data = e
    return is_transient(data if isinstance(data, BaseException) else None)


# Task options for a step that goes over the network: retried, but only when that may help.
NETWORK: dict[str, Any] = {"retries": 2, "retry_delay_seconds": 2,
                           "retry_condition_fn": retry_if_transient, "cache_policy": NO_CACHE}
