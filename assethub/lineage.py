"""What produced a model version: the keys a job writes into the lakeFS commit's metadata.

Every model commit made by a job carries :class:`Lineage` as ``assethub.*`` metadata, so the
history is readable with lakeFS's own tools too (``lakectl log`` shows it); the catalog keeps
a copy (runs, evaluations) for fast listing and comparison.

Also the pure decisions made on lineage: the files that record it with the model (the model
card, evaluation records), whether a version should replace another (:func:`decide_merge`),
what reproducing a version runs again (:func:`rerun_of`) and whether the metrics came out the
same (:func:`metric_differences`). No I/O here; the jobs' tasks call these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from assethub.errors import JobSpecError
from assethub.refs import AssetPath, AssetRef

__all__ = ["MODEL_COMMIT", "MODEL_FORMATS", "MODEL_JOBS", "PREFIX", "SERVABLE_FORMATS", "TRAINING_JOBS",
           "EvaluatedVersion",
           "Evaluation", "Lineage", "MergeDecision", "Rerun", "decide_merge", "evaluation_metadata",
           "evaluation_record", "metric_differences", "model_card", "model_commit_of", "model_use",
           "rerun_of"]

PREFIX = "assethub."
_JSON_FIELDS = ("params", "metrics")
# Commits that hold no new model (an evaluation's report, a merge) name the commit that does.
MODEL_COMMIT = PREFIX + "model_commit"
TRAINING_JOBS = ("train", "continue_train")
#: the jobs whose commit holds a new model: the trainings, and an export (its ONNX model)
MODEL_JOBS = (*TRAINING_JOBS, "export")
#: what a training's output holds (``assethub.model_format``): an MLflow model the code wrote to
#: model/; one it logged to its MLflow run, committed as model/; or only its own files (stored,
#: not servable)
MODEL_FORMATS = ("mlflow", "mlflow-logged", "files")
SERVABLE_FORMATS = ("mlflow", "mlflow-logged")


@dataclass(frozen=True, slots=True)
class Lineage:
    """Inputs and results of the job behind one model commit; empty strings when unknown."""

    job: str = ""  # train | continue_train | evaluate
    run_id: str = ""  # the Asset Hub run (catalog)
    dataset: str = ""  # the dataset reference as asked for, e.g. "demo/dataset/img/digits:v1"
    dataset_commit: str = ""
    code_url: str = ""
    code_revision: str = ""
    code_subpath: str = ""
    code_sha: str = ""
    command: str = ""
    base_model: str = ""  # the model reference continued from
    base_model_commit: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    mlflow_run_id: str = ""
    mlflow_experiment_id: str = ""
    prefect_flow_run_id: str = ""
    #: one of MODEL_FORMATS; "" on commits made before it was recorded (those hold model/MLmodel:
    #: a job could commit nothing else then)
    model_format: str = ""
    algorithm: str = ""  # the library's algorithm that gave the code ("" = none)
    algorithm_version: str = ""  # its version number, as text
    settings_commit: str = ""  # the model's main whose .assethub/job.yaml filled what was left out

    @property
    def servable(self) -> bool:
        """Whether the version holds an MLflow model that ``assethub serve`` can serve."""
        return self.model_format in SERVABLE_FORMATS or (not self.model_format and self.job in TRAINING_JOBS)

    def to_metadata(self) -> dict[str, str]:
        """lakeFS commit metadata (string values; params and metrics as JSON)."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if name in _JSON_FIELDS:
                out[PREFIX + name] = json.dumps(value, sort_keys=True)
            elif value:
                out[PREFIX + name] = str(value)
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Lineage | None:
        """The lineage in a commit's metadata, or None for a commit no job made."""
        if PREFIX + "job" not in metadata:
            return None
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = metadata.get(PREFIX + f.name, "")
            if f.name in _JSON_FIELDS:
                try:
                    parsed = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    parsed = {}
                values[f.name] = parsed if isinstance(parsed, dict) else {}
            else:
                values[f.name] = raw
        return cls(**values)


def model_commit_of(history: Iterable[tuple[str, Mapping[str, str]]]) -> str | None:
    """The commit whose model files a ref holds, from its log (newest first).

    A training or export job's commit is its own model commit; evaluation and merge commits name theirs
    in ``assethub.model_commit``; any other commit (a manual upload) is a model version itself.
    """
    for commit_id, metadata in history:
        if metadata.get(MODEL_COMMIT):
            return metadata[MODEL_COMMIT]
        if metadata.get(PREFIX + "job") in MODEL_JOBS or not any(k.startswith(PREFIX) for k in metadata):
            return commit_id
    return None


# -- what a job writes next to the model ----------------------------------------------------------
def evaluation_record(evaluation_id: str, *, model: str, dataset: str, dataset_commit: str,
                      metrics: Mapping[str, float], code_sha: str, run_id: str,
                      created_at: datetime) -> str:
    """``eval/<id>.json`` of a model version: one evaluation, as JSON text."""
    return json.dumps({"id": evaluation_id, "model": model, "dataset": dataset,
                       "dataset_commit": dataset_commit, "metrics": dict(metrics), "code_sha": code_sha,
                       "run_id": run_id, "created_at": created_at.isoformat()},
                      indent=2, sort_keys=True) + "\n"


def evaluation_metadata(*, run_id: str, dataset: str, dataset_commit: str, code_sha: str) -> dict[str, str]:
    """Commit metadata of an evaluation's report (the model commit is added by the commit)."""
    return {PREFIX + "job": "evaluate", PREFIX + "run_id": run_id, PREFIX + "dataset": dataset,
            PREFIX + "dataset_commit": dataset_commit, PREFIX + "code_sha": code_sha}


def model_card(model: str, lineage: Lineage, mlflow_uri: str) -> str:
    """``README.md`` of a trained version (when the job wrote none): its lineage and scores."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(lineage.params.items())) or "| (none) | |"
    scores = "\n".join(f"| {k} | {v:.6g} |" for k, v in sorted(lineage.metrics.items())) or "| (none) | |"
    base = (f"- Base model: `{lineage.base_model}` (commit `{lineage.base_model_commit}`)\n"
            if lineage.base_model else "")
    sub = f" (subpath `{lineage.code_subpath}`)" if lineage.code_subpath else ""
    revision = f" (`{lineage.code_revision}`)" if lineage.code_revision else ""
    return f"""# {AssetPath.parse(model).name}

Trained by Asset Hub ({lineage.job}). Edit this card freely; the lineage below is also kept in
the commit's metadata (`assethub lineage {model}:<ref>`).

## Lineage
- Dataset: `{lineage.dataset}` (commit `{lineage.dataset_commit}`)
- Code: {lineage.code_url} at `{lineage.code_sha}`{revision}{sub}
- Command: `{lineage.command}`
{base}- MLflow run: `{lineage.mlflow_run_id}` ({mlflow_uri})
- Prefect flow run: `{lineage.prefect_flow_run_id}`

## Parameters
| name | value |
|---|---|
{rows}

## Test metrics
| metric | value |
|---|---|
{scores}

## Use
{model_use(model, lineage.model_format or "mlflow")}
"""


def model_use(model: str, model_format: str) -> str:
    """The model card's "Use" section: what the version holds and how to use (or serve) it."""
    if model_format == "files":
        return f"""This version holds the files the training code wrote, as they are: it is **not servable**
(there is no MLflow model). To make the next version servable, have the code write an MLflow
model to `$ASSETHUB_OUTPUT_DIR/model` (`mlflow.<flavor>.save_model`, e.g.
`mlflow.sklearn.save_model(model, os.environ["ASSETHUB_OUTPUT_DIR"] + "/model")`) or log one to
the job's MLflow run (`mlflow.<flavor>.log_model`; `MLFLOW_RUN_ID` is set), then train again and
`assethub serve {model}:<ref>`."""
    how = ("the training code logged it to its MLflow run and Asset Hub committed it here"
           if model_format == "mlflow-logged" else "the training code wrote it")
    return f"""`model/` is an MLflow model ({how}): `mlflow.pyfunc.load_model("model")`, or serve it
with `assethub serve {model}:<ref>`."""


# -- merge decisions ------------------------------------------------------------------------------
class Evaluation(Protocol):
    """What a merge decision reads of an evaluation (the SDK's and the hub's views have it)."""

    @property
    def dataset_commit(self) -> str: ...
    @property
    def metrics(self) -> Mapping[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def trusted(self) -> bool: ...
    @property
    def produced_by(self) -> str: ...


class EvaluatedVersion(Protocol):
    """What a merge decision reads of a model version: its model commit and its evaluations."""

    @property
    def model_commit(self) -> str: ...
    @property
    def evaluations(self) -> Sequence[Evaluation]: ...


@dataclass(frozen=True, slots=True)
class MergeDecision:
    merge: bool
    reason: str
    source_value: float | None = None
    target_value: float | None = None
    #: who produced each number compared: ``run <id> (<user>)`` or ``user <name>``
    source_by: str = ""
    target_by: str = ""


def _scores(version: EvaluatedVersion, metric: str) -> dict[str, Evaluation]:
    """The newest trusted evaluation having ``metric``, per dataset commit."""
    out: dict[str, Evaluation] = {}
    for e in sorted(version.evaluations, key=lambda e: e.created_at):
        if metric in e.metrics and e.trusted:
            out[e.dataset_commit] = e
    return out


def _untrusted(version: EvaluatedVersion, metric: str) -> str:
    n = sum(1 for e in version.evaluations if metric in e.metrics and not e.trusted)
    return f" ({n} untrusted evaluation(s) ignored: recorded before only jobs and editors could)" if n else ""


def decide_merge(source: EvaluatedVersion, target: EvaluatedVersion, metric: str, *,
                 higher_is_better: bool = True, margin: float = 0.0) -> MergeDecision:
    """Whether ``source`` should replace ``target``: on ``metric``, by more than ``margin``,
    compared on the same dataset version when both were evaluated on one."""
    if source.model_commit == target.model_commit:
        return MergeDecision(False, "the source holds the same model as the target")
    if not metric:
        return MergeDecision(True, "no metric given: merge unconditionally")
    src, dst = _scores(source, metric), _scores(target, metric)
    if not src:
        return MergeDecision(False, f"the source has no trusted evaluation with '{metric}'"
                                    f"{_untrusted(source, metric)}: run `assethub evaluate` on it first")
    if not dst:
        best = max(src.values(), key=lambda e: e.created_at)
        return MergeDecision(True, f"the target has no trusted evaluation with '{metric}'"
                                   f"{_untrusted(target, metric)}; the source's {metric} "
                                   f"{float(best.metrics[metric]):.6g} is by {best.produced_by}",
                             float(best.metrics[metric]), source_by=best.produced_by)
    common = [d for d in src if d in dst]
    if common:
        newest = max(common, key=lambda d: src[d].created_at)
        s_e, t_e = src[newest], dst[newest]
        note = f"on dataset commit {newest[:12]}"
    else:
        s_e = max(src.values(), key=lambda e: e.created_at)
        t_e = max(dst.values(), key=lambda e: e.created_at)
        note = (f"on different dataset commits ({s_e.dataset_commit[:12]} vs {t_e.dataset_commit[:12]}): "
                "evaluate both on one dataset version for a fair comparison")
    s, t = float(s_e.metrics[metric]), float(t_e.metrics[metric])
    gain = (s - t) if higher_is_better else (t - s)
    better = gain > margin
    verdict = "better" if better else "not better"
    return MergeDecision(better, f"{metric} {s:.6g} (by {s_e.produced_by}) vs {t:.6g} "
                                 f"(by {t_e.produced_by}) {note}: {verdict} by the margin {margin:g}",
                         s, t, s_e.produced_by, t_e.produced_by)


# -- reproduction ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rerun:
    """The inputs of the job behind a model version, pinned to commits: what reproducing it runs."""

    job: str  # train | continue_train
    dataset: str  # <dataset path>:<commit>
    base_model: str  # <model path>:<commit>, or "" for a fresh training
    code_url: str
    code_sha: str
    code_subpath: str
    command: str
    params: Mapping[str, Any]


def rerun_of(ref: str, model_commit: str, lineage: Lineage | None, repo: str = "") -> Rerun:
    """What to run again to reproduce version ``ref`` (whose model is ``model_commit``);
    ``repo`` replaces a recorded code URL (needed when its credentials were removed)."""
    if lineage is None or lineage.job not in TRAINING_JOBS:
        raise JobSpecError(f"{ref} (commit {model_commit[:12]}) was not made by a training job: "
                           "there is no lineage to reproduce")
    if "***@" in lineage.code_url and not repo:
        raise JobSpecError(f"the recorded code URL {lineage.code_url} had credentials removed; pass --repo")
    base = (f"{AssetRef.parse(lineage.base_model).path}:{lineage.base_model_commit}"
            if lineage.base_model else "")
    return Rerun(lineage.job, f"{AssetRef.parse(lineage.dataset).path}:{lineage.dataset_commit}", base,
                 repo or lineage.code_url, lineage.code_sha, lineage.code_subpath, lineage.command,
                 dict(lineage.params))


def metric_differences(original: Mapping[str, float], again: Mapping[str, float],
                       tolerance: float = 0.0) -> dict[str, tuple[float | None, float | None]]:
    """The metrics that differ (by more than ``tolerance``, relative), as (original, again)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for name in sorted(set(original) | set(again)):
        a, b = original.get(name), again.get(name)
        if a is None or b is None or not math.isclose(a, b, rel_tol=tolerance, abs_tol=0.0):
            out[name] = (a, b)
    return out
