"""Who may do what, through the real HTTP API: one permission matrix over every operation.

Callers: the folders' owner ``ownr``, users shared as ``viewer``/``runner``/``editor``, a
``grpuser`` who sees the folders through a group (view), a ``stranger``, ``anonymous`` and
``admin``. Each operation needs a minimum role (``MATRIX``); :func:`expected` turns that into
the exact status for each caller. A denied write must change nothing and leave a ``denied``
event in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _api import Api, fresh, zip_bytes

pytestmark = pytest.mark.integration

CALLERS = ("anonymous", "stranger", "viewer", "grpuser", "runner", "editor", "ownr", "admin")
# Each caller's role on the shared folders (admins act as owners everywhere).
RANK = {"anonymous": 0, "stranger": 0, "viewer": 1, "grpuser": 1, "runner": 2, "editor": 3,
        "ownr": 4, "admin": 4}
LEVEL = {"anyone": 0, "user": 0, "view": 1, "run": 2, "edit": 3, "owner": 4, "admin": 5}
ROLE_NAME = {1: "view", 2: "run", 3: "edit", 4: "owner"}

# operation: (minimum role, status on success). Roles: "anyone" (no token needed; results are
# filtered), "user" (any signed-in user), view/run/edit/owner on ownr's folder, "admin".
MATRIX: dict[str, tuple[str, int]] = {
    "whoami": ("user", 200), "list-folders": ("anyone", 200), "search": ("anyone", 200),
    "audit-own": ("user", 200),
    # folders and shares (create-folder: only the owner of the <owner>/ namespace)
    "create-folder": ("owner", 201), "get-folder": ("view", 200), "list-shares": ("view", 200),
    "describe-folder": ("edit", 200), "rename-folder": ("owner", 200),
    "delete-folder": ("owner", 204), "share": ("owner", 201), "unshare": ("owner", 204),
    # assets
    "create-asset": ("edit", 201), "get-asset": ("view", 200), "get-dataset": ("view", 200),
    "role": ("view", 200), "update-asset": ("edit", 200), "delete-asset": ("edit", 204),
    "set-preset": ("admin", 200),
    # versions
    "get-commit": ("view", 200), "log": ("view", 200), "diff": ("view", 200),
    "list-branches": ("view", 200), "create-branch": ("edit", 201),
    "delete-branch": ("edit", 204), "list-tags": ("view", 200), "create-tag": ("edit", 201),
    "delete-tag": ("edit", 204), "merge": ("edit", 200), "publish": ("edit", 201),
    # files
    "list-objects": ("view", 200), "stat": ("view", 200), "download": ("view", 200),
    "commit": ("edit", 200), "abort-upload": ("edit", 204), "import": ("edit", 201),
    # administration
    "audit-all": ("admin", 200), "list-users": ("admin", 200), "create-user": ("admin", 201),
    "update-user": ("admin", 200), "list-groups": ("admin", 200),
    "create-group": ("admin", 201), "delete-group": ("admin", 204),
    "add-member": ("admin", 204), "remove-member": ("admin", 204),
    "list-own-tokens": ("user", 200), "create-own-token": ("user", 201),
    "revoke-own-token": ("user", 204), "list-others-tokens": ("admin", 200),
    "create-others-token": ("admin", 201), "revoke-others-token": ("admin", 204),
}
# Operations not on ownr's folders: a signed-in caller who lacks the role is told so (403).
GLOBAL = {op for op, (need, _) in MATRIX.items() if need in ("anyone", "user", "admin")
          and op != "set-preset"} | {"create-folder"}
DENIED_AS = {"revoke-others-token": 404}  # someone else's token does not exist for you


def expected(op: str, who: str) -> int:
    need, ok = MATRIX[op]
    if need == "anyone" or (who != "anonymous" and (
            need == "user" or who == "admin" or LEVEL[need] <= RANK[who])):
        return ok
    if who == "anonymous":
        return 401  # sign in first
    if op not in GLOBAL and RANK[who] == 0:
        return 404  # folders not shared with you do not exist for you
    return DENIED_AS.get(op, 403)


@dataclass
class World:
    api: Api
    o: str  # ownr's user name
    group: str
    MF: str  # model folder, dataset folder, public folder
    DF: str
    PF: str
    M: str  # an asset in each
    D: str
    P: str

    def shared_folder(self, kind: str = "model") -> str:
        """A new folder of ownr's, shared like the matrix folders."""
        path = f"{self.o}/{kind}/{fresh('f')}"
        self.api.ok("ownr", "POST", "/folders", json={"path": path})
        for who, role in (("viewer", "view"), ("runner", "run"), ("editor", "edit")):
            self.share(path, "user", self.api.names[who], role)
        self.share(path, "group", self.group, "view")
        return path

    def share(self, folder: str, subject_type: str, subject_name: str, role: str) -> None:
        self.api.admin("POST", f"/folders/{folder}/shares", json={
            "subject_type": subject_type, "subject_name": subject_name, "role": role})

    def snapshot(self) -> dict[str, Any]:
        get = self.api.admin
        return {"folders": get("GET", "/folders", params={"owner": self.o}),
                "shares": [get("GET", f"/folders/{f}/shares") for f in (self.MF, self.DF)],
                "assets": get("GET", "/assets", params={"owner": self.o, "limit": 1000}),
                "model": self.api.state(self.M), "dataset": self.api.state(self.D),
                "users": get("GET", "/users"), "groups": get("GET", "/groups"),
                "tokens": get("GET", f"/users/{self.api.names['nobody']}/tokens")}


@pytest.fixture(scope="module")
def w(hub_server: Any) -> World:
    api = Api(hub_server.url, hub_server.admin_token)
    for who in ("ownr", "viewer", "runner", "editor", "stranger", "grpuser", "nobody"):
        api.add_user(who)
    o, group = api.names["ownr"], fresh("grp")
    api.admin("POST", "/groups", json={"name": group})
    api.admin("POST", f"/groups/{group}/members", json={"user": api.names["grpuser"]})
    world = World(api, o, group, "", "", f"{o}/model/public", "", "", f"{o}/model/public/open")
    world.MF, world.DF = world.shared_folder("model"), world.shared_folder("dataset")
    world.M, world.D = f"{world.MF}/base", f"{world.DF}/base"
    api.ok("ownr", "POST", "/folders", json={"path": world.PF})
    world.share(world.PF, "everyone", "", "view")
    for asset in (world.M, world.D, world.P):
        api.ok("ownr", "POST", "/assets", json={"path": asset})
    api.commit("ownr", world.M, {"weights.bin": b"w1"})
    api.ok("ownr", "POST", f"/assets/{world.M}/tags", json={"name": "v1"})
    api.commit("ownr", world.M, {"weights.bin": b"w2"})
    api.commit("ownr", world.P, {"weights.bin": b"public"})
    api.ok("ownr", "POST", f"/assets/{world.D}/import",
           content=zip_bytes({"cat/1.txt": b"meow", "dog/1.txt": b"woof"}))
    # a job token: of ownr's training of M on D (its branch is its own, named by the server)
    run = api.ok("ownr", "POST", "/runs",
                  json={"kind": "train", "model": world.M, "dataset": f"{world.D}:main"})
    api.tokens["job"], api.names["job"] = run["job_token"], o
    return world


# -- the requests --------------------------------------------------------------------------
# Requests that need no setup: method, URL, JSON body; "{new}" is a fresh name in each case.
SIMPLE: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "whoami": ("GET", "/whoami", None), "list-folders": ("GET", "/folders", None),
    "search": ("GET", "/assets?owner={o}", None), "audit-own": ("GET", "/audit", None),
    "create-folder": ("POST", "/folders", {"path": "{o}/model/{new}"}),
    "get-folder": ("GET", "/folders/{MF}", None),
    "list-shares": ("GET", "/folders/{MF}/shares", None),
    "describe-folder": ("PATCH", "/folders/{MF}", {"description": "{new}"}),
    "share": ("POST", "/folders/{MF}/shares",
              {"subject_type": "user", "subject_name": "{nobody}", "role": "view"}),
    "create-asset": ("POST", "/assets", {"path": "{MF}/{new}"}),
    "get-asset": ("GET", "/assets/{M}", None), "get-dataset": ("GET", "/assets/{D}", None),
    "role": ("GET", "/assets/{M}/role", None),
    "update-asset": ("PATCH", "/assets/{M}", {"description": "{new}"}),
    "set-preset": ("PATCH", "/assets/{D}", {"preset": False}),
    "get-commit": ("GET", "/assets/{M}/commit?ref=main", None),
    "log": ("GET", "/assets/{M}/log", None),
    "diff": ("GET", "/assets/{M}/diff?left=v1&right=main", None),
    "list-branches": ("GET", "/assets/{M}/branches", None),
    "create-branch": ("POST", "/assets/{M}/branches", {"name": "{new}"}),
    "list-tags": ("GET", "/assets/{M}/tags", None),
    "create-tag": ("POST", "/assets/{M}/tags", {"name": "{new}"}),
    "publish": ("POST", "/assets/{D}/publish", {"tag": "{new}"}),
    "list-objects": ("GET", "/assets/{M}/objects", None),
    "stat": ("GET", "/assets/{M}/stat?file=weights.bin", None),
    "download": ("GET", "/assets/{M}/files/weights.bin", None),
    "audit-all": ("GET", "/audit?actor=admin", None), "list-users": ("GET", "/users", None),
    "create-user": ("POST", "/users", {"name": "{new}"}),
    "update-user": ("PATCH", "/users/{nobody}", {"display_name": "{new}"}),
    "list-groups": ("GET", "/groups", None), "create-group": ("POST", "/groups", {"name": "{new}"}),
    "list-own-tokens": ("GET", "/users/{me}/tokens", None),
    "create-own-token": ("POST", "/users/{me}/tokens", {}),
    "list-others-tokens": ("GET", "/users/{nobody}/tokens", None),
    "create-others-token": ("POST", "/users/{nobody}/tokens", {}),
}
Thunk = Callable[[], httpx.Response]


def request(w: World, op: str, who: str) -> Thunk:
    """Set up what ``op`` needs (as admin), and return the caller's request, not yet sent."""
    api, me, nobody = w.api, w.api.names.get(who) or w.o, w.api.names["nobody"]

    def call(method: str, url: str, **kw: Any) -> Thunk:
        return lambda: api.call(who, method, url, **kw)

    def upload_then(then: Callable[[str], httpx.Response], branch: str = "main") -> Thunk:
        def run() -> httpx.Response:
            r = api.call(who, "POST", f"/assets/{w.M}/uploads", json={"branch": branch})
            return then(r.json()["upload_id"]) if r.status_code == 201 else r
        return run

    def new(what: str, path: str = "") -> str:  # a fresh branch/tag/asset/token/group, as admin
        body = {"path": f"{w.MF}/{fresh('a')}"} if what == "asset" else {"name": fresh(what)}
        made = api.admin("POST", path or f"/assets/{w.M}/{what}es", json=body)
        return str(made.get("path") or made.get("id") or made["name"])

    if op in SIMPLE:
        method, url, body = SIMPLE[op]
        names = {"me": me, "nobody": nobody, "new": fresh("n"), **vars(w)}
        if body is not None:
            body = {k: v.format(**names) if isinstance(v, str) else v for k, v in body.items()}
        return call(method, url.format(**names), json=body)
    if op in ("rename-folder", "delete-folder"):
        folder = w.shared_folder()
        return call("PATCH", f"/folders/{folder}", json={"name": fresh("f")}) \
            if op == "rename-folder" else call("DELETE", f"/folders/{folder}")
    if op == "unshare":
        w.share(w.MF, "user", nobody, "view")
        return call("DELETE", f"/folders/{w.MF}/shares",
                    params={"subject_type": "user", "subject_name": nobody})
    if op == "delete-asset":
        return call("DELETE", f"/assets/{new('asset', '/assets')}")
    if op == "delete-branch":
        return call("DELETE", f"/assets/{w.M}/branches/{new('branch')}")
    if op == "delete-tag":
        return call("DELETE", f"/assets/{w.M}/tags/{new('tag', f'/assets/{w.M}/tags')}")
    if op == "merge":
        src, dst = new("branch"), new("branch")
        api.commit("admin", w.M, {f"{src}.txt": b"change"}, branch=src)
        return call("POST", f"/assets/{w.M}/merge", json={"source": src, "into": dst})
    if op == "commit":
        def put_and_commit(upload_id: str) -> httpx.Response:
            api.ok(who, "PUT", f"/uploads/{upload_id}/files/new.bin", content=b"new")
            return api.call(who, "POST", f"/uploads/{upload_id}/commit", json={"message": "m"})
        return upload_then(put_and_commit, new("branch"))
    if op == "abort-upload":
        return upload_then(lambda upload_id: api.call(who, "DELETE", f"/uploads/{upload_id}"))
    if op == "import":
        archive = zip_bytes({f"cat/{fresh('c')}.txt": b"meow", "dog/1.txt": b"woof"})
        return call("POST", f"/assets/{w.D}/import", content=archive)
    if op in ("delete-group", "add-member", "remove-member"):
        group = new("grp", "/groups")
        if op == "remove-member":
            api.admin("POST", f"/groups/{group}/members", json={"user": nobody})
        return {"delete-group": call("DELETE", f"/groups/{group}"),
                "add-member": call("POST", f"/groups/{group}/members", json={"user": nobody}),
                "remove-member": call("DELETE", f"/groups/{group}/members/{nobody}")}[op]
    if op in ("revoke-own-token", "revoke-others-token"):
        user = me if op == "revoke-own-token" else nobody
        return call("DELETE", f"/tokens/{new('token', f'/users/{user}/tokens')}")
    raise AssertionError(f"no request for {op}")


# Server bugs reported and not fixed yet: case id -> reason. Remove an entry once fixed.
KNOWN_BUGS: dict[str, str] = {}


@pytest.mark.parametrize(("op", "who"), [
    pytest.param(op, who, id=f"{op}-as-{who}", marks=[pytest.mark.xfail(
        strict=True, reason=KNOWN_BUGS[f"{op}-as-{who}"])] if f"{op}-as-{who}" in KNOWN_BUGS else [])
    for op in MATRIX for who in CALLERS])
def test_matrix(w: World, op: str, who: str) -> None:
    want = expected(op, who)
    denied_write = want >= 400 and SIMPLE.get(op, ("POST",))[0] != "GET"
    thunk = request(w, op, who)
    before, last_event = (w.snapshot(), w.api.last_audit_id()) if denied_write else (None, 0)
    r = thunk()
    assert r.status_code == want, f"{op} as {who}: {r.status_code} {r.text}"
    if r.is_success:
        if op == "role":
            assert r.json() == {"role": ROLE_NAME[RANK[who]]}
        if op == "download":
            assert r.content == b"w2"
        if op in ("list-folders", "search"):
            listed = {x["path"] for x in r.json()}
            assert ((w.MF if op == "list-folders" else w.M) in listed) == (RANK[who] > 0)
        return
    assert r.json()["error"]["message"]
    if denied_write:  # a refused write changes nothing and is audited
        assert w.snapshot() == before, f"denied {op} as {who} changed something"
        actor = w.api.names[who]
        assert any(e["actor"] == actor and e["outcome"] == "denied"
                   for e in w.api.audit_since(last_event)), f"denied {op} as {who} not audited"


# What a job token of ownr's training of M on D may do of the matrix: read its model and its
# dataset's record (as ownr); everything else is refused (403), even what any user may do.
JOB_ALLOWED = {"whoami", "get-asset", "get-dataset", "role", "get-commit", "log", "diff", "list-branches",
               "list-tags", "list-objects", "stat", "download"}


@pytest.mark.parametrize("op", list(MATRIX))
@pytest.mark.attacks
def test_matrix_with_a_job_token(w: World, op: str) -> None:
    want = MATRIX[op][1] if op in JOB_ALLOWED else 403
    denied_write = want >= 400 and SIMPLE.get(op, ("POST",))[0] != "GET"
    thunk = request(w, op, "job")
    before, last_event = (w.snapshot(), w.api.last_audit_id()) if denied_write else (None, 0)
    r = thunk()
    assert r.status_code == want, f"{op} with a job token: {r.status_code} {r.text}"
    if r.is_success:
        if op == "role":
            assert r.json() == {"role": "owner"}  # it acts as ownr
        if op == "whoami":
            assert r.json()["name"] == w.o
        return
    assert "a job token may only act on its run" in r.json()["error"]["message"]
    if denied_write:
        assert w.snapshot() == before, f"denied {op} with a job token changed something"
        assert any(e["actor"] == w.o and e["outcome"] == "denied"
                   for e in w.api.audit_since(last_event)), f"denied {op} with a job token not audited"


def test_public_folder_is_readable_but_not_writable_without_signing_in(w: World) -> None:
    anon = w.api
    for url in (f"/folders/{w.PF}", f"/assets/{w.P}", f"/assets/{w.P}/log",
                f"/assets/{w.P}/objects"):
        anon.ok("anonymous", "GET", url)
    assert anon.ok("anonymous", "GET", f"/assets/{w.P}/role") == {"role": "view"}
    assert anon.call("anonymous", "GET", f"/assets/{w.P}/files/weights.bin").content == b"public"
    assert w.PF in {f["path"] for f in anon.ok("anonymous", "GET", "/folders")}
    assert {a["path"] for a in anon.ok("anonymous", "GET", "/assets", params={"owner": w.o})} \
        == {w.P}
    before = w.api.state(w.P)
    for method, url, body in [
        ("POST", "/assets", {"path": f"{w.PF}/{fresh('a')}"}),
        ("PATCH", f"/assets/{w.P}", {"description": "defaced"}),
        ("POST", f"/assets/{w.P}/branches", {"name": fresh("b")}),
        ("POST", f"/assets/{w.P}/tags", {"name": fresh("t")}),
        ("POST", f"/assets/{w.P}/uploads", {"branch": "main"}),
        ("POST", f"/folders/{w.PF}/shares", {"subject_type": "everyone", "role": "edit"}),
        ("DELETE", f"/assets/{w.P}", None),
    ]:
        r = anon.call("anonymous", method, url, json=body)
        assert r.status_code in (401, 403), f"anonymous {method} {url}: {r.status_code} {r.text}"
    assert w.api.state(w.P) == before


@pytest.mark.parametrize("who", ["anonymous", "stranger"])
@pytest.mark.parametrize("kind", ["asset", "folder"])
def test_hidden_subjects_look_exactly_like_missing_ones(w: World, who: str, kind: str) -> None:
    """Nobody can learn whether an unshared asset or folder exists (same status, same body)."""
    hidden, missing = (w.M, f"{w.MF}/no-such-asset") if kind == "asset" else \
        (w.MF, f"{w.o}/model/no-such-folder")
    r1 = w.api.call(who, "GET", f"/{kind}s/{hidden}")
    r2 = w.api.call(who, "GET", f"/{kind}s/{missing}")
    assert r1.status_code == r2.status_code == (401 if who == "anonymous" else 404)
    assert r1.text.replace(hidden, "<p>") == r2.text.replace(missing, "<p>")


def test_revoking_access_takes_effect_immediately(w: World) -> None:
    api = w.api
    user, folder = api.add_user("revokee"), w.shared_folder()
    asset = api.admin("POST", "/assets", json={"path": f"{folder}/a"})["path"]
    head = api.admin("GET", f"/assets/{asset}/commit")["id"]
    w.share(folder, "user", user, "edit")
    upload = api.ok("revokee", "POST", f"/assets/{asset}/uploads", json={})["upload_id"]
    api.ok("revokee", "PUT", f"/uploads/{upload}/files/late.bin", content=b"late")
    api.admin("DELETE", f"/folders/{folder}/shares", params={"subject_type": "user",
                                                             "subject_name": user})
    assert api.call("revokee", "GET", f"/assets/{asset}").status_code == 404
    last = api.last_audit_id()
    r = api.call("revokee", "POST", f"/uploads/{upload}/commit", json={"message": "too late"})
    assert r.status_code == 404, r.text  # the upload started while allowed cannot land now
    assert api.admin("GET", f"/assets/{asset}/commit")["id"] == head
    assert [e["outcome"] for e in api.audit_since(last) if e["actor"] == user] == ["denied"]
    # through a group: leaving the group ends access at once
    group = fresh("grp")
    api.admin("POST", "/groups", json={"name": group})
    api.admin("POST", f"/groups/{group}/members", json={"user": user})
    w.share(folder, "group", group, "view")
    api.ok("revokee", "GET", f"/assets/{asset}")
    api.admin("DELETE", f"/groups/{group}/members/{user}")
    assert api.call("revokee", "GET", f"/assets/{asset}").status_code == 404
    # a revoked token is refused at once
    token = api.admin("GET", f"/users/{user}/tokens")[0]["id"]
    api.ok("revokee", "DELETE", f"/tokens/{token}")
    assert api.call("revokee", "GET", "/whoami").status_code == 401


def test_preset_dataset_is_runnable_by_every_signed_in_user(w: World) -> None:
    api, folder = w.api, f"{w.o}/dataset/{fresh('presets')}"
    api.ok("ownr", "POST", "/folders", json={"path": folder})  # shared with nobody
    asset = api.ok("ownr", "POST", "/assets", json={"path": f"{folder}/digits"})["path"]
    api.ok("ownr", "POST", f"/assets/{asset}/import", content=zip_bytes({"0/a.txt": b"0", "1/b.txt": b"1"}))
    assert api.call("stranger", "GET", f"/assets/{asset}").status_code == 404
    assert api.admin("PATCH", f"/assets/{asset}", json={"preset": True})["preset"] is True
    for who in ("stranger", "viewer", "nobody"):
        assert api.ok(who, "GET", f"/assets/{asset}/role") == {"role": "run"}
        assert api.call(who, "GET", f"/assets/{asset}/files/0/a.txt").content == b"0"
        assert asset in {a["path"] for a in api.ok(who, "GET", "/assets", params={"q": "digits"})}
        r = api.call(who, "POST", f"/assets/{asset}/publish", json={"tag": fresh("v")})
        assert r.status_code == 403, r.text  # run is not edit
    assert api.call("stranger", "GET", f"/folders/{folder}").status_code == 404  # folder stays private
    assert api.call("anonymous", "GET", f"/assets/{asset}").status_code == 401
    assert asset not in {a["path"] for a in api.ok("anonymous", "GET", "/assets")}
    model = api.admin("POST", "/assets", json={"path": f"{w.MF}/{fresh('m')}"})["path"]
    assert api.call("admin", "PATCH", f"/assets/{model}", json={"preset": True}).status_code == 409


@pytest.mark.parametrize("who", CALLERS)
def test_search_never_returns_what_the_caller_cannot_see(w: World, who: str) -> None:
    """Every result is visible to the caller by the sharing rules, and every visible one is found."""
    me, groups = w.api.names[who], {w.group} if who == "grpuser" else set()

    def visible(a: dict[str, Any]) -> bool:
        folder = a["path"].rsplit("/", 1)[0]
        if who == "admin" or (me and folder.startswith(f"{me}/")) or (a["preset"] and me):
            return True
        return any(s["subject_type"] == "everyone" or (me and s["subject_type"] == "user" and
                   s["subject_name"] == me) or (s["subject_type"] == "group" and
                   s["subject_name"] in groups)
                   for s in w.api.admin("GET", f"/folders/{folder}/shares"))

    everything = w.api.admin("GET", "/assets", params={"limit": 1000})
    found = w.api.ok(who, "GET", "/assets", params={"limit": 1000})
    assert {a["path"] for a in found} == {a["path"] for a in everything if visible(a)}
    assert all(a["your_role"] != "none" for a in found)


@pytest.mark.attacks
def test_records_keep_to_their_asset_and_shares_to_their_group(w: World) -> None:
    """Runs and evaluations follow their model through a rename and stay behind when it is
    deleted: a new model of the same name shows none of them, and the old run cannot be reached
    through it. A deleted group's share does not pass to a new group of its name."""
    api = w.api
    mf, df = w.shared_folder("model"), w.shared_folder("dataset")
    model, data = f"{mf}/{fresh('m')}", f"{df}/{fresh('d')}"
    for asset in (model, data):
        api.ok("ownr", "POST", "/assets", json={"path": asset})
    run = api.ok("ownr", "POST", "/runs", json={"kind": "train", "model": model,
                                                "dataset": f"{data}:main"})
    ev = api.ok("ownr", "POST", f"/assets/{model}/evaluations",
                json={"ref": "main", "dataset": f"{data}:main", "metrics": {"acc": 0.5}})
    renamed = f"{mf}/{fresh('m')}"
    api.ok("ownr", "PATCH", f"/assets/{model}", json={"name": renamed.rsplit("/", 1)[1]})
    assert [(r["id"], r["model"]) for r in api.ok("viewer", "GET", "/runs", params={"model": renamed})] \
        == [(run["id"], renamed)]
    assert api.ok("viewer", "GET", f"/runs/{run['id']}")["model"] == renamed
    assert [e["id"] for e in api.ok("viewer", "GET", f"/assets/{renamed}/evaluations")] == [ev["id"]]
    assert [e["id"] for e in api.ok("viewer", "GET", f"/assets/{renamed}/lineage")["evaluations"]] \
        == [ev["id"]]

    api.ok("editor", "DELETE", f"/assets/{renamed}")
    api.ok("editor", "POST", "/assets", json={"path": renamed})  # the same path, a new model
    assert api.ok("viewer", "GET", "/runs", params={"model": renamed}) == []
    assert api.ok("viewer", "GET", f"/assets/{renamed}/evaluations") == []
    assert api.ok("viewer", "GET", f"/assets/{renamed}/lineage")["evaluations"] == []
    assert api.call("viewer", "GET", f"/runs/{run['id']}").status_code == 404
    r = api.call("editor", "PATCH", f"/runs/{run['id']}", json={"state": "failed"})
    assert r.status_code == 404, r.text
    assert api.ok("ownr", "GET", f"/runs/{run['id']}")["model"] == renamed  # its maker keeps it

    member, heir = api.add_user("grpmember"), api.add_user("grpheir")
    group = fresh("grp")
    api.admin("POST", "/groups", json={"name": group})
    api.admin("POST", f"/groups/{group}/members", json={"user": member})
    w.share(mf, "group", group, "edit")
    api.ok("grpmember", "GET", f"/assets/{renamed}")
    api.admin("DELETE", f"/groups/{group}")
    api.admin("POST", "/groups", json={"name": group})
    api.admin("POST", f"/groups/{group}/members", json={"user": heir})
    assert api.call("grpheir", "GET", f"/assets/{renamed}").status_code == 404
    r = api.call("grpheir", "POST", f"/assets/{renamed}/uploads", json={})
    assert r.status_code == 404, r.text
    assert group not in {s["subject_name"] for s in api.ok("ownr", "GET", f"/folders/{mf}/shares")}
