"""The whole story in the web console, as a person would do it, in Debian's Chromium against the
real stack (server, lakeFS, Prefect server + worker, MLflow, the sandboxed scoring server):

sign in; make a dataset folder, a dataset and upload digits from the browser; publish v1; make a
model; the training form refuses bad input at its fields (input kept, nothing started); train it
from the form and watch the run page until the run ends (its log, links to Prefect and MLflow);
evaluate it from the prefilled form; the evaluations table and charts, two versions side by side,
the lineage graph's links, the runs list; merge it into main through the metric gate; train a
second version and compare the two; a merge the gate refuses shows its figures; serve main and
test it online; its lineage reaches the service. Then a second user sees exactly what was shared
with them (and cannot change it), and a stranger sees nothing.

The one test here that trains from the console (trainings are the suite's dearest steps): the
jobs pages' other tests (test_console_jobs) need no finished job.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from assethub.client import Client
from tests.integration._console import Console, fresh, small_digits
from tests.integration._jobs import EXAMPLES, git_repo

pytestmark = pytest.mark.integration

JOB = 900_000  # ms: a one-epoch training on 2 busy cores, with the worker's start
READY = 300_000  # ms: a scoring server's start in its sandbox


def _no_dialogs(page: Any) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog: Any) -> None:
        if dialog.type == "confirm":  # the console's own questions
            dialog.accept()
        else:
            fired.append(dialog.message)
            dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired


def _run_to_end(page: Any) -> str:
    """On a run's page: wait until it completed; its id."""
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-state")).to_have_text("completed", timeout=JOB)
    return str(page.url).rsplit("/", 1)[1]


def _train(page: Any, model: str, dataset: str, repo: str, branch: str, seed: int) -> str:
    page.goto(f"/a/{model}/train")
    form = page.locator("#form-train")
    form.get_by_label("Dataset version").fill(dataset)
    form.get_by_label("Code repository").fill(repo)
    form.get_by_label("Parameters").fill(f"epochs=1\nseed={seed}")
    form.get_by_label("New branch").fill(branch)
    form.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(re.compile(r"Started train run [0-9a-f]{8}"))).to_be_visible()
    expect(page.locator("#run-live")).to_have_attribute("data-poll", re.compile(r"/live$"))
    return _run_to_end(page)


def _train_form_refuses_bad_input(page: Any, sdk: Client, model: str, dataset: str, repo: str) -> None:
    """Bad input on the training form: the error at its field, what was typed kept, nothing started."""
    page.goto(f"/a/{model}/train")
    expect(page.get_by_role("heading", name="Train a new version")).to_be_visible()
    train = page.locator("#form-train")
    # a bad params line
    train.get_by_label("Dataset version").fill(dataset)
    train.get_by_label("Code repository").fill(repo)
    train.get_by_label("Parameters").fill("epochs=1\nnot a pair")
    train.get_by_label("New branch").fill("first")
    train.get_by_role("button", name="Start training").click()
    train = page.locator("#form-train")
    expect(train.locator("#train-params-err")).to_contain_text("params line 2: write key=value")
    expect(train.get_by_label("Parameters")).to_have_value("epochs=1\nnot a pair")
    expect(train.get_by_label("Code repository")).to_have_value(repo)
    # a dataset version that does not exist: refused by the hub before anything runs, at its field
    missing = dataset.split(":")[0] + ":no-such-tag"
    train.get_by_label("Dataset version").fill(missing)
    train.get_by_label("Parameters").fill("epochs=1\nseed=1")
    train.get_by_role("button", name="Start training").click()
    train = page.locator("#form-train")
    expect(train.locator("#train-dataset-err")).to_contain_text("no-such-tag")
    expect(train.get_by_label("Dataset version")).to_have_value(missing)
    assert sdk.list_runs(model, limit=5) == []


def test_the_whole_story_in_the_browser(prefect_stack: str, tracking: str, console: Console,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # prefect_stack first: Prefect's deploy_all runs before Playwright's event loop exists
    monkeypatch.setenv("ASSETHUB_MLFLOW_UI_URL", tracking)
    ann, token = console.user("ann")
    bob, bob_token = console.user("bob")
    _, stranger_token = console.user("carl")
    sdk = Client(console.url, token)
    data = tmp_path / "digits"
    small_digits(data)  # 30 training and 8 test images per class
    repo, sha = git_repo(EXAMPLES / "digits-classifier", tmp_path / "code")

    page = console.page(token)
    fired = _no_dialogs(page)

    # folders from home, a dataset from its folder page
    for kind, folder in (("dataset", "images"), ("model", "nets")):
        page.goto("/")
        page.locator("summary", has_text="New folder").click()
        page.get_by_label("Type").select_option(kind)
        page.get_by_label("Name", exact=True).fill(folder)
        page.get_by_role("button", name="Create folder").click()
        expect(page.get_by_text(f"Folder {ann}/{kind}/{folder} created")).to_be_visible()
    page.goto(f"/f/{ann}/dataset/images")
    page.locator("summary", has_text="New dataset").click()
    page.get_by_label("Name", exact=True).fill("digits")
    page.get_by_label("Task type").select_option("image_classification")
    page.get_by_label("Format").select_option("dir")
    page.get_by_label("Split", exact=True).select_option("test_set")
    page.get_by_label('Test set path (for "test_set")').fill("test")
    page.get_by_role("button", name="Create dataset").click()
    dataset = f"{ann}/dataset/images/digits"
    expect(page).to_have_url(re.compile(re.escape(f"/a/{dataset}")))

    # upload from the browser: the README and the two split folders, one commit
    page.goto(f"/a/{dataset}/upload")
    page.get_by_label("Files", exact=True).set_input_files(str(data / "README.md"))
    page.get_by_label("A folder").set_input_files(str(data / "train"))
    page.get_by_label("A folder").set_input_files(str(data / "test"))
    expect(page.locator("#up-rows tbody tr")).to_have_count(1 + 300 + 80)
    page.get_by_label("Commit message").fill("Add digits from the browser")
    page.get_by_role("button", name="Upload and commit").click()
    expect(page.locator("#up-status")).to_contain_text("Committed 381 file(s)", timeout=300_000)
    console.shot(page, "journey-upload")

    # the dataset page: classes, samples; publish v1
    page.goto(f"/a/{dataset}/dataset")
    expect(page.locator("svg.chart .bar")).to_have_count(10)
    page.get_by_label("Publish main as").fill("v1")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("main")).to_contain_text("v1")
    console.shot(page, "journey-dataset")
    assert console.call(token, "GET", f"/assets/{dataset}").json()["published"][0][0] == "v1"

    # a model, trained from the form; then evaluated from the form
    page.goto(f"/f/{ann}/model/nets")
    page.locator("summary", has_text="New model").click()
    page.get_by_label("Name", exact=True).fill("cnn")
    page.get_by_role("button", name="Create model").click()
    model = f"{ann}/model/nets/cnn"
    _train_form_refuses_bad_input(page, sdk, model, f"{dataset}:v1", repo)
    console.shot(page, "jobs-train-form-error")
    first = _train(page, model, f"{dataset}:v1", repo, "first", 1)
    # the run page: its log; links to Prefect and MLflow. It goes on polling a while for the rest
    # of the log: a second tab keeps watching it (checked below) while the story goes on here
    expect(page.locator("#run-log")).to_contain_text("epoch 1/1", timeout=120_000)
    watcher = page.context.new_page()
    watcher_fired = _no_dialogs(watcher)
    watcher.goto(f"/runs/{first}")
    run = sdk.get_run(first)
    assert (run.created_by, run.kind, run.branch) == (ann, "train", "first")
    assert run.params["epochs"] == 1 and run.params["seed"] == 1  # (with the code's defaults)
    expect(page.get_by_role("link", name="Prefect flow run")).to_have_attribute(
        "href", re.compile(re.escape(run.prefect_flow_run_id) + "$"))
    expect(page.locator("main")).to_contain_text(run.result_commit[:12])
    expect(page.get_by_role("link", name="MLflow run")).to_have_attribute(
        "href", f"{tracking}/#/runs/{run.mlflow_run_id}")
    console.shot(page, "journey-run")

    # evaluate that version from the form, prefilled from the model's latest run
    page.goto(f"/a/{model}/train?ref=first")
    evaluate = page.locator("#form-evaluate")
    expect(evaluate.get_by_label("Version to evaluate")).to_have_value("first")
    expect(evaluate.get_by_label("Dataset version")).to_have_value(f"{dataset}:v1")
    expect(evaluate.get_by_label("Code repository")).to_have_value(repo)
    evaluate.get_by_role("button", name="Start evaluation").click()
    evaluation = _run_to_end(page)
    runs = {r["id"]: r for r in console.call(token, "GET", "/runs", params={"model": model}).json()}
    assert runs[first]["created_by"] == ann and runs[evaluation]["kind"] == "evaluate"
    # the training's own evaluation, and this one's
    evaluations = sdk.list_evaluations(model)
    assert sorted(e.run_id for e in evaluations) == sorted([first, evaluation])
    [evaluated] = [e for e in evaluations if e.run_id == evaluation]
    assert evaluated.model_commit == run.result_commit

    # the evaluations tab: the table and a chart per metric
    page.goto(f"/a/{model}/evaluations")
    table = page.locator("#evaluations")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("first")
    expect(table.get_by_role("link", name=evaluation[:8])).to_have_attribute("href", f"/runs/{evaluation}")
    expect(table).to_contain_text("trusted")
    metric = sorted(evaluated.metrics)[0]
    expect(page.locator(".jobs-chart svg").first).to_be_visible()
    expect(page.locator(".jobs-charts")).to_contain_text(f"{metric} across versions")
    console.shot(page, "jobs-evaluations")

    # two versions side by side: main (no job made it) and first; differences only
    page.goto(f"/a/{model}/versions?a=main&b=first")
    compare = page.locator("#compare")
    expect(compare.locator("tr.differs").first).to_be_visible()
    expect(compare).to_contain_text("epochs")
    expect(compare).to_contain_text(sha)
    console.shot(page, "jobs-versions")
    page.get_by_label("Differences only").check()
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"diff=1"))
    expect(compare.locator("tr.same")).to_have_count(0)
    # the same model version by its branch and by its commit: nothing differs
    page.goto(f"/a/{model}/versions?a=first&b={run.result_commit}&diff=1")
    expect(page.locator("#compare")).to_contain_text("The two versions do not differ.")

    # the lineage graph of first: each node links where it says
    page.goto(f"/a/{model}/lineage?ref=first")
    graph = page.locator("svg.lineage")
    expect(graph.locator("a.node-dataset")).to_have_attribute(
        "href", f"/a/{dataset}?ref={sdk.resolve(f'{dataset}:v1')}")
    expect(graph.locator("a.node-run")).to_have_attribute("href", f"/runs/{first}")
    expect(graph.locator("a.node-model")).to_have_attribute(
        "href", f"/a/{model}/files?ref={run.result_commit}")
    # both evaluations of that model commit: the training's own, and the evaluate run's
    expect(graph.locator("a.node-evaluation")).to_have_count(2)
    for evaluated_by in (first, evaluation):
        expect(graph.locator(f'a.node-evaluation[href="/runs/{evaluated_by}"]')).to_have_count(1)
    steps = page.get_by_role("table").filter(has_text="Step")
    expect(steps.get_by_role("link", name=re.compile(f"train run {first[:8]}"))).to_be_visible()
    console.shot(page, "jobs-lineage")
    graph.locator("a.node-run").click()
    expect(page).to_have_url(re.compile(f"/runs/{first}$"))

    # the runs list: mine, filtered
    page.goto("/runs?kind=evaluate")
    listed = page.locator("#runs")
    expect(listed.get_by_role("link", name=evaluation[:8])).to_be_visible()
    expect(listed.get_by_role("link", name=first[:8])).to_have_count(0)
    console.shot(page, "jobs-runs")
    # the first run's page, left open: its live part stopped polling by itself, the log complete
    expect(watcher.locator("#run-live")).not_to_have_attribute("data-poll", re.compile("."),
                                                               timeout=120_000)
    expect(watcher.locator("#run-log")).to_contain_text("epoch 1/1")
    watcher.close()
    assert watcher_fired == []

    # merge first into main through the gate (main has no evaluation yet: it merges)
    page.goto(f"/a/{model}/compare?base=main&head=first")
    page.get_by_role("link", name="Merge first into main…").click()
    expect(page.get_by_label("Only if better on")).to_have_value("accuracy")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("status")).to_contain_text("Merged first into main")

    # a second version, compared with main side by side; a merge the gate refuses shows why
    _train(page, model, f"{dataset}:v1", repo, "second", 2)
    page.goto(f"/a/{model}/versions?a=main&b=second")
    console.shot(page, "journey-compare-versions")
    seed = page.locator("#compare tr.differs", has_text="seed")
    expect(seed).to_contain_text("1")
    expect(seed).to_contain_text("2")
    page.goto(f"/a/{model}/merge?source=second&target=main")
    page.get_by_label("By more than").fill("1")  # no accuracy gains more than 1
    page.get_by_role("button", name="Merge").click()
    refusal = page.locator("section.refusal")
    expect(refusal).to_contain_text("Not merged")
    expect(refusal.locator("table.gate")).to_contain_text("accuracy")
    expect(refusal.locator("table.gate")).to_contain_text(ann)
    console.shot(page, "journey-merge-refused")

    # evaluations across versions
    page.goto(f"/a/{model}/evaluations")
    expect(page.locator("#evaluations tbody tr")).to_have_count(3)  # two trainings' own + one
    console.shot(page, "journey-evaluations")

    # serve main, test it online with the model's own input example
    service = fresh("digits")
    page.goto("/services")
    page.get_by_label("Model version", exact=True).fill(f"{model}:main")
    page.get_by_label("Service name", exact=True).fill(service)
    page.get_by_role("button", name="Serve").click()
    expect(page.locator("#service-state")).to_contain_text("running", timeout=READY)
    page.get_by_role("button", name="Send").click()
    answer = page.locator("pre.ops-answer")
    expect(answer).to_contain_text("predictions")
    console.shot(page, "journey-service-test")

    # the lineage of main: dataset, run, model, evaluation, the service — each a link
    page.goto(f"/a/{model}/lineage?ref=main")
    graph = page.locator("svg.lineage")
    expect(graph.locator(f'a[href="/runs/{first}"]').first).to_be_visible()
    expect(graph.locator(f'a[href="/services/{service}"]')).to_have_count(1)
    expect(graph.locator(f'a[href^="/a/{dataset}"]').first).to_be_visible()
    console.shot(page, "journey-lineage")
    assert fired == []

    # share the model folder with bob (view) from its page
    page.goto(f"/f/{ann}/model/nets")
    page.locator("summary", has_text="Share").click()
    page.get_by_label("With", exact=True).select_option("user")
    page.get_by_label("User or group name (not for everyone)").fill(bob)
    page.get_by_label("Role", exact=True).select_option("view")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.locator("main")).to_contain_text(bob)

    # bob: the model folder under "Shared with you", its pages without change controls; the
    # dataset folder (not shared) answers like a missing one
    viewer = console.page(bob_token)
    viewer.goto("/")
    shared = viewer.locator("section", has=viewer.get_by_role("heading", name="Shared with you"))
    expect(shared.get_by_role("link", name=f"{ann}/model/nets")).to_be_visible()
    expect(shared.get_by_role("link", name=f"{ann}/dataset/images")).to_have_count(0)
    viewer.goto(f"/a/{model}")
    tabs = viewer.get_by_role("navigation", name="Asset")
    expect(tabs.get_by_role("link", name="Lineage")).to_be_visible()
    for hidden in ("Train", "Upload", "Settings"):
        expect(tabs.get_by_role("link", name=hidden)).to_have_count(0)
    viewer.goto(f"/runs/{first}")
    expect(viewer.locator("#run-live")).to_contain_text("completed")
    missing = viewer.goto(f"/a/{dataset}")
    assert missing is not None and missing.status == 404
    r = console.call(bob_token, "GET", f"/assets/{model}")
    assert r.status_code == 200 and r.json()["your_role"] == "view"
    console.shot(viewer, "journey-viewer")

    # a stranger: nothing on home, nothing found, every page of ann's answers 404
    stranger = console.page(stranger_token)
    stranger.goto("/")
    expect(stranger.locator("main")).not_to_contain_text(ann)
    stranger.goto(f"/search?owner={ann}")
    expect(stranger.get_by_text("No asset you may see matches.")).to_be_visible()
    for url in (f"/a/{model}", f"/a/{model}/lineage?ref=main", f"/a/{dataset}/dataset",
                f"/f/{ann}/model/nets", f"/runs/{first}", f"/services/{service}"):
        response = stranger.goto(url)
        assert response is not None and response.status == 404, url
    console.shot(stranger, "journey-stranger")
    r = console.call(token, "DELETE", f"/services/{service}")
    assert r.status_code in (200, 204), r.text
    shutil.rmtree(data, ignore_errors=True)
