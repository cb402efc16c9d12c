"""Reading a version's files without downloading it: ``assethub cat`` and ``assethub head``
(tables: CSV, JSON lines, Parquet; texts; images), end to end through the CLI and the SDK
against the real server on the real lakeFS, with scikit-learn's iris and digits.

Each test makes its own users, folders and datasets (the server is shared by the session).
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_iris

from assethub.client import Client
from tests.integration.test_cli import NOT_FOUND, USAGE, Cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version's worth of real data: iris as CSV, JSON lines and a Parquet file of row groups
    large enough that reading all of it would show; digits as PNG files; a text."""
    root = tmp_path_factory.mktemp("data")
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns={"target": "label"})
    frame["label"] = [str(iris.target_names[i]) for i in frame["label"]]
    (root / "tables").mkdir()
    frame.to_csv(root / "tables/iris.csv", index=False)
    frame.to_json(root / "tables/iris.jsonl", orient="records", lines=True)
    rng = np.random.default_rng(0)
    n = 400_000  # ~13 MB in 40 row groups: the first rows need the footer and one group
    big = pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "y": rng.random(n),
                        "label": rng.choice(["setosa", "versicolor", "virginica"], n)})
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), root / "tables/big.parquet",
                   row_group_size=10_000)
    digits = load_digits()
    for i in range(4):
        label = str(digits.target[i])
        (root / "train" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 15).astype(np.uint8), mode="L").resize((32, 24)).save(
            root / "train" / label / f"{i}.png")
    (root / "README.md").write_text("# Iris and digits\n\nline two\nline three\nline four\n")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    return root


@pytest.fixture
def dataset(new_user: Callable[[], tuple[str, Cli]], data: Path) -> tuple[str, Cli, str]:
    me, cli = new_user()
    folder = f"{me}/dataset/prev-{uuid.uuid4().hex[:6]}"
    cli("create", "folder", folder)
    path = f"{folder}/mixed"
    cli("create", "asset", path, "--task-type", "other")
    cli("upload", f"{path}:main", str(data), "-m", "data")
    return me, cli, path


def test_head_shows_the_first_rows_of_tables_as_pandas_reads_them(
        dataset: tuple[str, Cli, str], data: Path) -> None:
    _, cli, path = dataset
    with (data / "tables/iris.csv").open() as f:
        expected = list(csv.reader(f))
    got = cli.json("head", f"{path}:main", "tables/iris.csv", "-n", "5")["files"][0]
    assert got["kind"] == "table"
    assert got["columns"] == list(pd.read_csv(data / "tables/iris.csv").columns) == expected[0]
    assert got["rows"] == expected[1:6] and got["truncated"]

    got = cli.json("head", f"{path}:main", "tables/iris.jsonl", "-n", "3")["files"][0]
    records = pd.read_json(data / "tables/iris.jsonl", lines=True).head(3)
    assert got["kind"] == "table" and got["columns"] == list(records.columns)
    assert [[float(v) for v in row[:4]] for row in got["rows"]] == records.iloc[:, :4].values.tolist()
    assert [row[4] for row in got["rows"]] == list(records["label"])

    table = cli("head", f"{path}:main", "tables/iris.csv", "-n", "2")
    assert "sepal length (cm)" in table and "setosa" in table


def test_head_of_parquet_reads_the_footer_and_first_row_group_only(
        dataset: tuple[str, Cli, str], data: Path) -> None:
    _, cli, path = dataset
    size = (data / "tables/big.parquet").stat().st_size
    got = cli.json("head", f"{path}:main", "tables/big.parquet", "-n", "4")["files"][0]
    frame = pd.read_parquet(data / "tables/big.parquet")
    assert got["kind"] == "table" and got["columns"] == list(frame.columns)
    assert got["total_rows"] == len(frame) and got["size"] == size
    assert [int(r[0]) for r in got["rows"]] == frame["id"].head(4).tolist()
    assert [float(r[1]) for r in got["rows"]] == frame["x"].head(4).tolist()
    # measured by the server: a few ranges, far from the whole file (40 row groups)
    assert 0 < got["bytes_read"] < size / 10, (got["bytes_read"], size)


def test_head_of_texts_images_and_a_whole_version(dataset: tuple[str, Cli, str], data: Path) -> None:
    _, cli, path = dataset
    got = cli.json("head", f"{path}:main", "README.md", "-n", "2")["files"][0]
    assert (got["kind"], got["lines"], got["truncated"]) == \
        ("text", ["# Iris and digits", ""], True)
    image = next((data / "train").rglob("*.png"))
    rel = image.relative_to(data).as_posix()
    got = cli.json("head", f"{path}:main", rel)["files"][0]
    assert (got["kind"], got["width"], got["height"], got["image_format"], got["mode"]) == \
        ("image", 32, 24, "PNG", "L")
    assert (got["label"], got["split"]) == (image.parent.name, "train")
    assert f"class {image.parent.name}" in cli("head", f"{path}:main", rel)
    assert cli.json("head", f"{path}:main", "blob.bin")["files"][0]["kind"] == "binary"

    summary = cli.json("head", f"{path}:main", "-n", "3")
    assert [f["path"] for f in summary["files"]] == ["README.md", "blob.bin", "tables/big.parquet"]
    assert summary["more"] and [f["kind"] for f in summary["files"]] == ["text", "binary", "table"]
    assert "tables/big.parquet" in cli("head", f"{path}:main", "-n", "3")


def test_cat_prints_a_file_of_any_version(dataset: tuple[str, Cli, str], data: Path,
                                          hub_server: Any) -> None:
    _, cli, path = dataset
    assert cli.run("cat", f"{path}:main", "tables/iris.csv").stdout_bytes == \
        (data / "tables/iris.csv").read_bytes()
    # not a terminal: binary bytes go through untouched
    assert cli.run("cat", f"{path}:main", "blob.bin").stdout_bytes == (data / "blob.bin").read_bytes()
    commit = cli.json("log", f"{path}:main", "-n", "1")[0]["id"]
    cli("commit", f"{path}:main", "-m", "change", "--delete", "README.md")
    assert cli.run("cat", f"{path}:{commit}", "README.md").stdout_bytes == \
        (data / "README.md").read_bytes()
    assert "no file 'README.md'" in cli.fails(NOT_FOUND, "cat", f"{path}:main", "README.md")
    with Client(hub_server.url, cli.env["ASSETHUB_TOKEN"]) as hub:
        assert b"".join(hub.cat(f"{path}:{commit}", "tables/iris.jsonl")) == \
            (data / "tables/iris.jsonl").read_bytes()
        assert hub.head(f"{path}:{commit}", "README.md", n=1).files[0].lines == ("# Iris and digits",)


def test_preview_needs_view_and_refuses_bad_input(dataset: tuple[str, Cli, str],
                                                  new_user: Callable[[], tuple[str, Cli]]) -> None:
    _, cli, path = dataset
    viewer_name, viewer = new_user()
    _, stranger = new_user()
    cli("share", path.rsplit("/", 1)[0], "--user", viewer_name, "--role", "view")
    assert viewer.json("head", f"{path}:main", "README.md")["files"][0]["kind"] == "text"
    assert viewer.run("cat", f"{path}:main", "README.md").stdout.startswith("# Iris")
    for args in (["head", f"{path}:main"], ["head", f"{path}:main", "README.md"],
                 ["cat", f"{path}:main", "README.md"]):
        assert "not found" in stranger.fails(NOT_FOUND, *args).lower()
    assert "no/such.csv" in cli.fails(NOT_FOUND, "head", f"{path}:main", "no/such.csv")
    assert "nope" in cli.fails(NOT_FOUND, "head", f"{path}:nope", "README.md")
    cli.fails(USAGE, "head", f"{path}:main", "../etc/passwd")
    assert cli.run("head", f"{path}:main", "-n", "0").exit_code == USAGE  # the parser's own
    assert json.loads(cli("head", f"{path}:main", "README.md", "-n", "1000", "--json"))["files"]
