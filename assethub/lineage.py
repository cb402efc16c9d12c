"""What produced a model version: the keys a job writes into the lakeFS commit's metadata.

Every model commit made by a job carries :class:`Lineage` as ``assethub.*`` metadata, so the
history is readable with lakeFS's own tools too (``lakectl log`` shows it); the catalog keeps
a copy (runs, evaluations) for fast listing and comparison.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["MODEL_COMMIT", "PREFIX", "TRAINING_JOBS", "Lineage", "model_commit_of"]

PREFIX = "assethub."
_JSON_FIELDS = ("params", "metrics")
# Commits that hold no new model (an evaluation's report, a merge) name the commit that does.
MODEL_COMMIT = PREFIX + "model_commit"
TRAINING_JOBS = ("train", "continue_train")


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

    A training job's commit is its own model commit; evaluation and merge commits name theirs
    in ``assethub.model_commit``; any other commit (a manual upload) is a model version itself.
    """
    for commit_id, metadata in history:
        if metadata.get(MODEL_COMMIT):
            return metadata[MODEL_COMMIT]
        if metadata.get(PREFIX + "job") in TRAINING_JOBS or not any(k.startswith(PREFIX) for k in metadata):
            return commit_id
    return None
