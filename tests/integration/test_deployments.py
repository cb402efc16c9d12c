"""Prefect deployments, work pools and data-triggered retraining, end to end: a real Prefect
server and a real process worker (under this session's ASSETHUB_HOME), real lakeFS with its
actions calling the real Asset Hub server's hook, real MLflow, real (one-epoch) training.
The fixtures (deploy_world, prefect_stack, tracking) are in conftest.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub.client import Client
from tests._wait import wait_for
from tests.integration._jobs import JobWorld
from tests.integration._prefect_world import DATASET, MODEL, on_prefect, worker_env

pytestmark = pytest.mark.integration

FAST = {"epochs": 1, "seed": 1}


def test_pools_and_deployments_are_registered(prefect_stack: str) -> None:
    from prefect.client.orchestration import get_client

    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        names = {f"{c.read_flow(d.flow_id).name}/{d.name}": d for d in c.read_deployments()}
        for name in ("train/local", "continue-train/local", "evaluate/local", "merge/local",
                     "retrain/local", "reproduce/local", "publish-service/local", "train/gpu"):
            assert name in names, sorted(names)
        train = names["train/local"]
        assert train.work_pool_name == "local"
        schema = train.parameter_openapi_schema
        # the dataset and the code may come from the model's job settings or an algorithm
        assert set(schema["required"]) == {"model"} and "algorithm" in schema["properties"]
        assert "asset to write" in schema["properties"]["model"]["description"]
        assert schema["properties"]["revision"]["default"] == ""  # the repository's default branch
        retrain = names["retrain/local"].parameter_openapi_schema["properties"]
        assert retrain["margin"]["default"] == 0.0 and retrain["metric"]["default"] == "accuracy"
        assert names["train/gpu"].work_pool_name == "gpu"
        publish = names["publish-service/local"].parameter_openapi_schema
        assert set(publish["required"]) == {"model", "name"}
        assert publish["properties"]["replicas"]["type"] == "integer"
        assert "replicas" in publish["properties"]["replicas"]["description"]
        reproduce = names["reproduce/local"].parameter_openapi_schema
        assert reproduce["required"] == ["model"] and reproduce["properties"]["tolerance"]["type"] == "number"
        pools = {p.name: p for p in c.read_work_pools()}
    assert pools["local"].type == "process" and pools["gpu"].type == "kubernetes"
    template = pools["gpu"].base_job_template
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert pod["nodeSelector"] == "{{ node_selector }}" and pod["tolerations"] == "{{ tolerations }}"
    variables = template["variables"]["properties"]
    assert {"node_selector", "tolerations", "image", "gpu_count", "assethub_url",
            "mlflow_tracking_uri", "token_secret_name"} <= set(variables)
    assert variables["tolerations"]["default"][0]["key"] == "nvidia.com/gpu"
    token_env = next(e for e in container["env"] if e["name"] == "ASSETHUB_TOKEN")
    assert "value" not in token_env and "secretKeyRef" in token_env["valueFrom"]
    assert {"name": "ASSETHUB_DEVICE", "value": "cuda"} in container["env"]  # the jobs' DEVICE on this pool


@pytest.mark.attacks
def test_the_worker_holds_no_admin_token(prefect_stack: str, hub_server: Any) -> None:
    from infra import prefect

    pid = prefect.WORKER.pid()
    assert pid is not None
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environ = dict(e.split(b"=", 1) for e in raw if b"=" in e)
    token = environ[b"ASSETHUB_TOKEN"].decode()
    assert hub_server.admin_token.encode() not in b"\0".join(environ.values())
    me = Client(hub_server.url, token).whoami()
    assert me.name == "prefect" and not me.is_admin


@pytest.mark.attacks
def test_a_prefect_ui_run_acts_as_the_service_user_and_needs_a_grant(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    from prefect.deployments import run_deployment

    w = deploy_world
    w.hub.create_folder("deployer/model/ungranted")
    model = "deployer/model/ungranted/net"
    w.hub.create_asset(model)
    parameters = {"model": model, "dataset": w.dataset, "repo": w.repo, "params": FAST, "branch": "ui"}
    with on_prefect(prefect_stack):
        refused = run_deployment("train/local", parameters=parameters, timeout=900)
    assert refused.state is not None and refused.state.is_failed()
    grant = "assethub share deployer/model/ungranted --user prefect --role edit"
    said = refused.state.message or ""
    assert "service user 'prefect'" in said and grant in said, said
    assert not w.hub.list_runs(model, limit=5), "refused before any work: no run"
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.share("deployer/model/ungranted", role="edit", user="prefect")
    with on_prefect(prefect_stack):
        done = run_deployment("train/local", parameters=parameters, timeout=900)
    assert done.state is not None and done.state.is_completed(), done.state
    [run] = w.hub.list_runs(model, limit=5)
    assert run.created_by == "prefect" and run.state == "completed" and run.branch == "ui"


def test_run_deployment_trains_a_new_model_version(prefect_stack: str, deploy_world: JobWorld) -> None:
    from prefect.deployments import run_deployment

    w = deploy_world
    with on_prefect(prefect_stack):
        run = run_deployment("train/local", parameters={
            "model": w.model, "dataset": w.dataset, "repo": w.repo, "params": FAST, "branch": "deployed"},
            timeout=900)
    assert run.state is not None and run.state.is_completed(), run.state
    view = w.hub.lineage(f"{w.model}:deployed")
    assert view.lineage is not None and view.lineage.job == "train"
    assert view.lineage.prefect_flow_run_id == str(run.id)  # the run that the UI shows
    assert view.lineage.dataset_commit == w.dataset_commit and view.lineage.params["epochs"] == 1
    # a bad input fails the flow run with the job's own error, and commits nothing
    with on_prefect(prefect_stack):
        bad = run_deployment("train/local", parameters={
            "model": w.model, "dataset": w.dataset, "repo": w.repo, "revision": "no-such-revision",
            "branch": "never"}, timeout=900)
    assert bad.state is not None and bad.state.is_failed()
    assert "no-such-revision" in (bad.state.message or "")
    assert "never" not in {b.name for b in w.hub.list_branches(w.model)}
    # started by a person (here through the API, as the Prefect UI's "Run" does)
    started = [r for r in w.hub.list_runs(w.model, kind="train", limit=20) if r.branch == "deployed"]
    assert [r.trigger for r in started] == ["person"]


def test_publish_service_deployment_serves_a_model_that_answers(
        prefect_stack: str, deploy_world: JobWorld, tmp_path: Path) -> None:
    """The Prefect UI's "Run" on publish-service: a service that answers a prediction."""
    from prefect.deployments import run_deployment

    w = deploy_world
    if "deployed" not in {b.name for b in w.hub.list_branches(w.model)}:
        with on_prefect(prefect_stack):  # run alone: make a version to serve
            made = run_deployment("train/local", parameters={
                "model": w.model, "dataset": w.dataset, "repo": w.repo, "params": FAST,
                "branch": "deployed"}, timeout=900)
        assert made.state is not None and made.state.is_completed(), made.state
    with on_prefect(prefect_stack):
        run = run_deployment("publish-service/local", parameters={
            "model": f"{w.model}:deployed", "name": "from-prefect", "replicas": 1}, timeout=600)
    try:
        assert run.state is not None and run.state.is_completed(), run.state
        service = w.hub.services.get("from-prefect")
        assert service.model.startswith(w.model) and service.replicas == 1
        w.hub.download(f"{w.model}:deployed", tmp_path, prefix="model/")
        example = json.loads((tmp_path / "serving_input_example.json").read_text())
        answer = w.hub.services.predict("from-prefect", example)
        assert len(answer["predictions"]) == len(example["inputs"])
    finally:
        w.hub.services.delete("from-prefect")


def _retrains(hub: Client, dataset_commit: str) -> list[Any]:
    return [r for r in hub.list_runs(MODEL, kind="retrain", limit=100)
            if r.dataset_commit == dataset_commit]


def _finished(hub: Client, dataset_commit: str) -> Any:
    runs = _retrains(hub, dataset_commit)
    return runs if runs and all(r.state in ("completed", "failed") for r in runs) else None


def _event_runs(api: str, since: datetime, follow_id: int) -> list[Any]:
    """The flow runs of the retrain deployment for a follow that an automation started since ``since``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with on_prefect(api), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name("retrain/local")
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))
    return [r for r in runs if r.parameters.get("follow_id") == follow_id and r.created is not None
            and r.created >= since and (r.idempotency_key or "").startswith("automation ")]


def _settled(runs: list[Any]) -> list[Any] | None:
    return runs if runs and all(r.state is not None and r.state.is_final() for r in runs) else None


@pytest.mark.attacks
def test_a_commit_to_a_followed_dataset_retrains_and_merges_only_if_better(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    w = deploy_world
    hub = w.hub
    follow = hub.follow(MODEL, DATASET, repo=w.repo, params=FAST, metric="accuracy", margin=0.0,
                        schedule="0 3 * * *")
    assert follow.triggers["lakefs_action"] == "installed", follow.triggers
    assert follow.triggers.get("automation") and follow.triggers.get("schedule") == "0 3 * * *"
    assert [f.id for f in hub.list_follows(model=MODEL)] == [follow.id]
    # the schedule: on the retrain deployment, with this follow's parameters
    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        schedules = c.read_deployment_schedules(c.read_deployment_by_name("retrain/local").id)
    ours = [s for s in schedules if s.slug == f"assethub-follow-{follow.id}"]
    assert len(ours) == 1 and ours[0].schedule.cron == "0 3 * * *"  # type: ignore[union-attr]
    assert ours[0].parameters == {"follow_id": follow.id}  # no user, no settings, no secret
    # the action file is configuration: not in the dataset's files, nor in a download
    assert not [o for o in hub.list_objects(f"{DATASET}:main") if o.path.startswith("_lakefs")]
    hub.download(f"{DATASET}:main", tmp_path / "data")
    assert not (tmp_path / "data" / "_lakefs_actions").exists()

    # new data on main: lakeFS calls the hook, the automation runs the retrain deployment
    extra = tmp_path / "extra"
    extra.mkdir()
    src = next((tmp_path / "data" / "train").rglob("*.png"))
    (extra / src.parent.name).mkdir()
    (extra / src.parent.name / "extra-0.png").write_bytes(src.read_bytes())
    hub.upload(f"{DATASET}:main", extra, path="train", message="one more image")
    commit = hub.resolve(f"{DATASET}:main")
    runs = wait_for("the retrain to finish", lambda: _finished(hub, commit), timeout=900, every=2)
    assert len(runs) == 1
    run = runs[0]
    assert run.state == "completed", run.error
    assert run.trigger == "event", "started by the automation that the new data's event fired"
    # registered by the server as the follow's owner, and so are its steps (each its own token)
    steps = [r for r in hub.list_runs(MODEL, limit=50) if r.created_at >= run.created_at]
    assert run.created_by == "deployer" and {r.created_by for r in steps} == {"deployer"}
    branch = f"retrain-{commit[:12]}"
    assert run.branch == branch and branch in {b.name for b in hub.list_branches(MODEL)}
    trained = hub.lineage(f"{MODEL}:{branch}")
    assert trained.lineage is not None and trained.lineage.dataset_commit == commit
    assert trained.evaluations, "the new version was evaluated"
    main = hub.lineage(f"{MODEL}:main")
    if run.error:  # kept on its branch: the run says why
        assert run.error.startswith("kept on its branch") and "accuracy" in run.error
    else:  # main had no model: the evaluated version goes in
        assert main.model_commit == trained.model_commit
    merges = [r for r in hub.list_runs(MODEL, kind="merge", limit=20) if r.branch == branch]
    assert len(merges) == 1

    # more data: main now has a model, so the retrain continues from it, evaluates main's model
    # on the same data, and merges only if better. lakeFS notifying three more times (retries)
    # while it runs starts no second retrain.
    from assethub.triggers import HOOK_HEADER

    head_before = hub.resolve(f"{MODEL}:main")
    since = datetime.now(UTC)
    (extra / src.parent.name / "extra-1.png").write_bytes(src.read_bytes())
    hub.upload(f"{DATASET}:main", extra, path="train", message="two more images")
    second = hub.resolve(f"{DATASET}:main")
    main_before = hub.lineage(f"{MODEL}:main").model_commit
    repo_id = hub_server.hub.storage.repository(DATASET)  # what lakeFS names in its payload
    body = {"event_type": "post-commit", "repository_id": repo_id, "branch_id": "main", "commit_id": second}
    event_ids = set()
    for _ in range(3):
        r = httpx.post(f"{hub_server.url}/api/v1/hooks/lakefs",
                       headers={HOOK_HEADER: hub_server.hub.lakefs_hook.secret}, json=body)
        assert r.status_code == 200 and r.json()["follows"] == 1, r.text
        event_ids.add(r.json()["event_id"])
    assert len(event_ids) == 1, "one commit is one event, however often lakeFS calls"
    wait_for("the second retrain to finish", lambda: _finished(hub, second), timeout=900, every=2)
    # every flow run the events started has settled: Prefect acted on the one event id once
    started = wait_for("the retrain flow runs started by events to settle",
                       lambda: _settled(_event_runs(prefect_stack, since, follow.id)), timeout=300, every=2)
    assert len(started) == 1, [(r.name, r.state_name) for r in started]
    runs = _retrains(hub, second)
    assert len(runs) == 1 and runs[0].state == "completed", [(r.state, r.error) for r in runs]
    again = hub.lineage(f"{MODEL}:retrain-{second[:12]}")
    assert again.lineage is not None and again.lineage.job == "continue_train"
    assert again.lineage.base_model == f"{MODEL}:{head_before}"  # continued from main's weights
    scored = {e.dataset_commit for e in hub.lineage(f"{MODEL}:{main_before}").evaluations}
    assert second in scored, "main's model was evaluated on the new data too"
    after = hub.lineage(f"{MODEL}:main").model_commit
    if runs[0].error:
        assert runs[0].error.startswith("kept on its branch") and after == main_before
    else:
        assert runs[0].result_commit and after == again.model_commit

    # the hook refuses a caller without the secret, and says so
    r = httpx.post(f"{hub_server.url}/api/v1/hooks/lakefs", headers={HOOK_HEADER: "guess"}, json=body)
    assert r.status_code == 401 and "secret" in r.json()["error"]["message"]


def test_a_follow_schedule_starts_a_retrain_that_runs_to_completion(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any, tmp_path: Path) -> None:
    """Prefect's own scheduler service (not a test calling the deployment) starts the retrain."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from tests.integration.test_cli import Cli

    w = deploy_world
    model = "deployer/model/digits/scheduled"
    w.hub.create_asset(model)
    follow = w.hub.follow(model, DATASET, repo=w.repo, params=FAST, schedule="* * * * *")
    assert follow.triggers.get("schedule") == "* * * * *", follow.triggers
    try:
        done = wait_for("a scheduled retrain to finish", lambda: [
            r for r in w.hub.list_runs(model, kind="retrain", limit=10)
            if r.state in ("completed", "failed")], timeout=600, every=2)
        run = done[0]
        assert run.state == "completed", run.error
        assert run.trigger == "schedule" and run.created_by == "deployer"
        with on_prefect(prefect_stack), get_client(sync_client=True) as c:
            flow_run = c.read_flow_run(run.prefect_flow_run_id)
        assert flow_run.auto_scheduled, "created by Prefect's scheduler service"
        main = w.hub.lineage(f"{model}:main")
        assert main.lineage is not None and main.lineage.dataset_commit == run.dataset_commit
        # the sub-flows of a scheduled retrain say so too
        trained = [r for r in w.hub.list_runs(model, limit=20) if r.kind == "train"]
        assert trained and {r.trigger for r in trained} == {"schedule"}
        shown = Cli(hub_server.url, w.token, tmp_path / "cli")("runs", model, "--kind", "retrain")
        assert "schedule" in shown and run.id[:12] in shown
    finally:
        w.hub.unfollow(follow.id)
    # unfollowing removes the schedule and the runs it had planned
    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name("retrain/local")
        assert not [s for s in c.read_deployment_schedules(deployment.id)
                    if s.slug == f"assethub-follow-{follow.id}"]
        planned = c.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))
    assert not [r for r in planned
                if r.state_name == "Scheduled" and r.parameters.get("follow_id") == follow.id]


def test_bad_follows_are_refused(prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    from assethub import errors

    hub = deploy_world.hub
    with pytest.raises(errors.InvalidReferenceError, match="needs the training code"):
        hub.follow("deployer/model/digits/cnn", DATASET, repo="")
    with pytest.raises(errors.InvalidReferenceError, match="cron"):
        hub.follow("deployer/model/digits/cnn", DATASET, repo=deploy_world.repo, schedule="daily")
    with pytest.raises(errors.InvalidReferenceError, match="not a dataset"):
        hub.follow("deployer/model/digits/cnn", "deployer/model/digits/cnn", repo=deploy_world.repo)
    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("onlooker")
    onlooker = Client(hub_server.url, admin.create_token("onlooker", name="t").secret)
    hub.share("deployer/model/digits", role="view", user="onlooker")
    hub.share("deployer/dataset/images", role="run", user="onlooker")
    with pytest.raises(errors.ForbiddenError, match="needs 'edit'"):
        onlooker.follow("deployer/model/digits/cnn", DATASET, repo=deploy_world.repo)
    assert not [f for f in hub.list_follows() if f.model == "deployer/model/digits/cnn"]


def test_the_prefect_ui_shows_deployments_and_finished_runs(prefect_stack: str, deploy_world: JobWorld,
                                                            request: pytest.FixtureRequest) -> None:
    """Headless Chromium (Debian's) on the Prefect UI; a screenshot lands in test-artifacts/."""
    from infra import prefect

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does)")
    from playwright.sync_api import sync_playwright
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        done = [r for r in c.read_flow_runs() if r.state is not None and r.state.is_completed()]
        if not done:  # run alone: make one
            done = [run_deployment("merge/local", parameters={"model": deploy_world.model,
                                                              "source": "main"}, timeout=300)]
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    ui = prefect.SERVER.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{ui}/deployments", wait_until="networkidle")
            for name in ("retrain", "train", "continue-train"):
                page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
            page.get_by_text("local", exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts / "prefect-deployments.png"), full_page=True)
            page.goto(f"{ui}/runs", wait_until="networkidle")
            page.get_by_text(done[0].name).first.wait_for(timeout=30_000)
            page.get_by_text("Completed").first.wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts / "prefect-runs.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts / "prefect-runs.png").stat().st_size > 10_000


def test_the_cli_deploys_and_trains_through_a_deployment(prefect_stack: str, deploy_world: JobWorld,
                                                         hub_server: Any, tmp_path: Path) -> None:
    from infra import prefect
    from tests.integration.test_cli import Cli

    w = deploy_world
    cli = Cli(hub_server.url, w.token, tmp_path / "cli")
    cli.env["PREFECT_API_URL"] = prefect_stack
    cli.env["PREFECT_HOME"] = prefect.prefect_home()  # as `assethub up` sets it: the worker's results
    shown = cli("deploy")
    assert "train/local" in shown and "retrain/local" in shown and "train/gpu" in shown
    result = cli.json("train", w.model, "--dataset", w.dataset, "--repo", w.repo, "--param", "epochs=1",
                      "--branch", "cli-deployed", "--deployment")
    assert result["branch"] == "cli-deployed" and result["metrics"]["accuracy"] > 0
    lin = w.hub.lineage(f"{w.model}:cli-deployed").lineage
    assert lin is not None and lin.params["epochs"] == 1 and lin.prefect_flow_run_id
    # no Prefect server: a clear error, not a hang
    cli.env["PREFECT_API_URL"] = None
    assert "Prefect" in cli.fails(2, "train", w.model, "--dataset", w.dataset, "--repo", w.repo,
                                  "--deployment")


def _processes_of(flow_run_id: str) -> set[int]:
    """The processes of a flow run: the worker hands PREFECT__FLOW_RUN_ID to the one it starts,
    and that passes it on to the training command."""
    mark = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has finished: it only waits to be reaped)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            alive.add(pid)
    return alive


def _proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _command_running(flow_run_id: str) -> set[int]:
    """The flow run's processes once its training command runs (else none)."""
    job = _processes_of(flow_run_id)
    return job if any(b"supervise.py" in _proc(p, "cmdline") for p in _alive(job)) else set()


def _flow_process(job: set[int]) -> list[int]:
    """The flow process: the one of the job that the worker started (its parent is not the job's)."""
    return [p for p in _alive(job) if int(_proc(p, "stat").rsplit(b")", 1)[1].split()[1]) not in job]


@pytest.mark.attacks
def test_a_worker_killed_mid_run_leaves_no_commit_and_the_run_can_be_rerun(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any, tracking: str) -> None:
    from mlflow.tracking import MlflowClient
    from prefect.deployments import run_deployment

    from infra import prefect

    w = deploy_world
    branches = {b.name for b in w.hub.list_branches(w.model)}
    parameters = {"model": w.model, "dataset": w.dataset, "repo": w.repo, "branch": "survivor",
                  "params": {"epochs": 3, "seed": 2}}
    with on_prefect(prefect_stack):
        flow_run = run_deployment("train/local", parameters=parameters, timeout=0)
    running = wait_for("the job to start its MLflow run", lambda: [
        r for r in w.hub.list_runs(w.model, kind="train", limit=5)
        if r.branch == "survivor" and r.state == "running" and r.mlflow_run_id], timeout=300, every=0.5)
    ml = MlflowClient(tracking)
    # in the middle of training: the code has logged its first epoch (of three)
    wait_for("the first epoch's metrics", lambda: ml.get_run(running[0].mlflow_run_id).data.metrics,
             timeout=300, every=0.2)
    job = _processes_of(str(flow_run.id))
    assert job, "the flow run's processes are found"
    prefect.WORKER.stop()  # the worker and the flow run it started
    # nothing of the job runs any more (the training command too), so nothing can commit now
    wait_for("the flow run's processes to be gone", lambda: not _alive(job), timeout=300, every=0.5)
    assert {b.name for b in w.hub.list_branches(w.model)} == branches, "no partial commit or branch"
    assert w.hub.get_run(running[0].id).state == "running", "the job died with its worker"
    assert ml.get_run(running[0].mlflow_run_id).info.status == "RUNNING", "nobody closed its MLflow run"
    prefect.start_worker(worker_env(hub_server, tracking))
    with on_prefect(prefect_stack):
        again = run_deployment("train/local", parameters=parameters, timeout=900)
    assert again.state is not None and again.state.is_completed(), again.state
    view = w.hub.lineage(f"{w.model}:survivor")
    assert view.lineage is not None and view.lineage.run_id != running[0].id


def _both_crashed(w: Any, model: str) -> list[Any]:
    """The model's crashed runs once there are two (a retrain and its train run), else []."""
    runs = [r for r in w.hub.list_runs(model, limit=10) if r.state == "crashed"]
    return runs if len(runs) == 2 else []

@pytest.mark.attacks
def test_a_retrain_whose_flow_process_is_killed_is_recorded_crashed_and_retried(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any) -> None:
    """SIGKILL of the flow process mid-training: the training command ends with it, the server
    marks the retrain and its train sub-run ``crashed`` with the reason, and drops the retrain's
    claim, so the next trigger retrains that dataset commit."""
    import signal
    import threading

    from prefect.deployments import run_deployment

    from assethub.server import record_crashes_every

    w = deploy_world
    model = "deployer/model/digits/crashes"
    w.hub.create_asset(model)
    branches = {b.name for b in w.hub.list_branches(model)}
    parameters = {"model": model, "dataset": DATASET, "repo": w.repo, "params": {"epochs": 3, "seed": 2}}
    with on_prefect(prefect_stack):
        flow_run = run_deployment("retrain/local", parameters=parameters, timeout=0)

    def command_running() -> set[int]:
        return _command_running(str(flow_run.id))

    job = wait_for("the training command to run", command_running, timeout=300, every=0.5)
    flow_process = _flow_process(job)
    assert len(flow_process) == 1, flow_process
    os.kill(flow_process[0], signal.SIGKILL)
    wait_for("the job's processes to be gone", lambda: not _alive(job), timeout=60, every=0.2)
    stop = threading.Event()
    checker = threading.Thread(target=record_crashes_every, args=(hub_server.hub, 0.5, stop), daemon=True)
    checker.start()
    try:
        crashed = wait_for("the retrain and its train run to be recorded crashed",
                           lambda: _both_crashed(w, model), timeout=120, every=0.5)
    finally:
        stop.set()
        checker.join()
    assert {r.kind for r in crashed} == {"retrain", "train"}
    assert all("Crashed" in r.error and r.finished_at for r in crashed), [r.error for r in crashed]
    assert {b.name for b in w.hub.list_branches(model)} == branches, "the claim is released"
    with on_prefect(prefect_stack):
        again = run_deployment("retrain/local", parameters=parameters, timeout=900)
    assert again.state is not None and again.state.is_completed(), again.state
    assert [r.state for r in w.hub.list_runs(model, kind="retrain", limit=10)] == ["completed", "crashed"]


@pytest.mark.attacks
def test_a_retrain_whose_worker_dies_is_recorded_crashed_as_worker_lost(
        prefect_stack: str, deploy_world: JobWorld, hub_server: Any, tracking: str) -> None:
    """SIGKILL of the worker and its flow process: Prefect keeps the flow run Running, nobody
    reports its end. Its heartbeats stop; the server's crash check sets it Crashed in Prefect,
    records the retrain and its train run ``crashed`` ("worker lost") and drops the claim. The
    training command went with its flow process."""
    import signal
    import threading

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from assethub.server import record_crashes_every
    from deployments.triggers import HEARTBEAT
    from infra import prefect

    w = deploy_world
    model = "deployer/model/digits/lost-worker"
    w.hub.create_asset(model)
    branches = {b.name for b in w.hub.list_branches(model)}
    # long enough a training that the worker dies in the middle of it
    parameters = {"model": model, "dataset": DATASET, "repo": w.repo, "params": {"epochs": 1000, "seed": 2}}
    with on_prefect(prefect_stack):
        flow_run = run_deployment("retrain/local", parameters=parameters, timeout=0)
    job = wait_for("the training command to run", lambda: _command_running(str(flow_run.id)),
                   timeout=300, every=0.5)

    def heartbeats() -> int:
        with on_prefect(prefect_stack), get_client(sync_client=True) as c:
            page = c.read_events(filter=EventFilter(
                event=EventNameFilter(name=[HEARTBEAT]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run.id}"])), limit=5)
        return len(page.events)

    # two heartbeats: the check knows the interval they come at (PREFECT_FLOWS_HEARTBEAT_FREQUENCY)
    wait_for("two heartbeats of the flow run", lambda: heartbeats() >= 2, timeout=300, every=1)
    worker = prefect.WORKER.pid()
    assert worker is not None
    flow_process = _flow_process(job)
    assert len(flow_process) == 1, flow_process
    stop = threading.Event()
    checker = threading.Thread(target=record_crashes_every, args=(hub_server.hub, 0.5, stop),
                               kwargs={"lost_after": 30.0}, daemon=True)
    try:
        os.kill(worker, signal.SIGKILL)
        os.kill(flow_process[0], signal.SIGKILL)
        wait_for("the job's processes to be gone (no orphan training process)", lambda: not _alive(job),
                 timeout=60, every=0.2)
        with on_prefect(prefect_stack), get_client(sync_client=True) as c:
            assert c.read_flow_run(flow_run.id).state_name == "Running", "Prefect still thinks it runs"
        assert [r.state for r in w.hub.list_runs(model, kind="retrain")] == ["running"]
        checker.start()

        crashed = wait_for("the retrain and its train run to be recorded crashed",
                           lambda: _both_crashed(w, model), timeout=300, every=0.5)
    finally:
        stop.set()
        if checker.is_alive():
            checker.join()
        prefect.WORKER.stop()  # reaps the killed worker
        # as the fixture started it (the service user's token): the next modules share this worker
        prefect.start_worker(worker_env(hub_server, tracking))
    assert {r.kind for r in crashed} == {"retrain", "train"}
    assert all("worker lost" in r.error and r.finished_at for r in crashed), [r.error for r in crashed]
    with on_prefect(prefect_stack), get_client(sync_client=True) as c:
        state = c.read_flow_run(flow_run.id).state
    assert state is not None and state.name == "Crashed" and "worker lost" in (state.message or "")
    assert {b.name for b in w.hub.list_branches(model)} == branches, "the claim is released"
