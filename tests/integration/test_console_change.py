"""The console's change pages in Debian's Chromium against the real server: upload (many files
and a folder in one commit, limits checked in the browser, a message required), settings
(README and metadata, XSS inert), merge (the metric gate's figures, conflicts by file name),
and what a viewer and a stranger get when they try."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from assethub.hub import Limits
from tests.conftest import RunningServer, start_server
from tests.integration._console import Console, fresh

pytestmark = pytest.mark.integration

XSS = '<img src=x onerror=alert(1)>'
CORPUS = ('# Card\n\n<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n'
          '[click](javascript:alert(3))\n\n<iframe src="javascript:alert(4)"></iframe>\n\n'
          '<a href="#" hx-post="/folders" onclick="alert(5)">htmx</a>\n\n'
          '<details><summary>More</summary>kept</details>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n')


def _dialogs(page: Any) -> list[str]:
    """Every dialog the page opens (none may open): recorded and dismissed."""
    seen: list[str] = []

    def on_dialog(d: Any) -> None:
        seen.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return seen


def _asset(c: Console, token: str, owner: str, kind: str = "model", **body: Any) -> str:
    folder = fresh("f")
    r = c.call(token, "POST", "/folders", json={"path": f"{owner}/{kind}/{folder}"})
    assert r.status_code == 201, r.text
    path = f"{owner}/{kind}/{folder}/{fresh('a')}"
    r = c.call(token, "POST", "/assets", json={"path": path, **body})
    assert r.status_code == 201, r.text
    return path


def _commit(c: Console, token: str, asset: str, files: dict[str, bytes], *, branch: str = "main",
            message: str = "test data") -> str:
    r = c.call(token, "POST", f"/assets/{asset}/uploads", json={"branch": branch})
    assert r.status_code == 201, r.text
    upload = r.json()["upload_id"]
    for name, data in files.items():
        r = c.call(token, "PUT", f"/uploads/{upload}/files/{name}", content=data)
        assert r.status_code == 200, r.text
    r = c.call(token, "POST", f"/uploads/{upload}/commit", json={"message": message})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _log(c: Console, token: str, asset: str, ref: str = "main") -> list[dict[str, Any]]:
    r = c.call(token, "GET", f"/assets/{asset}/log", params={"ref": ref})
    assert r.status_code == 200, r.text
    return list(r.json())


def _files(c: Console, token: str, asset: str, ref: str = "main") -> dict[str, int]:
    r = c.call(token, "GET", f"/assets/{asset}/objects", params={"ref": ref})
    assert r.status_code == 200, r.text
    return {o["path"]: o["size"] for o in r.json()}


def _url(asset: str, page: str = "") -> str:
    return f"/a/{asset}" + (f"/{page}" if page else "")


# -- upload ---------------------------------------------------------------------------------
def test_upload_three_files_and_a_folder_in_one_commit(console: Console, tmp_path: Path) -> None:
    name, token = console.user("up")
    asset = _asset(console, token, name)
    _commit(console, token, asset, {"old.txt": b"before"})
    before = _log(console, token, asset)
    tree = tmp_path / "images"
    (tree / "cats").mkdir(parents=True)
    (tree / "cats" / "1.png").write_bytes(b"\x89PNG-not-really" * 10)
    (tree / "notes.txt").write_bytes(b"folder notes")
    big = b"x" * (3 * 2**20)  # over the server's 1 MiB bound on ordinary bodies: streamed
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(_url(asset, "upload"))
    expect(page.get_by_role("heading", name="Upload files")).to_be_visible()
    page.get_by_label("Files", exact=True).set_input_files([
        {"name": "model.bin", "mimeType": "application/octet-stream", "buffer": big},
        {"name": "README.md", "mimeType": "text/markdown", "buffer": b"# Net\n"},
        {"name": f"{XSS}.txt", "mimeType": "text/plain", "buffer": b"a strange name"}])
    page.get_by_label("A folder").set_input_files(str(tree))
    page.get_by_label("Destination folder").fill("v2")
    page.get_by_label("Commit message").fill("three files and a folder")
    rows = page.locator("#up-rows tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#up-rows")).to_contain_text(f"v2/{XSS}.txt")  # literally, as text
    console.shot(page, "change-upload-ready")
    page.get_by_role("button", name="Upload and commit").click()
    expect(page.locator("#up-status")).to_contain_text("Committed 5 file(s)")
    for i in range(5):
        expect(rows.nth(i).locator(".pct")).to_have_text("100 %")
        expect(rows.nth(i).locator(".state")).to_have_text("sent")
    console.shot(page, "change-upload-done")
    after = _log(console, token, asset)
    assert len(after) == len(before) + 1  # one commit for all of them
    assert after[0]["message"] == "three files and a folder"
    link = page.locator("#up-status a").first
    expect(link).to_have_text(after[0]["id"][:12])
    assert link.get_attribute("href") == _url(asset, "history") + "?ref=main"
    files = _files(console, token, asset)
    assert files["v2/model.bin"] == len(big)
    assert {"v2/README.md", f"v2/{XSS}.txt", "v2/images/cats/1.png", "v2/images/notes.txt",
            "old.txt"} <= set(files)
    assert dialogs == []


def test_an_upload_needs_a_commit_message(console: Console) -> None:
    name, token = console.user("nomsg")
    asset = _asset(console, token, name)
    before = _log(console, token, asset)
    page = console.page(token)
    starts: list[str] = []
    page.on("request", lambda r: starts.append(r.url) if "/upload/start" in r.url else None)
    page.goto(_url(asset, "upload"))
    page.get_by_label("Files", exact=True).set_input_files([{"name": "a.txt", "mimeType": "text/plain",
                                                 "buffer": b"a"}])
    page.get_by_role("button", name="Upload and commit").click()
    # the browser's own check: the message is required
    assert page.get_by_label("Commit message").evaluate("e => e.validity.valueMissing") is True
    page.get_by_label("Commit message").fill("   ")  # blanks only: the page's check
    page.get_by_role("button", name="Upload and commit").click()
    expect(page.locator("#up-status")).to_have_text("A commit needs a message.")
    console.shot(page, "change-upload-no-message")
    assert starts == [] and _log(console, token, asset) == before
    # and the server's: a commit without a message is refused, the upload left open to retry
    client, csrf = console.session(token)
    h = {"X-CSRF-Token": csrf}
    r = client.post(_url(asset, "upload/start"), json={"branch": "main"}, headers=h)
    assert r.status_code == 201, r.text
    upload = r.json()["upload_id"]
    r = client.put(_url(asset, f"upload/{upload}/files/a.txt"), content=b"a", headers=h)
    assert r.status_code == 200, r.text
    r = client.post(_url(asset, f"upload/{upload}/commit"), json={"message": " "}, headers=h)
    assert r.status_code == 400 and "needs a message" in r.json()["error"]["message"]
    n = len(_log(console, token, asset))
    r = client.post(_url(asset, f"upload/{upload}/commit"), json={"message": "now"}, headers=h)
    assert r.status_code == 200, r.text
    assert len(_log(console, token, asset)) == n + 1
    # without the CSRF header nothing starts
    r = client.post(_url(asset, "upload/start"), json={"branch": "main"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]


def test_a_refused_file_fails_its_row_and_nothing_is_committed(console: Console,
                                                                tmp_path: Path) -> None:
    name, token = console.user("fail")
    asset = _asset(console, token, name)
    before = _log(console, token, asset)
    hooks = tmp_path / "_lakefs_actions"  # reserved: the server refuses files under it
    hooks.mkdir()
    (hooks / "hook.yaml").write_bytes(b"name: sneaky")
    page = console.page(token)
    page.goto(_url(asset, "upload"))
    page.get_by_label("Files", exact=True).set_input_files(
        [{"name": "fine.txt", "mimeType": "text/plain", "buffer": b"fine"}])
    page.get_by_label("A folder").set_input_files(str(hooks))
    page.get_by_label("Commit message").fill("should not land")
    page.get_by_role("button", name="Upload and commit").click()
    expect(page.locator("#up-status")).to_have_text(
        "1 file(s) failed: nothing was committed. Fix them and upload again.")
    rows = page.locator("#up-rows tbody tr")
    expect(rows.filter(has_text="fine.txt").locator(".state")).to_have_text("sent")
    expect(rows.filter(has_text="hook.yaml").locator(".state")).to_contain_text(
        "reserved for lakeFS actions")
    console.shot(page, "change-upload-failed-row")
    assert _log(console, token, asset) == before
    assert "fine.txt" not in _files(console, token, asset)


@pytest.fixture(scope="module")
def small_server(lakefs_server: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[RunningServer]:
    running = start_server(lakefs_server, tmp_path_factory.mktemp("hub-console-limit"),
                           limits=Limits(max_upload_bytes=1000))
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


def test_a_file_over_the_limit_is_refused_in_the_browser(small_server: RunningServer,
                                                         browser: Any) -> None:
    c = Console(small_server, browser)
    try:
        name, token = c.user("big")
        asset = _asset(c, token, name)
        before = _log(c, token, asset)
        page = c.page(token)
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if "/upload" in r.url
                and r.method != "GET" else None)
        page.goto(_url(asset, "upload"))
        expect(page.locator("#up-limit")).to_have_text("1000 B")
        page.get_by_label("Files", exact=True).set_input_files([
            {"name": "small.txt", "mimeType": "text/plain", "buffer": b"s" * 10},
            {"name": "huge.bin", "mimeType": "application/octet-stream", "buffer": b"h" * 1001}])
        expect(page.locator("#up-rows tr.refused")).to_contain_text("huge.bin")
        expect(page.locator("#up-rows tr.refused")).to_contain_text("too large")
        page.get_by_label("Commit message").fill("too big")
        page.get_by_role("button", name="Upload and commit").click()
        expect(page.locator("#up-status")).to_contain_text("Not sent: huge.bin")
        c.shot(page, "change-upload-oversize")
        assert sent == []  # nothing left the browser
        assert _log(c, token, asset) == before
        # the server holds the same line: a body over the limit is refused unread
        client, csrf = c.session(token)
        h = {"X-CSRF-Token": csrf}
        upload = client.post(_url(asset, "upload/start"), json={}, headers=h).json()["upload_id"]
        r = client.put(_url(asset, f"upload/{upload}/files/huge.bin"), content=b"h" * 1001, headers=h)
        assert r.status_code == 413, r.text
        client.post(_url(asset, f"upload/{upload}/abort"), headers=h)
    finally:
        c.close()


# -- who may change what --------------------------------------------------------------------
def test_a_viewer_sees_no_change_controls_and_is_refused_a_stranger_sees_nothing(
        console: Console) -> None:
    owner, owner_token = console.user("owner")
    viewer_name, viewer_token = console.user("viewer")
    _, stranger_token = console.user("stranger")
    asset = _asset(console, owner_token, owner, "dataset",
                   dataset={"task_type": "text_classification", "format": "dir"})
    _commit(console, owner_token, asset, {"pos/1.txt": b"good", "neg/1.txt": b"bad"})
    folder = asset.rsplit("/", 1)[0]
    r = console.call(owner_token, "POST", f"/folders/{folder}/shares",
                     json={"subject_type": "user", "subject_name": viewer_name, "role": "view"})
    assert r.status_code == 201, r.text
    page = console.page(viewer_token)
    page.goto(_url(asset, "dataset"))
    tabs = page.get_by_role("navigation", name="Asset")
    expect(tabs.get_by_role("link", name="Dataset")).to_be_visible()
    expect(tabs.get_by_role("link", name="Upload")).to_have_count(0)
    expect(tabs.get_by_role("link", name="Settings")).to_have_count(0)
    expect(page.get_by_role("button", name="Publish")).to_have_count(0)
    console.shot(page, "change-viewer-dataset")
    for p in ("upload", "settings", "import", "merge"):
        page.goto(_url(asset, p))
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    before = _log(console, owner_token, asset)
    for token, status in ((viewer_token, 403), (stranger_token, 404)):
        client, csrf = console.session(token)
        h = {"X-CSRF-Token": csrf}
        form = {"csrf": csrf}
        assert client.get(_url(asset, "upload")).status_code == status
        assert client.post(_url(asset, "upload/start"), json={}, headers=h).status_code == status
        assert client.put(_url(asset, "upload/0123abcd/files/x.txt"), content=b"x",
                          headers=h).status_code == status
        assert client.post(_url(asset, "settings"),
                           data={**form, "readme": "pwned"}).status_code == status
        assert client.post(_url(asset, "merge"),
                           data={**form, "source": "main", "target": "main"}).status_code == status
        assert client.post(_url(asset, "publish"), data={**form, "tag": "v9"}).status_code == status
        assert client.post(_url(asset, "import"), data=form,
                           files={"archive": ("a.zip", b"PK")}).status_code == status
        assert client.get(_url(asset, "dataset")).status_code == (200 if status == 403 else 404)
    assert _log(console, owner_token, asset) == before
    r = console.call(owner_token, "GET", f"/assets/{asset}")
    assert r.json()["readme"] != "pwned" and r.json()["published"] == []


# -- settings -------------------------------------------------------------------------------
def test_settings_edit_readme_and_metadata_with_xss_inert(console: Console) -> None:
    name, token = console.user("card")
    asset = _asset(console, token, name, "dataset")
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(_url(asset, "settings"))
    page.get_by_label("Description").fill(f"digits {XSS}")
    page.get_by_label("Labels").fill(f"vision, {XSS}")
    page.get_by_label("Task type").select_option("image_classification")
    page.get_by_label("Format").select_option("dir")
    page.get_by_label("Split").select_option("ratio")
    page.get_by_label("Training ratio").fill("1.5")  # wrong: refused at the form, input kept
    page.get_by_label("README").fill(CORPUS)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("split_ratio between 0 and 1")
    expect(page.get_by_label("README")).to_have_value(CORPUS)
    expect(page.get_by_label("Description")).to_have_value(f"digits {XSS}")
    page.get_by_label("Training ratio").fill("0.8")
    page.get_by_role("button", name="Preview the README").click()
    preview = page.locator(".readme-preview")
    expect(preview.get_by_role("heading", name="Card")).to_be_visible()
    expect(preview.locator("details summary")).to_have_text("More")
    expect(preview.locator("table td").first).to_have_text("1")
    assert preview.locator("script, iframe, [onerror], [onclick], [hx-post]").count() == 0
    assert preview.locator('a[href^="javascript"]').count() == 0
    console.shot(page, "change-settings-preview")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved")
    # the header shows the description as text
    expect(page.locator("main p.muted").first).to_have_text(f"digits {XSS}")
    console.shot(page, "change-settings-saved")
    a = console.call(token, "GET", f"/assets/{asset}").json()
    assert a["readme"] == CORPUS and a["labels"] == ["vision", XSS]
    assert a["dataset"]["task_type"] == "image_classification"
    assert a["dataset"]["split_mode"] == "ratio" and a["dataset"]["split_ratio"] == 0.8
    assert a["preset"] is False
    assert dialogs == []


# -- merge ----------------------------------------------------------------------------------
def test_merge_refused_by_the_metric_gate_shows_the_numbers(console: Console) -> None:
    name, token = console.user("gate")
    model = _asset(console, token, name)
    data = _asset(console, token, name, "dataset")
    _commit(console, token, data, {"a/1.txt": b"1"})
    _commit(console, token, model, {"model.bin": b"v1"})
    r = console.call(token, "POST", f"/assets/{model}/branches", json={"name": "worse",
                                                                         "source": "main"})
    assert r.status_code == 201, r.text
    _commit(console, token, model, {"model.bin": b"v2"}, branch="worse")
    for ref, accuracy in (("main", 0.91), ("worse", 0.87)):  # an editor records them (trusted)
        r = console.call(token, "POST", f"/assets/{model}/evaluations",
                         json={"ref": ref, "dataset": f"{data}:main",
                               "metrics": {"accuracy": accuracy}})
        assert r.status_code == 201, r.text
    head = _log(console, token, model)[0]["id"]
    page = console.page(token)
    page.goto(_url(model, "merge") + "?source=worse&target=main")
    expect(page.get_by_label("Only if better on")).to_have_value("accuracy")
    page.get_by_role("button", name="Merge").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("Not merged")
    gate = page.locator("table.gate")
    expect(gate).to_contain_text("0.87")
    expect(gate).to_contain_text("0.91")
    expect(gate).to_contain_text(f"user {name}")
    expect(page.get_by_label("Merge branch")).to_have_value("worse")  # the form is kept
    console.shot(page, "change-merge-gate")
    assert _log(console, token, model)[0]["id"] == head  # nothing merged
    # a margin that tolerates a loss of up to 0.05: -0.04 passes the gate
    page.get_by_label("By more than").fill("-0.05")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("status")).to_contain_text("Merged worse into main")
    log = _log(console, token, model)
    assert log[0]["id"] != head and "Merge worse into main" in log[0]["message"]


def test_a_merge_conflict_shows_the_file_names(console: Console) -> None:
    name, token = console.user("clash")
    model = _asset(console, token, name)
    _commit(console, token, model, {"weights/model.bin": b"base", "config.yaml": b"a: 1"})
    r = console.call(token, "POST", f"/assets/{model}/branches", json={"name": "exp",
                                                                         "source": "main"})
    assert r.status_code == 201, r.text
    _commit(console, token, model, {"weights/model.bin": b"exp", f"{XSS}.txt": b"x"},
            branch="exp")
    _commit(console, token, model, {"weights/model.bin": b"main", f"{XSS}.txt": b"y"})
    head = _log(console, token, model)[0]["id"]
    page = console.page(token)
    dialogs = _dialogs(page)
    page.goto(_url(model, "merge") + "?source=exp&target=main")
    page.get_by_label("Only if better on").fill("")
    page.get_by_role("button", name="Merge").click()
    conflicts = page.locator("ul.conflicts li")
    expect(conflicts).to_have_count(2)
    expect(page.locator("ul.conflicts")).to_contain_text("weights/model.bin")
    expect(page.locator("ul.conflicts")).to_contain_text(f"{XSS}.txt")
    expect(page.get_by_role("alert")).to_contain_text("both changed 2 file(s)")
    console.shot(page, "change-merge-conflict")
    assert _log(console, token, model)[0]["id"] == head
    # the source wins: merged
    page.get_by_label("On conflicts").select_option("source-wins")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("status")).to_contain_text("Merged exp into main")
    r = console.call(token, "GET", f"/assets/{model}/files/weights/model.bin")
    assert r.content == b"exp"
    assert dialogs == []


def test_an_admin_marks_a_preset_and_renames_others_cannot_mark(console: Console) -> None:
    name, token = console.user("presets")
    asset = _asset(console, token, name, "dataset", dataset={"format": "dir"})
    # not an admin: no preset box, and posting it anyway changes nothing
    page = console.page(token)
    page.goto(_url(asset, "settings"))
    expect(page.get_by_label("Preset")).to_have_count(0)
    client, csrf = console.session(token)
    r = client.post(_url(asset, "settings"), data={"csrf": csrf, "preset": "on", "format": "dir",
                                                   "name": asset.rsplit("/", 1)[1]})
    assert r.status_code == 303, r.text
    assert console.call(token, "GET", f"/assets/{asset}").json()["preset"] is False
    # an admin: marks it, and renames it
    admin = console.page(console.admin_token)
    admin.goto(_url(asset, "settings"))
    admin.get_by_label("Preset").check()
    new = fresh("renamed")
    admin.get_by_label("Name", exact=True).fill(new)
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status")).to_have_text("Settings saved")
    renamed = asset.rsplit("/", 1)[0] + "/" + new
    assert admin.url.endswith(_url(renamed, "settings"))
    expect(admin.get_by_label("Preset")).to_be_checked()
    console.shot(admin, "change-settings-admin")
    assert console.call(token, "GET", f"/assets/{renamed}").json()["preset"] is True
    assert console.call(token, "GET", f"/assets/{asset}").status_code == 404
