"""The example datasets, made from data that installed packages ship (nothing is downloaded).

    python examples/datasets.py digits OUT [--layout test_set|flat]   # `dir` format, PNG files
    python examples/datasets.py stdlib-docs OUT                       # `json` format, data.jsonl
    python examples/datasets.py iris OUT  (or wine)                   # `single_text` format, data.csv

- digits: scikit-learn's 1,797 handwritten digits as 32x32 grayscale PNG files, under
  ``train/<label>/`` and ``test/<label>/`` (a stratified, seeded 80/20 split; the dataset's
  split is the test set path ``test``), or under ``<label>/`` only with ``--layout flat``.
- stdlib-docs: docstrings of public functions, classes and methods of Python's standard
  library, labelled with one of four topics by the module they document (text, files,
  network, math); records ``{"id", "text", "label"}``, meant for a ratio split.
- iris, wine: scikit-learn's iris (150 rows, 4 measurements, 3 species) and wine (178 rows,
  13 chemical measurements, 3 cultivars) as one CSV table, ``data.csv``, with a header of
  snake_case column names and the class in the last column, ``label``; meant for a ratio split.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STDLIB_TOPICS", "TABLES", "digits_test_arrays", "stdlib_docs", "write_digits",
           "write_stdlib_docs", "write_table"]

DIGITS_SIZE = 32
DIGITS_LAYOUTS = ("test_set", "flat")

# topic -> the modules whose docstrings carry it (Python 3.11's standard library)
STDLIB_TOPICS: dict[str, tuple[str, ...]] = {
    "text": ("re", "string", "textwrap", "difflib", "unicodedata", "codecs", "html", "html.parser",
             "shlex", "gettext", "locale"),
    "files": ("os", "shutil", "pathlib", "glob", "tempfile", "zipfile", "tarfile", "filecmp"),
    "network": ("socket", "ssl", "http.client", "urllib.request", "urllib.parse", "smtplib", "ftplib",
                "imaplib"),
    "math": ("math", "cmath", "statistics", "decimal", "fractions", "random", "numbers"),
}
# name -> (scikit-learn loader, what the rows are, where the data comes from)
TABLES: dict[str, tuple[str, str, str]] = {
    "iris": ("load_iris", "150 iris flowers: sepal and petal length and width (cm); label: the species",
             "R. A. Fisher's iris data (UCI ML repository)"),
    "wine": ("load_wine", "178 wines: 13 results of a chemical analysis; label: the cultivar",
             "the UCI ML wine recognition data"),
}
MIN_DOC_CHARS = 40  # shorter docstrings ("Return self.") say nothing about their topic
MAX_DOC_CHARS = 2000


def write_digits(root: Path | str, layout: str = "test_set") -> int:
    """scikit-learn's digits as 32x32 grayscale PNG files in class folders; the number of files.

    ``layout="test_set"``: ``train/<label>/`` and ``test/<label>/`` (stratified 80/20, seeded);
    ``layout="flat"``: ``<label>/`` only, for a ratio split.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if layout not in DIGITS_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(DIGITS_LAYOUTS)}, not {layout!r}")
    root = Path(root)
    digits = load_digits()
    # 8x8 images with values 0..16 -> 32x32 uint8 (nearest neighbour keeps the strokes sharp)
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    if layout == "flat":
        parts = [("", pixels, digits.target)]
    else:
        x_train, x_test, y_train, y_test = train_test_split(
            pixels, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
        parts = [("train", x_train, y_train), ("test", x_test, y_test)]
    n = 0
    for split, xs, ys in parts:
        for i, (img, label) in enumerate(zip(xs, ys, strict=True)):
            out = root / split / str(label) / f"{i:04d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).resize((DIGITS_SIZE, DIGITS_SIZE), Image.NEAREST).save(out)
            n += 1
    split_note = ("independent test set in `test/` (stratified 20%, seeded)" if layout == "test_set"
                  else "none in the files (one folder per class): use a training ratio")
    (root / "README.md").write_text(
        "# digits\n\n"
        f"{n:,} handwritten digits from scikit-learn (`sklearn.datasets.load_digits`, originally the\n"
        "UCI ML hand-written digits data), as 32x32 grayscale PNG files, one folder per class (0-9).\n\n"
        f"Split: {split_note}.\n\nLicense: BSD-3-Clause (scikit-learn).\n")
    return n


def digits_test_arrays(dataset_dir: Path | str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The digits test set (``test/<label>/*.png``) as the models take it: (x, y).

    x is float32 of shape (N, 1, 32, 32) holding pixel/255; y holds the integer labels.
    """
    from PIL import Image

    files = sorted(Path(dataset_dir, "test").glob("*/*.png"))[:limit]
    if not files:
        raise FileNotFoundError(f"no PNG files under test/<label>/ in {dataset_dir}")
    x = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255.0 for f in files])
    y = np.array([int(f.parent.name) for f in files])
    return x[:, None], y


def _own(obj: Any, module: str) -> bool:
    """Whether ``obj`` is defined by ``module`` (or its C accelerator), not imported into it."""
    owner = getattr(obj, "__module__", None) or ""
    last = module.rsplit(".", 1)[-1]
    return owner in (module, f"_{last}") or (module == "os" and owner == "posix")


def _documented(module: str) -> Iterator[tuple[str, Any]]:
    """(qualified name, object) of the public functions, classes and methods of ``module``."""
    mod = importlib.import_module(module)
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not _own(obj, module):
            continue
        yield f"{module}.{name}", obj
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isroutine(member) or isinstance(member, property):
                    yield f"{module}.{name}.{attr}", member


def stdlib_docs() -> list[dict[str, str]]:
    """The stdlib-docs records, deduplicated, in a fixed order (topics, modules, names)."""
    records: list[dict[str, str]] = []
    seen: set[str] = set()
    for label, modules in STDLIB_TOPICS.items():
        for module in modules:
            for qualname, obj in _documented(module):
                doc = obj.__doc__
                if not isinstance(doc, str):
                    continue
                text = inspect.cleandoc(doc).strip()[:MAX_DOC_CHARS]
                if len(text) < MIN_DOC_CHARS or text in seen:
                    continue
                seen.add(text)
                records.append({"id": qualname, "text": text, "label": label})
    return records


def write_stdlib_docs(root: Path | str) -> int:
    """The stdlib-docs dataset (`json` format: data.jsonl + README.md); the number of records."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = stdlib_docs()
    with (root / "data.jsonl").open("w") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    counts = Counter(r["label"] for r in records)
    rows = "\n".join(f"| {label} | {counts[label]} | {', '.join(mods)} |"
                     for label, mods in STDLIB_TOPICS.items())
    version = ".".join(map(str, sys.version_info[:3]))
    (root / "README.md").write_text(
        "# stdlib-docs\n\n"
        f"{len(records):,} docstrings of public functions, classes and methods of Python {version}'s\n"
        "standard library, each labelled with the topic of the module that defines it. Records in\n"
        '`data.jsonl`: `{"id": "<module>.<name>", "text": "<docstring>", "label": "<topic>"}`.\n'
        f"Docstrings shorter than {MIN_DOC_CHARS} characters are left out, duplicates are kept once,\n"
        f"long ones are cut at {MAX_DOC_CHARS} characters.\n\n"
        f"| label | records | modules |\n|---|---|---|\n{rows}\n\n"
        "Split: none in the files; use a training ratio (e.g. 0.8).\n\n"
        "License: Python Software Foundation License (the docstrings are part of CPython).\n")
    return len(records)


def _column(name: str) -> str:
    """A column name in snake_case: ``sepal length (cm)`` -> ``sepal_length_cm``."""
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


def write_table(root: Path | str, name: str = "iris") -> int:
    """scikit-learn's ``name`` (iris or wine) as ``data.csv`` + README.md; the number of rows."""
    import csv

    from sklearn import datasets

    if name not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)}, not {name!r}")
    loader, rows, source = TABLES[name]
    bunch = getattr(datasets, loader)()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    columns = [_column(c) for c in bunch.feature_names]
    classes = [str(c) for c in bunch.target_names]
    with (root / "data.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*columns, "label"])
        for x, y in zip(bunch.data, bunch.target, strict=True):
            out.writerow([*(f"{v:g}" for v in x), classes[int(y)]])
    (root / "README.md").write_text(
        f"# {name}\n\n{rows}, from scikit-learn (`sklearn.datasets.{loader}`, originally {source}),\n"
        f"as one CSV table, `data.csv`: a header, then one row per example. Columns: "
        f"{', '.join(f'`{c}`' for c in columns)}, `label` ({', '.join(classes)}).\n\n"
        "Split: none in the file; use a training ratio (e.g. 0.8).\n\n"
        "License: BSD-3-Clause (scikit-learn).\n")
    return len(bunch.target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    digits = sub.add_parser("digits", help="scikit-learn digits as PNG files (dir format)")
    digits.add_argument("out", type=Path)
    digits.add_argument("--layout", choices=DIGITS_LAYOUTS, default="test_set")
    docs = sub.add_parser("stdlib-docs", help="standard-library docstrings by topic (json format)")
    docs.add_argument("out", type=Path)
    for table, (_, rows, _) in TABLES.items():
        sub.add_parser(table, help=f"{rows} (single_text format: data.csv)").add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.dataset in TABLES:
        print(f"wrote {write_table(args.out, args.dataset)} rows to {args.out / 'data.csv'}")
    elif args.dataset == "digits":
        print(f"wrote {write_digits(args.out, args.layout)} PNG files to {args.out}")
    else:
        print(f"wrote {write_stdlib_docs(args.out)} records to {args.out / 'data.jsonl'}")


if __name__ == "__main__":
    main()
