"""The dataset side of the text classifier: read, split and score the JSON records.

Only the standard library and numpy here, so a bad dataset is reported before torch & co.
are imported.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from assethub.runtime import JobContext


class DatasetError(ValueError):
    """The dataset is not what this code expects; the message says what was wrong."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the job with one clear line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    label: str
    file: str  # the data file, relative to the dataset (for a test set given as a path)


def _is_data(rel: Path) -> bool:
    name = rel.name.lower()
    return rel.suffix.lower() in (".jsonl", ".json") and not name.startswith(("readme", "license"))


def _parse(rel: str, line: int, raw: object) -> Record:
    where = f"{rel} line {line}" if rel.endswith(".jsonl") else f"{rel} record {line}"
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: a record must be a JSON object with 'text' and 'label'")
    text, label = raw.get("text"), raw.get("label")
    if not isinstance(text, str):
        raise DatasetError(f"{where}: 'text' is missing or not a string")
    if not isinstance(label, str | int) or isinstance(label, bool) or str(label) == "":
        raise DatasetError(f"{where}: 'label' is missing or not a string")
    ident = raw.get("id")
    return Record(str(ident) if ident not in (None, "") else f"{rel}:{line}", text, str(label), rel)


def read_records(root: Path) -> list[Record]:
    """Every record of every .jsonl / .json data file under ``root``, files in path order."""
    if not root.is_dir():
        raise DatasetError(f"ASSETHUB_DATASET_DIR={root} is not a directory")
    records: list[Record] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or not _is_data(rel):
            continue
        name = rel.as_posix()
        try:
            if path.suffix.lower() == ".jsonl":
                with path.open(encoding="utf-8-sig") as f:
                    for line, text in enumerate(f, 1):
                        if text.strip():
                            records.append(_parse(name, line, json.loads(text)))
            else:
                doc = json.loads(path.read_text(encoding="utf-8-sig"))
                for i, raw in enumerate(doc if isinstance(doc, list) else [doc], 1):
                    records.append(_parse(name, i, raw))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{name} is not valid JSON{' Lines' if name.endswith('l') else ''}: "
                               f"{e.msg} (line {e.lineno})") from None
        except UnicodeDecodeError:
            raise DatasetError(f"{name} is not UTF-8 text") from None
    if not records:
        raise DatasetError(f"no .jsonl or .json files with {{\"text\", \"label\"}} records in "
                           f"ASSETHUB_DATASET_DIR={root} (expected the `json` format, e.g. data.jsonl)")
    return records


def split(ctx: JobContext, records: list[Record]) -> tuple[list[Record], list[Record]]:
    """(training records, test records) by the dataset's split: with a training ratio each record
    goes by its id; with a test set path, by the file it is in."""
    by_path = ctx.split.test_path is not None
    train, test = ctx.split.partition(records, key=lambda r: r.file if by_path else r.id)
    where = f"ASSETHUB_DATASET_DIR={ctx.dataset_dir} with ASSETHUB_SPLIT={ctx.split}"
    if not test:
        raise DatasetError(f"the test split is empty ({where})")
    if not train:
        raise DatasetError(f"the training split is empty ({where})")
    return train, test


def probabilities(model: Any, texts: list[str], classes: list[str]) -> np.ndarray:
    """(N, classes) probabilities from an MLflow model's predictions for ``texts``."""
    import pandas as pd

    predicted = model.predict(pd.DataFrame({"text": texts}))
    return np.array([[row[c] for c in classes] for row in predicted["probabilities"]], dtype=np.float64)


def classification_metrics(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """accuracy, loss (mean negative log-likelihood), macro_f1 and n_test of predicted probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = p.argmax(axis=1)
    likelihood = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
    f1 = []
    for c in np.unique(y):
        tp = float(np.sum((predicted == c) & (y == c)))
        fp = float(np.sum((predicted == c) & (y != c)))
        fn = float(np.sum((predicted != c) & (y == c)))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": round(float(np.mean(predicted == y)), 6),
            "loss": round(float(-np.mean(np.log(likelihood))), 6),
            "macro_f1": round(float(np.mean(f1)), 6),
            "n_test": len(y)}


def confusion_report(probabilities: np.ndarray, y: np.ndarray, classes: list[str]) -> str:
    """A Markdown table: per class, how many test records there are and how many were right."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    rows = []
    for i, name in enumerate(classes):
        n = int(np.sum(y == i))
        if n:
            right = int(np.sum((y == i) & (predicted == i)))
            rows.append(f"| {name} | {n} | {right} | {right / n:.3f} |")
    return "| class | records | correct | accuracy |\n|---|---|---|---|\n" + "\n".join(rows)
