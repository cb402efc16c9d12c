"""Dataset statistics and the sample-level diff, computed from local files (no server, no lakeFS).

:func:`compute` reads one version's files under a directory and says what it holds: samples per
class and per split (the dataset's split rule, :class:`assethub.runtime.Split`, as jobs apply
it), file sizes, image sizes (Pillow reads the header only), text lengths, brat annotation
counts, and for each table (CSV, TSV, JSON lines, Parquet) its columns' types, missing values
and most frequent values. Tables are read in chunks of :data:`CHUNK_ROWS` rows and value counts
are bounded (:data:`MAX_DISTINCT`), so memory stays bounded whatever the size of a table.

:func:`diff_samples` compares two versions' samples from their listings (path -> content hash)
and :func:`diff_table` two versions of a table by a key column or by row content.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from assethub.errors import InvalidDatasetError, InvalidReferenceError
from assethub.runtime import DEFAULT_SPLIT_RATIO, Split
from assethub.wire._stats import (
    MAX_MOVES,
    ColumnStats,
    DatasetStats,
    MovedSample,
    NumberSummary,
    SampleChanges,
    TableRowDiff,
    TableStats,
)

__all__ = ["CHUNK_ROWS", "MAX_DISTINCT", "TOP_N", "Sample", "compute", "diff_samples", "diff_table",
           "file_samples", "split_of", "split_rule", "stats_from_json"]

SPLIT_FOLDERS = ("train", "val", "validation", "test")
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
TABLES = {".csv", ".tsv", ".parquet", ".jsonl"}
LABEL_COLUMNS = ("label", "target")  # a table's class column, as the tabular example finds it
TOP_N = 10
CHUNK_ROWS = 50_000
MAX_DISTINCT = 10_000  # values counted per column before the counts become approximate
_BRAT_KINDS = {"T": "entity", "R": "relation", "E": "event", "A": "attribute", "M": "attribute",
               "N": "normalization", "#": "note", "*": "equiv"}
_BRAT_CONF = {"annotation.conf", "visual.conf", "tools.conf", "kb_shortcuts.conf"}


# -- the split rule ------------------------------------------------------------------------------
def split_rule(split_mode: str | None, split_ratio: float | None,
               test_set_path: str | None) -> tuple[Split, str]:
    """The dataset's split rule as jobs apply it (ratio, test set path, or the default ratio),
    and its description (also the part of the cache key that depends on the settings)."""
    if test_set_path and split_mode in ("test_set", None):
        p = test_set_path.strip("/")
        return Split(test_path=Path(p)), f"test set {p}"
    if split_ratio:
        return Split(ratio=split_ratio), f"ratio {split_ratio:g}"
    return Split(ratio=DEFAULT_SPLIT_RATIO), f"ratio {DEFAULT_SPLIT_RATIO:g} (default)"


def split_of(split: Split, key: str, *, folder: str | None = None) -> str:
    """``folder`` (the version's own split folder) or train/test by the rule."""
    if folder is not None:
        return folder
    return "test" if split.is_test(key) else "train"


# -- small accumulators --------------------------------------------------------------------------
class _Numbers:
    __slots__ = ("count", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.min = x if self.min is None or x < self.min else self.min
        self.max = x if self.max is None or x > self.max else self.max

    def summary(self) -> NumberSummary | None:
        if not self.count:
            return None
        total = int(self.total) if self.total.is_integer() else self.total
        return NumberSummary(self.count, total, self.min, self.max, self.total / self.count)


def _numbers(values: Iterable[float]) -> _Numbers:
    n = _Numbers()
    for v in values:
        n.add(v)
    return n


class _Column:
    """One column of a table, summed over its chunks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype: str | None = None
        self.missing = 0
        self.counts: Counter[str] = Counter()
        self.exact = True
        self.numeric = True
        self.min: float | None = None
        self.max: float | None = None
        self.sum = 0.0
        self.n = 0

    def add(self, s: Any) -> None:
        kind = s.dtype.kind
        dtype = str(s.dtype)
        if self.dtype is None:
            self.dtype = dtype
        elif self.dtype != dtype:  # chunks typed apart (an int column with a gap reads as float)
            both = {self.dtype, dtype}
            self.dtype = ("float64" if all(d.startswith(("int", "float", "uint")) for d in both)
                          else "object")
        self.missing += int(s.isna().sum())
        if kind in "iuf" and self.numeric:
            values = s.dropna()
            if len(values):
                lo, hi = float(values.min()), float(values.max())
                self.min = lo if self.min is None else min(self.min, lo)
                self.max = hi if self.max is None else max(self.max, hi)
                self.sum += float(values.sum())
                self.n += len(values)
        else:
            self.numeric = False
        try:
            counts = s.value_counts(dropna=True)
        except TypeError:  # unhashable values (lists, objects of JSON lines): counted as text
            counts = s[s.notna()].astype(str).value_counts()
        for value, n in counts.items():
            self.counts[str(value)] += int(n)
        if len(self.counts) > 2 * MAX_DISTINCT:  # keep the most frequent: bounded memory
            self.counts = Counter(dict(self.counts.most_common(MAX_DISTINCT)))
            self.exact = False

    def stats(self) -> ColumnStats:
        top = tuple(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N])
        numeric = self.numeric and self.n > 0
        return ColumnStats(self.name, self.dtype or "object", self.missing,
                           len(self.counts) if self.exact else None, top, self.exact,
                           self.min if numeric else None, self.max if numeric else None,
                           self.sum / self.n if numeric else None)


# -- reading files -------------------------------------------------------------------------------
def _ext(rel: str) -> str:
    return PurePosixPath(rel).suffix.lower()


def _is_meta(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1].lower()
    return PurePosixPath(name).stem == "readme" or name.startswith("license")


def _chars(path: Path) -> int:
    """Characters of a UTF-8 text file, read in chunks (undecodable bytes count as one each)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += len(decoder.decode(chunk))
    return n + len(decoder.decode(b"", final=True))


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:  # lazy: the header only, no pixels decoded
            return img.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def table_chunks(path: Path, rel: str, *, as_text: bool = False) -> Iterator[Any]:
    """A table file as pandas DataFrames of at most :data:`CHUNK_ROWS` rows (all values as text
    when ``as_text``: row hashes then do not depend on how a chunk's types were guessed)."""
    import pandas as pd

    ext = _ext(rel)
    try:
        if ext == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
                frame = batch.to_pandas()
                yield frame.astype(str) if as_text else frame
        elif ext == ".jsonl":
            with pd.read_json(path, lines=True, chunksize=CHUNK_ROWS,
                              dtype=not as_text) as reader:
                for frame in reader:
                    yield frame.astype(str) if as_text else frame
        else:
            text = {"dtype": str, "keep_default_na": False} if as_text else {}
            with pd.read_csv(path, sep="\t" if ext == ".tsv" else ",", chunksize=CHUNK_ROWS,
                             encoding="utf-8-sig", **text) as reader:
                yield from reader
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' parser errors are ValueErrors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InvalidDatasetError(f"not a readable table: {first}", path=rel) from None
    except ImportError as e:  # pragma: no cover - pyarrow comes with the server's dependencies
        raise InvalidDatasetError(f"cannot read {ext} files here: {e}", path=rel) from None


# -- statistics ----------------------------------------------------------------------------------
@dataclass
class _Acc:
    per_split_class: dict[str, Counter[str]]
    per_split: Counter[str]
    texts: _Numbers

    def sample(self, split: str, label: str | None) -> None:
        self.per_split[split] += 1
        if label is not None:
            self.per_split_class[split][label] += 1


def _walk(root: Path) -> list[tuple[str, Path, int]]:
    out = []
    for here, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            p = Path(here, name)
            if p.is_symlink() or not p.is_file():
                continue
            out.append((p.relative_to(root).as_posix(), p, p.stat().st_size))
    return out


def _class_file(rel: str) -> tuple[str | None, str] | None:
    """(split folder or None, class) of a file in ``<class>/`` or ``<split>/<class>/``."""
    parts = rel.split("/")
    if len(parts) == 3 and parts[0].lower() in SPLIT_FOLDERS:
        return parts[0].lower(), parts[1]
    if len(parts) == 2 and parts[0].lower() not in SPLIT_FOLDERS:
        return None, parts[0]
    return None


def _table_samples(path: Path, rel: str, split: Split, acc: _Acc) -> TableStats:
    """A table's column statistics; its rows counted as samples (class: its label column)."""
    columns: dict[str, _Column] = {}
    rows = 0
    for frame in table_chunks(path, rel):
        frame.columns = [str(c).strip() for c in frame.columns]
        label = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
        labels: list[Any] = ([None] * len(frame) if label is None else  # a missing label: no class
                             frame[label].astype(object).where(frame[label].notna(), None).tolist())
        for i, value in enumerate(labels):
            key = rel if split.test_path is not None else f"{rel}:{rows + i + 1}"
            acc.sample(split_of(split, key), None if value is None else str(value))
        rows += len(frame)
        for name in frame.columns:
            columns.setdefault(name, _Column(name)).add(frame[name])
    return TableStats(rel, rows, tuple(c.stats() for c in columns.values()))


def _table_only(path: Path, rel: str) -> TableStats:
    columns: dict[str, _Column] = {}
    rows = 0
    for frame in table_chunks(path, rel):
        rows += len(frame)
        for name in frame.columns:
            columns.setdefault(str(name), _Column(str(name))).add(frame[name])
    return TableStats(rel, rows, tuple(c.stats() for c in columns.values()))


def _records(path: Path, rel: str) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            if rel.endswith(".jsonl"):
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        yield n, json.loads(line)
            else:
                doc = json.load(fh)
                yield from enumerate(doc if isinstance(doc, list) else [doc], 1)
    except json.JSONDecodeError as e:
        raise InvalidDatasetError(f"invalid JSON at line {e.lineno}: {e.msg}", path=rel) from None
    except UnicodeDecodeError:
        raise InvalidDatasetError("not UTF-8 text", path=rel) from None


def _brat(path: Path, counts: dict[str, Counter[str]]) -> None:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            ident, _, rest = line.rstrip("\n").partition("\t")
            kind = _BRAT_KINDS.get(ident[:1])
            if not ident or kind is None:
                continue
            first = rest.split(" ", 1)[0].split(":", 1)[0] if kind != "note" else "note"
            if first:
                counts[kind][first] += 1


def compute(root: Path, *, asset: str, commit_id: str, data_format: str | None,
            split_mode: str | None = None, split_ratio: float | None = None,
            test_set_path: str | None = None, progress: Callable[[int, int], None] | None = None,
            ) -> DatasetStats:
    """The statistics of the version whose files are under ``root``."""
    started = time.monotonic()
    fmt = data_format or "dir"
    split, rule = split_rule(split_mode, split_ratio, test_set_path)
    acc = _Acc(defaultdict(Counter), Counter(), _Numbers())
    files = _walk(root)
    sizes = _numbers(size for _, _, size in files)
    extensions = Counter(_ext(rel) or "(none)" for rel, _, _ in files)
    image_sizes: Counter[str] = Counter()
    widths, heights = _Numbers(), _Numbers()
    tables: list[TableStats] = []
    annotations: dict[str, Counter[str]] = defaultdict(Counter)
    class_samples = 0
    for done, (rel, path, _) in enumerate(files, 1):
        ext = _ext(rel)
        if ext in IMAGES:
            wh = _image_size(path)
            if wh is not None:
                image_sizes[f"{wh[0]}x{wh[1]}"] += 1
                widths.add(wh[0])
                heights.add(wh[1])
        if fmt == "dir" and not _is_meta(rel) and (where := _class_file(rel)) is not None:
            class_samples += 1
            acc.sample(split_of(split, rel, folder=where[0]), where[1])
            if ext == ".txt":
                acc.texts.add(_chars(path))
        elif fmt == "brat_ann":
            if ext == ".ann":
                _brat(path, annotations)
            elif ext == ".txt" and not _is_meta(rel) and path.with_suffix(".ann").is_file():
                acc.sample(split_of(split, rel), None)
                acc.texts.add(_chars(path))
        elif fmt == "json" and ext in (".json", ".jsonl") and not _is_meta(rel):
            for n, rec in _records(path, rel):
                ident = rec.get("id") if isinstance(rec, dict) else None
                key = rel if split.test_path is not None else (
                    str(ident) if ident not in (None, "") else f"{rel}:{n}")
                label = rec.get("label") if isinstance(rec, dict) else None
                acc.sample(split_of(split, key),
                           None if label is None or isinstance(label, dict | list) else str(label))
                text = rec.get("text") if isinstance(rec, dict) else None
                if isinstance(text, str):
                    acc.texts.add(len(text))
            if ext == ".jsonl":
                tables.append(_table_only(path, rel))
        elif fmt == "single_text" and ext == ".txt" and not _is_meta(rel):
            with path.open(encoding="utf-8-sig", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        acc.sample(split_of(split, rel if split.test_path else f"{rel}:{n}"), None)
                        acc.texts.add(len(line.rstrip("\r\n")))
        if ext in TABLES and not _is_meta(rel) and fmt != "json":
            if fmt in ("single_text", "dir") and _class_file(rel) is None:
                tables.append(_table_samples(path, rel, split, acc))  # rows are the samples
            else:
                tables.append(_table_only(path, rel))
        if progress is not None:
            progress(done, len(files))
    if fmt == "dir" and class_samples and any(t.rows for t in tables):
        # class folders hold the samples; a table beside them (metadata) adds none
        acc = _recount_class_files(files, split, acc.texts)
    per_split_class = {s: dict(sorted(c.items())) for s, c in sorted(acc.per_split_class.items())}
    per_class: Counter[str] = Counter()
    for c in acc.per_split_class.values():
        per_class.update(c)
    return DatasetStats(
        asset=asset, commit_id=commit_id, format=fmt, split_rule=rule,
        samples=sum(acc.per_split.values()), per_class=dict(sorted(per_class.items())),
        per_split=dict(sorted(acc.per_split.items())), per_split_class=per_split_class,
        files=len(files), file_sizes=sizes.summary() or NumberSummary(0, 0, None, None, None),
        extensions=dict(extensions.most_common()),
        image_sizes=dict(image_sizes.most_common(TOP_N)),
        image_width=widths.summary(), image_height=heights.summary(),
        text_lengths=acc.texts.summary(),
        annotations={k: dict(v.most_common()) for k, v in sorted(annotations.items())},
        tables=tuple(tables), computed_at=datetime.now(UTC),
        seconds=round(time.monotonic() - started, 3))


def _recount_class_files(files: list[tuple[str, Path, int]], split: Split, texts: _Numbers) -> _Acc:
    acc = _Acc(defaultdict(Counter), Counter(), texts)
    for rel, _, _ in files:
        if not _is_meta(rel) and (where := _class_file(rel)) is not None:
            acc.sample(split_of(split, rel, folder=where[0]), where[1])
    return acc


def stats_from_json(data: Mapping[str, Any], *, cached: bool = False) -> DatasetStats:
    """:class:`DatasetStats` from its JSON (as the catalog keeps it)."""

    def summary(d: Any) -> NumberSummary | None:
        return None if d is None else NumberSummary(**d)

    tables = tuple(TableStats(t["path"], t["rows"], tuple(
        ColumnStats(**{**c, "top": tuple((str(v), int(n)) for v, n in c["top"])})
        for c in t["columns"])) for t in data["tables"])
    return DatasetStats(
        asset=data["asset"], commit_id=data["commit_id"], format=data["format"],
        split_rule=data["split_rule"], samples=data["samples"], per_class=data["per_class"],
        per_split=data["per_split"], per_split_class=data["per_split_class"], files=data["files"],
        file_sizes=NumberSummary(**data["file_sizes"]), extensions=data["extensions"],
        image_sizes=data["image_sizes"], image_width=summary(data["image_width"]),
        image_height=summary(data["image_height"]), text_lengths=summary(data["text_lengths"]),
        annotations=data["annotations"], tables=tables,
        computed_at=datetime.fromisoformat(data["computed_at"]), seconds=data["seconds"],
        cached=cached)


# -- sample-level diff ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    """A sample of a version: its class, split and content hash."""

    label: str
    split: str
    digest: str


def file_samples(objects: Iterable[tuple[str, str]], *, data_format: str | None,
                 split: Split) -> dict[str, Sample]:
    """The file samples of a version from its listing (path, content hash): files in class
    folders (``dir``) or ``.txt``/``.ann`` document pairs (``brat_ann``, keyed by the ``.txt``)."""
    fmt = data_format or "dir"
    out: dict[str, Sample] = {}
    if fmt == "brat_ann":
        digests = dict(objects)
        for rel, digest in digests.items():
            if rel.endswith(".txt") and not _is_meta(rel):
                ann = digests.get(rel[:-4] + ".ann")
                if ann is not None:
                    out[rel] = Sample("", split_of(split, rel), f"{digest}+{ann}")
        return out
    if fmt != "dir":
        return out
    for rel, digest in objects:
        where = None if _is_meta(rel) else _class_file(rel)
        if where is not None:
            out[rel] = Sample(where[1], split_of(split, rel, folder=where[0]), digest)
    return out


def diff_samples(left: Mapping[str, Sample], right: Mapping[str, Sample],
                 ) -> tuple[dict[str, int], tuple[SampleChanges, ...], tuple[MovedSample, ...]]:
    """(totals, changes per split and class, the moves) from ``left`` to ``right``.

    A path in both with other content is changed; a path gone and one new with the same content
    is a move when their classes differ (a relabelled sample) and a rename when not; what is
    left is added or removed.
    """
    groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter({"added": 0, "removed": 0, "changed": 0, "moved": 0, "renamed": 0})
    moves: list[MovedSample] = []
    for path in left.keys() & right.keys():
        if left[path].digest != right[path].digest:
            groups[(right[path].split, right[path].label)]["changed"] += 1
            totals["changed"] += 1
    gone: dict[str, list[str]] = defaultdict(list)
    for path in sorted(left.keys() - right.keys()):
        gone[left[path].digest].append(path)
    for path in sorted(right.keys() - left.keys()):
        new = right[path]
        candidates = gone.get(new.digest)
        if candidates:
            # the same file name first: a relabelled file keeps its name in its new folder
            name = path.rsplit("/", 1)[-1]
            old_path = next((p for p in candidates if p.rsplit("/", 1)[-1] == name), candidates[0])
            candidates.remove(old_path)
            old = left[old_path]
            if old.label != new.label:
                groups[(old.split, old.label)]["moved_out"] += 1
                groups[(new.split, new.label)]["moved_in"] += 1
                totals["moved"] += 1
                if len(moves) < MAX_MOVES:
                    moves.append(MovedSample(old_path, path, old.label, new.label))
            else:
                totals["renamed"] += 1
            continue
        groups[(new.split, new.label)]["added"] += 1
        totals["added"] += 1
    for paths in gone.values():
        for path in paths:
            groups[(left[path].split, left[path].label)]["removed"] += 1
            totals["removed"] += 1
    changes = tuple(SampleChanges(s, label, **{k: c[k] for k in ("added", "removed", "changed",
                                                                 "moved_in", "moved_out")})
                    for (s, label), c in sorted(groups.items()))
    return dict(totals), changes, tuple(moves)


def _keyed_rows(path: Path, rel: str, key: str) -> tuple[int, dict[str, int]]:
    """Rows of a table, and each row's hash by its ``key`` value."""
    rows = 0
    by_key: dict[str, int] = {}
    for frame, digests in _hashed_chunks(path, rel, key):
        rows += len(frame)
        by_key.update(zip(frame[key].astype(str), (int(d) for d in digests), strict=True))
    return rows, by_key


def _row_multiset(path: Path, rel: str) -> tuple[int, Counter[int]]:
    """Rows of a table, and how many rows have each hash."""
    rows = 0
    hashes: Counter[int] = Counter()
    for frame, digests in _hashed_chunks(path, rel, None):
        rows += len(frame)
        hashes.update(int(d) for d in digests)
    return rows, hashes


def _hashed_chunks(path: Path, rel: str, key: str | None) -> Iterator[tuple[Any, Any]]:
    import pandas as pd

    for frame in table_chunks(path, rel, as_text=True):
        frame.columns = [str(c).strip() for c in frame.columns]
        if key is not None and key not in frame.columns:
            raise InvalidReferenceError(f"{rel} has no column {key!r} (its columns: "
                                        f"{', '.join(frame.columns)})", part="key", value=key)
        yield frame, pd.util.hash_pandas_object(frame, index=False).to_numpy()


def diff_table(rel: str, left: Path | None, right: Path | None, *, key: str | None) -> TableRowDiff:
    """Rows of table ``rel`` added, removed and changed from ``left`` to ``right`` (None: the
    table is not in that version)."""
    if key is not None:
        ln, lk = _keyed_rows(left, rel, key) if left is not None else (0, {})
        rn, rk = _keyed_rows(right, rel, key) if right is not None else (0, {})
        return TableRowDiff(rel, key, ln, rn, sum(1 for k in rk if k not in lk),
                            sum(1 for k in lk if k not in rk),
                            sum(1 for k, h in rk.items() if k in lk and lk[k] != h))
    ln, lc = _row_multiset(left, rel) if left is not None else (0, Counter())
    rn, rc = _row_multiset(right, rel) if right is not None else (0, Counter())
    return TableRowDiff(rel, None, ln, rn, sum((rc - lc).values()), sum((lc - rc).values()), None)


def is_table(rel: str) -> bool:
    return _ext(rel) in TABLES and not _is_meta(rel)
