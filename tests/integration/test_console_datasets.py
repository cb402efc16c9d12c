"""The console's dataset pages in Debian's Chromium against the real server: the digits dataset's
class chart and thumbnails, a table's head, publishing a version, and importing an archive (a
bad one shows the format check's findings by file, a good one makes a commit)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.integration._console import Console, fresh, small_digits

pytestmark = pytest.mark.integration

XSS = '<img src=x onerror=alert(1)>'


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_tree(root: Path) -> bytes:
    return _zip({p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()})


def _dataset(c: Console, token: str, owner: str, **dataset: Any) -> str:
    folder = fresh("d")
    r = c.call(token, "POST", "/folders", json={"path": f"{owner}/dataset/{folder}"})
    assert r.status_code == 201, r.text
    path = f"{owner}/dataset/{folder}/{fresh('data')}"
    r = c.call(token, "POST", "/assets", json={"path": path, "dataset": dataset})
    assert r.status_code == 201, r.text
    return path


def _import(c: Console, token: str, path: str, archive: bytes) -> None:
    r = c.call(token, "POST", f"/assets/{path}/import", content=archive,
               params={"message": "test data"})
    assert r.status_code == 201, r.text


def _log(c: Console, token: str, asset: str, ref: str = "main") -> list[dict[str, Any]]:
    r = c.call(token, "GET", f"/assets/{asset}/log", params={"ref": ref})
    assert r.status_code == 200, r.text
    return list(r.json())


def _dialogs(page: Any) -> list[str]:
    seen: list[str] = []

    def on_dialog(d: Any) -> None:
        seen.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return seen


def test_digits_preview_shows_thumbnails_and_a_chart_of_ten_classes(console: Console,
                                                                      tmp_path: Path) -> None:
    name, token = console.user("digits")
    path = _dataset(console, token, name, task_type="image_classification", format="dir",
                    split_mode="test_set", test_set_path="test/")
    small_digits(tmp_path / "digits", train=12, test=5)  # more than the 4 thumbnails a class shows
    n = sum(1 for p in (tmp_path / "digits").rglob("*") if p.is_file())
    _import(console, token, path, _zip_tree(tmp_path / "digits"))
    page = console.page(token)
    page.goto(f"/a/{path}/dataset")
    expect(page.get_by_role("heading", name="Classes at main")).to_be_visible()
    chart = page.locator("figure.class-chart svg")
    expect(chart.locator("g.bar")).to_have_count(10)
    expect(chart).to_have_attribute("aria-label", "Examples per class")
    expect(page.locator("main")).to_contain_text(f"{n:,} files")
    expect(page.locator("main")).to_contain_text("10 classes")
    expect(page.locator("main")).to_contain_text("(train: 120, test: 50)")
    groups = page.locator("ul.thumbs > li")
    expect(groups).to_have_count(10)
    expect(groups.first.locator("h4")).to_have_text("0")
    images = page.locator("ul.thumbs img")
    expect(images).to_have_count(40)
    page.wait_for_function("() => [...document.querySelectorAll('ul.thumbs img')]"
                           ".every(i => i.complete && i.naturalWidth === 32)")
    aside = page.get_by_role("complementary")
    expect(aside).to_contain_text("image_classification")
    expect(aside).to_contain_text("test set in test/")
    console.shot(page, "dataset-digits")
    # a thumbnail is only an image of a dataset the caller can see
    src = str(images.first.get_attribute("src"))
    _, stranger = console.user("stranger")
    client = httpx.Client(base_url=console.url, timeout=30)
    assert client.post("/signin", data={"token": stranger}).status_code == 303
    assert client.get(src).status_code == 404
    assert client.get(f"/a/{path}/dataset").status_code == 404
    mine = httpx.Client(base_url=console.url, timeout=30)
    assert mine.post("/signin", data={"token": token}).status_code == 303
    r = mine.get(src)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert mine.get(f"/a/{path}/dataset/thumb", params={"file": "README.md"}).status_code == 400


def test_a_table_dataset_shows_the_head_of_its_file(console: Console) -> None:
    name, token = console.user("table")
    path = _dataset(console, token, name, task_type="text_classification", format="single_text")
    rows = "text,label\n" + "".join(f"row {i} {XSS},{i % 2}\n" for i in range(40))
    _import(console, token, path, _zip({"reviews.csv": rows.encode()}))
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(f"/a/{path}/dataset")
    table = page.locator("table.samples")
    expect(table.locator("th")).to_have_text(["text", "label"])
    expect(table.locator("tr")).to_have_count(15)  # the head only
    expect(table.locator("td").first).to_have_text(f"row 0 {XSS}")
    expect(page.locator("main")).to_contain_text("Format single_text: no class folders to count")
    console.shot(page, "dataset-table")
    assert dialogs == []


def test_publish_a_version_of_main(console: Console) -> None:
    name, token = console.user("pub")
    path = _dataset(console, token, name, format="dir")
    _import(console, token, path, _zip({"cat/1.txt": b"meow", "dog/1.txt": b"woof",
                                        f"{XSS}/1.txt": b"odd class name"}))
    head = _log(console, token, path)[0]["id"]
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(f"/a/{path}/dataset")
    chart = page.locator("figure.class-chart svg")
    expect(chart.locator("g.bar")).to_have_count(3)
    expect(chart).to_contain_text(XSS[:20])  # the class name as text (shortened in the chart)
    expect(page.locator("main")).to_contain_text(f"{XSS}: {XSS}/1.txt")  # a sample heading
    expect(page.get_by_role("complementary")).to_contain_text("None yet.")
    page.get_by_label("Publish main as").fill("v1")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_have_text(f"Published v1 at commit {head[:12]}")
    assert "ref=v1" in page.url
    expect(page.get_by_role("heading", name="Classes at v1")).to_be_visible()
    expect(page.get_by_role("complementary").get_by_role("link", name="v1")).to_be_visible()
    console.shot(page, "dataset-published")
    a = console.call(token, "GET", f"/assets/{path}").json()
    assert [p[0] if isinstance(p, list) else p["tag"] for p in a["published"]] == ["v1"]
    # a version is published once: the second time is refused, with the reason
    page.get_by_label("Publish main as").fill("v1")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("section.error")).to_contain_text("already exists")
    assert dialogs == []


def test_import_a_bad_archive_shows_the_format_errors_a_good_one_commits(console: Console) -> None:
    name, token = console.user("imp")
    path = _dataset(console, token, name, format="dir")
    before = _log(console, token, path)
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(f"/a/{path}/import")
    expect(page.get_by_role("heading", name="Import an archive")).to_be_visible()
    bad = _zip({f"{XSS}.bin": b"stray", "cat/1.txt": b"meow"})
    page.get_by_label("Zip archive").set_input_files(
        [{"name": "bad.zip", "mimeType": "application/zip", "buffer": bad}])
    page.get_by_label("Commit message").fill("first cats")
    page.get_by_role("button", name="Import").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The archive was not imported")
    expect(alert).to_contain_text("only README.md, LICENSE* and *.json may be at the top level")
    expect(alert.locator("ul.conflicts li")).to_have_text([f"{XSS}.bin"])
    expect(page.get_by_label("Commit message")).to_have_value("first cats")  # kept
    console.shot(page, "dataset-import-bad")
    assert _log(console, token, path) == before
    good = _zip({"cat/1.txt": b"meow", "cat/2.txt": b"purr", "dog/1.txt": b"woof"})
    page.get_by_label("Zip archive").set_input_files(
        [{"name": "good.zip", "mimeType": "application/zip", "buffer": good}])
    page.get_by_role("button", name="Import").click()
    result = page.get_by_role("status")
    expect(result).to_contain_text("Imported: commit")
    expect(result).to_contain_text("3 files")
    expect(result).to_contain_text("2 classes")
    log = _log(console, token, path)
    assert len(log) == len(before) + 1 and log[0]["message"] == "first cats"
    expect(result.locator(".mono")).to_have_text(log[0]["id"][:12])
    console.shot(page, "dataset-import-good")
    assert dialogs == []
