"""The pure part of dataset statistics and the sample diff (assethub.datastats), on local files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from assethub import datastats
from assethub._json import jsonable
from assethub.datastats import Sample
from assethub.errors import InvalidDatasetError, InvalidReferenceError
from assethub.runtime import Split


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def _compute(root: Path, fmt: str | None, **split: object) -> datastats.DatasetStats:
    return datastats.compute(root, asset="o/dataset/f/n", commit_id="c1", data_format=fmt,
                             **split)  # type: ignore[arg-type]


def test_split_rule_is_the_jobs_rule() -> None:
    assert datastats.split_rule(None, None, None)[1] == "ratio 0.8 (default)"
    assert datastats.split_rule("ratio", 0.9, None)[1] == "ratio 0.9"
    split, rule = datastats.split_rule("test_set", None, "/test/")
    assert rule == "test set test" and split.is_test("test/a/1.txt") and not split.is_test("a/1.txt")


def test_split_folders_win_over_the_rule_and_meta_files_are_no_samples(tmp_path: Path) -> None:
    root = _write(tmp_path, {"train/cat/1.txt": "meow", "train/dog/2.txt": "woof!",
                             "val/cat/3.txt": "purr", "README.md": "# data", "labels.json": "{}"})
    st = _compute(root, "dir", split_mode="ratio", split_ratio=0.5)
    assert st.samples == 3 and st.files == 5
    assert st.per_split_class == {"train": {"cat": 1, "dog": 1}, "val": {"cat": 1}}
    assert st.per_class == {"cat": 2, "dog": 1}
    assert st.text_lengths is not None and (st.text_lengths.min, st.text_lengths.max) == (4, 5)


def test_brat_annotations_are_counted_by_kind_and_type(tmp_path: Path) -> None:
    root = _write(tmp_path, {
        "a.txt": "Alice met Bob.", "a.ann": "T1\tPerson 0 5\tAlice\nT2\tPerson 10 13\tBob\n"
                                            "R1\tMeets Arg1:T1 Arg2:T2\n#1\tAnnotatorNotes T1\tnote\n",
        "b.txt": "Paris", "b.ann": "T1\tPlace 0 5\tParis\nA1\tCapital T1\n",
        "annotation.conf": "[entities]\nPerson\nPlace\n"})
    st = _compute(root, "brat_ann")
    assert st.samples == 2 and st.per_class == {}
    assert st.annotations == {"attribute": {"Capital": 1}, "entity": {"Person": 2, "Place": 1},
                              "note": {"note": 1}, "relation": {"Meets": 1}}
    assert st.text_lengths is not None and st.text_lengths.total == len("Alice met Bob.") + 5


def test_single_text_lines_are_samples(tmp_path: Path) -> None:
    root = _write(tmp_path, {"corpus.txt": "one\n\ntwo two\nthree\n"})
    st = _compute(root, "single_text")
    assert st.samples == 3 and st.text_lengths is not None and st.text_lengths.total == 3 + 7 + 5


def test_tables_are_read_in_chunks_with_the_same_numbers(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A table read 7 rows at a time (an int column with a gap reads as float in one chunk)
    gives what pandas gives for the whole file, CSV and Parquet alike."""
    df = pd.DataFrame({"n": [1, 2, 3, 4, None, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                       "label": list("aabbbcccc") + [None] * 2 + list("ddddd")})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    monkeypatch.setattr(datastats, "CHUNK_ROWS", 7)
    st = _compute(tmp_path, "single_text")
    assert [t.path for t in st.tables] == ["t.csv", "t.parquet"]
    for t in st.tables:
        n, label = t.columns
        assert t.rows == 16 and n.dtype == "float64" and n.missing == 1 and label.missing == 2
        assert n.mean == pytest.approx(df["n"].mean()) and (n.min, n.max) == (1.0, 16.0)
        assert dict(label.top) == df["label"].value_counts().to_dict()
    assert st.per_class == {"a": 4, "b": 6, "c": 8, "d": 10}  # two tables, label column found


def test_value_counts_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pd.DataFrame({"x": range(100), "y": ["same"] * 100}).to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setattr(datastats, "CHUNK_ROWS", 10)
    monkeypatch.setattr(datastats, "MAX_DISTINCT", 5)
    x, y = _compute(tmp_path, "single_text").tables[0].columns
    assert not x.top_exact and x.distinct is None and len(x.top) == 5  # what was kept
    assert y.top_exact and y.top == (("same", 100),) and y.distinct == 1


def test_nested_json_values_are_counted_as_text(tmp_path: Path) -> None:
    _write(tmp_path, {"r.jsonl": '{"text": "a", "tags": ["x", "y"]}\n{"text": "b", "tags": ["x", "y"]}\n'})
    st = _compute(tmp_path, "json")
    tags = next(c for c in st.tables[0].columns if c.name == "tags")
    assert tags.top == (("['x', 'y']", 2),) and st.samples == 2 and st.per_class == {}


def test_a_broken_table_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path, {"t.parquet": b"not parquet"})
    with pytest.raises(InvalidDatasetError, match=r"not a readable table.*\(t.parquet\)"):
        _compute(tmp_path, "dir")


def test_statistics_round_trip_through_json(tmp_path: Path) -> None:
    root = _write(tmp_path, {"a/1.txt": "x", "t.jsonl": json.dumps({"text": "hi", "label": "a"}) + "\n"})
    st = _compute(root, "dir")
    again = datastats.stats_from_json(json.loads(json.dumps(jsonable(st))), cached=True)
    assert again.cached and jsonable(again) == {**jsonable(st), "cached": True}


def _samples(items: dict[str, tuple[str, str]]) -> dict[str, Sample]:
    return {p: Sample(label, "train", digest) for p, (label, digest) in items.items()}


def test_sample_diff_tells_moves_renames_changes_and_the_rest() -> None:
    left = _samples({"3/a.png": ("3", "h1"), "3/b.png": ("3", "h2"), "9/c.png": ("9", "h3"),
                     "1/d.png": ("1", "h4"), "1/e.png": ("1", "h5")})
    right = _samples({"8/a.png": ("8", "h1"), "3/b.png": ("3", "h2x"), "1/d2.png": ("1", "h4"),
                      "1/e.png": ("1", "h5"), "2/f.png": ("2", "h6")})
    totals, groups, moves = datastats.diff_samples(left, right)
    assert totals == {"added": 1, "removed": 1, "changed": 1, "moved": 1, "renamed": 1}
    by = {g.label: g for g in groups}
    assert (by["3"].moved_out, by["3"].changed, by["8"].moved_in) == (1, 1, 1)
    assert (by["9"].removed, by["2"].added) == (1, 1) and "1" not in by
    assert [(m.old_path, m.new_path) for m in moves] == [("3/a.png", "8/a.png")]


def test_file_samples_follow_the_layout() -> None:
    split = Split(ratio=0.5)
    objects = [("README.md", "r"), ("test/cat/1.png", "a"), ("dog/2.png", "b"), ("top.csv", "c")]
    found = datastats.file_samples(objects, data_format="dir", split=split)
    assert set(found) == {"test/cat/1.png", "dog/2.png"} and found["test/cat/1.png"].split == "test"
    brat = datastats.file_samples([("a.txt", "1"), ("a.ann", "2"), ("b.txt", "3")],
                                  data_format="brat_ann", split=split)
    assert list(brat) == ["a.txt"] and brat["a.txt"].digest == "1+2"


def test_table_diff_by_key_and_by_content(tmp_path: Path) -> None:
    pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]}).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame({"id": [1, 2, 4], "v": ["a", "B", "d"]}).to_csv(tmp_path / "r.csv", index=False)
    d = datastats.diff_table("t.csv", tmp_path / "l.csv", tmp_path / "r.csv", key="id")
    assert (d.left_rows, d.right_rows, d.rows_added, d.rows_removed, d.rows_changed) == (3, 3, 1, 1, 1)
    d = datastats.diff_table("t.csv", tmp_path / "l.csv", tmp_path / "r.csv", key=None)
    assert (d.rows_added, d.rows_removed, d.rows_changed) == (2, 2, None)
    d = datastats.diff_table("t.csv", None, tmp_path / "r.csv", key="id")
    assert (d.left_rows, d.rows_added, d.rows_removed) == (0, 3, 0)
    with pytest.raises(InvalidReferenceError, match="no column 'nope'"):
        datastats.diff_table("t.csv", tmp_path / "l.csv", None, key="nope")
