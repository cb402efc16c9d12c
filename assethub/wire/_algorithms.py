"""The algorithm library and models' job settings. See :mod:`assethub.wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: the fields of a model's job settings (``.assethub/job.yaml`` on its main)
JOB_SETTINGS_FIELDS = ("repo", "revision", "subpath", "train_command", "evaluate_command", "dataset",
                       "params", "resources", "algorithm")


@dataclass(frozen=True, slots=True)
class JobSettingsView:
    """A model's job settings as stored on its ``main`` (``.assethub/job.yaml``) and the commit
    that holds them ("" when the model has none)."""

    model: str
    commit: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlgorithmVersionView:
    """One version of an algorithm: the code and how to run it."""

    version: int
    code_url: str
    code_revision: str
    code_subpath: str
    task_type: str
    params: dict[str, Any]  # declarations, as assethub.yaml writes them
    train_command: str
    evaluate_command: str
    predict_command: str
    resources: dict[str, Any]
    description: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlgorithmView:
    """An algorithm of the library, its latest version (or the one asked for) and, in a full
    view, all of them; ``role`` is the caller's: view, edit or owner."""

    name: str
    owner: str
    public: bool
    preset: bool
    created_at: datetime
    updated_at: datetime
    latest: int
    current: AlgorithmVersionView
    role: str = "view"
    versions: tuple[AlgorithmVersionView, ...] = field(default_factory=tuple)
    shares: tuple[AlgorithmShareView, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class AlgorithmShareView:
    """An algorithm shared with a user, a group or everyone."""

    algorithm: str
    subject_type: str
    subject_name: str
    role: str
    created_by: str
