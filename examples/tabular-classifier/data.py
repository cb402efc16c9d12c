"""The dataset side of the tabular classifier: read, split and score the rows of CSV tables.

pandas and numpy only (scikit-learn is imported by the scripts once the data is known to be
good), so a bad dataset is reported at once, in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from assethub.runtime import JobContext

LABEL_COLUMNS = ("label", "target")  # looked for, in this order, when the label param is empty
SUFFIXES = {".csv": ",", ".tsv": "\t"}


class DatasetError(ValueError):
    """The dataset is not what this code expects; the message says what was wrong."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the job with one clear line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@dataclass
class Table:
    """Every data row of the dataset, and the data file and row number each came from."""

    frame: Any  # pandas.DataFrame
    keys: list[str]  # "<file>:<row>", 1 the first row under the header

    def __len__(self) -> int:
        return len(self.keys)


def _is_data(rel: Path) -> bool:
    return rel.suffix.lower() in SUFFIXES and not rel.name.lower().startswith(("readme", "license"))


def read_table(root: Path) -> Table:
    """The rows of every .csv / .tsv file under ``root`` (files in path order, one header each)."""
    import pandas as pd

    if not root.is_dir():
        raise DatasetError(f"ASSETHUB_DATASET_DIR={root} is not a directory")
    frames, keys = [], []
    columns: list[str] | None = None
    first = ""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or not _is_data(rel):
            continue
        name = rel.as_posix()
        try:
            frame = pd.read_csv(path, sep=SUFFIXES[path.suffix.lower()], encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise DatasetError(f"{name} is not UTF-8 text") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise DatasetError(f"{name} is not a readable table: {str(e).strip().splitlines()[0]}") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        if columns is None:
            columns, first = list(frame.columns), name
        elif list(frame.columns) != columns:
            raise DatasetError(f"{name} has the columns {', '.join(frame.columns)}; {first} has "
                               f"{', '.join(columns)} (every table of a dataset needs the same header)")
        frames.append(frame)
        keys += [f"{name}:{i}" for i in range(1, len(frame) + 1)]
    if not frames or not keys:
        raise DatasetError(f"no rows in .csv or .tsv files under {root} (a header line, then one row "
                           "per example)")
    return Table(pd.concat(frames, ignore_index=True), keys)


def label_column(table: Table, wanted: str) -> str:
    """The label column's name: ``wanted``, or the first of LABEL_COLUMNS the table has."""
    columns = list(table.frame.columns)
    if wanted:
        if wanted not in columns:
            raise DatasetError(f"no column {wanted!r} (the label param); "
                               f"the columns are {', '.join(columns)}")
        return wanted
    for name in LABEL_COLUMNS:
        if name in columns:
            return name
    raise DatasetError(f"no label column: name one with the label param, or call it 'label' or 'target' "
                       f"(the columns are {', '.join(columns)})")


def features_and_labels(table: Table, label: str) -> tuple[Any, Any]:
    """(the feature columns as a DataFrame, the labels as text).

    Integer columns become floats: a served model then takes a missing value (NaN) in them too.
    """
    frame = table.frame
    missing = frame[label].isna().to_numpy()
    if missing.any():
        at = table.keys[int(np.argmax(missing))]
        raise DatasetError(f"{at}: the label column {label!r} is empty")
    x = frame.drop(columns=[label])
    if x.shape[1] == 0:
        raise DatasetError(f"the table has no feature columns besides the label {label!r}")
    ints = [c for c in x.columns if x[c].dtype.kind in "biu"]
    x = x.astype({c: "float64" for c in ints})
    return x, frame[label].astype(str)


def split(ctx: JobContext, table: Table) -> tuple[Any, Any]:
    """(training row positions, test row positions) as the dataset's split says.

    A training ratio hashes each row's "<file>:<row>" key (the same rows are test rows on every
    run, and appending rows moves none); a test set path takes the rows of the files under it.
    """
    is_test = np.array([ctx.split.is_test(key.rsplit(":", 1)[0] if ctx.split.test_path is not None else key)
                        for key in table.keys])
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if len(test) == 0:
        raise DatasetError(f"the test split is empty (split {ctx.split}, {len(table)} rows)")
    if len(train) == 0:
        raise DatasetError(f"the training split is empty (split {ctx.split}, {len(table)} rows)")
    return train, test


def class_order(labels: Any) -> list[str]:
    """The classes, numbers in numeric order ("2" before "10"), then the rest alphabetically."""
    return sorted(set(labels), key=lambda c: (0, int(c), "") if c.lstrip("-").isdigit() else (1, 0, c))


def classification_metrics(probabilities: Any, y: Any, classes: list[str]) -> dict[str, float]:
    """accuracy, loss (mean negative log-likelihood), macro_f1 and n_test, rounded to 6 places.

    ``probabilities`` has one column per class of ``classes``; ``y`` holds the labels as text.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index.get(c, -1) for c in y])
    known = truth >= 0
    predicted = p.argmax(axis=1)
    eps = 1e-12
    picked = np.where(known, p[np.arange(len(truth)), np.where(known, truth, 0)], 0.0)
    f1s = []
    for k in range(len(classes)):
        tp = int(np.sum((predicted == k) & (truth == k)))
        fp = int(np.sum((predicted == k) & (truth != k)))
        fn = int(np.sum((predicted != k) & (truth == k)))
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": round(float(np.mean(predicted == truth)), 6),
            "loss": round(float(-np.mean(np.log(np.clip(picked, eps, 1.0)))), 6),
            "macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 6),
            "n_test": len(truth)}


def report(metrics: dict[str, float], probabilities: Any, y: Any, classes: list[str]) -> str:
    """A Markdown report: the metrics, then accuracy per class."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    y = list(y)
    lines = ["# Evaluation", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in metrics.items()]
    lines += ["", "| class | rows | accuracy |", "|---|---|---|"]
    for k, c in enumerate(classes):
        rows = [i for i, label in enumerate(y) if label == c]
        if rows:
            right = sum(predicted[i] == k for i in rows)
            lines.append(f"| {c} | {len(rows)} | {right / len(rows):.4f} |")
    return "\n".join(lines) + "\n"
