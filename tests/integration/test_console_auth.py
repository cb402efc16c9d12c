"""The web console's sign-in, sessions, tokens, CSRF and home page, in Debian's Chromium against
the real server (and plain HTTP where a browser would hide what is tested)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.integration._console import Console, fresh

pytestmark = pytest.mark.integration


def test_sign_in_home_and_sign_out(console: Console) -> None:
    name, token = console.user("alice")
    page = console.page()
    page.goto("/")
    expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    console.shot(page, "signin-anonymous-home")
    console.sign_in(page, token)
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(page.get_by_role("heading", name="Your folders")).to_be_visible()
    # a folder from the home page's dialog
    page.get_by_text("New folder").click()
    page.get_by_label("Name", exact=True).fill("images")
    page.get_by_label("Type").select_option("dataset")
    page.get_by_role("button", name="Create folder").click()
    expect(page.get_by_text(f"Folder {name}/dataset/images created")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("link", name=f"{name}/dataset/images")).to_be_visible()
    console.shot(page, "home")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Signed out")).to_be_visible()
    page.goto("/tokens")
    assert "/signin" in page.url  # signed out: asked to sign in again


def test_a_bad_token_is_refused_with_the_reason(console: Console) -> None:
    page = console.page()
    page.goto("/signin")
    page.get_by_label("API token").fill("ah_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown API token")
    r = httpx.post(console.url + "/signin", data={"token": "ahj_job-token"})
    assert r.status_code == 401 and "job token cannot sign in" in r.text


def test_session_cookie_flags_and_security_headers(console: Console) -> None:
    _, token = console.user("flags")
    r = httpx.post(console.url + "/signin", data={"token": token, "next": "/tokens"})
    assert r.status_code == 303 and r.headers["location"] == "/tokens"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("assethub_session="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= flags, cookie
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in flags  # plain HTTP on loopback; under HTTPS it is set
    secret = cookie.split(";")[0].split("=", 1)[1]
    assert token not in cookie and secret.startswith("ahs_")
    page = httpx.get(console.url + "/tokens", cookies={"assethub_session": secret})
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["server-timing"].startswith("app;dur=")  # what bench/console.py reads
    assert "server-timing" not in console.call(token, "GET", "/whoami").headers  # the API is untouched
    # an open redirect through ?next= is not possible
    r = httpx.post(console.url + "/signin", data={"token": token, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_forms_without_the_csrf_token_are_refused(console: Console) -> None:
    name, token = console.user("csrf")
    client, csrf = console.session(token)
    folder = fresh("f")
    # no token, a wrong token, another session's token, a cross-site origin: all refused, nothing made
    _, other_token = console.user("other")
    _, other_csrf = console.session(other_token)
    for data, headers in (({}, {}), ({"csrf": "wrong"}, {}), ({"csrf": other_csrf}, {}),
                          ({"csrf": csrf}, {"Origin": "http://evil.example"}),
                          ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"})):
        r = client.post("/folders", data={"kind": "model", "name": folder, **data}, headers=headers)
        assert r.status_code == 403, (data, headers, r.status_code)
        assert "CSRF" in r.text
    r = console.call(token, "GET", f"/folders/{name}/model/{folder}")
    assert r.status_code == 404
    r = client.post("/folders", data={"kind": "model", "name": folder, "csrf": csrf})
    assert r.status_code == 303
    assert console.call(token, "GET", f"/folders/{name}/model/{folder}").status_code == 200
    # sign-out is a form too
    assert client.post("/signout", data={}).status_code == 403
    events = console.call(console.admin_token, "GET", "/audit", params={"actor": name}).json()
    assert any(e["action"] == "console.csrf" and e["outcome"] == "denied" for e in events)
    # the REST API filters by outcome and pages with `before` (what the console's audit page uses)
    denied = console.call(token, "GET", "/audit", params={"outcome": "denied"}).json()
    assert len(denied) == 6 and {e["outcome"] for e in denied} == {"denied"}
    older = console.call(token, "GET", "/audit", params={"outcome": "denied", "before": denied[2]["id"]})
    assert [e["id"] for e in older.json()] == [e["id"] for e in denied[3:]]
    bad = console.call(token, "GET", "/audit", params={"outcome": "maybe"})
    assert bad.status_code == 422 and "outcome" in bad.json()["error"]["message"]


def test_a_session_ends_when_its_token_is_revoked(console: Console) -> None:
    name, token = console.user("revoke")
    page = console.page(token)
    page.goto("/tokens")
    expect(page.get_by_text("this session")).to_be_visible()
    # revoked elsewhere (the API): the next page asks to sign in again
    tokens = console.call(token, "GET", f"/users/{name}/tokens").json()
    r = console.call(console.admin_token, "DELETE", f"/tokens/{tokens[0]['id']}")
    assert r.status_code == 204
    page.goto("/tokens")
    assert "/signin" in page.url
    expect(page.get_by_label("API token")).to_be_visible()


def test_tokens_page_creates_lists_and_revokes(console: Console) -> None:
    name, token = console.user("tok")
    page = console.page(token)
    page.goto("/tokens")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Expires in (days, empty: never)").fill("7")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token").input_value()
    assert secret.startswith("ah_")
    console.shot(page, "tokens")
    assert console.call(secret, "GET", "/whoami").json()["name"] == name  # the new token works
    row = page.locator("tr", has_text="laptop")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked", exact=False).first).to_be_visible()
    assert console.call(secret, "GET", "/whoami").status_code == 401


def test_an_admin_gives_a_new_user_their_first_token(console: Console) -> None:
    page = console.page(console.admin_token)
    page.goto("/admin/users")
    newcomer = fresh("new")
    page.get_by_label("User name").fill(newcomer)
    page.get_by_role("button", name="Create user and first token").click()
    secret = page.get_by_label(f"Token for {newcomer}").input_value()
    console.shot(page, "admin-users")
    assert console.call(secret, "GET", "/whoami").json()["name"] == newcomer
    # a non-admin cannot see the page nor post to it
    _, token = console.user("plain")
    client, csrf = console.session(token)
    assert client.get("/admin/users").status_code == 403
    r = client.post("/admin/users", data={"csrf": csrf, "name": fresh("sneak")})
    assert r.status_code == 403


def test_search_by_name_kind_task_type_and_owner(console: Console, hub_server: Any) -> None:
    name, token = console.user("seek")
    assert console.call(token, "POST", "/folders", json={"path": f"{name}/dataset/d"}).status_code == 201
    r = console.call(token, "POST", "/assets", json={"path": f"{name}/dataset/d/flowers-x",
                                                     "labels": ["<b>bold</b>"],
                                                     "dataset": {"task_type": "image_classification"}})
    assert r.status_code == 201, r.text
    page = console.page(token)
    page.goto(f"/search?q=flowers&owner={name}&task_type=image_classification&kind=dataset")
    expect(page.get_by_role("link", name=f"{name}/dataset/d/flowers-x")).to_be_visible()
    expect(page.get_by_text("<b>bold</b>")).to_be_visible()  # a label is text, never markup
    console.shot(page, "search")
    page.goto(f"/search?q=flowers&owner={name}&task_type=text_classification")
    expect(page.get_by_text("No asset you may see matches.")).to_be_visible()
    # a stranger finds nothing of it
    _, stranger = console.user("stranger")
    other = console.page(stranger)
    other.goto(f"/search?q=flowers&owner={name}")
    expect(other.get_by_text("No asset you may see matches.")).to_be_visible()


def test_keyboard_only_sign_in_and_new_folder(console: Console) -> None:
    """No mouse: the token field has focus, Enter signs in; Tab reaches the skip link and the
    "New folder" dialog, which opens with Enter and submits with Enter."""
    name, token = console.user("keys")
    page = console.page(viewport=(1366, 768))
    page.goto("/signin")
    expect(page.get_by_label("API token")).to_be_focused()  # on arrival (autofocus)
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(40):  # on to the dialog's button
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "New folder":
            break
    else:
        raise AssertionError("Tab never reached 'New folder'")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("by-keys")
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Folder {name}/model/by-keys created")).to_be_visible()
