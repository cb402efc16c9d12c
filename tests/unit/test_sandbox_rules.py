"""The sandbox's pure parts: bwrap's command line, the settings, the MLflow relay's rule, the job's
time limit (the sandbox itself is tested against the real stack: tests/integration/test_sandbox.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assethub import sandbox
from assethub.sandbox import MlflowRelay, Mount, SandboxUnavailableError, bwrap_argv


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_argv_isolates_drops_to_the_uid_and_mounts_what_it_is_given() -> None:
    argv = bwrap_argv(["python", "train.py"], bwrap="/usr/bin/bwrap", uid=1234, gid=4321, cwd="/jobs/r/code",
                      mounts=[Mount(Path("/jobs/r/output"), writable=True), Mount(Path("/jobs/r/code")),
                              Mount(Path("/tmp/x/sock"), Path("/run/assethub/mlflow.sock"), writable=True),
                              ("usr/bin", "/bin")])
    sep = argv.index("--")
    opts, inner = argv[:sep], argv[sep + 1:]
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent",
                 "--new-session"):
        assert flag in opts
    assert "--share-net" not in opts and "--setenv" not in opts  # nothing in argv but paths
    assert opts[opts.index("--cap-drop") + 1] == "ALL"
    assert {opts[i + 1] for i, a in enumerate(opts) if a == "--cap-add"} == {"CAP_SETUID", "CAP_SETGID"}
    assert inner == ["/usr/bin/setpriv", "--reuid=1234", "--regid=4321", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", "python", "train.py"]
    assert _pairs(opts, "--ro-bind") == [("/jobs/r/code", "/jobs/r/code")]
    assert set(_pairs(opts, "--bind")) == {("/jobs/r/output", "/jobs/r/output"),
                                           ("/tmp/x/sock", "/run/assethub/mlflow.sock")}
    assert ("usr/bin", "/bin") in _pairs(opts, "--symlink")
    assert opts[opts.index("--chdir") + 1] == "/jobs/r/code"
    # /tmp first (a later tmpfs would hide binds under it); parents made 0755 before their binds
    assert opts.index("--tmpfs") < min(i for i, a in enumerate(opts) if a in ("--bind", "--ro-bind"))
    dirs = [opts[i + 3] for i, a in enumerate(opts) if a == "--perms" and opts[i + 2] == "--dir"]
    assert all(opts[i + 1] == "0755" for i, a in enumerate(opts) if a == "--perms" and opts[i + 2] == "--dir")
    assert {"/jobs", "/jobs/r", "/run", "/run/assethub"} <= set(dirs)
    assert opts.index("/jobs/r") < opts.index("/jobs/r/code")


def test_argv_shares_the_network_only_when_asked() -> None:
    argv = bwrap_argv(["true"], mounts=[], cwd="/", share_net=True)
    assert "--unshare-net" not in argv


def test_argv_unsets_the_variables_only_the_outside_keeps() -> None:
    argv = bwrap_argv(["true"], mounts=[], cwd="/", unset=["PREFECT__FLOW_RUN_ID"])
    sep = argv.index("--")
    assert argv[argv.index("--unsetenv") + 1] == "PREFECT__FLOW_RUN_ID" and argv.index("--unsetenv") < sep


def test_no_parent_dir_is_made_inside_a_bound_directory(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    argv = bwrap_argv(["true"], cwd="/", mounts=[Mount(tmp_path), Mount(tmp_path / "venv" / "bin")])
    dirs = [argv[i + 3] for i, a in enumerate(argv) if a == "--perms" and argv[i + 2] == "--dir"]
    assert str(tmp_path / "venv") not in dirs and str(tmp_path.parent) in dirs


def test_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSETHUB_SANDBOX", "off")
    assert sandbox.from_settings() is None
    monkeypatch.setenv("ASSETHUB_SANDBOX", "maybe")
    with pytest.raises(SandboxUnavailableError, match="use on or off"):
        sandbox.from_settings()
    monkeypatch.setenv("ASSETHUB_SANDBOX", "on")
    monkeypatch.setenv("ASSETHUB_SANDBOX_BWRAP", str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailableError, match=r"apt-get install bubblewrap.*ASSETHUB_SANDBOX=off"):
        sandbox.from_settings()
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ASSETHUB_SANDBOX_BWRAP", str(fake))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    for value, match in (("0", "must not run as root"), ("x", "not a number")):
        monkeypatch.setenv("ASSETHUB_SANDBOX_UID", value)
        with pytest.raises(SandboxUnavailableError, match=match):
            sandbox.from_settings()
    monkeypatch.setenv("ASSETHUB_SANDBOX_UID", "2000")
    box = sandbox.from_settings()
    assert box is not None and (box.uid, box.gid, box.bwrap) == (2000, 65534, str(fake))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailableError, match="needs root"):
        sandbox.from_settings()


def test_python_mounts_hold_this_interpreter() -> None:
    import sys

    targets = [m.target for m in sandbox.python_mounts()]
    assert all(not m.writable for m in sandbox.python_mounts())
    assert any(Path(sys.executable).resolve().is_relative_to(t) for t in targets)
    assert any(Path(sys.prefix) == t or Path(sys.prefix).is_relative_to(t) for t in targets)


RUN = "0123456789abcdef"


@pytest.mark.parametrize("method, path, query, body, ok", [
    ("GET", "/api/2.0/mlflow/runs/get", {"run_id": [RUN]}, b"", True),
    ("POST", "/api/2.0/mlflow/runs/log-batch", {}, json.dumps({"run_id": RUN, "metrics": []}).encode(), True),
    ("POST", "/api/2.0/mlflow/runs/log-metric", {}, json.dumps({"run_uuid": RUN, "run_id": RUN}).encode(),
     True),
    ("GET", "/api/2.0/mlflow/metrics/get-history", {"run_id": [RUN], "metric_key": ["loss"]}, b"", True),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/artifacts/plot.png", {}, b"png", True),
    ("GET", "/api/2.0/mlflow/runs/get", {"run_id": ["other"]}, b"", False),
    ("GET", "/api/2.0/mlflow/runs/get", {}, b"", False),
    ("POST", "/api/2.0/mlflow/runs/log-metric", {}, json.dumps({"run_id": "other"}).encode(), False),
    ("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": [RUN]}, json.dumps({"run_id": "other"}).encode(),
     False),
    ("POST", "/api/2.0/mlflow/runs/set-tag", {}, b"not json", False),
    ("POST", "/api/2.0/mlflow/runs/create", {}, json.dumps({"experiment_id": "1"}).encode(), False),
    ("POST", "/api/2.0/mlflow/experiments/search", {}, b"{}", False),
    ("POST", "/api/2.0/mlflow/runs/delete", {}, json.dumps({"run_id": RUN}).encode(), False),
    ("GET", "/api/2.0/mlflow/runs/../experiments/get", {"run_id": [RUN]}, b"", False),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/1/other/artifacts/x", {}, b"", False),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/../other/artifacts/x", {}, b"", False),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/%2e%2e/other/artifacts/x", {}, b"", False),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/artifacts/a%20b.txt", {}, b"", True),
    ("GET", "/", {}, b"", False),
])
def test_the_relay_passes_only_calls_about_its_run(method: str, path: str, query: dict[str, list[str]],
                                                   body: bytes, ok: bool) -> None:
    relay = MlflowRelay("http://127.0.0.1:1", RUN, Path("/nonexistent.sock"))
    assert relay.allowed(method, path, query, body) is ok


def test_the_time_limit_comes_from_the_argument_or_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from assethub.errors import JobSpecError
    from tasks.entrypoint import job_timeout

    monkeypatch.delenv("ASSETHUB_JOB_TIMEOUT_SECONDS", raising=False)
    assert job_timeout() is None and job_timeout(5) == 5
    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "90")
    assert job_timeout() == 90 and job_timeout(5) == 5 and job_timeout(500) == 90  # the setting caps
    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "0")
    assert job_timeout() is None
    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "an hour")
    with pytest.raises(JobSpecError, match="not a number of seconds"):
        job_timeout()


def test_a_replica_without_bwrap_is_not_started_and_the_status_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from assethub.serving.supervisor import Supervisor

    monkeypatch.setenv("ASSETHUB_SANDBOX_BWRAP", str(tmp_path / "no-bwrap"))
    monkeypatch.delenv("ASSETHUB_SANDBOX", raising=False)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sup = Supervisor(tmp_path, sock, {"name": "s", "model_dir": str(tmp_path)}, desired=1)
        sup.start_replica()
        sup.write_status()
    assert sup.replicas == [] and "bwrap" in sup.detail and "ASSETHUB_SANDBOX=off" in sup.detail
    assert "bwrap" in json.loads((tmp_path / "status.json").read_text())["detail"]
    assert "cannot start a replica" in (tmp_path / "service.log").read_text()


MODEL = "m-0123456789abcdef0123456789abcdef"


def _created(relay: MlflowRelay, model_id: str = MODEL, run_id: str = RUN, experiment: str = "7") -> None:
    answer = {"model": {"info": {"model_id": model_id, "experiment_id": experiment, "source_run_id": run_id}}}
    relay.remember("POST", "/api/2.0/mlflow/logged-models", 200, json.dumps(answer).encode())


def test_the_relay_lets_the_run_log_a_model_and_use_only_the_models_it_created() -> None:
    """MLflow 3's log_model: create a logged model from the run, link it as the run's output,
    upload its files, finalize and tag it; the ids are those the relay saw created."""
    relay = MlflowRelay("http://127.0.0.1:1", RUN, Path("/nonexistent.sock"))
    create = json.dumps({"experiment_id": "7", "name": "model", "source_run_id": RUN}).encode()
    assert relay.needs_experiment("POST", "/api/2.0/mlflow/logged-models")
    assert not relay.allowed("POST", "/api/2.0/mlflow/logged-models", {}, create)  # experiment unknown
    relay.learn_experiment(json.dumps({"run": {"info": {"run_id": RUN, "experiment_id": "7"}}}).encode())
    assert not relay.needs_experiment("POST", "/api/2.0/mlflow/logged-models")
    assert relay.allowed("POST", "/api/2.0/mlflow/logged-models", {}, create)
    for other in ({"experiment_id": "8", "name": "m", "source_run_id": RUN},  # another experiment
                  {"experiment_id": "7", "name": "m", "source_run_id": "other"},  # another run
                  {"experiment_id": "7", "name": "m"}):  # no run
        assert not relay.allowed("POST", "/api/2.0/mlflow/logged-models", {}, json.dumps(other).encode())
    models_call = f"/api/2.0/mlflow/logged-models/{MODEL}"
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/7/models/{MODEL}/artifacts/MLmodel"
    outputs = json.dumps({"run_id": RUN, "models": [{"model_id": MODEL, "step": 0}]}).encode()
    assert not relay.allowed("GET", models_call, {}, b"")  # not created through the relay (yet)
    assert not relay.allowed("PUT", artifact, {}, b"x")
    assert not relay.allowed("POST", "/api/2.0/mlflow/runs/outputs", {}, outputs)
    _created(relay, "m-someone-elses", run_id="other")  # an answer about another run teaches nothing
    relay.remember("POST", "/api/2.0/mlflow/logged-models", 400, b"{}")
    assert relay.models == {}
    _created(relay)
    assert relay.allowed("GET", models_call, {}, b"")
    assert relay.allowed("PATCH", models_call, {}, json.dumps({"model_id": MODEL, "status": 2}).encode())
    assert relay.allowed("PATCH", models_call + "/tags", {}, json.dumps({"tags": []}).encode())
    assert relay.allowed("DELETE", models_call + "/tags/k", {}, b"")
    assert relay.allowed("POST", models_call + "/params", {}, json.dumps({"model_id": MODEL}).encode())
    assert relay.allowed("GET", models_call + "/artifacts/directories", {}, b"")
    assert relay.allowed("PUT", artifact, {}, b"x")
    assert relay.allowed("PUT", artifact.replace("/MLmodel", "/data/model.skops"), {}, b"x")
    assert relay.allowed("POST", "/api/2.0/mlflow/runs/outputs", {}, outputs)
    assert relay.allowed("POST", "/api/2.0/mlflow/runs/log-inputs", {},
                         json.dumps({"run_id": RUN, "models": [{"model_id": MODEL}]}).encode())


@pytest.mark.parametrize("method, path, body", [
    ("DELETE", f"/api/2.0/mlflow/logged-models/{MODEL}", b""),  # deleting is not logging
    ("PATCH", "/api/2.0/mlflow/logged-models/m-other", b"{}"),
    ("GET", "/api/2.0/mlflow/logged-models/m-other", b""),
    ("POST", "/api/2.0/mlflow/logged-models/search", b'{"experiment_ids": ["7"]}'),
    ("PATCH", f"/api/2.0/mlflow/logged-models/{MODEL}", json.dumps({"model_id": "m-other"}).encode()),
    ("PATCH", f"/api/2.0/mlflow/logged-models/{MODEL}", b"not json"),
    ("POST", f"/api/2.0/mlflow/logged-models/{MODEL}/other", b"{}"),
    ("DELETE", f"/api/2.0/mlflow/logged-models/{MODEL}/tags", b""),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/8/models/{MODEL}/artifacts/MLmodel", b""),  # other exp.
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/7/models/m-other/artifacts/MLmodel", b""),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/7/models/{MODEL}/elsewhere/x", b""),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/7/models/{MODEL}/artifacts/../../m-other/artifacts/x", b""),
    ("POST", "/api/2.0/mlflow/runs/outputs", json.dumps({"run_id": RUN, "models": [{"model_id": "m-other"}]}
                                                         ).encode()),
    ("POST", "/api/2.0/mlflow/runs/outputs", json.dumps({"run_id": "other", "models": [{"model_id": MODEL}]}
                                                         ).encode()),
    ("POST", "/api/2.0/mlflow/runs/log-inputs", json.dumps({"run_id": RUN, "models": "x"}).encode()),
])
def test_the_relay_refuses_other_model_calls(method: str, path: str, body: bytes) -> None:
    relay = MlflowRelay("http://127.0.0.1:1", RUN, Path("/nonexistent.sock"), experiment_id="7")
    _created(relay)
    assert relay.allowed(method, path, {}, body) is False
