"""The web console's jobs pages in Debian's Chromium against the real server: who may see and
do what (a viewer sees no Train tab and is refused a direct POST, a stranger gets answers identical
to missing ones), and what people wrote shown as text.

A real training and an evaluation started from the forms and watched to the end on the run page
(the form's errors, the run's log and links, the evaluations table and chart, two versions
compared, the lineage graph's links, the runs list) are in test_console_journey: that story pays
for the console's only trainings."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.integration._console import Console, fresh
from tests.integration._jobs import JobWorld

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"


def _url(model: str, page: str = "", **query: str) -> str:
    url = f"/a/{model}" + (f"/{page}" if page else "")
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _no_dialogs(page: Any) -> list[str]:
    fired: list[str] = []

    def seen(dialog: Any) -> None:
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    return fired


def _new_model(w: JobWorld) -> str:
    model = f"deployer/model/digits/{fresh('console')}"
    w.hub.create_asset(model)
    return model


def _registered_run(hub_server: Any, w: JobWorld, model: str, **fields: Any) -> str:
    """A run registered as deployer (no job started) and marked failed: for what pages show."""
    hub = hub_server.hub
    who = hub.authenticate(w.token)
    run = hub.create_run(who, kind="train", model=model, dataset=w.dataset, code_url=w.repo,
                         deferred=True, **fields)
    hub.update_run(who, run.id, state="failed", error=f"stopped by the test {XSS}")
    return str(run.id)


def test_a_viewer_sees_no_train_tab_and_may_not_start_a_job_a_stranger_sees_nothing(
        console: Console, deploy_world: JobWorld, hub_server: Any) -> None:
    w = deploy_world
    model = _new_model(w)
    run_id = _registered_run(hub_server, w, model)
    viewer, viewer_token = console.user("viewer")
    w.hub.share("deployer/model/digits", role="view", user=viewer)
    page = console.page(viewer_token)
    page.goto(_url(model, "evaluations"))
    tabs = page.get_by_role("navigation", name="Asset")
    expect(tabs.get_by_role("link", name="Lineage")).to_be_visible()
    expect(tabs.get_by_role("link", name="Train")).to_have_count(0)
    console.shot(page, "jobs-viewer-evaluations")
    # a viewer may see the model's runs, but not the forms, and a direct POST is refused
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-state")).to_have_text("failed")
    expect(page.get_by_role("link", name="Run again with these inputs")).to_have_count(0)
    client, csrf = console.session(viewer_token)
    assert client.get(_url(model, "train")).status_code == 403
    for job in ("train", "continue-train", "evaluate"):
        r = client.post(_url(model, job), data={"csrf": csrf, "dataset": w.dataset, "repo": w.repo,
                                                "ref": "main", "base": "main", "params": "epochs=1"})
        assert r.status_code == 403, (job, r.status_code, r.text[:300])
    assert [r.id for r in w.hub.list_runs(model, limit=10)] == [run_id], "nothing was started"
    # the owner's POST without the CSRF token is refused too
    owner, _ = console.session(w.token)
    r = owner.post(_url(model, "train"), data={"dataset": w.dataset, "repo": w.repo})
    assert r.status_code == 403 and "CSRF" in r.text

    # a stranger: the run and the model answer exactly as missing ones
    _, stranger_token = console.user("stranger")
    stranger, stranger_csrf = console.session(stranger_token)
    missing_run = uuid.uuid4().hex
    for hidden, absent in ((f"/runs/{run_id}", f"/runs/{missing_run}"),
                           (f"/runs/{run_id}/live", f"/runs/{missing_run}/live"),
                           (_url(model, "evaluations"), _url(model + "-none", "evaluations")),
                           (_url(model, "lineage"), _url(model + "-none", "lineage")),
                           (_url(model, "train"), _url(model + "-none", "train"))):
        a, b = stranger.get(hidden), stranger.get(absent)
        assert a.status_code == b.status_code == 404, (hidden, a.status_code, b.status_code)
        assert a.text.replace(run_id, "ID").replace(model, "M") == \
            b.text.replace(missing_run, "ID").replace(model + "-none", "M"), hidden
    r = stranger.post(_url(model, "train"), data={"csrf": stranger_csrf,
                                                  "dataset": w.dataset, "repo": w.repo})
    assert r.status_code == 404
    page = console.page(stranger_token)
    page.goto(f"/runs/{run_id}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    console.shot(page, "jobs-stranger-run")
    # anonymous: asked to sign in
    r = httpx.get(console.url + f"/runs/{run_id}")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")


def test_what_people_wrote_is_shown_as_text(console: Console, deploy_world: JobWorld,
                                            hub_server: Any) -> None:
    w = deploy_world
    model = _new_model(w)
    run_id = _registered_run(hub_server, w, model, command=f"python train.py {XSS}",
                             params={XSS: "<script>alert(2)</script>", "lr": 0.1})
    page = console.page(w.token)
    dialogs = _no_dialogs(page)
    page.goto(f"/runs/{run_id}")
    main = page.locator("main")
    expect(main).to_contain_text(f"python train.py {XSS}")
    expect(main).to_contain_text("<script>alert(2)</script>")
    expect(main).to_contain_text(f"stopped by the test {XSS}")
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    console.shot(page, "jobs-run-xss")
    # "run again" prefills the form with what the run was given, as text
    page.get_by_role("link", name="Run again with these inputs").click()
    form = page.locator("#form-train")
    expect(form.get_by_label("Command")).to_have_value(f"python train.py {XSS}")
    expect(form.get_by_label("Parameters")).to_have_value(re.compile(re.escape(XSS)))
    # an error re-renders the form with the input as text
    form.get_by_label("Code repository").fill(XSS)
    form.get_by_label("Dataset version").fill(XSS)
    form.get_by_role("button", name="Start training").click()
    form = page.locator("#form-train")
    expect(form.locator(".error-text").first).to_be_visible()
    expect(form.get_by_label("Dataset version")).to_have_value(XSS)
    assert page.locator("main img").count() == 0
    console.shot(page, "jobs-train-xss")
    assert dialogs == []
