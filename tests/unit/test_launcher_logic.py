"""start_job (assethub.launcher): what it registers and what it hands the orchestrator, checked
with a fake hub and a fake launcher; a submission that fails leaves the run crashed, not
pending. The real hub, Prefect and worker are in tests/integration/test_launcher.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from assethub import errors, plugins
from assethub.gitcred import split_credentials
from assethub.hub import Principal
from assethub.launcher import LaunchedJob, LauncherUnavailable, NoJobLauncher, start_job

ALICE = Principal("alice")
MODEL = "alice/model/cls/net"
DATASET = "alice/dataset/img/digits:v1"
SECRET_REPO = "https://alice:s3cret-token@git.example.org/ml/digits.git"
CLEAN_REPO = "https://git.example.org/ml/digits.git"


class FakeHub:
    """Registers runs as the hub does for these tests' purposes: the URL is recorded clean."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.updated: list[tuple[Principal, str, dict[str, Any]]] = []

    def create_run(self, who: Principal, **fields: Any) -> Any:
        self.created.append({"who": who, **fields})
        clean, _ = split_credentials(fields["code_url"])
        # what the model's settings or an algorithm would fill in is left as given here
        return SimpleNamespace(id=f"run{len(self.created)}", code_url=clean,
                               code_revision=fields["code_revision"], code_subpath=fields["code_subpath"],
                               dataset_ref=fields["dataset"])

    def update_run(self, who: Principal, run_id: str, **changes: Any) -> Any:
        self.updated.append((who, run_id, changes))
        return SimpleNamespace(id=run_id, **changes)


class FakeLauncher:
    name = "fake"

    def __init__(self, fails: BaseException | None = None) -> None:
        self.fails = fails
        self.submitted: list[tuple[str, dict[str, Any]]] = []

    def submit(self, deployment: str, parameters: Mapping[str, Any]) -> str:
        if self.fails is not None:
            raise self.fails
        self.submitted.append((deployment, dict(parameters)))
        return "flow-run-1"


def test_train_registers_the_run_as_the_caller_deferred_and_submits_only_its_id_added() -> None:
    hub, launcher = FakeHub(), FakeLauncher()
    job = start_job(hub, launcher, ALICE, "train",  # type: ignore[arg-type]
                    {"model": MODEL, "dataset": DATASET, "repo": SECRET_REPO, "params": {"epochs": 3},
                     "branch": "exp", "subpath": "code"})
    assert job == LaunchedJob("run1", "flow-run-1", "train/local")
    assert hub.created == [{"who": ALICE, "kind": "train", "model": MODEL, "branch": "exp",
                            "dataset": DATASET, "base": "", "code_url": SECRET_REPO,
                            "code_revision": "", "code_subpath": "code", "command": "",
                            "params": {"epochs": 3}, "deferred": True, "algorithm": ""}]
    [(deployment, parameters)] = launcher.submitted
    assert deployment == "train/local"
    assert parameters == {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO, "revision": "",
                          "subpath": "code", "params": {"epochs": 3}, "branch": "exp", "run_id": "run1"}
    assert "s3cret" not in json.dumps(parameters), "Prefect shows parameters: no credential there"
    assert hub.updated == [], "a submitted run is left to its job"


def test_continue_train_and_evaluate_map_their_refs_as_deployments_run_does() -> None:
    hub, launcher = FakeHub(), FakeLauncher()
    start_job(hub, launcher, ALICE, "continue-train",  # type: ignore[arg-type]
              {"base": f"{MODEL}:main", "dataset": DATASET, "repo": CLEAN_REPO, "revision": "v2"}, pool="gpu")
    start_job(hub, launcher, ALICE, "evaluate",  # type: ignore[arg-type]
              {"model": f"{MODEL}:train-1a2b3c4d", "dataset": DATASET, "repo": CLEAN_REPO,
               "command": "python e.py"})
    cont, ev = hub.created
    assert (cont["kind"], cont["model"], cont["base"], cont["branch"], cont["code_revision"]) == (
        "continue_train", MODEL, f"{MODEL}:main", "", "v2")
    assert (ev["kind"], ev["model"], ev["base"], ev["branch"], ev["command"]) == (
        "evaluate", MODEL, f"{MODEL}:train-1a2b3c4d", "train-1a2b3c4d", "python e.py")
    assert [d for d, _ in launcher.submitted] == ["continue-train/gpu", "evaluate/local"]
    assert launcher.submitted[0][1] == {"base": f"{MODEL}:main", "dataset": DATASET, "repo": CLEAN_REPO,
                                        "revision": "v2", "run_id": "run1"}
    assert launcher.submitted[1][1]["model"] == f"{MODEL}:train-1a2b3c4d"


@pytest.mark.parametrize(("flow", "parameters", "pool", "says"), [
    ("train", {"dataset": DATASET, "repo": CLEAN_REPO}, "local", "train needs a model"),
    ("continue-train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO}, "local",
     "needs the model version to continue"),
    ("evaluate", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO}, "gpu", "'local' only"),
    ("evaluate", {"model": "alice/model/cls/net:bad ref!", "dataset": DATASET, "repo": CLEAN_REPO}, "local",
     "ref"),
    ("train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO, "follow_id": 3}, "local",
     "takes no parameter 'follow_id'"),
    ("train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO, "params": ["epochs"]}, "local",
     "'params' must map"),
    ("train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO, "params": {"x": float("nan")}},
     "local", "plain JSON"),
    ("train", {"model": 7, "dataset": DATASET, "repo": CLEAN_REPO}, "local", "must be a string"),
    ("retrain", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO}, "local", "unknown job 'retrain'"),
    ("train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO}, "../x", "work pool"),
])
def test_bad_input_is_a_400_before_anything_is_registered_or_submitted(
        flow: str, parameters: dict[str, Any], pool: str, says: str) -> None:
    hub, launcher = FakeHub(), FakeLauncher()
    with pytest.raises(errors.InvalidReferenceError, match=says) as raised:
        start_job(hub, launcher, ALICE, flow, parameters, pool=pool)  # type: ignore[arg-type]
    assert errors.wire_error(raised.value).status == 400
    assert hub.created == [] and launcher.submitted == []


@pytest.mark.parametrize(("parameters", "says"), [
    ({"model": MODEL, "repo": CLEAN_REPO}, "needs a dataset version"),
    ({"model": MODEL, "dataset": DATASET, "repo": "  "}, "needs the training code"),
])
def test_no_code_or_dataset_given_or_saved_is_refused_and_the_run_marked_crashed(
        parameters: dict[str, Any], says: str) -> None:
    """The model's settings or an algorithm may fill them in (the hub does, registering the run):
    when neither did, nothing is submitted and the run does not stay pending."""
    hub, launcher = FakeHub(), FakeLauncher()
    with pytest.raises(errors.JobSpecError, match=says) as raised:
        start_job(hub, launcher, ALICE, "train", parameters)  # type: ignore[arg-type]
    assert errors.wire_error(raised.value).status == 400 and "assethub configure" in str(raised.value)
    assert launcher.submitted == []
    [(_, run_id, changes)] = hub.updated
    assert (run_id, changes["state"]) == ("run1", "crashed") and "nothing to run" in changes["error"]


@pytest.mark.parametrize("launcher", [
    FakeLauncher(LauncherUnavailable("cannot reach Prefect at http://127.0.0.1:9/api")),
    NoJobLauncher("the server has no Prefect API"),
], ids=["unreachable", "none"])
def test_an_orchestrator_that_is_away_is_a_503_and_the_run_is_marked_crashed(launcher: Any) -> None:
    hub = FakeHub()
    with pytest.raises(errors.OrchestratorUnavailableError,
                       match=r"cannot start the train job: .*Prefect") as raised:
        start_job(hub, launcher, ALICE, "train",  # type: ignore[arg-type]
                  {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO})
    assert errors.wire_error(raised.value).status == 503
    assert isinstance(raised.value, ConnectionError)
    # the same unavailability met elsewhere (a runs page asking for a state) answers 503 as well
    status, body = errors.to_wire(LauncherUnavailable("cannot reach Prefect at http://127.0.0.1:9/api"))
    assert (status, body["type"]) == (503, "OrchestratorUnavailableError") and "Prefect" in body["message"]
    [(who, run_id, changes)] = hub.updated
    assert (who, run_id, changes["state"]) == (ALICE, "run1", "crashed")
    assert changes["error"].startswith("its job was not started: ") and "Prefect" in changes["error"]


def test_any_other_failure_to_submit_marks_the_run_crashed_and_is_raised_as_it_is() -> None:
    hub = FakeHub()
    with pytest.raises(RuntimeError, match="schema"):
        start_job(hub, FakeLauncher(RuntimeError("parameters do not match the schema")), ALICE,  # type: ignore[arg-type]
                  "train", {"model": MODEL, "dataset": DATASET, "repo": CLEAN_REPO})
    [(_, _, changes)] = hub.updated
    assert changes == {"state": "crashed",
                       "error": "its job was not started: RuntimeError: parameters do not match the schema"}


def test_the_launcher_plugin_and_its_absence(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.launcher import PrefectJobLauncher

    assert isinstance(plugins.job_launcher(), PrefectJobLauncher)
    found = plugins.available(plugins.JOB_LAUNCHERS)
    assert found["prefect"].value == "deployments.launcher:PrefectJobLauncher"
    off = plugins.job_launcher("none")
    with pytest.raises(LauncherUnavailable, match="ASSETHUB_JOB_LAUNCHER=none"):
        off.submit("train/local", {})
    with pytest.raises(LauncherUnavailable, match=r"no job launcher named 'k8s'.*installed: prefect"):
        plugins.job_launcher("k8s").flow_run("x")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("ASSETHUB_PREFECT_API_URL", raising=False)
    prefect = PrefectJobLauncher()
    with pytest.raises(LauncherUnavailable, match=r"no Prefect API .*ASSETHUB_PREFECT_API_URL"):
        prefect.submit("train/local", {})
    flow_run = "0b3c7f8e-1d2a-4c5b-9e8f-7a6b5c4d3e2f"
    assert prefect.ui_url(flow_run) == ""
    monkeypatch.setenv("ASSETHUB_PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect.ui_url(flow_run) == f"http://127.0.0.1:4200/runs/flow-run/{flow_run}"
    assert PrefectJobLauncher("http://prefect.example.org/api/").ui_url(flow_run) == (
        f"http://prefect.example.org/runs/flow-run/{flow_run}")
    assert prefect.ui_url("../../admin") == ""
