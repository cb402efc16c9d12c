"""Typed access to the training-code contract, for code that Asset Hub runs.

    from assethub import runtime

    ctx = runtime.context()                      # raises ContractError outside a job
    epochs = ctx.param("epochs", 3)              # typed by the default
    train, test = ctx.split.partition(files)     # the dataset's split, deterministic
    ctx.write_metrics({"accuracy": 0.97})

The runner (``tasks.run_entrypoint``) sets these variables; nothing here talks to a server:

==========================  ==================================================================
``ASSETHUB_JOB``            ``train``, ``continue_train`` or ``evaluate``
``ASSETHUB_DATASET_DIR``    the dataset version, downloaded, read-only
``ASSETHUB_OUTPUT_DIR``     where the job writes the model (train) or its report (evaluate)
``ASSETHUB_BASE_MODEL_DIR`` the model version to continue from or to evaluate (may be unset)
``ASSETHUB_PARAMS``         every parameter as a JSON object
``EPOCHS``, ``LR``, ...     each parameter also as an upper-case variable (``batch-size``: ``BATCH_SIZE``)
``ASSETHUB_SPLIT``          a training ratio (``0.9``) or the independent test set's path
``ASSETHUB_METRICS_FILE``   where the job writes its metrics as a JSON object
``MLFLOW_TRACKING_URI``     with ``MLFLOW_RUN_ID``: the job's MLflow run, for the code's own logging
``DEVICE``                  ``cuda`` or ``cpu``, from the work pool (also ``ASSETHUB_DEVICE``)
``ASSETHUB_GPUS``           how many GPUs the job may use (``0`` on ``cpu``)
==========================  ==================================================================
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from assethub.params import env_vars

__all__ = ["DEVICES", "JOBS", "ContractError", "JobContext", "Split", "context", "environment"]

JOBS = ("train", "continue_train", "evaluate")
DEVICES = ("cuda", "cpu")
DEFAULT_SPLIT_RATIO = 0.8  # when a dataset declares no split
T = TypeVar("T")


class ContractError(RuntimeError):
    """The job's environment is missing or malformed (the code runs outside Asset Hub?)."""


@dataclass(frozen=True, slots=True)
class Split:
    """How a dataset splits into training and test data: a ratio, or a test set's path."""

    ratio: float | None = None
    test_path: Path | None = None
    root: Path | None = None  # the dataset directory: relative keys are relative to it

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.test_path is None):
            raise ContractError("a split is a training ratio or a test set path, exactly one")
        if self.ratio is not None and not 0 < self.ratio < 1:
            raise ContractError(f"training ratio must be between 0 and 1, not {self.ratio}")

    @classmethod
    def parse(cls, value: str, dataset_dir: Path | None = None) -> Split:
        """``"0.9"`` is a ratio; anything else is the test set's path (relative to the dataset)."""
        value = value.strip()
        if not value:
            return cls(ratio=DEFAULT_SPLIT_RATIO)
        try:
            ratio = float(value)
        except ValueError:
            path = Path(value)
            if not path.is_absolute() and dataset_dir is not None:
                path = dataset_dir / path
            return cls(test_path=path, root=dataset_dir)
        if not math.isfinite(ratio):
            raise ContractError(f"ASSETHUB_SPLIT={value!r} is not a ratio or a path")
        return cls(ratio=ratio)

    def __str__(self) -> str:
        return str(self.ratio) if self.ratio is not None else str(self.test_path)

    def is_test(self, key: str) -> bool:
        """Whether the item named ``key`` belongs to the test split.

        With a ratio the choice hashes the key, so it is the same on every run and machine
        and does not move when items are added; with a test set it is a path prefix.
        """
        if self.test_path is not None:
            path = Path(key)
            if not path.is_absolute() and self.root is not None:
                path = self.root / path
            return path == self.test_path or self.test_path in path.parents
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 >= float(self.ratio or 0)

    def partition(self, items: Iterable[T], key: Callable[[T], str] = str) -> tuple[list[T], list[T]]:
        """(training items, test items), each in the order given."""
        train: list[T] = []
        test: list[T] = []
        for item in items:
            (test if self.is_test(key(item)) else train).append(item)
        return train, test


@dataclass(frozen=True, slots=True)
class JobContext:
    job: str
    dataset_dir: Path
    output_dir: Path
    base_model_dir: Path | None
    params: Mapping[str, Any]
    split: Split
    metrics_file: Path
    mlflow_tracking_uri: str = ""
    mlflow_run_id: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    device: str = "cpu"  # cuda | cpu: what the work pool runs the job on
    gpus: int = 0

    def param(self, name: str, default: T) -> T:
        """A parameter converted to the type of ``default`` (ints stay ints, "3" becomes 3)."""
        if name not in self.params:
            return default
        value = self.params[name]
        try:
            if isinstance(default, bool):
                return (value if isinstance(value, bool)  # type: ignore[return-value]
                        else str(value).strip().lower() in ("1", "true", "yes", "on"))
            if isinstance(default, int | float | str):
                return type(default)(value)
        except (TypeError, ValueError):
            raise ContractError(f"parameter {name}={value!r} is not a {type(default).__name__}") from None
        return value  # type: ignore[no-any-return]

    def write_metrics(self, metrics: Mapping[str, float]) -> Path:
        """Write the job's metrics (name → number) where the runner reads them."""
        bad = {k: v for k, v in metrics.items()
               if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v)}
        if bad:
            raise ContractError(f"metrics must be finite numbers: {bad}")
        self.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        self.metrics_file.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n")
        return self.metrics_file


def _path(env: Mapping[str, str], name: str) -> Path:
    value = env.get(name, "")
    if not value:
        raise ContractError(f"{name} is not set: this code expects to be run by Asset Hub "
                            "(`assethub train ...`), or set the ASSETHUB_* variables yourself")
    return Path(value)


def context(env: Mapping[str, str] | None = None) -> JobContext:
    """The current job's contract, read from the environment (or ``env``)."""
    env = os.environ if env is None else env
    job = env.get("ASSETHUB_JOB", "train")
    if job not in JOBS:
        raise ContractError(f"ASSETHUB_JOB={job!r}; expected one of {', '.join(JOBS)}")
    dataset_dir = _path(env, "ASSETHUB_DATASET_DIR")
    output_dir = _path(env, "ASSETHUB_OUTPUT_DIR")
    try:
        params = json.loads(env.get("ASSETHUB_PARAMS") or "{}")
    except json.JSONDecodeError as e:
        raise ContractError(f"ASSETHUB_PARAMS is not JSON: {e}") from None
    if not isinstance(params, dict):
        raise ContractError("ASSETHUB_PARAMS must be a JSON object")
    base = env.get("ASSETHUB_BASE_MODEL_DIR", "")
    device = (env.get("ASSETHUB_DEVICE") or env.get("DEVICE") or "cpu").strip().lower()
    if device not in DEVICES:
        raise ContractError(f"ASSETHUB_DEVICE={device!r}; expected one of {', '.join(DEVICES)}")
    try:
        gpus = int(env.get("ASSETHUB_GPUS") or (1 if device == "cuda" else 0))
    except ValueError:
        raise ContractError(f"ASSETHUB_GPUS={env.get('ASSETHUB_GPUS')!r} is not a number") from None
    metrics = env.get("ASSETHUB_METRICS_FILE") or str(output_dir / "metrics.json")
    return JobContext(
        job=job, dataset_dir=dataset_dir, output_dir=output_dir,
        base_model_dir=Path(base) if base else None, params=params,
        split=Split.parse(env.get("ASSETHUB_SPLIT", ""), dataset_dir),
        metrics_file=Path(metrics), mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
        mlflow_run_id=env.get("MLFLOW_RUN_ID", ""), device=device, gpus=gpus)


def environment(ctx: JobContext) -> dict[str, str]:
    """The variables that carry ``ctx`` to a subprocess (the inverse of :func:`context`)."""
    env = {"ASSETHUB_JOB": ctx.job, "ASSETHUB_DATASET_DIR": str(ctx.dataset_dir),
           "ASSETHUB_OUTPUT_DIR": str(ctx.output_dir),
           "ASSETHUB_PARAMS": json.dumps(dict(ctx.params), sort_keys=True),
           "ASSETHUB_SPLIT": str(ctx.split), "ASSETHUB_METRICS_FILE": str(ctx.metrics_file)}
    # DEVICE first: a declared param named ``device`` is the code's own choice and wins there
    env = {"DEVICE": ctx.device, **env_vars(ctx.params), **env,
           "ASSETHUB_DEVICE": ctx.device, "ASSETHUB_GPUS": str(ctx.gpus)}
    if ctx.base_model_dir is not None:
        env["ASSETHUB_BASE_MODEL_DIR"] = str(ctx.base_model_dir)
    if ctx.mlflow_tracking_uri:
        env["MLFLOW_TRACKING_URI"] = ctx.mlflow_tracking_uri
    if ctx.mlflow_run_id:
        env["MLFLOW_RUN_ID"] = ctx.mlflow_run_id
    return {**env, **ctx.extra}
