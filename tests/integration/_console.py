"""Helpers for the web console's browser tests: Debian's Chromium driven by Playwright against
the session's real server (``hub_server``), people with their own tokens, screenshots.

Use the fixtures from a test module with ``from tests.integration._console import browser,
console`` (both are pytest fixtures; the browser is per module: Playwright's sync API keeps an
event loop of its own, which other modules' asyncio code must not meet).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def fresh(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def small_digits(root: Path, train: int = 30, test: int = 8) -> None:
    """scikit-learn's digits in class folders (``train/<class>/``, ``test/<class>/``), ``train``
    training and ``test`` test images per class: a page shows the same with far fewer files to
    move (and a one-epoch training takes the same steps) as with all 1,797."""
    from examples.datasets import write_digits

    write_digits(root)
    for split, keep in (("train", train), ("test", test)):
        for cls in (root / split).iterdir():
            for extra in sorted(cls.iterdir())[keep:]:
                extra.unlink()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


class Console:
    """The console of the session's server, seen by people who sign in with their tokens."""

    def __init__(self, server: Any, browser: Any) -> None:
        self.server = server
        self.url = server.url
        self.browser = browser
        self.admin_token = server.admin_token
        self.contexts: list[Any] = []
        self.clients: list[httpx.Client] = []
        self.api = httpx.Client(base_url=server.url + "/api/v1", timeout=120)

    def call(self, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.api.request(method, path, headers=headers, **kw)

    def user(self, prefix: str = "u") -> tuple[str, str]:
        """A new user and their token: (name, token)."""
        name = fresh(prefix)
        r = self.call(self.admin_token, "POST", "/users", json={"name": name})
        assert r.status_code == 201, r.text
        r = self.call(self.admin_token, "POST", f"/users/{name}/tokens", json={"name": "console"})
        assert r.status_code == 201, r.text
        return name, r.json()["token"]

    def page(self, token: str | None = None, *, viewport: tuple[int, int] = (1366, 900)) -> Any:
        """A fresh browser context (its own cookies); signed in with ``token`` when given."""
        context = self.browser.new_context(base_url=self.url,
                                           viewport={"width": viewport[0], "height": viewport[1]})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        if token:
            self.sign_in(page, token)
        return page

    def sign_in(self, page: Any, token: str) -> None:
        from playwright.sync_api import expect

        page.goto("/signin")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    def session(self, token: str) -> tuple[httpx.Client, str]:
        """A plain HTTP client signed in like a browser, and its session's CSRF token (for what a
        browser would hide: direct POSTs, headers, status codes)."""
        client = httpx.Client(base_url=self.url, timeout=60)
        r = client.post("/signin", data={"token": token})
        assert r.status_code == 303, r.text
        page = client.get("/tokens").text
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        assert len(csrf) > 20
        self.clients.append(client)
        return client, csrf

    def csrf(self, page: Any) -> str:
        """The CSRF token of the page's session (what its forms carry)."""
        return str(page.locator('meta[name="csrf-token"]').get_attribute("content") or "")

    def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot under test-artifacts/console/ for a reviewer."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for c in self.contexts:
            c.close()
        for client in self.clients:
            client.close()
        self.api.close()


@pytest.fixture
def console(hub_server: Any, browser: Any) -> Iterator[Console]:
    c = Console(hub_server, browser)
    yield c
    c.close()
