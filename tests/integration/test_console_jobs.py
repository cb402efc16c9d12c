"""The web console's jobs pages in Debian's Chromium against the real server: a non-admin
starts a real (one-epoch) training and an evaluation from the forms, through the real Prefect
worker (the integration conftest's ``prefect_stack``: it stops with this module), watches the
run page until it ends with the training's log; the evaluations table and chart, two versions
compared, the lineage graph's links; the runs list; who may see and do what."""

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
JOB_TIMEOUT = 900_000  # ms: a one-epoch training on 2 busy cores, with the worker's start


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


def _wait_run_ended(page: Any, state: str = "completed") -> str:
    """The run page's id once its live part says the run ended in ``state``."""
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    run_id = str(page.url).rsplit("/", 1)[1]
    expect(page.locator("#run-state")).to_have_text(state, timeout=JOB_TIMEOUT)
    return run_id


def test_train_and_evaluate_from_the_forms_then_evaluations_versions_and_lineage(
        prefect_stack: str, deploy_world: JobWorld, tracking: str, console: Console,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # prefect_stack first: Prefect's deploy_all must run before Playwright's event loop exists
    monkeypatch.setenv("ASSETHUB_MLFLOW_UI_URL", tracking)  # read by the server at each request
    w = deploy_world
    model = _new_model(w)
    page = console.page(w.token)
    dialogs = _no_dialogs(page)
    page.goto(_url(model, "train"))
    expect(page.get_by_role("heading", name="Train a new version")).to_be_visible()
    train = page.locator("#form-train")

    # a bad params line: the error at the field, nothing started, what was typed kept
    train.get_by_label("Dataset version").fill(w.dataset)
    train.get_by_label("Code repository").fill(w.repo)
    train.get_by_label("Parameters").fill("epochs=1\nnot a pair")
    train.get_by_label("New branch").fill("first")
    train.get_by_role("button", name="Start training").click()
    train = page.locator("#form-train")
    expect(train.locator("#train-params-err")).to_contain_text("params line 2: write key=value")
    expect(train.get_by_label("Parameters")).to_have_value("epochs=1\nnot a pair")
    expect(train.get_by_label("Code repository")).to_have_value(w.repo)
    # a dataset version that does not exist: refused by the hub before anything runs, at its field
    missing = w.dataset.split(":")[0] + ":no-such-tag"
    train.get_by_label("Dataset version").fill(missing)
    train.get_by_label("Parameters").fill("epochs=1\nseed=1")
    train.get_by_role("button", name="Start training").click()
    train = page.locator("#form-train")
    expect(train.locator("#train-dataset-err")).to_contain_text("no-such-tag")
    expect(train.get_by_label("Dataset version")).to_have_value(missing)
    console.shot(page, "jobs-train-form-error")
    assert w.hub.list_runs(model, limit=5) == []

    # the real training, as deployer, through the worker
    train.get_by_label("Dataset version").fill(w.dataset)
    train.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(re.compile(r"Started train run [0-9a-f]{8}"))).to_be_visible()
    expect(page.locator("#run-live")).to_have_attribute("data-poll", re.compile(r"/live$"))
    train_id = _wait_run_ended(page)
    expect(page.locator("#run-log")).to_contain_text("epoch 1/1", timeout=120_000)
    expect(page.locator("#run-live")).not_to_have_attribute("data-poll", re.compile("."), timeout=120_000)
    run = w.hub.get_run(train_id)
    assert (run.created_by, run.kind, run.branch) == ("deployer", "train", "first")
    assert run.params["epochs"] == 1 and run.params["seed"] == 1  # (with the code's defaults)
    expect(page.get_by_role("link", name="Prefect flow run")).to_have_attribute(
        "href", re.compile(re.escape(run.prefect_flow_run_id) + "$"))
    expect(page.locator("main")).to_contain_text(run.result_commit[:12])
    expect(page.get_by_role("link", name="MLflow run")).to_have_attribute(
        "href", f"{tracking}/#/runs/{run.mlflow_run_id}")
    console.shot(page, "jobs-run-completed")

    # evaluate that version from the form
    page.goto(_url(model, "train", ref="first"))
    evaluate = page.locator("#form-evaluate")
    expect(evaluate.get_by_label("Version to evaluate")).to_have_value("first")
    # prefilled from the model's latest run
    expect(evaluate.get_by_label("Dataset version")).to_have_value(w.dataset)
    expect(evaluate.get_by_label("Code repository")).to_have_value(w.repo)
    evaluate.get_by_role("button", name="Start evaluation").click()
    eval_id = _wait_run_ended(page)
    # the training's own evaluation, and this one's
    evaluations = w.hub.list_evaluations(model)
    assert sorted(e.run_id for e in evaluations) == sorted([train_id, eval_id])
    [evaluation] = [e for e in evaluations if e.run_id == eval_id]
    assert evaluation.model_commit == run.result_commit

    # the evaluations tab: the table and a chart per metric
    page.goto(_url(model, "evaluations"))
    table = page.locator("#evaluations")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("first")
    expect(table.get_by_role("link", name=eval_id[:8])).to_have_attribute("href", f"/runs/{eval_id}")
    expect(table).to_contain_text("trusted")
    metric = sorted(evaluation.metrics)[0]
    expect(page.locator(".jobs-chart svg").first).to_be_visible()
    expect(page.locator(".jobs-charts")).to_contain_text(f"{metric} across versions")
    console.shot(page, "jobs-evaluations")

    # two versions side by side: main (no job made it) and first; differences only
    page.goto(_url(model, "versions", a="main", b="first"))
    compare = page.locator("#compare")
    expect(compare.locator("tr.differs").first).to_be_visible()
    expect(compare).to_contain_text("epochs")
    expect(compare).to_contain_text(w.sha)
    console.shot(page, "jobs-versions")
    page.get_by_label("Differences only").check()
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"diff=1"))
    expect(compare.locator("tr.same")).to_have_count(0)
    # the same model version by its branch and by its commit: nothing differs
    page.goto(_url(model, "versions", a="first", b=run.result_commit, diff="1"))
    expect(page.locator("#compare")).to_contain_text("The two versions do not differ.")

    # the lineage graph: each node links where it says
    page.goto(_url(model, "lineage", ref="first"))
    graph = page.locator("svg.lineage")
    dataset_path = w.dataset.split(":")[0]
    expect(graph.locator("a.node-dataset")).to_have_attribute(
        "href", f"/a/{dataset_path}?ref={w.dataset_commit}")
    expect(graph.locator("a.node-run")).to_have_attribute("href", f"/runs/{train_id}")
    expect(graph.locator("a.node-model")).to_have_attribute(
        "href", f"/a/{model}/files?ref={run.result_commit}")
    # both evaluations of that model commit: the training's own, and the evaluate run's
    expect(graph.locator("a.node-evaluation")).to_have_count(2)
    for evaluated_by in (train_id, eval_id):
        expect(graph.locator(f'a.node-evaluation[href="/runs/{evaluated_by}"]')).to_have_count(1)
    steps = page.get_by_role("table").filter(has_text="Step")
    expect(steps.get_by_role("link", name=re.compile(f"train run {train_id[:8]}"))).to_be_visible()
    console.shot(page, "jobs-lineage")
    graph.locator("a.node-run").click()
    expect(page).to_have_url(re.compile(f"/runs/{train_id}$"))

    # the runs list: mine, filtered
    page.goto("/runs?kind=evaluate")
    runs = page.locator("#runs")
    expect(runs.get_by_role("link", name=eval_id[:8])).to_be_visible()
    expect(runs.get_by_role("link", name=train_id[:8])).to_have_count(0)
    console.shot(page, "jobs-runs")
    assert dialogs == []


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
