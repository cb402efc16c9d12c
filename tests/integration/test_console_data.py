"""The console's views of issue 15 in Debian's Chromium against the real server: a dataset
version's statistics (computed on a button), the version graph and restore (an editor restores,
a viewer is refused by the server), a file's preview and the sample diff of two versions.

One dataset for the module: scikit-learn's digits as PNG files in class folders (``v1``), and a
``v2`` made from it without class 9 and with one image of class 3 relabelled as 8.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from assethub.client import Client
from assethub.runtime import Split
from assethub.wire import AddFile, DatasetMeta, DeleteFile
from tests.integration._console import Console

pytestmark = pytest.mark.integration

XSS = '<img src=x onerror=alert(1)>'
#: images per class (of digits' 1,797): enough for both splits of the 0.9 ratio in every class
PER_CLASS = 25


@dataclass
class Data:
    path: str
    owner: str
    owner_token: str
    viewer: str
    viewer_token: str
    files: dict[str, list[str]]  # v1: class -> file names
    removed: list[str]  # v2 lacks these (class 9)
    moved: str  # v2 has 3/<moved> as 8/<moved>
    v1: str
    v2: str


@pytest.fixture(scope="module")
def data(hub_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("consoledata")
    admin = Client(hub_server.url, hub_server.admin_token)
    owner, viewer = f"cdo{uuid.uuid4().hex[:6]}", f"cdv{uuid.uuid4().hex[:6]}"
    admin.create_user(owner)
    admin.create_user(viewer)
    owner_token = admin.create_token(owner, name="t").secret
    viewer_token = admin.create_token(viewer, name="t").secret
    client = Client(hub_server.url, owner_token)
    folder = f"{owner}/dataset/data"
    client.create_folder(folder)
    client.share(folder, role="view", user=viewer)
    path = f"{folder}/digits"
    client.create_asset(path, dataset=DatasetMeta("image_classification", "dir", "ratio", 0.9))

    d = load_digits()
    root = tmp / "digits"
    files: dict[str, list[str]] = {}
    for i, (img, target) in enumerate(zip(d.images, d.target, strict=True)):
        cls = str(target)
        if len(files.get(cls, [])) >= PER_CLASS:
            continue
        p = root / cls / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(p)
        files.setdefault(cls, []).append(p.name)
    client.upload(f"{path}:main", root, message="digits")
    v1 = client.publish(path, "v1").commit_id

    removed = sorted(files["9"])
    moved = sorted(files["3"])[0]
    local = tmp / moved
    shutil.copyfile(root / "3" / moved, local)
    ops: list[AddFile | DeleteFile] = [DeleteFile(f"9/{n}") for n in removed]
    ops += [AddFile(local, f"8/{moved}"), DeleteFile(f"3/{moved}")]
    client.create_commit(f"{path}:main", ops, message="drop 9, relabel one 3 as 8")
    v2 = client.publish(path, "v2").commit_id
    yield Data(path, owner, owner_token, viewer, viewer_token, files, removed, moved, v1, v2)
    client.close()
    admin.close()


def _main_files(c: Console, token: str, path: str, ref: str = "main") -> set[str]:
    r = c.call(token, "GET", f"/assets/{path}/objects", params={"ref": ref})
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["objects"] if isinstance(body, dict) else body
    return {o["path"] for o in items}


def test_statistics_versions_and_restore(console: Console, data: Data) -> None:
    """v1's statistics are computed on the Compute button and show the samples per split and
    class the dataset's split rule gives; the versions page shows what v2 was based on; the owner
    restores v1 as main (a new commit, v1's files), and a viewer sees no Restore button and is
    refused by the server when posting one anyway."""
    page = console.page(data.owner_token)
    page.goto(f"/a/{data.path}/dataset/stats?ref=v1")
    tabs = page.get_by_role("navigation", name="Asset")
    expect(tabs.get_by_role("link", name="Statistics")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Statistics at v1")).to_be_visible()
    expect(page.get_by_text("Not computed yet for this commit")).to_be_visible()
    page.get_by_role("button", name="Compute").click()
    # the POST returns at once; the page follows the computation until the statistics are there
    expect(page.get_by_text("Computing the statistics of " + data.v1[:12])).to_be_visible()
    table = page.get_by_role("table", name="Samples per split and class")
    expect(table).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Computed ")).to_be_visible()
    # what the page polls, for a viewer: the kept statistics, with no further poll
    viewer = console.page(data.viewer_token)
    viewer.goto(f"/a/{data.path}/dataset/stats/live?commit={data.v1}")
    expect(viewer.get_by_role("table", name="Samples per split and class")).to_be_visible()
    assert viewer.locator("[data-poll]").count() == 0

    split = Split(ratio=0.9)
    want: dict[str, Counter[str]] = {}
    for cls, names in data.files.items():
        for n in names:
            want.setdefault(cls, Counter())["test" if split.is_test(f"{cls}/{n}") else "train"] += 1
    heads = table.locator("thead th").all_inner_texts()
    assert heads[0] == "Class" and heads[-1] == "All"
    for cls, counts in want.items():
        row = table.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=cls, exact=True))
        cells = row.locator("td").all_inner_texts()
        got = {s: int(v) for s, v in zip(heads[1:-1], cells[:-1], strict=True)}
        assert {s: n for s, n in got.items() if n} == dict(counts), cls
        assert int(cells[-1]) == len(data.files[cls])
    sizes = page.get_by_role("table", name="Sizes")
    expect(sizes.get_by_role("row", name="Image width (px)")).to_contain_text("8.0")
    expect(page.get_by_text("8x8")).to_be_visible()
    console.shot(page, "data-statistics")

    # the version graph: v2 was made on main after v1
    page.goto(f"/a/{data.path}/dataset/versions")
    published = page.get_by_role("table", name="Published versions")
    expect(published.get_by_role("rowheader", name="v1")).to_be_visible()
    expect(published.get_by_role("rowheader", name="v2")).to_be_visible()
    commits = page.get_by_role("table", name="Commits of main")
    expect(commits.get_by_role("row").filter(has_text="drop 9, relabel one 3 as 8")).to_contain_text("v2")

    # a viewer: no Restore button, and the server refuses the POST itself
    vpage = console.page(data.viewer_token)
    vpage.goto(f"/a/{data.path}/dataset/versions")
    expect(vpage.get_by_role("table", name="Published versions").get_by_role("rowheader", name="v1")
           ).to_be_visible()
    expect(vpage.get_by_role("button", name="Restore v1")).to_have_count(0)
    client, csrf = console.session(data.viewer_token)
    before = console.call(data.owner_token, "GET", f"/assets/{data.path}/commit").json()
    r = client.post(f"/a/{data.path}/dataset/restore", data={"csrf": csrf, "version": "v1"})
    assert r.status_code == 403, r.text
    assert "edit" in r.text
    after = console.call(data.owner_token, "GET", f"/assets/{data.path}/commit").json()
    assert after["id"] == before["id"]
    # nor without the session's CSRF token (the owner's session)
    oclient, _ = console.session(data.owner_token)
    r = oclient.post(f"/a/{data.path}/dataset/restore", data={"version": "v1"})
    assert r.status_code == 403, r.text

    # the owner restores v1 (after the confirmation)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Restore v1").click()
    expect(page.get_by_text("Restored v1 as main")).to_be_visible()
    head = page.get_by_role("table", name="Commits of main").get_by_role("row").nth(1)
    expect(head).to_contain_text("restored v1")
    expect(head).to_contain_text("main")
    assert _main_files(console, data.owner_token, data.path) == \
        _main_files(console, data.owner_token, data.path, "v1")
    console.shot(page, "data-versions")


def test_preview_and_sample_diff(console: Console, data: Data) -> None:
    """A digit's file page shows its preview (size and class) and the compare page of v1 and v2
    the samples removed from class 9 and the one moved from 3 to 8, per split."""
    page = console.page(data.viewer_token)
    name = sorted(data.files["4"])[0]
    page.goto(f"/a/{data.path}/blob?ref=v1&path=4/{name}")
    preview = page.locator("section.data-preview")
    expect(preview.get_by_role("heading", name="Preview")).to_be_visible()
    expect(preview).to_contain_text("8 \u00d7 8 px")
    expect(preview).to_contain_text("class 4")

    page.goto(f"/a/{data.path}/compare?base=v1&head=v2")
    diff = page.locator("section.sample-diff")
    expect(diff.get_by_role("status")).to_contain_text(f"{len(data.removed)} removed")
    expect(diff.get_by_role("status")).to_contain_text("1 moved")
    split = Split(ratio=0.9)
    removed = Counter("test" if split.is_test(f"9/{n}") else "train" for n in data.removed)
    rows = diff.locator("table.sample-changes tbody tr")
    got: dict[tuple[str, str], list[int]] = {}
    for row in rows.all():
        s = row.locator("td").all_inner_texts()
        got[(s[0], row.locator("th").inner_text())] = [int(x) for x in s[1:]]
    want = {(s, "9"): [0, n, 0, 0, 0] for s, n in removed.items()}
    old = "test" if split.is_test(f"3/{data.moved}") else "train"
    new = "test" if split.is_test(f"8/{data.moved}") else "train"
    want[(old, "3")] = [0, 0, 0, 0, 1]
    want[(new, "8")] = [0, 0, 0, 1, 0]
    assert got == want
    diff.get_by_text("1 moved sample").click()
    moves = diff.locator("ul.moves li")
    expect(moves).to_have_count(1)
    expect(moves).to_contain_text(f"3/{data.moved} (3)")
    expect(moves).to_contain_text(f"8/{data.moved} (8)")
    console.shot(page, "data-sample-diff")


def test_preview_of_a_table_and_what_a_stranger_gets(console: Console, data: Data,
                                                     tmp_path: Path) -> None:
    """A CSV file's page shows its first rows as a table, as pandas reads them, a text file its
    first lines (markup in them inert); someone the
    dataset is not shared with gets, from the preview and sample-diff fragments, what a missing
    dataset gives: a "not found" and none of its content."""
    import pandas as pd
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    (tmp_path / "t").mkdir()
    frame.to_csv(tmp_path / "t" / "iris.csv", index=False)
    (tmp_path / "t" / "notes.txt").write_text(f"first line\n{XSS}\n")
    owner = Client(console.url, data.owner_token)
    path = data.path.rsplit("/", 1)[0] + "/iris"
    owner.create_asset(path, dataset=DatasetMeta("tabular", "dir", "ratio", 0.8))
    owner.upload(f"{path}:main", tmp_path / "t", message="iris")
    owner.close()
    page = console.page(data.viewer_token)
    page.goto(f"/a/{path}/blob?path=iris.csv")
    preview = page.locator("section.data-preview")
    expect(preview.get_by_role("heading", name="Preview")).to_be_visible()
    table = preview.locator("table")
    expect(table.locator("thead th")).to_have_text([str(c) for c in frame.columns])
    expect(table.locator("tbody tr")).to_have_count(20)
    first = pd.read_csv(tmp_path / "t" / "iris.csv", dtype=str).iloc[0].tolist()
    cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert [float(x) for x in cells] == [float(x) for x in first]

    # a text's first lines, shown as text: markup in it stays inert
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"/a/{path}/blob?path=notes.txt")
    preview = page.locator("section.data-preview")
    expect(preview.locator("pre")).to_have_text(f"first line\n{XSS}\n")
    expect(preview.locator("img")).to_have_count(0)
    assert dialogs == []

    _, stranger = console.user("stranger")
    client, _ = console.session(stranger)
    for url in (f"/a/{path}/dataset/preview?path=iris.csv",
                f"/a/{data.path}/dataset/sample-diff?base=v1&head=v2"):
        r = client.get(url)
        assert "not found" in r.text.lower(), r.text
        assert "sepal" not in r.text and "removed" not in r.text
        assert 'role="alert"' in r.text
