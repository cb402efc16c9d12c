"""The whole story in the web console, as a person would do it, in Debian's Chromium against the
real stack (server, lakeFS, Prefect server + worker, MLflow, the sandboxed scoring server):

sign in; make a dataset folder, a dataset and upload digits from the browser; publish v1; make a
model; train it from the form and watch the run finish; evaluate it; merge it into main through
the metric gate; train a second version and compare the two; a merge the gate refuses shows its
figures; serve main and test it online; its lineage reaches the service. Then a second user sees
exactly what was shared with them (and cannot change it), and a stranger sees nothing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.integration._console import Console, fresh
from tests.integration._jobs import EXAMPLES, git_repo

pytestmark = pytest.mark.integration

JOB = 900_000  # ms: a one-epoch training on 2 busy cores, with the worker's start
READY = 300_000  # ms: a scoring server's start in its sandbox


def _small_digits(root: Path) -> None:
    """scikit-learn's digits in class folders, 30 training and 8 test images per class."""
    from examples.datasets import write_digits

    write_digits(root)
    for split, keep in (("train", 30), ("test", 8)):
        for cls in (root / split).iterdir():
            for extra in sorted(cls.iterdir())[keep:]:
                extra.unlink()


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
    return _run_to_end(page)


def test_the_whole_story_in_the_browser(prefect_stack: str, tracking: str, console: Console,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # prefect_stack first: Prefect's deploy_all runs before Playwright's event loop exists
    monkeypatch.setenv("ASSETHUB_MLFLOW_UI_URL", tracking)
    ann, token = console.user("ann")
    bob, bob_token = console.user("bob")
    _, stranger_token = console.user("carl")
    data = tmp_path / "digits"
    _small_digits(data)
    repo, _ = git_repo(EXAMPLES / "digits-classifier", tmp_path / "code")

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
    first = _train(page, model, f"{dataset}:v1", repo, "first", 1)
    expect(page.locator("#run-log")).to_contain_text("epoch 1/1", timeout=120_000)
    console.shot(page, "journey-run")
    page.goto(f"/a/{model}/train?ref=first")
    page.locator("#form-evaluate").get_by_role("button", name="Start evaluation").click()
    evaluation = _run_to_end(page)
    runs = {r["id"]: r for r in console.call(token, "GET", "/runs", params={"model": model}).json()}
    assert runs[first]["created_by"] == ann and runs[evaluation]["kind"] == "evaluate"

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
