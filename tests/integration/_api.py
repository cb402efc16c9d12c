"""Helpers for the HTTP API tests: named callers with tokens, setup as admin, state snapshots.

Plain httpx against the real running server; nothing here knows the server's internals.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import httpx

API = "/api/v1"


def fresh(prefix: str = "x") -> str:
    """A name no other test uses (the server is shared by the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def message(r: httpx.Response) -> str:
    """The error message of a failed call (and a check that errors have the documented shape)."""
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["message"])


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


class Api:
    """Calls the API as one of several named callers: "admin", "anonymous" or added users."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + API, timeout=120)
        self.tokens: dict[str, str | None] = {"admin": admin_token, "anonymous": None}
        self.names: dict[str, str] = {"admin": "admin", "anonymous": ""}

    def call(self, who: str, method: str, url: str, **kw: Any) -> httpx.Response:
        token = self.tokens[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return self.http.request(method, url, headers=headers, **kw)

    def ok(self, who: str, method: str, url: str, **kw: Any) -> Any:
        """Call and insist on success; the JSON body (None when empty)."""
        r = self.call(who, method, url, **kw)
        assert r.is_success, f"{who}: {method} {url} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def admin(self, method: str, url: str, **kw: Any) -> Any:
        return self.ok("admin", method, url, **kw)

    def add_user(self, who: str) -> str:
        """Create a user for caller ``who`` (with a unique name) and an API token for them."""
        name = fresh(who)
        self.admin("POST", "/users", json={"name": name})
        self.tokens[who] = self.admin("POST", f"/users/{name}/tokens", json={"name": "t"})["token"]
        self.names[who] = name
        return name

    def commit(self, who: str, asset: str, files: dict[str, bytes], *, branch: str = "main",
               message: str = "test data") -> dict[str, Any]:
        """Upload ``files`` and commit them to ``branch`` of ``asset`` as ``who``."""
        upload = self.ok(who, "POST", f"/assets/{asset}/uploads", json={"branch": branch})
        for path, data in files.items():
            self.ok(who, "PUT", f"/uploads/{upload['upload_id']}/files/{path}", content=data)
        result: dict[str, Any] = self.ok(who, "POST", f"/uploads/{upload['upload_id']}/commit",
                                         json={"message": message})
        return result

    def state(self, asset: str) -> dict[str, Any]:
        """What a write to ``asset`` could change: its record, branch heads, tags and files."""
        return {
            "asset": self.admin("GET", f"/assets/{asset}"),
            "branches": self.admin("GET", f"/assets/{asset}/branches"),
            "tags": self.admin("GET", f"/assets/{asset}/tags"),
            "files": self.admin("GET", f"/assets/{asset}/objects"),
        }

    def last_audit_id(self) -> int:
        events = self.admin("GET", "/audit", params={"limit": 1})
        return int(events[0]["id"]) if events else 0

    def audit_since(self, after: int) -> list[dict[str, Any]]:
        return [e for e in self.admin("GET", "/audit", params={"limit": 1000}) if e["id"] > after]
