"""Starting jobs from inside the server (what the web console's job form does), end to end:
``assethub.launcher.start_job`` on the real hub of the session's server, the launcher that
``build_hub`` wired (``deployments.launcher.PrefectJobLauncher``), the real Prefect server and
process worker, real lakeFS and MLflow, one real (one-epoch) training as the non-admin user
``deployer``. Fixtures (deploy_world, prefect_stack) are in conftest.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from assethub import errors
from assethub.client import Client
from assethub.launcher import FlowRunState, JobLauncher, LauncherUnavailable, LogLine, start_job
from tests._wait import wait_for
from tests.conftest import free_port
from tests.integration._jobs import JobWorld
from tests.integration._prefect_world import DATASET, on_prefect

pytestmark = pytest.mark.integration

FAST = {"epochs": 1, "seed": 1}


def _ended(launcher: JobLauncher, flow_run_id: str) -> FlowRunState | None:
    state = launcher.flow_run(flow_run_id)
    return state if state.terminal else None


def _training_logged(launcher: JobLauncher, flow_run_id: str) -> list[LogLine]:
    """The flow run's log once the training's last epoch is in it (Prefect ships logs in batches)."""
    lines = launcher.logs(flow_run_id)
    return lines if any(line.message.startswith("| epoch 1/1") for line in lines) else []


def _train_flow_runs(api: str) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with on_prefect(api), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name("train/local")
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))
    return {str(r.id) for r in runs}


def test_a_job_started_in_the_server_runs_as_its_user_through_the_worker(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    from prefect.client.orchestration import get_client

    from deployments.launcher import PrefectJobLauncher

    w, hub = deploy_world, hub_server.hub
    launcher = hub.job_launcher
    assert isinstance(launcher, PrefectJobLauncher), "build_hub wires the entry point's launcher"
    who = hub.authenticate(w.token)
    assert who.name == "deployer" and not who.is_admin
    job = start_job(hub, launcher, who, "train", {"model": w.model, "dataset": w.dataset, "repo": w.repo,
                                                  "params": FAST, "branch": "launched"})
    assert job.deployment == "train/local"
    registered = hub.get_run(who, job.run_id)
    assert (registered.kind, registered.created_by, registered.branch) == ("train", "deployer", "launched")
    # what the Prefect UI shows of it: the run's id, the clean parameters, no user and no token
    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        flow_run = c.read_flow_run(job.flow_run_id)
    shown = flow_run.parameters
    assert shown["run_id"] == job.run_id and shown["repo"] == w.repo and shown["branch"] == "launched"
    assert set(shown) <= {"model", "dataset", "repo", "revision", "subpath", "params", "branch", "command",
                          "message", "run_id"}
    assert w.token not in str(shown)

    ended = wait_for("the job's flow run to end", lambda: _ended(launcher, job.flow_run_id),
                     timeout=900, every=2)
    assert ended.state == "Completed", ended.message
    assert ended.id == job.flow_run_id and ended.name == flow_run.name and ended.started and ended.ended
    run = hub.get_run(who, job.run_id)
    assert run.state == "completed", run.error
    # the worker's service user claimed it, and acted for the user who started it
    assert (run.created_by, run.owner, run.trigger) == ("deployer", "deployer", "person")
    assert run.prefect_flow_run_id == job.flow_run_id and run.result_commit
    lineage = hub.lineage(who, f"{w.model}:launched").lineage
    assert lineage is not None and lineage.run_id == job.run_id and lineage.params["epochs"] == 1

    # the runs page: the training's output from the flow run's log, oldest first, in pages
    lines = wait_for("the training's output in the log", lambda: _training_logged(launcher, job.flow_run_id),
                     timeout=120, every=1)
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert {line.level for line in lines} >= {"INFO"}
    assert launcher.logs(job.flow_run_id, offset=1, limit=2) == lines[1:3]
    assert len(launcher.logs(job.flow_run_id, limit=3)) == 3
    # and its link to the Prefect UI, which serves that page to a browser
    ui = launcher.ui_url(job.flow_run_id)
    assert ui == f"{prefect_stack.removesuffix('/api')}/runs/flow-run/{job.flow_run_id}"
    page = httpx.get(ui, headers={"Accept": "text/html"}, follow_redirects=True, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower(), page.status_code
    with pytest.raises(errors.NotFoundError, match="flow run"):
        launcher.flow_run("7c1b0c8e-0000-4000-8000-000000000000")


@pytest.mark.attacks
def test_a_user_starts_no_job_on_what_they_may_not_change_and_nothing_reaches_prefect(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    w, hub = deploy_world, hub_server.hub
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("launch-onlooker")
    onlooker = hub.authenticate(admin.create_token("launch-onlooker", name="t").secret)
    w.hub.share("deployer/model/digits", role="view", user="launch-onlooker")
    w.hub.share("deployer/dataset/images", role="run", user="launch-onlooker")
    w.hub.create_folder("deployer/model/unshared")
    w.hub.create_asset("deployer/model/unshared/net")
    before = _train_flow_runs(prefect_stack)
    job = {"dataset": w.dataset, "repo": w.repo, "params": FAST}
    with pytest.raises(errors.ForbiddenError, match="edit"):  # view only: may not train into it
        start_job(hub, hub.job_launcher, onlooker, "train", {"model": w.model, **job})
    hidden = "deployer/model/unshared/net"
    with pytest.raises(errors.AssetNotFoundError):  # not shared: exactly as if it did not exist
        start_job(hub, hub.job_launcher, onlooker, "train", {"model": hidden, **job})
    with pytest.raises(errors.AssetNotFoundError):
        start_job(hub, hub.job_launcher, onlooker, "evaluate", {"model": f"{hidden}:main", **job})
    deployer = hub.authenticate(w.token)
    never = f"never-{uuid.uuid4().hex[:8]}"  # (test_deployments' Prefect-UI run uses "never")
    with pytest.raises(errors.RefNotFoundError, match="no-such-tag"):  # a typo fails before any work
        start_job(hub, hub.job_launcher, deployer, "train",
                  {**job, "model": w.model, "dataset": f"{DATASET}:no-such-tag", "branch": never})
    assert _train_flow_runs(prefect_stack) == before, "nothing was handed to Prefect"
    assert hub.list_runs(onlooker) == []
    assert not [r for r in hub.list_runs(deployer, model=w.model, limit=100) if r.branch == never]


def test_with_prefect_unreachable_starting_a_job_is_a_503_and_its_run_is_not_left_pending(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    from deployments.launcher import PrefectJobLauncher

    w, hub = deploy_world, hub_server.hub
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    away = PrefectJobLauncher(f"http://{address}/api")
    who = hub.authenticate(w.token)
    refused = f"cannot reach Prefect at http://{address}"
    with pytest.raises(errors.OrchestratorUnavailableError, match=refused) as raised:
        start_job(hub, away, who, "train", {"model": w.model, "dataset": w.dataset, "repo": w.repo,
                                            "branch": "unlaunched"})
    assert errors.to_wire(raised.value)[0] == 503
    [run] = [r for r in hub.list_runs(who, model=w.model, limit=100) if r.branch == "unlaunched"]
    assert run.state == "crashed" and run.finished_at is not None
    assert run.error.startswith("its job was not started: cannot reach Prefect"), run.error
    # nothing can take it over later: the worker's service user may not claim it
    with pytest.raises(errors.ForbiddenError, match="not waiting to be claimed"):
        hub.claim_run(hub.principal_of("prefect"), run.id)
    # what a runs page asks of it says the same
    with pytest.raises(LauncherUnavailable, match="cannot reach Prefect"):
        away.flow_run("7c1b0c8e-0000-4000-8000-000000000000")
    with pytest.raises(LauncherUnavailable, match="cannot reach Prefect"):
        away.logs("7c1b0c8e-0000-4000-8000-000000000000")
