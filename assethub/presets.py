"""The training code that ships with Asset Hub: preset algorithms and ``assethub init`` templates.

Each preset is a directory of ``examples/`` (packaged with the project) holding a complete
training repository: ``assethub.yaml`` (train / evaluate commands, typed params), the scripts,
a README. The algorithm library registers them as admin presets; ``assethub init`` copies one
into a new repository. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PRESETS", "Preset", "examples_dir", "preset"]


@dataclass(frozen=True)
class Preset:
    name: str  # the algorithm's name: <task type>/<name>
    example: str  # its directory under examples/
    task_type: str  # one of assethub.wire.TASK_TYPES
    data: str  # the dataset it trains on, for people: a sentence

    @property
    def dir(self) -> Path:
        return examples_dir() / self.example


PRESETS: tuple[Preset, ...] = (
    Preset("image-classification/digits-cnn", "digits-classifier", "image_classification",
           "a `dir` dataset of images in one folder per class (scikit-learn's digits)"),
    Preset("text-classification/ngram-mlp", "text-classifier", "text_classification",
           'a `json` dataset of {"id", "text", "label"} records'),
    Preset("tabular-classification/sklearn-forest", "tabular-classifier", "tabular",
           "a CSV table with a label column (scikit-learn's iris or wine)"),
)


def examples_dir() -> Path:
    """Where the presets' code is: ``examples/`` beside the package in a checkout (and an
    editable install), ``assethub/_examples`` in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_examples", here.parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Asset Hub's examples/ (the preset training code) is not installed")


def preset(name: str) -> Preset:
    """The preset called ``name`` (its full name, or the part after the task type)."""
    for p in PRESETS:
        if name in (p.name, p.name.split("/", 1)[1], p.example):
            return p
    raise KeyError(f"no preset {name!r}; the presets are {', '.join(p.name for p in PRESETS)}")
