"""Bad input gets a clear 4xx that says what was wrong, and changes nothing.

Every case runs as a signed-in (non-admin) user against the real server; for writes the
user's assets, folders, shares and tokens are compared before and after.
"""

from __future__ import annotations

import io
import stat
import zipfile
from typing import Any

import pytest
from _api import Api, fresh, message, zip_bytes

from tests._clock import Clock

pytestmark = pytest.mark.integration

LONG = "n" * 129
VALID_ZIP = zip_bytes({"cat/1.txt": b"meow", "dog/1.txt": b"woof"})


@pytest.fixture(scope="module")
def api(hub_server: Any) -> Api:
    return Api(hub_server.url, hub_server.admin_token)


@pytest.fixture(scope="module")
def names(api: Api) -> dict[str, str]:
    """The user's model ``M`` (branches main and dev, tag v1) and dataset ``D`` (tag v1)."""
    u = api.add_user("user")
    n = {"u": u, "MF": f"{u}/model/m", "M": f"{u}/model/m/net", "D": f"{u}/dataset/d/ds"}
    for path in (n["MF"], f"{u}/dataset/d"):
        api.ok("user", "POST", "/folders", json={"path": path})
    for path in (n["M"], n["D"]):
        api.ok("user", "POST", "/assets", json={"path": path})
    n["v1"] = api.commit("user", n["M"], {"weights.bin": b"w1"})["id"]
    api.ok("user", "POST", f"/assets/{n['M']}/tags", json={"name": "v1"})
    api.ok("user", "POST", f"/assets/{n['M']}/branches", json={"name": "dev"})
    api.commit("user", n["M"], {"weights.bin": b"w2"})
    api.ok("user", "POST", f"/assets/{n['D']}/import", content=VALID_ZIP)
    api.ok("user", "POST", f"/assets/{n['D']}/publish", json={"tag": "v1"})
    return n


def everything(api: Api, n: dict[str, str]) -> dict[str, Any]:
    """All a bad write could have changed."""
    return {"model": api.state(n["M"]), "dataset": api.state(n["D"]),
            "assets": api.admin("GET", "/assets", params={"owner": n["u"], "limit": 1000}),
            "folders": api.admin("GET", "/folders", params={"owner": n["u"]}),
            "shares": api.admin("GET", f"/folders/{n['MF']}/shares"),
            "tokens": api.admin("GET", f"/users/{n['u']}/tokens")}


# id: (method, URL, request keywords, status, what the message must mention). In URLs and
# JSON strings: {u} the user, {M}/{D}/{MF} their model/dataset/folder, {new} a fresh name,
# {upload} an upload of theirs (one file staged), {v1} an old commit of M.
CASES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    # malformed asset paths in URLs
    "url-owner-uppercase": ("GET", "/assets/Nobody/model/m/net", {}, 400, "owner"),
    "url-asset-type": ("GET", "/assets/{u}/weights/m/net", {}, 400, "asset type"),
    "url-name-dotdot": ("GET", "/assets/{u}/model/m/%2E%2E", {}, 400, "'..'"),
    "url-name-colon": ("POST", "/assets/{M}:v1/tags", {"json": {"name": "{new}"}}, 400, "':'"),
    "url-name-invisible": ("GET", "/assets/{u}/model/m/ne\u200bt", {}, 400, "U+200B"),
    "url-name-not-nfc": ("PATCH", "/assets/{u}/model/m/e\u0301", {"json": {}}, 400, "NFC"),
    "url-name-overlong": ("DELETE", f"/assets/{{u}}/model/m/{LONG}", {}, 400, "128"),
    "url-folder-overlong": ("DELETE", f"/folders/{{u}}/model/{LONG}", {}, 400, "128"),
    # ... and in bodies
    "body-path-parts": ("POST", "/assets", {"json": {"path": "{MF}"}}, 400, "<name>"),
    "body-path-dotdot": ("POST", "/assets", {"json": {"path": "{MF}/.."}}, 400, "'..'"),
    "body-path-traversal": ("POST", "/assets", {"json": {"path": "../../etc/x"}}, 400, "'..'"),
    "body-path-colon": ("POST", "/assets", {"json": {"path": "{MF}/a:b"}}, 400, "':'"),
    "body-path-nul": ("POST", "/folders", {"json": {"path": "{u}/model/a\x00b"}}, 400, "U+0000"),
    "body-folder-type": ("POST", "/folders", {"json": {"path": "{u}/weights/f"}}, 400, "type"),
    "body-path-overlong": ("POST", "/assets", {"json": {"path": "{MF}/" + "n" * 600}}, 422,
                           "path"),
    # malformed refs and names
    "ref-syntax": ("GET", "/assets/{M}/commit", {"params": {"ref": "-main"}}, 400, "-main"),
    "ref-ancestry": ("GET", "/assets/{M}/log", {"params": {"ref": "main~x"}}, 400, "main~x"),
    "ref-space": ("GET", "/assets/{M}/objects", {"params": {"ref": "ma in"}}, 400, "ma in"),
    "ref-overlong": ("GET", "/assets/{M}/commit", {"params": {"ref": "r" * 201}}, 422, "ref"),
    "branch-slash": ("POST", "/assets/{M}/branches", {"json": {"name": "a/b"}}, 400, "a/b"),
    "branch-reserved": ("POST", "/assets/{M}/branches", {"json": {"name": "_tx"}}, 400, "_tx"),
    "branch-unicode": ("POST", "/assets/{M}/branches", {"json": {"name": "zweig-ä"}}, 400,
                       "branch"),
    "branch-overlong": ("POST", "/assets/{M}/branches", {"json": {"name": LONG}}, 422, "name"),
    "tag-space": ("POST", "/assets/{M}/tags", {"json": {"name": "v 2"}}, 400, "v 2"),
    "publish-tag": ("POST", "/assets/{D}/publish", {"json": {"tag": "-v2"}}, 400, "-v2"),
    "upload-branch": ("POST", "/assets/{M}/uploads", {"json": {"branch": "a:b"}}, 400, "a:b"),
    # unknown refs and subjects
    "unknown-ref-commit": ("GET", "/assets/{M}/commit", {"params": {"ref": "nope"}}, 404, "nope"),
    "unknown-ref-log": ("GET", "/assets/{M}/log", {"params": {"ref": "nope"}}, 404, "nope"),
    "unknown-ref-objects": ("GET", "/assets/{M}/objects", {"params": {"ref": "nope"}}, 404,
                            "nope"),
    "unknown-ref-diff": ("GET", "/assets/{M}/diff", {"params": {"left": "v1", "right": "nope"}},
                         404, "nope"),
    "unknown-ref-file": ("GET", "/assets/{M}/files/weights.bin", {"params": {"ref": "nope"}},
                         404, "nope"),
    "unknown-source": ("POST", "/assets/{M}/branches",
                       {"json": {"name": "{new}", "source": "nope"}}, 404, "nope"),
    "unknown-tag-ref": ("POST", "/assets/{M}/tags", {"json": {"name": "{new}", "ref": "nope"}},
                        404, "nope"),
    "unknown-merge-source": ("POST", "/assets/{M}/merge", {"json": {"source": "nope"}}, 404,
                             "nope"),
    "unknown-branch": ("DELETE", "/assets/{M}/branches/nope", {}, 404, "nope"),
    "unknown-file": ("GET", "/assets/{M}/files/no/such.bin", {}, 404, "no/such.bin"),
    "unknown-upload": ("PUT", "/uploads/0123abcd/files/x.bin", {"content": b"x"}, 404, "upload"),
    "unknown-token": ("DELETE", "/tokens/987654321", {}, 404, "987654321"),
    "token-id-overflow": ("DELETE", "/tokens/" + "9" * 30, {  # its 500 drops the connection
        "headers": {"Connection": "close"}}, 404, "token"),
    "unknown-share-user": ("POST", "/folders/{MF}/shares", {"json": {
        "subject_type": "user", "subject_name": "no-such-user", "role": "view"}}, 404,
        "no-such-user"),
    # path traversal in file paths
    "file-traversal": ("GET", "/assets/{M}/files/..%2F..%2Fetc%2Fpasswd", {}, 400,
                       "../../etc/passwd"),
    "stat-traversal": ("GET", "/assets/{M}/stat", {"params": {"file": "../x"}}, 400, "../x"),
    "stat-absolute": ("GET", "/assets/{M}/stat", {"params": {"file": "/etc/passwd"}}, 400,
                      "/etc/passwd"),
    "log-traversal": ("GET", "/assets/{M}/log", {"params": {"file": "../x"}}, 400, "../x"),
    "upload-traversal": ("PUT", "/uploads/{upload}/files/..%2Fx", {"content": b"x"}, 400,
                         "../x"),
    "upload-absolute": ("PUT", "/uploads/{upload}/files/%2Fetc%2Fx", {"content": b"x"}, 400,
                        "/etc/x"),
    "upload-backslash": ("PUT", "/uploads/{upload}/files/..%5Cx", {"content": b"x"}, 400,
                         "separator"),
    "upload-sha256-mismatch": ("PUT", "/uploads/{upload}/files/x.bin", {"content": b"x",
                               "headers": {"X-Asset-Sha256": "0" * 64}}, 400, "sha256"),
    "upload-sha256-malformed": ("PUT", "/uploads/{upload}/files/x.bin", {"content": b"x",
                                "headers": {"X-Asset-Sha256": "null"}}, 422, "sha256"),
    "commit-delete-traversal": ("POST", "/uploads/{upload}/commit", {"json": {
        "message": "m", "delete": ["../x"]}}, 400, "../x"),
    # refused by the rules of the asset model
    "branch-on-dataset": ("POST", "/assets/{D}/branches", {"json": {"name": "{new}"}}, 409,
                          "only the 'main' branch"),
    "upload-to-dataset-branch": ("POST", "/assets/{D}/uploads", {"json": {"branch": "dev"}},
                                 409, "only the 'main' branch"),
    "tag-reused": ("POST", "/assets/{M}/tags", {"json": {"name": "v1"}}, 409, "v1"),
    "publish-reused": ("POST", "/assets/{D}/publish", {"json": {"tag": "v1"}}, 409, "v1"),
    "branch-reused": ("POST", "/assets/{M}/branches", {"json": {"name": "dev"}}, 409, "dev"),
    "asset-reused": ("POST", "/assets", {"json": {"path": "{M}"}}, 409, "{M}"),
    "delete-main": ("DELETE", "/assets/{M}/branches/main", {}, 409, "main"),
    "delete-published": ("DELETE", "/assets/{D}/tags/v1", {}, 409, "published"),
    "import-into-model": ("POST", "/assets/{M}/import", {"content": VALID_ZIP}, 409, "model"),
    "stale-parent": ("POST", "/uploads/{upload}/commit", {"json": {
        "message": "m", "parent_commit": "{v1}"}}, 412, "expected parent commit"),
    # unknown fields, wrong types, bad values
    "unknown-field": ("POST", "/folders", {"json": {"path": "{u}/model/{new}", "owner": "x"}},
                      422, "owner"),
    "unknown-nested-field": ("POST", "/assets", {"json": {
        "path": "{u}/dataset/d/{new}", "dataset": {"taskType": "tabular"}}}, 422, "taskType"),
    "unknown-patch-field": ("PATCH", "/assets/{M}", {"json": {"desc": "x"}}, 422, "desc"),
    "wrong-type": ("POST", "/assets/{M}/branches", {"json": {"name": 5}}, 422, "name"),
    "not-json": ("POST", "/folders", {"content": b"{not json", "headers": {
        "content-type": "application/json"}}, 422, "JSON"),
    "bad-query-int": ("GET", "/assets/{M}/log", {"params": {"limit": 0}}, 422, "limit"),
    "bad-query-date": ("GET", "/audit", {"params": {"since": "yesterday"}}, 422, "since"),
    "bad-role": ("POST", "/folders/{MF}/shares", {"json": {
        "subject_type": "everyone", "role": "owner"}}, 422, "role"),
    "bad-task-type": ("POST", "/assets", {"json": {
        "path": "{u}/dataset/d/{new}", "dataset": {"task_type": "bogus"}}}, 400, "bogus"),
    "bad-split-ratio": ("PATCH", "/assets/{D}", {"json": {"dataset": {"split_ratio": 1.5}}},
                        422, "split_ratio"),
    "split-without-ratio": ("PATCH", "/assets/{D}", {"json": {"dataset": {
        "split_mode": "ratio"}}}, 400, "split_ratio"),
    "bad-label": ("PATCH", "/assets/{M}", {"json": {"labels": ["a,b"]}}, 400, "a,b"),
    "model-with-dataset-meta": ("POST", "/assets", {"json": {
        "path": "{MF}/{new}", "dataset": {"task_type": "tabular"}}}, 400, "dataset"),
    "token-expiry": ("POST", "/users/{u}/tokens", {"json": {"expires_in_days": 0}}, 422,
                     "expires_in_days"),
    "unknown-route": ("GET", "/no/such/route", {}, 404, "not found"),
    "wrong-method": ("PUT", "/whoami", {}, 405, "method"),
}


# Server bugs reported and not fixed yet: case id -> reason. Remove an entry once fixed.
KNOWN_BUGS: dict[str, str] = {}


def known_bug(case: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case])] if case in KNOWN_BUGS else []


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


@pytest.mark.parametrize("case", [pytest.param(c, id=c, marks=known_bug(c)) for c in CASES])
def test_bad_input(api: Api, names: dict[str, str], case: str) -> None:
    method, url, kw, status, needle = CASES[case]
    n = {**names, "new": fresh("n")}
    if "{upload}" in url:
        n["upload"] = api.ok("user", "POST", f"/assets/{n['M']}/uploads", json={})["upload_id"]
        api.ok("user", "PUT", f"/uploads/{n['upload']}/files/staged.bin", content=b"s")
    kw = {k: v if k in ("content", "headers") else fill(v, n) for k, v in kw.items()}
    before = everything(api, n) if method != "GET" else None
    r = api.call("user", method, fill(url, n), **kw)
    assert r.status_code == status, r.text
    assert fill(needle, n).lower() in message(r).lower(), r.text
    if before is not None:
        assert everything(api, n) == before


ARCHIVES = {  # id: (zip entries or raw bytes, what the message must mention)
    "zip-slip": ({"cat/1.txt": b"1", "../../evil.txt": b"x"}, "'..'"),
    "absolute-entry": ({"cat/1.txt": b"1", "/etc/evil": b"x"}, "absolute"),
    "symlink-entry": ("symlink", "symbolic link"),
    "zip-bomb": ({"cat/bomb.bin": bytes(8 * 2**20), "dog/1.txt": b"1"}, "zip bomb"),
    "not-a-zip": (b"this is not a zip archive", "not a zip"),
    "empty-zip": ({}, "no files"),
    "wrong-dir-layout": ({"a.txt": b"1", "b.txt": b"2"}, "top level"),
}


@pytest.mark.parametrize("case", ARCHIVES)
def test_bad_archive_is_refused(api: Api, names: dict[str, str], case: str) -> None:
    entries, needle = ARCHIVES[case]
    if entries == "symlink":
        body = zip_bytes({"cat/1.txt": b"1", "dog/1.txt": b"2"})
        buf = io.BytesIO(body)
        with zipfile.ZipFile(buf, "a") as zf:
            link = zipfile.ZipInfo("cat/link.txt")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, "/etc/passwd")
        body = buf.getvalue()
    else:
        body = entries if isinstance(entries, bytes) else zip_bytes(entries)
    before = everything(api, names)
    r = api.call("user", "POST", f"/assets/{names['D']}/import", content=body)
    assert r.status_code == 400, r.text
    assert needle in message(r), r.text
    assert everything(api, names) == before


def test_merge_conflict_names_the_paths_and_changes_nothing(api: Api, names: dict[str, str]
                                                             ) -> None:
    m = names["M"]
    a, b = fresh("a"), fresh("b")
    for branch, data in ((a, b"ours"), (b, b"theirs")):
        api.ok("user", "POST", f"/assets/{m}/branches", json={"name": branch})
        api.commit("user", m, {"conflict.txt": data, f"{branch}.txt": b"x"}, branch=branch)
    before = everything(api, names)
    r = api.call("user", "POST", f"/assets/{m}/merge", json={"source": a, "into": b})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["paths"] == ["conflict.txt"]
    assert "conflict.txt" in message(r) and "strategy" in message(r)
    assert everything(api, names) == before


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_oversized_json_body_is_refused(api: Api, names: dict[str, str], chunked: bool) -> None:
    body = b'{"path": "%s/big", "description": "x"' % names["MF"].encode() \
        + b" " * (2**20 + 1) + b"}"
    content: Any = iter([body]) if chunked else body  # an iterator is sent without a length
    before = everything(api, names)
    r = api.call("user", "POST", "/assets", content=content,
                 headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert "limit" in message(r)
    assert everything(api, names) == before


@pytest.mark.parametrize("byte_range", ["bytes=abc", "~W/6_^|", "bytes=5-2", "bytes=100-200"])
def test_bad_byte_range_is_ignored_or_refused(api: Api, names: dict[str, str],
                                              byte_range: str) -> None:
    """RFC 9110: a malformed Range may be ignored (whole file); an unsatisfiable one is a 416."""
    r = api.call("user", "GET", f"/assets/{names['M']}/files/weights.bin",
                 headers={"Range": byte_range})
    if r.status_code == 200:
        assert r.content == b"w2"
    else:
        assert r.status_code == 416, r.text
        assert byte_range in message(r)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("problem", ["missing", "unknown", "expired", "revoked", "disabled",
                                     "basic-scheme", "token-scheme"])
def test_bad_credentials_get_401(api: Api, names: dict[str, str], problem: str, hub_server: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(hub_server.hub, "clock", clock)  # the server's hub: tokens expire by it
    u = api.add_user(fresh("cred")) if problem == "disabled" else names["u"]
    headers = {"missing": {}, "unknown": bearer("ah_" + "x" * 43),
               "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
               "token-scheme": {"Authorization": f"Token {api.tokens['user']}"}}.get(problem)
    if problem in ("expired", "revoked", "disabled"):
        made = api.admin("POST", f"/users/{u}/tokens", json={
            "expires_in_days": 1 if problem == "expired" else None})
        headers = bearer(made["token"])
        api.ok("anonymous", "GET", "/whoami", headers=headers)  # valid until...
        if problem == "expired":
            clock.advance(days=1)
        elif problem == "revoked":
            api.admin("DELETE", f"/tokens/{made['id']}")
        else:
            api.admin("PATCH", f"/users/{u}", json={"disabled": True})
    needle = {"missing": "sign in", "unknown": "unknown", "expired": "expired",
              "revoked": "revoked", "disabled": "disabled"}.get(problem, "Bearer")
    before = everything(api, names)
    for method, url, body in (("GET", "/whoami", None),
                              ("POST", "/folders", {"path": f"{u}/model/{fresh('f')}"})):
        r = api.call("anonymous", method, url, json=body, headers=headers)
        assert r.status_code == 401, r.text
        assert needle in message(r), r.text
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert everything(api, names) == before
