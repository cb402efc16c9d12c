"""The web console's services and audit pages, in Debian's Chromium against the real server:
a model version served from the console's form (one real service: a replica running MLflow's
scoring server in the sandbox), its live state, the online test form answering with a
prediction, scale / stop / start from the browser; a viewer without controls whose direct POSTs
are refused, a stranger told the service does not exist; the audit log of one's own events,
an admin filtering everyone's, a non-admin refused others'; user text rendered inert."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from assethub.client import Client
from tests.integration._console import Console
from tests.integration.test_catalog import catalog, hub  # noqa: F401  (fixtures: both databases)

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
READY = 240_000  # ms: a replica imports MLflow and loads the model (10-40 s here, more when busy)

MODEL_CODE = '''
import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return (np.asarray(model_input, dtype=float) * 2).tolist()


mlflow.models.set_model(Doubler())
'''


@dataclass
class World:
    owner: str
    owner_token: str
    viewer_token: str
    stranger_token: str
    model: str  # a servable model version: an MLflow pyfunc model with an input example


def _user(admin: Client, name: str) -> str:
    admin.create_user(name)
    return admin.create_token(name, name="console").secret


@pytest.fixture(scope="module")
def world(hub_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import mlflow
    import numpy as np

    suffix = uuid.uuid4().hex[:6]
    admin = Client(hub_server.url, hub_server.admin_token)
    owner = f"ops{suffix}"
    token = _user(admin, owner)
    viewer_token = _user(admin, f"opsview{suffix}")
    stranger_token = _user(admin, f"opsother{suffix}")
    pub = Client(hub_server.url, token)
    pub.create_folder(f"{owner}/model/tiny")
    pub.share(f"{owner}/model/tiny", role="view", user=f"opsview{suffix}")
    pub.create_asset(f"{owner}/model/tiny/doubler")
    work = tmp_path_factory.mktemp("model")
    (work / "code.py").write_text(MODEL_CODE)
    out = work / "out"
    mlflow.pyfunc.save_model(str(out / "model"), python_model=str(work / "code.py"),
                             input_example=np.array([[1.0, 2.0, 3.0]]))
    for extra in ("uv.lock", "pyproject.toml"):  # MLflow copies the project's; not needed
        (out / "model" / extra).unlink(missing_ok=True)
    pub.upload(f"{owner}/model/tiny/doubler:main", out, message="a model that doubles its input")
    try:
        yield World(owner, token, viewer_token, stranger_token, f"{owner}/model/tiny/doubler:main")
    finally:
        for service in admin.services.list():
            if service.created_by == owner:
                admin.services.delete(service.name)
        shutil.rmtree(work, ignore_errors=True)


def _no_dialogs(page: Any) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog: Any) -> None:
        if dialog.type == "confirm":  # the console's own data-confirm questions
            dialog.accept()
        else:
            fired.append(dialog.message)
            dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired


def _state(page: Any) -> Any:
    return page.locator("#service-state")


def test_serve_test_scale_stop_start_from_the_browser(console: Console, world: World) -> None:
    name = f"dbl-{uuid.uuid4().hex[:6]}"
    page = console.page(world.owner_token)
    fired = _no_dialogs(page)
    page.goto("/services")
    expect(page.get_by_role("heading", name="Model services")).to_be_visible()
    # a bad name is refused next to the form, the input kept, the text inert
    page.get_by_label("Model version", exact=True).fill(world.model)
    page.get_by_label("Service name", exact=True).evaluate("el => el.removeAttribute('pattern')")
    page.get_by_label("Service name", exact=True).fill(XSS)
    page.get_by_role("button", name="Serve").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid service name")
    expect(page.get_by_role("alert")).to_contain_text(XSS)
    expect(page.get_by_label("Model version", exact=True)).to_have_value(world.model)
    # served from the form; its page follows its state until it runs
    page.get_by_label("Service name", exact=True).fill(name)
    page.get_by_role("button", name="Serve").click()
    expect(page.get_by_text(f"Service {name} created: starting")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Service {name}")).to_be_visible()
    expect(_state(page)).to_contain_text("running", timeout=READY)
    expect(_state(page)).to_contain_text("1 of 1 replica(s) ready")
    page.goto("/services")
    row = page.locator(f'tr[data-service="{name}"]')
    expect(row).to_contain_text(world.model)
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("1 / 1")
    expect(row).to_contain_text("http://127.0.0.1:")
    console.shot(page, "services-list")
    # the test form holds the model's own input example and shows the answer
    row.get_by_role("link", name=name).click()
    body = page.get_by_label("Request body (JSON)")
    expect(body).to_contain_text('"inputs": [[1.0, 2.0, 3.0]]')
    page.get_by_role("button", name="Send").click()
    answer = page.locator("pre.ops-answer")
    expect(answer).to_contain_text("predictions")
    assert _json(answer.inner_text())["predictions"] == [[2.0, 4.0, 6.0]]
    console.shot(page, "services-test-answer")
    # a pasted body too; a wrong one is refused with the model's reason, the input kept
    page.get_by_label("Request body (JSON)").fill('{"inputs": [[0.5, 1, 1.5], [10, 20, 30]]}')
    page.get_by_role("button", name="Send").click()
    assert _json(page.locator("pre.ops-answer").inner_text())["predictions"] == [
        [1.0, 2.0, 3.0], [20.0, 40.0, 60.0]]
    bad = '{"inputs": "' + XSS + '"}'
    page.get_by_label("Request body (JSON)").fill(bad)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("refused the input")
    expect(page.get_by_label("Request body (JSON)")).to_have_value(bad)
    console.shot(page, "services-test-refused")
    # scale to 2, stop (confirmed), start: from the buttons, on the same address
    address = page.locator(".ops-facts dd.mono").nth(2).inner_text()
    page.get_by_label("Replicas", exact=True).fill("2")
    page.get_by_role("button", name="Scale").click()
    expect(page.get_by_text(f"Service {name} scaled to 2 replica(s)")).to_be_visible(timeout=READY)
    expect(_state(page)).to_contain_text("2 of 2 replica(s) ready")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(f"Service {name} stopped: stopped")).to_be_visible(timeout=READY)
    expect(_state(page)).to_contain_text("stopped")
    assert httpx.get(f"{address}/ping", timeout=30).status_code == 503  # address kept, answers 503
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text(f"Service {name} started: running")).to_be_visible(timeout=READY)
    expect(_state(page)).to_contain_text("2 of 2 replica(s) ready")
    assert page.locator(".ops-facts dd.mono").nth(2).inner_text() == address
    expect(page.locator("pre.ops-log")).to_be_visible()
    console.shot(page, "services-after-start")
    assert fired == []
    # the log shows its tail and pages back 200 lines at a time
    page.goto(f"/services/{name}?lines=2")
    expect(page.get_by_role("heading", name="Log (last 2 lines)")).to_be_visible()
    assert len(page.locator("pre.ops-log").inner_text().strip().splitlines()) <= 2
    page.get_by_role("link", name="Show 200 earlier lines").click()
    expect(page.get_by_role("heading", name="Log (last 202 lines)")).to_be_visible()
    # a viewer (view on the model's folder): sees it, no controls, direct POSTs refused
    viewer = console.page(world.viewer_token)
    viewer.goto(f"/services/{name}")
    expect(viewer.get_by_role("heading", name=f"Service {name}")).to_be_visible()
    expect(viewer.get_by_role("complementary", name="Controls")).to_contain_text("need the run role")
    for control in ("Stop", "Start", "Scale", "Send"):
        expect(viewer.get_by_role("button", name=control)).to_have_count(0)
    expect(viewer.locator("pre.ops-log")).to_have_count(0)
    console.shot(viewer, "services-detail-viewer")
    csrf = console.csrf(viewer)
    for action, data in (("stop", {}), ("scale", {"replicas": "0"}),
                         ("test", {"body": '{"inputs": [[1, 2, 3]]}'})):
        r = viewer.request.post(f"/services/{name}/{action}", form={"csrf": csrf, **data},
                                headers={"Origin": console.url}, max_redirects=0)
        assert r.status == 403, (action, r.status)
    # a POST without the session's CSRF token is refused too (the owner's session)
    r = page.request.post(f"/services/{name}/stop", form={"csrf": "wrong"}, max_redirects=0)
    assert r.status == 403
    assert console.call(world.owner_token, "GET", f"/services/{name}").json()["state"] == "running"
    # a stranger: the service does not exist, and is not listed
    stranger = console.page(world.stranger_token)
    response = stranger.goto(f"/services/{name}")
    assert response is not None and response.status == 404
    expect(stranger.get_by_role("heading", name="Not found")).to_be_visible()
    r = stranger.request.post(f"/services/{name}/stop", form={"csrf": console.csrf(stranger)},
                              headers={"Origin": console.url}, max_redirects=0)
    assert r.status == 404
    stranger.goto("/services")
    expect(stranger.locator(f'tr[data-service="{name}"]')).to_have_count(0)
    # anonymous: asked to sign in
    anonymous = console.page()
    anonymous.goto("/services")
    assert "/signin" in anonymous.url
    # the stops, starts and scales are in the owner's audit log
    page.goto("/audit?action=service.stop")
    expect(page.locator("#audit tbody tr").first).to_contain_text(name)
    expect(page.locator("#audit tbody tr").first).to_contain_text("ok")


def _json(text: str) -> Any:
    import json

    return json.loads(text)


def test_audit_own_events_admin_filters_everyone(console: Console, world: World) -> None:
    alice, alice_token = console.user("auda")
    bob, bob_token = console.user("audb")
    # alice: a folder, and a refused attempt whose text is hers (rendered inert)
    assert console.call(alice_token, "POST", "/folders",
                        json={"path": f"{alice}/dataset/imgs"}).status_code == 201
    r = console.call(alice_token, "POST", "/folders", json={"path": f"{bob}/dataset/x",
                                                            "description": XSS})
    assert r.status_code == 403
    r = console.call(alice_token, "POST", "/services",
                     json={"name": "xss-probe", "model": f"{alice}/model/{XSS}:main"})
    assert r.status_code in (400, 404)
    assert console.call(bob_token, "POST", "/folders",
                        json={"path": f"{bob}/model/nets"}).status_code == 201
    page = console.page(alice_token)
    fired = _no_dialogs(page)
    page.goto("/audit")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("#audit tbody tr")
    expect(rows.filter(has_text=f"{alice}/dataset/imgs")).to_contain_text("folder.create")
    expect(rows.filter(has_text=f"{bob}/dataset/x")).to_contain_text("denied")
    expect(rows.filter(has_text="service.create")).to_contain_text(XSS)  # literally, inert
    expect(page.locator("#audit img")).to_have_count(0)
    # only her own: bob's folder is not there, and there is no actor filter
    expect(rows.filter(has_text=f"{bob}/model/nets")).to_have_count(0)
    assert set(rows.locator("td:nth-child(2)").all_inner_texts()) == {alice}
    expect(page.get_by_label("Actor")).to_have_count(0)
    console.shot(page, "audit-own")
    # her filters work: outcome, action
    page.get_by_label("Outcome").select_option("denied")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    assert set(rows.locator("td:nth-child(5)").all_inner_texts()) == {"denied"}
    # asking for bob's events: refused
    response = page.goto(f"/audit?actor={bob}")
    assert response is not None and response.status == 403
    expect(page.get_by_text("only an admin may read others' audit events")).to_be_visible()
    # a bad date: a clear error
    response = page.goto("/audit?since=yesterday")
    assert response is not None and response.status == 400
    expect(page.get_by_text("'since' must be a date")).to_be_visible()
    assert fired == []
    # the admin sees everyone's and filters by actor, action, target, outcome, since
    admin = console.page(console.admin_token)
    admin.goto("/audit")
    arows = admin.locator("#audit tbody tr")
    expect(arows.first).to_be_visible()
    admin.get_by_label("Actor").fill(bob)
    admin.get_by_role("button", name="Filter").click()
    expect(arows.filter(has_text=f"{bob}/model/nets")).to_have_count(1)
    assert set(arows.locator("td:nth-child(2)").all_inner_texts()) == {bob}
    admin.goto(f"/audit?actor={alice}&action=folder.create&outcome=denied&target=dataset/x"
               "&since=2020-01-01")
    expect(arows).to_have_count(1)
    expect(arows.first).to_contain_text(f"{bob}/dataset/x")
    expect(admin.get_by_label("Target contains")).to_have_value("dataset/x")
    console.shot(admin, "audit-admin-filtered")
    admin.goto("/audit?since=2999-01-01")
    expect(admin.get_by_text("No events match.")).to_be_visible()


def test_audit_pages_older_events(console: Console) -> None:
    name, token = console.user("audp")
    for i in range(105):  # more than one page (100) of her own events
        console.call(token, "POST", "/folders", json={"path": f"{name}/dataset/f{i:03d}"})
    page = console.page(token)
    page.goto("/audit?action=folder.create")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text(f"{name}/dataset/f104")
    page.get_by_role("link", name="Older events").click()
    expect(rows).to_have_count(5)
    expect(rows.last).to_contain_text(f"{name}/dataset/f000")
    expect(page.get_by_role("link", name="Older events")).to_have_count(0)
    assert "action=folder.create" in page.url
    page.get_by_role("link", name="Newest").click()
    expect(rows).to_have_count(100)


def test_folder_list_and_search_take_a_fixed_number_of_queries(hub_server: Any) -> None:
    """The home and search pages' hub calls: a few catalog queries whatever the number of
    folders, shares, assets and publications (no query per folder or asset)."""
    from sqlalchemy import event

    from assethub.hub import Principal

    admin = Client(hub_server.url, hub_server.admin_token)
    owner = f"nq{uuid.uuid4().hex[:6]}"
    admin.create_user(owner)
    admin.create_user(f"{owner}b")
    for i in range(12):
        folder = f"{owner}/dataset/d{i:02d}"
        admin.create_folder(folder)
        admin.share(folder, role="view", user=f"{owner}b")
        if i % 2:
            admin.share(folder, role="view", everyone=True)
        for j in range(3):
            admin.create_asset(f"{folder}/a{j}", description=f"number {i}-{j}")
    server_hub = hub_server.hub
    reader = Principal(f"{owner}b")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2])[:80])

    event.listen(server_hub.catalog.engine, "before_cursor_execute", count)
    try:
        folders = [f for f in server_hub.list_folders(reader) if f.path.owner == owner]
        listed = len(statements)
        statements.clear()
        found = server_hub.search(reader, owner=owner, limit=1000)
        searched = len(statements)
        statements.clear()
        words = server_hub.search(reader, query="NUMBER 1", owner=owner)
    finally:
        event.remove(server_hub.catalog.engine, "before_cursor_execute", count)
    assert len(folders) == 12 and {f.assets for f in folders} == {3}
    assert {f.public for f in folders} == {True, False}
    assert len(found) == 36 and {a.your_role for a in found} == {"view"}
    assert {str(a.path).rsplit("/", 2)[1] for a in words} == {"d01", "d10", "d11"}
    # 1 for the folders with their counts + 1 for their shares (with users and groups);
    # 1 for the assets with their folders + shares + publications (a session may add its own)
    assert listed <= 3, statements
    assert searched <= 4, statements


def test_search_words_match_as_before_on_both_databases(hub: Any) -> None:  # noqa: F811
    """Words narrowed in SQL find what the exact (casefold) test finds: any case, characters
    whose casefold is ASCII ('ß' is 'ss'), and '%' / '_' as themselves, not as wildcards."""
    from assethub.hub import Principal

    admin = Principal("admin", is_admin=True)
    hub.create_folder(admin, "alice/dataset/words")
    for name, description in (("plain", "Big STREET map"), ("german", "Große Straße"),
                              ("percent", "100% a_b"), ("other", "axb 1000 ab")):
        hub.create_asset(admin, f"alice/dataset/words/{name}", description=description)

    def found(words: str) -> set[str]:
        return {a.path.name for a in hub.search(admin, query=words, folder="words")}

    assert found("street") == {"plain"}
    assert found("STRASSE") == {"german"}
    assert found("große") == {"german"}
    assert found("0%") == {"percent"}
    assert found("a_b") == {"percent"}
    assert found("PLAIN") == {"plain"}
    assert found("nothing") == set()
