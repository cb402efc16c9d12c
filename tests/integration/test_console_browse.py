"""The web console's folder and asset pages in Debian's Chromium against the real server:
a folder's assets and shares, an asset's overview, files at a ref, file views and raw
downloads, history, compare, branches and tags; what a viewer and a stranger get."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.integration._console import Console, fresh

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
XSS_FILE = f"{XSS}.txt"
README = """---
license: mit
datasets:
  - digits
tags: [vision, "<script>alert(1)</script>"]
---
# Digits net

A small classifier. **Bold** and a [link](https://example.org); [the notes](notes.txt).
![a red pixel](img/pixel.png)

<script>alert("script")</script>
<img src=x onerror="alert('onerror')">
<a href="javascript:alert('js')">a javascript link</a>
<iframe src="https://example.org"></iframe>
<div hx-post="/signout" hx-trigger="load">htmx</div>
<details><summary>More</summary>Inside a details element.</details>

| a | b |
|---|---|
| 1 | 2 |
"""


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def commit(c: Console, token: str, asset: str, files: dict[str, bytes], message: str,
           branch: str = "main") -> dict[str, Any]:
    r = c.call(token, "POST", f"/assets/{asset}/uploads", json={"branch": branch})
    assert r.status_code == 201, r.text
    upload = r.json()["upload_id"]
    for path, data in files.items():
        r = c.call(token, "PUT", f"/uploads/{upload}/files/{quote(path, safe='/')}", content=data)
        assert r.status_code == 200, r.text
    r = c.call(token, "POST", f"/uploads/{upload}/commit", json={"message": message})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def session(c: Console, token: str) -> tuple[httpx.Client, str]:
    """A plain HTTP client signed in like a browser, and its CSRF token."""
    client = httpx.Client(base_url=c.url)
    r = client.post("/signin", data={"token": token})
    assert r.status_code == 303, r.text
    csrf = client.get("/tokens").text.split('name="csrf-token" content="')[1].split('"')[0]
    return client, csrf


def watch_dialogs(page: Any) -> list[str]:
    """Accept data-confirm questions; record every other dialog (an XSS would open one)."""
    seen: list[str] = []

    def on_dialog(d: Any) -> None:
        if d.type != "confirm":
            seen.append(f"{d.type}: {d.message}")
        d.accept() if d.type == "confirm" else d.dismiss()

    page.on("dialog", on_dialog)
    return seen


def test_a_model_from_folder_to_files_history_compare_refs_and_delete(console: Console) -> None:
    name, token = console.user("alice")
    page = console.page(token)
    alerts = watch_dialogs(page)
    folder = fresh("nets")
    # a folder (home), an asset (the folder page)
    page.goto("/")
    page.get_by_text("New folder").click()
    page.get_by_label("Type").select_option("model")
    page.get_by_label("Name", exact=True).fill(folder)
    page.get_by_role("button", name="Create folder").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    page.locator("summary", has_text="New model").click()
    page.get_by_label("Name", exact=True).fill("net")
    page.get_by_label("Description").fill(f"Digits {XSS}")
    page.get_by_label("Labels (comma-separated)").fill("vision, <b>bold</b>")
    page.get_by_role("button", name="Create model").click()
    asset = f"{name}/model/{folder}/net"
    expect(page.get_by_text(f"Asset {asset} created")).to_be_visible()
    base = f"/a/{asset}"
    assert page.url.endswith(base)
    expect(page.get_by_text("has no README yet")).to_be_visible()
    page.goto(f"/f/{name}/model/{folder}")
    expect(page.get_by_role("link", name="net", exact=True)).to_be_visible()
    expect(page.get_by_text("<b>bold</b>")).to_be_visible()
    console.shot(page, "browse-folder")

    # files through the API: a README with an XSS corpus, a file named like markup, an image,
    # a table, an HTML page
    first = commit(console, token, asset, {
        "README.md": README.encode(), XSS_FILE: b"hello from a hostile name\n",
        "notes.txt": b"one\ntwo\nthree\n", "img/pixel.png": png(),
        "data/train.csv": b"label,text\n1,<b>one</b>\n0,two\n",
        "page.html": b"<script>alert('html')</script>",
    }, f"first {XSS}")
    # a tag at that commit, from the refs page
    page.goto(f"{base}/refs")
    page.locator("summary", has_text="New tag").click()
    page.get_by_label("Tag name").fill("v1")
    page.get_by_role("button", name="Create tag").click()
    expect(page.get_by_text("Tag v1 created at main")).to_be_visible()
    second = commit(console, token, asset, {"notes.txt": b"one\n2\nthree\nfour\n",
                                            "data/more.csv": b"label,text\n1,x\n"}, "second")

    # overview: the README sanitised, its front matter beside it, the snippets
    page.goto(base)
    expect(page.get_by_role("heading", name="Digits net")).to_be_visible()
    expect(page.locator(".markdown-body table")).to_be_visible()
    expect(page.locator(".markdown-body details summary")).to_have_text("More")
    assert page.locator(".markdown-body script, .markdown-body iframe, .markdown-body [onerror], "
                        ".markdown-body [hx-post]").count() == 0
    assert page.locator('.markdown-body a[href^="javascript"]').count() == 0
    expect(page.locator(".front-matter")).to_contain_text("mit")
    expect(page.locator(".front-matter")).to_contain_text("<script>alert(1)</script>")
    expect(page.get_by_text(f"Digits {XSS}").first).to_be_visible()
    expect(page.get_by_label("CLI")).to_have_value(f"assethub download {asset}:main net/")
    expect(page.locator(".commit-line")).to_contain_text("second")
    # relative links and images of the README lead to the asset's files at the same ref
    page.wait_for_function("document.querySelector('.markdown-body img[alt=\"a red pixel\"]')"
                           ".naturalWidth === 8")
    console.shot(page, "browse-overview")
    page.locator(".markdown-body").get_by_role("link", name="the notes").click()
    expect(page.locator("pre.blob")).to_have_text("one\n2\nthree\nfour\n")
    assert "/blob?" in page.url and "path=notes.txt" in page.url

    # files at main: one level at a time, the hostile name as text
    page.get_by_role("navigation", name="Asset").get_by_role("link", name="Files").click()
    table = page.locator("table.files")
    expect(table.get_by_role("link", name="data/")).to_be_visible()
    expect(table.get_by_role("link", name=XSS_FILE)).to_be_visible()
    expect(table.get_by_role("link", name="more.csv")).to_have_count(0)  # not recursive
    console.shot(page, "browse-files")
    table.get_by_role("link", name="data/").click()
    expect(page.locator("table.files").get_by_role("link", name="more.csv")).to_be_visible()
    expect(page.get_by_role("navigation", name="Path")).to_contain_text("data")
    # the ref picker: filter, pick the tag; the page and the path are kept
    page.locator(".ref-picker summary").click()
    page.get_by_label("Filter branches, tags and commits").fill("v")
    expect(page.locator(".ref-picker li.ref", has_text="default")).to_be_hidden()
    console.shot(page, "browse-ref-picker")
    page.locator(".ref-picker").get_by_role("link", name="v1", exact=True).click()
    assert "ref=v1" in page.url and "path=data" in page.url and "/files" in page.url
    expect(page.locator("table.files").get_by_role("link", name="train.csv")).to_be_visible()
    expect(page.locator("table.files").get_by_role("link", name="more.csv")).to_have_count(0)

    # file views: text, image, table, markdown, the hostile name
    page.goto(f"{base}/blob?ref=v1&path=notes.txt")
    expect(page.locator("pre.blob")).to_have_text("one\ntwo\nthree\n")
    expect(page.locator(".file-facts")).to_contain_text(first["id"][:12])
    console.shot(page, "browse-blob-text")
    page.goto(f"{base}/blob?path=img/pixel.png")
    img = page.locator("figure.preview img")
    expect(img).to_be_visible()
    page.wait_for_function("document.querySelector('figure.preview img').naturalWidth === 8")
    console.shot(page, "browse-blob-image")
    page.goto(f"{base}/blob?path=data/train.csv")
    expect(page.locator("table.data thead")).to_contain_text("label")
    expect(page.locator("table.data tbody")).to_contain_text("<b>one</b>")
    console.shot(page, "browse-blob-table")
    page.goto(f"{base}/blob?path=README.md")
    expect(page.locator(".markdown-body h1")).to_have_text("Digits net")
    page.goto(f"{base}/blob?path={quote(XSS_FILE)}")
    expect(page.locator("pre.blob")).to_have_text("hello from a hostile name\n")
    expect(page.get_by_role("navigation", name="Path")).to_contain_text(XSS_FILE)

    # raw downloads: nothing uploaded runs on this origin
    raw = page.request.get(f"{base}/raw?path=page.html")
    assert raw.status == 200 and raw.body() == b"<script>alert('html')</script>"
    h = raw.headers
    assert h["content-disposition"].startswith("attachment")
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-security-policy"] == "sandbox; default-src 'none'"
    assert h["content-type"] == "application/octet-stream"
    raw = page.request.get(f"{base}/raw?path=img/pixel.png")
    assert raw.headers["content-type"] == "image/png" and raw.body() == png()
    assert raw.headers["content-disposition"].startswith("inline")
    assert raw.headers["content-security-policy"] == "sandbox; default-src 'none'"
    raw = page.request.get(f"{base}/raw?ref=v1&path=notes.txt&download=1")
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.headers["content-disposition"].startswith("attachment") and raw.body() == b"one\ntwo\nthree\n"
    assert alerts == []

    # history: messages literally, links to files at each commit and to compare with the parent
    page.goto(f"{base}/history")
    rows = page.locator("table.commits tbody tr")
    expect(rows.first).to_contain_text("second")
    expect(page.locator(f'tr[data-commit="{first["id"]}"] td.msg')).to_have_text(f"first {XSS}")
    console.shot(page, "browse-history")
    page.locator(f'tr[data-commit="{second["id"]}"]').get_by_role("link", name="Compare with parent").click()
    expect(page.locator("ul.changes").get_by_role("link", name="notes.txt")).to_be_visible()
    expect(page.locator("ul.changes").get_by_role("link", name="data/more.csv")).to_be_visible()

    # compare v1 with main: grouped paths, counts, a line diff, merge for the owner, swap
    page.goto(f"{base}/compare?base=v1&head=main")
    expect(page.locator(".summary")).to_contain_text("1 added")
    expect(page.locator(".summary")).to_contain_text("1 changed")
    expect(page.locator("table.diff tr.diff-add", has_text="four")).to_be_visible()
    merge = page.get_by_role("link", name="Merge main into v1…")
    expect(merge).to_have_attribute("href", re.compile(r"/merge\?source=main&target=v1$"))
    console.shot(page, "browse-compare")
    page.get_by_role("link", name="Swap").click()
    assert "base=main" in page.url and "head=v1" in page.url
    expect(page.locator(".summary")).to_contain_text("1 removed")
    page.goto(f"{base}/compare?base=main&head={second['id']}")
    expect(page.get_by_text("Nothing to compare")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Merge"))).to_have_count(0)

    # branches and tags: create and delete, with confirmation; a refusal shows by its form
    page.goto(f"{base}/refs")
    page.locator("summary", has_text="New branch").click()
    page.get_by_label("Branch name").fill("exp")
    page.get_by_label("From (branch, tag or commit)").fill("v1")
    page.get_by_role("button", name="Create branch").click()
    expect(page.get_by_text("Branch exp created from v1")).to_be_visible()
    expect(page.locator('tr[data-branch="exp"]')).to_contain_text(first["id"][:12])
    page.locator("summary", has_text="New tag").click()
    page.get_by_label("Tag name").fill("v1")
    page.get_by_role("button", name="Create tag").click()
    expect(page.get_by_role("alert")).to_contain_text("v1")
    expect(page.get_by_label("Tag name")).to_have_value("v1")  # the input is kept
    page.get_by_label("Tag name").fill("v2")
    page.get_by_role("button", name="Create tag").click()
    expect(page.get_by_text("Tag v2 created at main")).to_be_visible()
    console.shot(page, "browse-refs")
    page.get_by_role("button", name="Delete branch exp").click()
    expect(page.get_by_text("Branch exp deleted")).to_be_visible()
    page.get_by_role("button", name="Delete tag v2").click()
    expect(page.get_by_text("Tag v2 deleted")).to_be_visible()
    branches = [b["name"] for b in console.call(token, "GET", f"/assets/{asset}/branches").json()]
    tags = [t["name"] for t in console.call(token, "GET", f"/assets/{asset}/tags").json()]
    assert branches == ["main"] and tags == ["v1"]

    # share the folder with bob (view): he sees it, without write controls; his POSTs are refused
    bob, bob_token = console.user("bob")
    page.goto(f"/f/{name}/model/{folder}")
    page.locator("summary", has_text="Share").click()
    page.get_by_label("With", exact=True).select_option("user")
    page.get_by_label("User or group name (not for everyone)").fill(bob)
    page.get_by_label("Role", exact=True).select_option("view")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_text(f"with user {bob} (view)")).to_be_visible()
    expect(page.locator("table.shares")).to_contain_text(bob)
    viewer = console.page(bob_token)
    viewer_alerts = watch_dialogs(viewer)
    viewer.goto("/")
    shared = viewer.locator("section", has=viewer.get_by_role("heading", name="Shared with you"))
    expect(shared.get_by_role("link", name=f"{name}/model/{folder}")).to_be_visible()
    viewer.goto(f"/f/{name}/model/{folder}")
    expect(viewer.get_by_role("link", name="net", exact=True)).to_be_visible()
    for control in ("New model", "Share", "Delete folder"):
        expect(viewer.get_by_text(control, exact=True)).to_have_count(0)
    console.shot(viewer, "browse-folder-viewer")
    viewer.goto(f"{base}/refs")
    expect(viewer.locator('tr[data-tag="v1"]')).to_be_visible()
    assert viewer.locator("form[method=post]").count() == 1  # sign-out only
    viewer.goto(f"{base}/compare?base=v1&head=main")
    expect(viewer.locator(".summary")).to_contain_text("changed path")
    expect(viewer.get_by_role("button", name=re.compile("^Merge"))).to_have_count(0)
    console.shot(viewer, "browse-compare-viewer")
    client, csrf = session(console, bob_token)
    folder_base = f"/f/{name}/model/{folder}"
    posts = {f"{base}/branches": {"name": "b2", "source": "main"},
             f"{base}/branches/delete": {"name": "main"}, f"{base}/tags": {"name": "t9"},
             f"{base}/tags/delete": {"name": "v1"}, f"{base}/delete": {"confirm": "net"},
             f"{folder_base}/assets": {"name": "sneak"},
             f"{folder_base}/shares": {"subject_type": "user", "subject_name": bob, "role": "edit"},
             f"{folder_base}/shares/delete": {"subject_type": "user", "subject_name": bob},
             f"{folder_base}/delete": {"confirm": folder}}
    for url, data in posts.items():
        r = client.post(url, data={"csrf": csrf, **data})
        assert r.status_code == 403, (url, r.status_code, r.text[:300])
    assert [t["name"] for t in console.call(token, "GET", f"/assets/{asset}/tags").json()] == ["v1"]
    assert viewer_alerts == []
    # unshared: bob's next look finds nothing there
    page.goto(folder_base)
    page.get_by_role("button", name=f"Unshare user {bob}").click()
    expect(page.get_by_text(f"no longer shared with user {bob}")).to_be_visible()
    assert client.get(folder_base).status_code == 404
    assert client.get(base).status_code == 404

    # a stranger: every asset page is the page of a path that does not exist
    _, stranger_token = console.user("eve")
    eve, _ = session(console, stranger_token)
    missing = f"/a/{name}/model/{folder}/nothing"
    for suffix in ("", "/files", "/blob?path=notes.txt", "/raw?path=notes.txt", "/history",
                   "/compare?base=v1&head=main", "/refs"):
        hidden_page, missing_page = eve.get(base + suffix), eve.get(missing + suffix)
        assert hidden_page.status_code == missing_page.status_code == 404, suffix
        assert hidden_page.text.replace(f"{asset}", f"{name}/model/{folder}/nothing") \
            == missing_page.text, suffix
    r, m = eve.get(folder_base), eve.get(f"/f/{name}/model/no-such-folder")
    assert r.status_code == m.status_code == 404
    assert r.text.replace(folder, "no-such-folder") == m.text
    stranger = console.page(stranger_token)
    stranger.goto(base + "/files")
    expect(stranger.get_by_role("heading", name="Not found")).to_be_visible()
    console.shot(stranger, "browse-stranger-404")

    # delete the asset: the name must be typed
    page.goto(f"{base}/refs")
    page.get_by_label(re.compile("Type the name")).fill("wrong")
    page.get_by_role("button", name="Delete model").click()
    expect(page.get_by_role("alert")).to_contain_text("type the asset's name")
    page.get_by_label(re.compile("Type the name")).fill("net")
    page.get_by_role("button", name="Delete model").click()
    expect(page.get_by_text(f"Asset {asset} deleted")).to_be_visible()
    assert page.url.endswith(folder_base)
    assert console.call(token, "GET", f"/assets/{asset}").status_code == 404
    assert alerts == []


def test_a_dataset_form_keeps_its_input_on_a_refusal(console: Console) -> None:
    name, token = console.user("dora")
    folder = fresh("imgs")
    r = console.call(token, "POST", "/folders", json={"path": f"{name}/dataset/{folder}"})
    assert r.status_code == 201
    page = console.page(token)
    alerts = watch_dialogs(page)
    page.goto(f"/f/{name}/dataset/{folder}")
    page.locator("summary", has_text="New dataset").click()
    page.get_by_label("Name", exact=True).fill("digits")
    page.get_by_label("Task type").select_option("image_classification")
    page.get_by_label("Split", exact=True).select_option("ratio")
    page.get_by_label(re.compile("Split ratio")).fill("1.5")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.get_by_role("alert")).to_contain_text("split_ratio between 0 and 1")
    expect(page.get_by_label("Name", exact=True)).to_have_value("digits")
    expect(page.get_by_label("Task type")).to_have_value("image_classification")
    console.shot(page, "browse-folder-new-dataset-error")
    page.get_by_label(re.compile("Split ratio")).fill("0.8")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.get_by_text(f"Asset {name}/dataset/{folder}/digits created")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("image_classification")
    expect(page.locator("dl.facts")).to_contain_text("ratio 0.8")
    # datasets have only main: no "New branch"; tags are published versions (no delete)
    page.goto(f"/a/{name}/dataset/{folder}/digits/refs")
    expect(page.get_by_text("New branch")).to_have_count(0)
    expect(page.get_by_text("New tag")).to_be_visible()
    # the folder goes when its name is typed
    page.goto(f"/f/{name}/dataset/{folder}")
    page.get_by_label(re.compile("Type the name")).fill(folder)
    page.get_by_role("button", name="Delete folder").click()
    expect(page.get_by_text(f"Folder {name}/dataset/{folder} deleted")).to_be_visible()
    assert console.call(token, "GET", f"/folders/{name}/dataset/{folder}").status_code == 404
    assert alerts == []


def test_a_large_directory_is_listed_a_page_at_a_time(console: Console) -> None:
    name, token = console.user("pager")
    folder = fresh("big")
    asset = f"{name}/model/{folder}/many"
    assert console.call(token, "POST", "/folders", json={"path": f"{name}/model/{folder}"}).status_code == 201
    assert console.call(token, "POST", "/assets", json={"path": asset}).status_code == 201
    commit(console, token, asset, {f"d/f{i:03d}.txt": b"x" for i in range(25)} | {"top.txt": b"t"},
           "many files")
    page = console.page(token)
    page.goto(f"/a/{asset}/files?path=d/&limit=10")
    seen: list[str] = []
    for _ in range(5):
        names = page.locator("table.files tr.file td:first-child a").all_inner_texts()
        seen += names
        more = page.get_by_role("link", name="More files")
        if more.count() == 0:
            break
        assert len(names) == 10
        more.click()
        expect(page.get_by_role("link", name="Back to the first page")).to_be_visible()
    assert seen == [f"f{i:03d}.txt" for i in range(25)]
    # the ref picker by keyboard alone: open, filter, pick a tag; the directory is kept
    assert console.call(token, "POST", f"/assets/{asset}/tags", json={"name": "t1"}).status_code == 201
    page.goto(f"/a/{asset}/files?path=d/")
    page.locator(".ref-picker summary").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Filter branches, tags and commits")).to_be_focused()
    page.keyboard.type("t1")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"ref=t1"))
    assert "path=d%2F" in page.url
    expect(page.locator(".ref-picker summary")).to_contain_text("t1")
    # history, a commit per page: each commit once, newest first, then the end
    commit(console, token, asset, {"d/f000.txt": b"y"}, "touch d")
    commit(console, token, asset, {"top.txt": b"u"}, "touch top")
    page.goto(f"/a/{asset}/history?limit=1")
    messages: list[str] = []
    for _ in range(10):
        messages += page.locator("table.commits td.msg").all_inner_texts()
        more = page.get_by_role("link", name="Older commits")
        if more.count() == 0:
            break
        more.click()
        expect(page.get_by_role("link", name="Newest commits")).to_be_visible()
    assert messages[:3] == ["touch top", "touch d", "many files"]
    assert len(messages) == len(set(messages))  # no commit twice
    # the history of the directory: only the commits that touch it
    page.goto(f"/a/{asset}/history?path=d/")
    expect(page.locator("table.commits td.msg")).to_have_text(["touch d", "many files"])

    # shared with everyone: an anonymous visitor browses it, with no write control
    r = console.call(token, "POST", f"/folders/{name}/model/{folder}/shares",
                     json={"subject_type": "everyone", "role": "view"})
    assert r.status_code == 201, r.text
    anonymous = console.page()
    for url in (f"/f/{name}/model/{folder}", f"/a/{asset}", f"/a/{asset}/files?path=d/",
                f"/a/{asset}/blob?path=top.txt", f"/a/{asset}/history", f"/a/{asset}/refs",
                f"/a/{asset}/compare?base=main~1&head=main"):
        response = anonymous.goto(url)
        assert response is not None and response.status == 200, url
        assert anonymous.locator("form[method=post]").count() == 0, url
    console.shot(anonymous, "browse-compare-anonymous")
    r = httpx.post(f"{console.url}/a/{asset}/tags", data={"name": "anon"})
    assert r.status_code == 401


def test_bad_input_on_asset_pages_gets_a_clear_error(console: Console) -> None:
    name, token = console.user("typo")
    folder = fresh("m")
    asset = f"{name}/model/{folder}/net"
    assert console.call(token, "POST", "/folders", json={"path": f"{name}/model/{folder}"}).status_code == 201
    assert console.call(token, "POST", "/assets", json={"path": asset}).status_code == 201
    commit(console, token, asset, {"a.txt": b"a"}, "one")
    client, _ = session(console, token)
    base = f"/a/{asset}"
    cases = {
        f"{base}/files?ref=no-such-branch": (404, "no-such-branch"),
        f"{base}/files?ref=a:b": (400, "ref"),
        f"{base}/files?path=../etc": (400, "object path"),
        f"{base}/files?path=nowhere/": (404, "nowhere"),
        f"{base}/blob?path=missing.txt": (404, "missing.txt"),
        f"{base}/blob?path=/abs": (400, "object path"),
        f"{base}/raw?path=missing.txt": (404, "missing.txt"),
        f"{base}/history?after=not-a-commit!": (400, "after"),
        f"{base}/compare?base=main&head=nope": (404, "nope"),
        f"/a/{name}/widget/{folder}/net": (400, "asset type"),
        f"/f/{name}/widget/{folder}": (400, "widget"),
    }
    for url, (status, text) in cases.items():
        r = client.get(url)
        assert r.status_code == status, (url, r.status_code, r.text[-600:])
        message = r.text.split('<p class="message">')[1].split("</p>")[0]
        assert text in message.replace("&#39;", "'"), (url, message)
