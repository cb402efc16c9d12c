"""User code runs sandboxed (bubblewrap): a job's command, run by the real flow against the real
stack, cannot read the server's secrets, the catalog, lakeFS's credentials, other jobs'
directories or the server's environment, cannot write outside its output, cannot reach the
stack's ports, and reaches MLflow only for its own run; a time limit kills a silent command."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assethub.client import Client
from tests.integration._jobs import git_repo

pytestmark = [pytest.mark.integration, pytest.mark.attacks]  # needs bubblewrap: `make test` installs it

# The command: tries each thing, prints what it could and could not do as one JSON line, exits 3
# (a failed job shows its last lines, so the test reads the result from the failure).
PROBE = r'''
import json, os, re, socket, sys
from pathlib import Path

p = json.loads(os.environ["ASSETHUB_PARAMS"])
res = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
       "caps": [l.split()[1] for l in open("/proc/self/status") if l.startswith("Cap")],
       "env": sorted(k for k in os.environ
                     if re.search("TOKEN|SECRET|PASSWORD|PREFECT|AWS|LAKE|DATABASE|ASSETHUB_URL", k))}
for name, path in p["read"].items():
    try:
        Path(path).read_bytes() if not Path(path).is_dir() else os.listdir(path)
        res["read:" + name] = "allowed"
    except OSError as e:
        res["read:" + name] = type(e).__name__
for name, path in {**p["write"], "output": os.environ["ASSETHUB_OUTPUT_DIR"] + "/ok.txt"}.items():
    try:
        Path(path).write_text("x")
        res["write:" + name] = "allowed"
    except OSError as e:
        res["write:" + name] = type(e).__name__
res["jobs_seen"] = os.listdir(p["jobs"])  # only its own
for name, port in p["connect"].items():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        res["connect:" + name] = "allowed"
    except OSError as e:
        res["connect:" + name] = type(e).__name__
from mlflow.tracking import MlflowClient

ml, own = MlflowClient(), os.environ["MLFLOW_RUN_ID"]
for name, call in {"log_own": lambda: ml.log_metric(own, "probe", 1.0),
                   "tag_other": lambda: ml.set_tag(p["other_run"], "hacked", "yes"),
                   "get_other": lambda: ml.get_run(p["other_run"]),
                   "search": lambda: ml.search_experiments()}.items():
    try:
        call()
        res["mlflow:" + name] = "allowed"
    except Exception as e:
        why = "refused" if "PERMISSION_DENIED" in str(e) else f"{type(e).__name__}: {e}"[:300]
        res["mlflow:" + name] = why
print("PROBE " + json.dumps(res), flush=True)
sys.exit(3)
'''


@pytest.fixture(scope="module")
def boxed(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from assethub.hub import DatasetMeta
    from examples.datasets import write_stdlib_docs

    admin = Client(hub_server.url, hub_server.admin_token)
    admin.create_user("boxed")
    token = admin.create_token("boxed", name="jobs").secret
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=hub_server.url, ASSETHUB_TOKEN=token)
    hub = Client(hub_server.url, token)
    hub.create_folder("boxed/dataset/text")
    hub.create_asset("boxed/dataset/text/docs", dataset=DatasetMeta("text_classification", "json", "ratio",
                                                                   0.8, None))
    data = tmp_path_factory.mktemp("docs")
    write_stdlib_docs(data)
    hub.upload("boxed/dataset/text/docs:main", data, message="docs")
    hub.create_folder("boxed/model/probe")
    hub.create_asset("boxed/model/probe/net")
    code = tmp_path_factory.mktemp("probe-code")
    (code / "probe.py").write_text(PROBE)
    repo, _ = git_repo(code, tmp_path_factory.mktemp("probe-repo") / "repo")
    yield {"hub": hub, "repo": repo, "model": "boxed/model/probe/net",
           "dataset": "boxed/dataset/text/docs:main"}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _probe_result(tail: str) -> dict[str, Any]:
    line = next(x for x in tail.splitlines()[::-1] if "PROBE " in x)
    return dict(json.loads(line.split("PROBE ", 1)[1]))


def test_a_job_reaches_nothing_but_its_inputs_output_and_own_mlflow_run(
        boxed: dict[str, Any], hub_server: Any, lakefs_server: Any, mlflow_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from assethub.errors import JobFailedError
    from flows.train import train
    from infra import lakefs

    home = Path(os.environ["ASSETHUB_HOME"])
    # what a job must never read: the server's admin token, the catalog, lakeFS's credentials and
    # state (with its encryption secret), another job's directory, the host's /root
    admin_token = home / "server" / "admin-token"  # where `assethub up` keeps it
    if not admin_token.exists():  # the in-process test server keeps its token in memory only
        admin_token.parent.mkdir(parents=True, exist_ok=True)
        admin_token.write_text(hub_server.admin_token)
        admin_token.chmod(0o600)
    other_job = home / "jobs" / "someone-elses-run"
    other_job.mkdir(parents=True, exist_ok=True)
    (other_job / "model.pt").write_text("another user's model")
    catalog = next(home.parent.glob("hub*/catalog.db"))  # the test server's SQLite catalog
    read = {"admin_token": str(admin_token), "catalog": str(catalog),
            "lakefs_credentials": str(lakefs.data_dir() / "credentials.json"),
            "lakefs_state": str(lakefs.data_dir() / "state.json"),
            "other_job": str(other_job / "model.pt"),
            "server_environ": f"/proc/{os.getpid()}/environ", "pid1_environ": "/proc/1/environ"}
    for name in ("lakefs_credentials", "lakefs_state"):
        assert Path(read[name]).exists(), name
    write = {"home": str(home / "planted"), "other_job": str(other_job / "model.pt"),
             "etc": "/etc/passwd", "usr": "/usr/planted", "code": "probe.py", "root": "/planted"}
    lakefs_port = urlsplit(lakefs_server.endpoint).port
    other = MlflowClient(mlflow_uri).create_run(
        MlflowClient(mlflow_uri).create_experiment(f"not-yours-{os.getpid()}")).info.run_id

    with pytest.raises(JobFailedError) as info:
        train(model=boxed["model"], dataset=boxed["dataset"], repo=boxed["repo"], command="python probe.py",
              params={"read": read, "write": write, "other_run": other,
                      "jobs": str(home / "jobs"),
                      # (MLflow's port is the relay's inside: the sandbox has its own loopback)
                      "connect": {"lakefs": lakefs_port, "server": urlsplit(hub_server.url).port}})
    assert info.value.exit_code == 3, info.value.tail
    run = boxed["hub"].list_runs(boxed["model"], limit=1)[0]
    run_id = run.id
    res = _probe_result(info.value.tail)
    assert res["uid"] == 65534 and res["gid"] == 65534 and res["groups"] == []
    assert all(int(c, 16) == 0 for c in res["caps"][:3]), res["caps"]  # inheritable, permitted, effective
    assert res["env"] == [], "no secret reaches the command"
    assert {k: v for k, v in res.items() if k.startswith("read:") and v == "allowed"} == {}, res
    writes = {k for k, v in res.items() if k.startswith("write:") and v == "allowed"}
    assert writes == {"write:output"}, res
    assert {k: v for k, v in res.items() if k.startswith("connect:") and v == "allowed"} == {}, res
    assert res["jobs_seen"] == [run_id] and not Path(home / "jobs" / run_id).exists()
    assert res["mlflow:log_own"] == "allowed"
    assert res["mlflow:tag_other"] == res["mlflow:get_other"] == res["mlflow:search"] == "refused", res
    # nothing changed outside; the metric reached the job's own run, the other run is untouched
    assert not (home / "planted").exists() and (other_job / "model.pt").read_text() == "another user's model"
    ml = MlflowClient(mlflow_uri)
    assert ml.get_run(run.mlflow_run_id).data.metrics["probe"] == 1.0
    assert "hacked" not in ml.get_run(other).data.tags


def test_the_time_limit_kills_a_silent_command_and_fails_the_run(
        boxed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from assethub.errors import JobFailedError
    from flows.train import train

    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "2")
    with pytest.raises(JobFailedError, match=r"time limit of 2s and was killed"):
        train(model=boxed["model"], dataset=boxed["dataset"], repo=boxed["repo"],
              command="echo sleeping; sleep 600")
    run = boxed["hub"].list_runs(boxed["model"], limit=1)[0]
    assert run.state == "failed" and "time limit of 2s" in run.error


def test_the_codes_own_time_limit_applies_under_the_admins_cap(
        boxed: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """assethub.yaml's ``timeout`` limits the job; the admin's setting stays the upper bound."""
    from assethub.errors import JobFailedError
    from flows.train import train
    from tests.integration._jobs import git_repo

    code = tmp_path / "code"
    code.mkdir()
    (code / "assethub.yaml").write_text("train: {command: 'echo sleeping; sleep 600', timeout: 2}\n")
    repo, _ = git_repo(code, tmp_path / "repo")
    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "3600")
    with pytest.raises(JobFailedError, match=r"time limit of 2s and was killed"):
        train(model=boxed["model"], dataset=boxed["dataset"], repo=repo)
    (code / "assethub.yaml").write_text("train: {command: 'echo sleeping; sleep 600', timeout: 7200}\n")
    repo, _ = git_repo(code, tmp_path / "repo2")
    monkeypatch.setenv("ASSETHUB_JOB_TIMEOUT_SECONDS", "2")  # the code cannot raise the cap
    with pytest.raises(JobFailedError, match=r"time limit of 2s and was killed"):
        train(model=boxed["model"], dataset=boxed["dataset"], repo=repo)
    (code / "assethub.yaml").write_text("train: {command: 'true', timeout: -1}\n")
    repo, _ = git_repo(code, tmp_path / "repo3")
    with pytest.raises(Exception, match=r"'train.timeout' must be a number of seconds above 0"):
        train(model=boxed["model"], dataset=boxed["dataset"], repo=repo)


def test_without_bubblewrap_a_job_is_refused_unless_the_sandbox_is_off(
        boxed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from assethub.errors import JobFailedError
    from assethub.sandbox import SandboxUnavailableError
    from flows.train import train

    monkeypatch.setenv("ASSETHUB_SANDBOX_BWRAP", "/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailableError, match=r"`bwrap` is not installed.*ASSETHUB_SANDBOX=off"):
        train(model=boxed["model"], dataset=boxed["dataset"], repo=boxed["repo"], command="true")
    run = boxed["hub"].list_runs(boxed["model"], limit=1)[0]
    assert run.state == "failed" and "bwrap" in run.error
    monkeypatch.setenv("ASSETHUB_SANDBOX", "off")  # the admin's explicit choice: runs as this user
    with pytest.raises(JobFailedError) as info:
        train(model=boxed["model"], dataset=boxed["dataset"], repo=boxed["repo"],
              command="echo uid=$(id -u); exit 4")
    assert info.value.exit_code == 4 and re.search(rf"uid={os.getuid()}\b", info.value.tail)


def test_a_served_replica_runs_as_its_own_user_and_sees_only_its_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lakefs_server: Any) -> None:
    import httpx

    from infra import lakefs
    from tests.integration._fake_replica import probe_service

    home = Path(os.environ["ASSETHUB_HOME"])
    admin_token = home / "server" / "admin-token"
    if not admin_token.exists():
        admin_token.parent.mkdir(parents=True, exist_ok=True)
        admin_token.write_text("ah_the-admin-token")
        admin_token.chmod(0o600)
    with probe_service(tmp_path, monkeypatch, 1) as (_, port, model):
        targets = {"path": [str(admin_token), str(model / "MLmodel"), str(tmp_path / "svc" / "spec.json"),
                            str(lakefs.data_dir() / "credentials.json"), "/proc/1/environ"],
                   "write": [str(model / "planted"), str(tmp_path / "svc" / "planted")]}
        answer = httpx.get(f"http://127.0.0.1:{port}/probe", params=targets, timeout=30).json()
    assert answer["uid"] == 65534
    assert answer.pop(str(model / "MLmodel")) == "allowed"  # its model, read-only
    refused = {k: v for k, v in answer.items() if k not in ("uid", "pid", "replica")}
    assert len(refused) == 6 and "allowed" not in refused.values(), refused
    assert not (model / "planted").exists() and not (tmp_path / "svc" / "planted").exists()
