"""Model services end to end: the digits example trained through ``flows.train``, published through
``flows.publish_service`` on the real server, answering real digit images with the accuracy its
evaluation recorded; scaled, stopped and started on one address; a killed replica coming back;
bad inputs and refusals; services surviving a server restart; the CLI; Kubernetes manifests.

Replicas are real processes running MLflow's scoring server; on this machine each takes
10-40 s to load (MLflow and torch imports), so the tests share one service where they can.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from assethub import errors
from assethub.client import Client
from assethub.serving import ServiceView
from tests._wait import wait_for
from tests.integration._serving_world import World, acting_as, delete_services

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module", autouse=True)
def _as_publisher(world: World) -> Iterator[None]:
    """The module's flows act as the publisher; its services go when it ends."""
    with acting_as(world.url, world.token):
        yield
    delete_services(world.admin)


@pytest.fixture(scope="module")
def published(world: World) -> dict[str, Any]:
    """The trained model, published by the Prefect flow (resolve, fetch, start, smoke-test)."""
    from flows.publish_service import publish_service

    return publish_service(model=world.model, name="digits", replicas=1)


def _predict_all(hub: Client, name: str, x: np.ndarray, batch: int = 60) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        answer = hub.services.predict(name, {"inputs": x[i:i + batch].tolist()})
        out.append(np.asarray(answer["predictions"], dtype=np.float32))
    return np.concatenate(out)


def _status_of(hub_server: Any, name: str) -> dict[str, Any]:
    """The supervisor's status file (replica pids), found through the service's spec."""
    root = hub_server.hub.tmp_dir.parent / "services"
    for spec in root.glob("*/spec.json"):
        if json.loads(spec.read_text())["name"] == name:
            return dict(json.loads((spec.parent / "status.json").read_text()))
    raise AssertionError(f"no local files for service {name}")


def test_published_digits_model_answers_with_the_recorded_accuracy(world: World,
                                                                    published: dict[str, Any]) -> None:
    assert published["smoke_test"]["ok"] and published["smoke_test"]["checked"] == "prediction"
    view = world.hub.services.get("digits")
    assert view.state == "running" and view.ready == 1 and view.target == "local"
    # which model version and which training run it serves
    assert view.model == world.model and view.model_commit == world.trained["commit"]
    assert view.training_run == world.trained["mlflow_run_id"] and view.run_id == world.trained["run_id"]
    assert view.address == published["address"] and view.address.startswith("http://127.0.0.1:")
    # real digit images from the dataset's test split, through the server's predict route
    probabilities = _predict_all(world.hub, "digits", world.x_test)
    assert probabilities.shape == (len(world.y_test), 10)
    accuracy = float((probabilities.argmax(1) == world.y_test).mean())
    recorded = world.hub.lineage(world.model).evaluations[0].metrics["accuracy"]
    assert recorded == world.trained["metrics"]["accuracy"]
    assert round(accuracy, 6) == pytest.approx(recorded, abs=1e-9)  # the evaluation keeps 6 digits
    # and straight at the service's address (MLflow's own protocol)
    direct = httpx.post(f"{view.address}/invocations", json={"inputs": world.x_test[:5].tolist()}, timeout=60)
    assert direct.status_code == 200
    assert np.allclose(direct.json()["predictions"], probabilities[:5], atol=1e-6)


def test_bad_inputs_get_a_4xx_with_the_reason_and_the_service_keeps_serving(
        world: World, published: dict[str, Any]) -> None:
    hub = world.hub
    with pytest.raises(errors.PredictionError, match=r"[Ss]hape") as wrong_shape:
        hub.services.predict("digits", {"inputs": np.zeros((2, 1, 8, 8)).tolist()})
    assert "(-1, 1, 32, 32)" in wrong_shape.value.reason
    with pytest.raises(errors.PredictionError, match="JSON"):
        hub.services.predict("digits", content=b"{not json", content_type="application/json")
    with pytest.raises(errors.PredictionError):
        hub.services.predict("digits", {"inputs": [["a"] * 32] * 32})
    with pytest.raises(errors.PredictionError, match=r"content type|Content-Type|supports"):
        hub.services.predict("digits", content=b"\x00\x01", content_type="application/octet-stream")
    # the same through HTTP, at the server and at the service itself
    r = httpx.post(f"{world.url}/api/v1/services/digits/predict", content=b"[1, 2",
                   headers={"Authorization": f"Bearer {world.token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "PredictionError"
    address = hub.services.get("digits").address
    assert httpx.post(f"{address}/invocations", content=b"{}", timeout=30).status_code == 415
    assert httpx.post(f"{address}/invocations", json={"inputs": [[1.0]]}, timeout=30).status_code == 400
    # still serving, on the same replica (nothing restarted)
    answer = hub.services.predict("digits", {"inputs": world.x_test[:3].tolist()})
    assert len(answer["predictions"]) == 3
    assert hub.services.get("digits").restarts == 0


def test_scale_keeps_the_address_and_requests_succeed_throughout(world: World, published: dict[str, Any],
                                                                 hub_server: Any) -> None:
    hub = world.hub
    address = hub.services.get("digits").address
    sample = {"inputs": world.x_test[:2].tolist()}
    outcomes: list[int] = []
    stop = threading.Event()

    def load() -> None:  # a client hammering the address while it scales up
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                outcomes.append(http.post(f"{address}/invocations", json=sample).status_code)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        up = hub.services.scale("digits", 3)
    finally:
        stop.set()
        thread.join()
    assert up.ready == 3 and up.replicas == 3 and up.state == "running" and up.address == address
    assert len(outcomes) > 5 and set(outcomes) == {200}, outcomes
    assert len({r["pid"] for r in _status_of(hub_server, "digits")["replicas"]}) == 3

    down = hub.services.scale("digits", 0)
    assert down.state == "stopped" and down.ready == 0 and down.address == address
    stopped = httpx.post(f"{address}/invocations", json=sample, timeout=10)  # the port is still ours
    assert stopped.status_code == 503 and "stopped" in stopped.json()["message"]
    with pytest.raises(errors.ServiceUnavailableError, match="stopped"):
        hub.services.predict("digits", sample)

    again = hub.services.scale("digits", 2)
    assert again.state == "running" and again.ready == 2 and again.address == address
    assert httpx.post(f"{address}/invocations", json=sample, timeout=60).status_code == 200
    assert len(hub.services.predict("digits", sample)["predictions"]) == 2


def test_a_killed_replica_is_restarted(world: World, published: dict[str, Any], hub_server: Any) -> None:
    hub = world.hub
    if hub.services.get("digits").ready != 2:
        hub.services.scale("digits", 2)

    def settled() -> dict[str, Any] | None:
        # the supervisor has applied the last scale: two replicas, both serving, none stopping.
        # A victim picked before that may be the one a pending scale-down stops, and a stopped
        # replica's exit is no restart.
        status = _status_of(hub_server, "digits")
        replicas = status["replicas"]
        return status if (status["desired"] == 2 and len(replicas) == 2
                          and all(r["ready"] and not r.get("stopping") for r in replicas)) else None

    victim = wait_for("two serving replicas", settled, timeout=120, every=0.2)["replicas"][0]["pid"]
    before = hub.services.get("digits")
    os.kill(victim, 9)

    def replaced() -> ServiceView | None:
        # the supervisor's file first, then the server's view: a view read before the file could
        # predate the kill (both replicas ready, no restart yet) while the file already says gone
        pids = {r["pid"] for r in _status_of(hub_server, "digits")["replicas"]}
        if victim in pids:
            return None
        view = hub.services.get("digits")
        return view if view.ready == 2 else None

    view = wait_for("another replica ready in place of the killed one", replaced, timeout=180, every=0.5)
    assert view.restarts == before.restarts + 1 and view.address == before.address, (
        before, view, hub.services.logs("digits", lines=40))
    assert "exited" in hub.services.logs("digits", lines=50)
    assert len(hub.services.predict("digits", {"inputs": world.x_test[:1].tolist()})["predictions"]) == 1


def test_a_killed_supervisor_is_started_again_on_the_same_address(world: World, published: dict[str, Any],
                                                                 hub_server: Any) -> None:
    """The server's health loop finds the service's supervisor gone (killed outright: its
    sandboxed replicas die with it) and starts a new one on the recorded port, as an event."""
    hub = world.hub
    before = hub.services.get("digits")
    supervisor = _status_of(hub_server, "digits")["pid"]
    os.kill(supervisor, 9)

    def serving_again() -> ServiceView | None:
        try:  # a new supervisor starts from an empty status file
            status = _status_of(hub_server, "digits")
        except FileNotFoundError:
            return None
        if status.get("pid") in (None, supervisor) or status.get("ready") != before.replicas:
            return None
        view = hub.services.get("digits")
        # the state is the health loop's record: "running" once it has seen the new one serve
        return view if view.state == "running" and any(
            e.kind == "supervisor_restart" for e in view.events) else None

    view = wait_for("a new supervisor serving the service", serving_again, timeout=180, every=0.5)
    assert view.address == before.address and view.ready == before.replicas
    assert "the supervisor was not running; started a new one" in hub.services.logs("digits", lines=200)
    assert len(hub.services.predict("digits", {"inputs": world.x_test[:2].tolist()})["predictions"]) == 2


def test_refused_before_anything_starts(world: World, published: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    hub = world.hub
    before = {s.name for s in world.admin.services.list()}
    was = hub.services.get("digits").replicas
    with monkeypatch.context() as m:  # the server's sandbox cannot run: nothing is started
        m.setenv("ASSETHUB_SANDBOX_BWRAP", "/nonexistent/bwrap")
        with pytest.raises(errors.JobError, match=r"`bwrap` is not installed.*ASSETHUB_SANDBOX=off"):
            hub.services.create(world.model, name="unboxed")
        with pytest.raises(errors.JobError, match=r"`bwrap` is not installed"):
            hub.services.scale("digits", was + 1)
    assert hub.services.get("digits").replicas == was
    with pytest.raises(errors.NotServableError, match="no MLflow model"):
        hub.services.create(world.empty_model, name="empty")
    with pytest.raises(errors.ForbiddenError, match="'run'"):
        world.viewer.services.create(world.model, name="viewers")
    with pytest.raises(errors.NotFoundError):
        world.stranger.services.create(world.model, name="strangers")
    with pytest.raises(errors.InvalidReferenceError, match="service name"):
        hub.services.create(world.model, name="Bad_Name")
    with pytest.raises(errors.AlreadyExistsError):
        hub.services.create(world.model, name="digits")
    with pytest.raises(errors.InvalidReferenceError, match="dataset"):
        hub.services.create(world.model.split("/model/")[0] + "/dataset/images/digits:v1", name="data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(errors.PortInUseError, match=f"port {port} .*already in use"):
            hub.services.create(world.model, name="clash", port=port)
    assert {s.name for s in world.admin.services.list()} == before
    # a viewer sees the service but may not use or change it; a stranger does not see it
    assert world.viewer.services.get("digits").model_commit == world.trained["commit"]
    for call in (lambda c: c.services.stop("digits"), lambda c: c.services.predict("digits", {"inputs": []}),
                 lambda c: c.services.delete("digits")):
        with pytest.raises(errors.ForbiddenError):
            call(world.viewer)
        with pytest.raises(errors.NotFoundError):
            call(world.stranger)
    assert "digits" not in {s.name for s in world.stranger.services.list()}


def test_kubernetes_target_renders_valid_manifests_pinned_to_the_commit(world: World, tmp_path: Path) -> None:
    import kubernetes_validate
    import yaml
    from kubernetes_validate.utils import latest_version

    from assethub.cli import app

    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "ASSETHUB_HOME": str(tmp_path),
           "ASSETHUB_CONFIG": str(tmp_path / "config.json")}
    out = tmp_path / "digits.yaml"
    result = CliRunner().invoke(app, ["serve", world.model, "--name", "digits-k8s", "--replicas", "3",
                                      "--target", "kubernetes", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(out.read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    for d in docs:
        kubernetes_validate.validate(d, latest_version(), strict=True)
    deployment = docs[0]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    repo = world.hub.get_asset(world.model.split(":")[0]).repository
    assert f"s3://{repo}/{world.trained['commit']}/model" in container["command"]
    secret_refs = [e for e in container["env"] if "valueFrom" in e]
    assert {e["name"] for e in secret_refs} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all("value" not in e for e in secret_refs)
    view = world.hub.services.get("digits-k8s")
    assert view.target == "kubernetes" and view.model_commit == world.trained["commit"]
    assert view.address == "http://digits-k8s.default.svc.cluster.local"
    world.hub.services.delete("digits-k8s")


def test_cli_lists_shows_predicts_and_reports_errors(world: World, published: dict[str, Any],
                                                     tmp_path: Path) -> None:
    from assethub.cli import app

    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "ASSETHUB_HOME": str(tmp_path),
           "ASSETHUB_CONFIG": str(tmp_path / "config.json"), "COLUMNS": "250"}

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    listing = run("services", "ls")
    assert listing.exit_code == 0 and "digits" in listing.stdout and "running" in listing.stdout
    shown = json.loads(run("services", "show", "digits", "--json").stdout)
    assert shown["training_run"] == world.trained["mlflow_run_id"]
    batch = tmp_path / "batch.npy"
    np.save(batch, world.x_test[:4])
    answer = run("predict", "digits", "--input", str(batch))
    assert answer.exit_code == 0, answer.output
    assert np.asarray(json.loads(answer.stdout)["predictions"]).shape == (4, 10)
    as_json = tmp_path / "one.json"
    as_json.write_text(json.dumps({"inputs": world.x_test[:1].tolist()}))
    assert run("predict", "digits", "-i", str(as_json)).exit_code == 0
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"inputs": [[0.0, 1.0]]}))
    bad = run("predict", "digits", "-i", str(wrong))
    assert bad.exit_code == 2 and bad.stderr.startswith("error: service digits refused the input")
    assert run("predict", "digits", "-i", str(tmp_path / "missing.json")).exit_code == 3
    assert run("services", "show", "nope").exit_code == 3
    assert "supervisor" in run("services", "logs", "digits", "-n", "20").stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        clash = run("serve", world.model, "--name", "clash", "--port", str(taken.getsockname()[1]))
    assert clash.exit_code == 6 and "already in use" in clash.stderr


def _wait_state(hub: Client, name: str, ready: int, timeout: float = 180) -> ServiceView:
    def running() -> ServiceView | None:
        view = hub.services.get(name)
        return view if view.ready == ready and view.state == "running" else None

    return wait_for(f"service {name} running with {ready} ready replica(s)", running, timeout, every=0.5)


def _refuses(address: str) -> bool:
    """Whether nothing listens on the service's address any more (a connection taken and reset
    by a dying process is not that yet)."""
    try:
        httpx.get(address, timeout=5)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


def test_services_survive_a_server_restart(world: World, lakefs_server: Any, tmp_path: Path) -> None:
    """A second server of its own: stopped and started again, it re-attaches to its running service;
    started again after the service's processes died too, it restarts it on the same address."""
    from tests.conftest import start_server

    home = tmp_path / "hub"
    first = start_server(lakefs_server, home)
    admin = Client(first.url, first.admin_token)
    admin.create_folder("admin/model/m")
    admin.create_asset("admin/model/m/digits")
    model_dir = tmp_path / "download"
    world.hub.download(f"{world.model.split(':')[0]}:{world.trained['commit']}", model_dir, prefix="model")
    admin.upload("admin/model/m/digits:main", model_dir, path="model", message="the digits model")
    view = admin.services.create("admin/model/m/digits:main", name="survivor", replicas=1)
    assert view.state == "running"
    status = _status_of(first, "survivor")
    sample = {"inputs": world.x_test[:1].tolist()}
    try:
        first.server.should_exit = True
        first.thread.join(timeout=30)
        # the server is gone; the service still answers
        assert httpx.post(f"{view.address}/invocations", json=sample, timeout=60).status_code == 200

        second = start_server(lakefs_server, home)
        admin = Client(second.url, first.admin_token)
        again = admin.services.get("survivor")
        assert again.address == view.address and again.ready == 1
        assert _status_of(second, "survivor")["pid"] == status["pid"]  # re-attached, not restarted
        assert admin.services.predict("survivor", sample)["predictions"]
        second.server.should_exit = True
        second.thread.join(timeout=30)

        os.killpg(status["pid"], 9)  # the supervisor and its replicas die while no server runs
        wait_for("the killed service's address to refuse connections", lambda: _refuses(view.address),
                 timeout=30)
        third = start_server(lakefs_server, home)
        admin = Client(third.url, first.admin_token)
        back = _wait_state(admin, "survivor", 1)
        assert back.state == "running" and back.address == view.address, back
        assert _status_of(third, "survivor")["pid"] != status["pid"]
        assert admin.services.predict("survivor", sample)["predictions"]
        admin.services.delete("survivor")
        with pytest.raises(httpx.TransportError):  # deleted: the address is free again
            httpx.post(f"{view.address}/invocations", json=sample, timeout=5)
        third.server.should_exit = True
        third.thread.join(timeout=30)
    finally:
        for pid_file in (home / "server" / "services").glob("*/supervisor.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(pid_file.read_text()), 15)
