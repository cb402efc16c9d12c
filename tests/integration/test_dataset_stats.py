"""Dataset statistics per version and the sample-level diff, on the real server and lakeFS.

Real data that packages ship: scikit-learn's digits as PNG files in class folders and iris as a
CSV table, and Python's own docstrings as JSON-lines text records. Every number the server
reports is computed again here, independently, with pandas and Pillow.
"""

from __future__ import annotations

import inspect
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from assethub import errors
from assethub.catalog.models import DatasetStatsRow
from assethub.cli import app
from assethub.client import Client
from assethub.runtime import Split
from assethub.wire import AddFile, DatasetMeta, DeleteFile

pytestmark = pytest.mark.integration


@dataclass
class World:
    url: str
    owner: Client
    owner_token: str
    stranger: Client
    stranger_name: str
    folder: str
    digits: str
    iris: str
    docs: str
    digits_dir: Path
    iris_csv: Path
    docs_jsonl: Path
    tmp: Path
    hub: Any


def _digits(root: Path) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (img, target) in enumerate(zip(d.images, d.target, strict=True)):
        p = root / str(target) / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(p)


def _docstrings() -> list[dict[str, str]]:
    """Docstrings of a few standard-library modules' functions and classes, labelled by module."""
    import collections
    import json as json_module
    import string
    import textwrap

    records = []
    for module in (json_module, textwrap, string, collections):
        for name, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
            if doc and not name.startswith("_"):
                records.append({"id": f"{module.__name__}.{name}", "text": doc,
                                "label": module.__name__})
    return records


@pytest.fixture(scope="module")
def world(hub_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from sklearn.datasets import load_iris

    tmp = tmp_path_factory.mktemp("dsstats")
    admin = Client(hub_server.url, hub_server.admin_token)
    name, other = f"st{uuid.uuid4().hex[:6]}", f"so{uuid.uuid4().hex[:6]}"
    admin.create_user(name)
    admin.create_user(other)
    token = admin.create_token(name, name="t").secret
    owner = Client(hub_server.url, token)
    stranger = Client(hub_server.url, admin.create_token(other, name="t").secret)
    folder = f"{name}/dataset/data"
    owner.create_folder(folder)

    digits, iris, docs = f"{folder}/digits", f"{folder}/iris", f"{folder}/docs"
    owner.create_asset(digits, dataset=DatasetMeta("image_classification", "dir", "ratio", 0.9))
    _digits(tmp / "digits")
    owner.upload(f"{digits}:main", tmp / "digits", message="digits")
    owner.publish(digits, "v1")

    owner.create_asset(iris, dataset=DatasetMeta("tabular", "dir", "ratio", 0.8))
    frame = load_iris(as_frame=True).frame
    frame.insert(0, "id", range(len(frame)))
    (tmp / "iris").mkdir()
    frame.to_csv(tmp / "iris" / "iris.csv", index=False)
    owner.upload(f"{iris}:main", tmp / "iris", message="iris")
    owner.publish(iris, "v1")

    owner.create_asset(docs, dataset=DatasetMeta("text_classification", "json", "ratio", 0.75))
    (tmp / "docs").mkdir()
    with (tmp / "docs" / "docstrings.jsonl").open("w") as f:
        for rec in _docstrings():
            f.write(json.dumps(rec) + "\n")
    owner.upload(f"{docs}:main", tmp / "docs", message="docstrings")
    owner.publish(docs, "v1")
    yield World(hub_server.url, owner, token, stranger, other, folder, digits, iris, docs,
                tmp / "digits", tmp / "iris" / "iris.csv", tmp / "docs" / "docstrings.jsonl", tmp,
                hub_server.hub)
    owner.close()
    stranger.close()
    admin.close()


def _cli(world: World, *args: str, code: int = 0) -> str:
    home = world.tmp / "cli"
    home.mkdir(exist_ok=True)
    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.owner_token,
           "ASSETHUB_CONFIG": str(home / "config.json"), "ASSETHUB_HOME": str(home), "COLUMNS": "250"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, f"assethub {' '.join(args)}: {result.output}"
    return result.stdout if code == 0 else result.stderr


def test_image_statistics_match_pandas_and_are_kept_per_commit(world: World) -> None:
    """Digits as PNG files: samples per class and per split (the dataset's 0.9 ratio, as jobs
    split it), file sizes and image sizes are what pandas and Pillow say; computed once, then
    read from the catalog."""
    with pytest.raises(errors.NotFoundError) as not_yet:
        world.owner.stats(f"{world.digits}:v1", compute=False)
    assert not_yet.value.what == "statistics"
    st = world.owner.stats(f"{world.digits}:v1")
    assert not st.cached and st.format == "dir" and st.split_rule == "ratio 0.9"

    split = Split(ratio=0.9)
    rows = []
    for p in sorted(world.digits_dir.rglob("*.png")):
        key = p.relative_to(world.digits_dir).as_posix()
        with Image.open(p) as img:
            img.load()
            w, h = img.size
        rows.append({"label": p.parent.name, "split": "test" if split.is_test(key) else "train",
                     "size": p.stat().st_size, "wh": f"{w}x{h}"})
    df = pd.DataFrame(rows)
    assert st.samples == len(df) == 1797 and st.files == len(df)
    assert st.per_class == df["label"].value_counts().to_dict()
    assert st.per_split == df["split"].value_counts().to_dict()
    assert st.per_split_class == {s: g["label"].value_counts().to_dict() for s, g in df.groupby("split")}
    assert (st.file_sizes.count, st.file_sizes.total, st.file_sizes.min, st.file_sizes.max) == (
        len(df), df["size"].sum(), df["size"].min(), df["size"].max())
    assert st.file_sizes.mean == pytest.approx(df["size"].mean())
    assert st.image_sizes == df["wh"].value_counts().to_dict() == {"8x8": 1797}
    assert st.extensions == {".png": 1797} and st.tables == () and st.text_lengths is None

    again = world.owner.stats(f"{world.digits}:v1")
    assert again.cached and again.computed_at == st.computed_at
    assert again.per_split_class == st.per_split_class
    commit = world.owner.resolve(f"{world.digits}:v1")
    assert world.owner.stats(f"{world.digits}:{commit}").cached  # keyed by commit, not by ref
    with world.hub.catalog.session() as s:
        rows_kept = s.scalars(select(DatasetStatsRow).where(DatasetStatsRow.commit_id == commit)).all()
        assert len(rows_kept) == 1 and rows_kept[0].stats["samples"] == 1797

    out = _cli(world, "stats", f"{world.digits}:v1")
    assert "1,797" in out and "8x8" in out and "kept in the catalog" in out
    assert json.loads(_cli(world, "stats", f"{world.digits}:v1", "--json"))["per_class"] == st.per_class


def test_table_statistics_match_pandas(world: World) -> None:
    """Iris as CSV: rows are the samples (class: its target column), and each column's type,
    missing values, most frequent values and mean are what pandas says."""
    st = world.owner.stats(f"{world.iris}:v1")
    df = pd.read_csv(world.iris_csv)
    split = Split(ratio=0.8)
    splits = pd.Series(["test" if split.is_test(f"iris.csv:{i}") else "train"
                        for i in range(1, len(df) + 1)])
    assert st.samples == len(df) == 150
    assert st.per_class == df["target"].astype(str).value_counts().to_dict()
    assert st.per_split == splits.value_counts().to_dict()
    [table] = st.tables
    assert table.path == "iris.csv" and table.rows == len(df)
    assert [c.name for c in table.columns] == list(df.columns)
    for c in table.columns:
        s = df[c.name]
        counts = s.value_counts()
        assert c.dtype == str(s.dtype) and c.missing == int(s.isna().sum())
        assert c.distinct == s.nunique() and c.top_exact
        assert len(c.top) == min(10, len(counts))
        assert [n for _, n in c.top] == counts.head(10).tolist()  # the same counts, in order
        by_text = {str(k): int(v) for k, v in counts.items()}
        assert all(by_text[v] == n for v, n in c.top)
        assert (c.min, c.max) == (s.min(), s.max()) and c.mean == pytest.approx(s.mean())


def test_text_statistics_of_docstrings(world: World) -> None:
    """Python's docstrings as JSON-lines records: samples per label and split (by record id),
    text lengths in characters, and the records as a table."""
    st = world.owner.stats(f"{world.docs}:v1")
    df = pd.read_json(world.docs_jsonl, lines=True)
    split = Split(ratio=0.75)
    assert st.samples == len(df) and st.format == "json"
    assert st.per_class == df["label"].value_counts().to_dict()
    assert st.per_split == Counter("test" if split.is_test(i) else "train" for i in df["id"])
    lengths = df["text"].str.len()
    assert st.text_lengths is not None
    assert (st.text_lengths.count, st.text_lengths.total, st.text_lengths.min, st.text_lengths.max) == (
        len(df), lengths.sum(), lengths.min(), lengths.max())
    [table] = st.tables
    assert table.rows == len(df) and [c.name for c in table.columns] == ["id", "text", "label"]
    assert dict(next(c for c in table.columns if c.name == "label").top) == \
        df["label"].value_counts().to_dict()


def test_sample_diff_shows_a_removed_class_and_a_relabelled_image(world: World) -> None:
    """A version made from v1 without class 9 and with one image of class 3 relabelled as 8:
    the sample diff says exactly that, per split and class, over the SDK, REST and the CLI."""
    removed = sorted(world.digits_dir.glob("9/*.png"))
    moved = sorted(world.digits_dir.glob("3/*.png"))[0]
    local = world.tmp / moved.name
    shutil.copyfile(moved, local)
    ops: list[AddFile | DeleteFile] = [DeleteFile(f"9/{p.name}") for p in removed]
    ops += [AddFile(local, f"8/{moved.name}"), DeleteFile(f"3/{moved.name}")]
    world.owner.create_commit(f"{world.digits}:main", ops, message="drop 9, relabel one 3 as 8")
    world.owner.publish(world.digits, "v2")

    d = world.owner.sample_diff(f"{world.digits}:v1", "v2")
    assert (d.added, d.removed, d.changed, d.moved, d.renamed) == (0, len(removed), 0, 1, 0)
    split = Split(ratio=0.9)
    removed_per_split = Counter("test" if split.is_test(f"9/{p.name}") else "train" for p in removed)
    old_split = "test" if split.is_test(f"3/{moved.name}") else "train"
    new_split = "test" if split.is_test(f"8/{moved.name}") else "train"
    expected = {(s, "9"): {"removed": n} for s, n in removed_per_split.items()}
    expected[(old_split, "3")] = {"moved_out": 1}
    expected.setdefault((new_split, "8"), {})["moved_in"] = 1
    got = {(g.split, g.label): {k: v for k, v in (("added", g.added), ("removed", g.removed),
                                                  ("changed", g.changed), ("moved_in", g.moved_in),
                                                  ("moved_out", g.moved_out)) if v}
           for g in d.groups}
    assert got == expected
    [move] = d.moves
    assert (move.old_path, move.new_path, move.old_class, move.new_class) == (
        f"3/{moved.name}", f"8/{moved.name}", "3", "8")

    owner = {"Authorization": f"Bearer {world.owner_token}"}
    r = httpx.get(f"{world.url}/api/v1/assets/{world.digits}/sample-diff",
                  params={"left": "v1", "right": "v2"}, headers=owner, timeout=120)
    assert r.status_code == 200 and r.json()["moved"] == 1 and r.json()["removed"] == len(removed)
    cli = json.loads(_cli(world, "diff", f"{world.digits}:v1", "v2", "--samples", "--json"))
    assert cli["groups"] == r.json()["groups"]
    table = _cli(world, "diff", f"{world.digits}:v1", "v2", "--samples")
    assert f"moved 3/{moved.name} (3) -> 8/{moved.name} (8)" in table

    st2 = world.owner.stats(f"{world.digits}:v2")  # a new commit: its own statistics
    assert "9" not in st2.per_class and st2.samples == 1797 - len(removed)
    assert st2.per_class["8"] == world.owner.stats(f"{world.digits}:v1").per_class["8"] + 1


def test_table_rows_diff_by_key_and_by_content(world: World) -> None:
    """One row changed, one removed, one added: by the key column that is 1/1/1; by content a
    changed row is one removed and one added."""
    df = pd.read_csv(world.iris_csv)
    df.loc[df["id"] == 5, "sepal length (cm)"] = 9.9
    df = df[df["id"] != 10]
    new = df.iloc[[0]].assign(id=150)
    df = pd.concat([df, new], ignore_index=True)
    local = world.tmp / "iris-v2.csv"
    df.to_csv(local, index=False)
    world.owner.create_commit(f"{world.iris}:main", [AddFile(local, "iris.csv")], message="edit rows")

    by_key = world.owner.sample_diff(f"{world.iris}:v1", "main", key="id")
    [t] = by_key.tables
    assert (t.path, t.key, t.left_rows, t.right_rows) == ("iris.csv", "id", 150, 150)
    assert (t.rows_added, t.rows_removed, t.rows_changed) == (1, 1, 1)
    [t] = world.owner.sample_diff(f"{world.iris}:v1", "main").tables
    assert (t.key, t.rows_added, t.rows_removed, t.rows_changed) == (None, 2, 2, None)
    out = _cli(world, "diff", f"{world.iris}:v1", "main", "--samples", "--key", "id")
    assert "iris.csv" in out and "content" not in out
    assert "--key goes with --samples" in _cli(world, "diff", f"{world.iris}:v1", "main", "--key", "id",
                                               code=2)
    err = _cli(world, "diff", f"{world.iris}:v1", "main", "--samples", "--key", "nope", code=2)
    assert err.startswith("error: ") and "no column 'nope'" in err
    with pytest.raises(errors.InvalidReferenceError, match="no column 'nope'"):
        world.owner.sample_diff(f"{world.iris}:v1", "main", key="nope")


def test_statistics_and_sample_diff_need_view(world: World) -> None:
    """A user with no share on the folder cannot tell the dataset exists (the same answer as
    for a missing one), over the SDK and REST; a view share opens both; models have none."""
    for call in (lambda: world.stranger.stats(f"{world.digits}:v1"),
                 lambda: world.stranger.sample_diff(f"{world.digits}:v1", "v2"),
                 lambda: world.stranger.stats(f"{world.folder}/no-such-dataset:v1")):
        with pytest.raises(errors.AssetNotFoundError):
            call()
    for url in (f"/assets/{world.digits}/stats", f"/assets/{world.digits}/sample-diff"):
        r = httpx.get(f"{world.url}/api/v1{url}", params={"ref": "v1", "left": "v1", "right": "v1"},
                      timeout=60)  # anonymous
        assert r.status_code in (401, 404), r.text
    world.owner.share(world.folder, role="view", user=world.stranger_name)
    try:
        assert world.stranger.stats(f"{world.digits}:v1").samples == 1797
        assert world.stranger.sample_diff(f"{world.digits}:v1", "v1").groups == ()
    finally:
        world.owner.unshare(world.folder, user=world.stranger_name)
    with pytest.raises(errors.AssetNotFoundError):
        world.stranger.stats(f"{world.digits}:v1")
    model_folder = world.folder.replace("/dataset/", "/model/")
    world.owner.create_folder(model_folder)
    world.owner.create_asset(f"{model_folder}/m")
    world.owner.upload(f"{model_folder}/m:main", world.iris_csv, message="a file")
    with pytest.raises(errors.NotAllowedError, match="statistics are for datasets"):
        world.owner.stats(f"{model_folder}/m:main")
    with pytest.raises(errors.RefNotFoundError):
        world.owner.stats(f"{world.digits}:no-such-tag")


def test_the_statistics_benchmark_runs_through_the_server(world: World) -> None:
    """bench/stats_time.py on a small sample: computed on the first ask, kept for the second."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "stats_time", Path(__file__).resolve().parents[2] / "bench" / "stats_time.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.stats_time(samples=150, rounds=1, work=world.tmp, client=world.owner,
                              folder=world.folder)
    assert set(result) == {"images", "table", "text", "server_cold", "server_warm"}
    assert all(v > 0 for v in result.values())
    assert bench.result_line(result).startswith("RESULT stats_per_10k_s images=")


def test_a_job_token_may_not_ask_for_statistics_or_sample_diffs(world: World) -> None:
    """Even of its own run's dataset at the pinned commit: not part of what a job does."""
    owner = {"Authorization": f"Bearer {world.owner_token}"}
    model_folder = world.folder.replace("/dataset/", "/model/") + "-jobs"
    world.owner.create_folder(model_folder)
    world.owner.create_asset(f"{model_folder}/net")
    world.owner.upload(f"{model_folder}/net:main", world.iris_csv, message="weights")
    commit = world.owner.resolve(f"{world.digits}:v1")
    r = httpx.post(f"{world.url}/api/v1/runs", headers=owner, timeout=60, json={
        "kind": "train", "model": f"{model_folder}/net", "dataset": f"{world.digits}:{commit}"})
    assert r.status_code == 201, r.text
    job = {"Authorization": f"Bearer {r.json()['job_token']}"}
    for url, params in ((f"/assets/{world.digits}/stats", {"ref": commit}),
                        (f"/assets/{world.digits}/sample-diff", {"left": commit, "right": commit})):
        refused = httpx.get(f"{world.url}/api/v1{url}", params=params, headers=job, timeout=60)
        assert refused.status_code == 403, refused.text
        assert "a job token may only act on its run" in refused.json()["error"]["message"]
