"""Private repositories: a job trains from a Git server over HTTP with basic auth (git's own
``http-backend``), and the credential given in the repository URL reaches none of the places
that keep or show things — run records, lineage, follows, Prefect's parameters and logs, the
server's log, the audit log, the catalog, the code mirror, the command lines and environments of
git's processes during the clone. Another user's job can use neither the credential nor the
mirror fetched with it, and a wrong credential fails clearly without being echoed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub.client import Client
from tests.integration._git_http import GitHttpServer
from tests.integration._jobs import git_repo

pytestmark = [pytest.mark.integration, pytest.mark.attacks]

TRAIN = """import json, os, pathlib
out = pathlib.Path(os.environ["ASSETHUB_OUTPUT_DIR"]) / "model"
out.mkdir(parents=True, exist_ok=True)
(out / "MLmodel").write_text("flavors: {}\\n")
pathlib.Path(os.environ["ASSETHUB_METRICS_FILE"]).write_text(json.dumps({"accuracy": 0.5}))
"""


@dataclass
class Private:
    server: GitHttpServer
    sha: str
    alice: str
    alice_token: str
    bob: str
    bob_token: str
    secret: str  # alice's password on the git server
    model: str
    bob_model: str
    dataset: str
    hub_url: str
    admin_token: str

    @property
    def clean(self) -> str:
        return self.server.url("private.git")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def private(hub_server: Any, mlflow_uri: str, prefect_api: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    tag = uuid.uuid4().hex[:6]
    code = tmp_path_factory.mktemp("private-code")
    (code / "src").mkdir()
    (code / "src" / "train.py").write_text(TRAIN)
    (code / "src" / "assethub.yaml").write_text("train: {command: python train.py}\n")
    repo, sha = git_repo(code / "src", code / "work")
    root = code / "served"
    root.mkdir()
    import subprocess

    subprocess.run(["git", "clone", "-q", "--bare", repo, str(root / "private.git")], check=True)
    alice, bob = f"gca{tag}", f"gcb{tag}"
    secret = f"alice-pw-{uuid.uuid4().hex}"
    server = GitHttpServer(root, {alice: secret, bob: f"bob-pw-{uuid.uuid4().hex}"})
    admin = Client(hub_server.url, hub_server.admin_token)
    tokens = {}
    for name in (alice, bob):
        admin.create_user(name)
        tokens[name] = admin.create_token(name, name="jobs").secret
    from assethub.hub import DatasetMeta

    hub = Client(hub_server.url, tokens[alice])
    hub.create_folder(f"{alice}/dataset/d")
    hub.create_folder(f"{alice}/model/m")
    hub.create_asset(f"{alice}/dataset/d/data", dataset=DatasetMeta("image_classification", "dir",
                                                                    "test_set", None, "test"))
    data = tmp_path_factory.mktemp("private-data")
    for split in ("train", "test"):
        (data / split / "0").mkdir(parents=True)
        (data / split / "0" / "x.txt").write_text(split)
    hub.upload(f"{alice}/dataset/d/data:main", data, message="data")
    hub.publish(f"{alice}/dataset/d/data", "v1")
    hub.create_asset(f"{alice}/model/m/net")
    hub.share(f"{alice}/dataset/d", role="run", user=bob)  # bob may use the data...
    bobs = Client(hub_server.url, tokens[bob])
    bobs.create_folder(f"{bob}/model/m")
    bobs.create_asset(f"{bob}/model/m/net")  # ... and train his own model: only the code is alice's
    yield Private(server, sha, alice, tokens[alice], bob, tokens[bob], secret, f"{alice}/model/m/net",
                  f"{bob}/model/m/net", f"{alice}/dataset/d/data:v1", hub_server.url,
                  hub_server.admin_token)
    server.stop()


def _get(p: Private, token: str, path: str, **params: Any) -> str:
    r = httpx.get(f"{p.hub_url}/api/v1{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                  timeout=30)
    r.raise_for_status()
    return r.text


def _files(root: Path) -> Iterator[Path]:
    return (f for f in root.rglob("*") if f.is_file())


def _as(monkeypatch: pytest.MonkeyPatch, p: Private, token: str) -> None:
    monkeypatch.setenv("ASSETHUB_URL", p.hub_url)
    monkeypatch.setenv("ASSETHUB_TOKEN", token)


def test_a_private_repository_trains_and_its_credential_stays_out(
        private: Private, prefect_api: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        hub_server: Any) -> None:
    from tests.integration.test_cli import Cli

    p = private
    cli = Cli(p.hub_url, p.alice_token, tmp_path / "cli")
    cli.env["PREFECT_API_URL"] = prefect_api
    with_secret = p.server.url("private.git", f"{p.alice}:{p.secret}")
    result = cli.json("train", p.model, "--dataset", p.dataset, "--repo", with_secret, "--branch", "private")
    assert result["code_sha"] == p.sha and result["commit"]
    assert p.secret not in json.dumps(result)

    # git's requests: authenticated as alice; no process's argv or environment held the secret
    fetched = [s for s in p.server.seen if s.allowed]
    assert fetched and {s.user for s in fetched} == {p.alice}
    processes = [proc for s in p.server.seen for proc in s.processes]
    assert any("remote-http" in argv for _, argv, _ in processes), "git's processes were seen"
    for pid, argv, env in processes:
        assert p.secret not in argv and p.secret not in env, (pid, argv)
    assert all(p.clean in argv for _, argv, _ in processes if "remote-http" in argv)

    # the run record, lineage, the run list: the clean URL only
    run_id = result["run_id"]
    run = json.loads(_get(p, p.alice_token, f"/runs/{run_id}"))
    assert run["code_url"] == p.clean and run["owner"] == p.alice and run["state"] == "completed"
    for text in (_get(p, p.alice_token, "/runs", model=p.model),
                 _get(p, p.alice_token, f"/assets/{p.model}/lineage", ref="private"),
                 _get(p, p.admin_token, "/audit", limit=1000)):
        assert p.secret not in text
    assert json.loads(_get(p, p.alice_token, f"/assets/{p.model}/lineage", ref="private"))[
        "lineage"]["code_url"] == p.clean
    # kept for alice, by host, and never shown
    kept = json.loads(_get(p, p.alice_token, "/git-credentials"))
    assert [c["host"] for c in kept] == [p.host] and p.secret not in json.dumps(kept)
    assert json.loads(_get(p, p.bob_token, "/git-credentials")) == []

    # Prefect: the flow run's parameters and its logs
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(run["prefect_flow_run_id"])
        logs = prefect.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
    assert flow_run.parameters["repo"] == p.clean
    assert p.secret not in json.dumps(flow_run.parameters, default=str)
    assert logs and not [log.message for log in logs if p.secret in log.message]
    assert any(p.clean in log.message for log in logs), "the code's URL is logged, clean"

    # the mirror: per owner, with the clean URL in its config, the secret in none of its files
    mirrors = tmp_path / "cli" / "code-mirrors"
    assert [d.name for d in mirrors.iterdir()] == [p.alice]
    config = next(mirrors.glob(f"{p.alice}/*.git/config")).read_text()
    assert f"url = {p.clean}" in config
    for f in _files(mirrors):
        assert p.secret.encode() not in f.read_bytes(), f
    assert not list((tmp_path / "cli" / "jobs").glob("*/.git-credential-*")), "the helper's file is gone"

    # the server's log, and its catalog (the credential is kept encrypted)
    log = tmp_path_factory.getbasetemp() / "hub-server" / "server.log"
    assert p.secret not in log.read_text()
    for f in _files(Path(hub_server.hub.uploads_dir).parent.parent):
        if f.suffix in (".db", ".log", ".out") or f.name.startswith("catalog"):
            assert p.secret.encode() not in f.read_bytes(), f


def test_other_users_get_neither_the_credential_nor_the_mirror(
        private: Private, monkeypatch: pytest.MonkeyPatch) -> None:
    from assethub import errors
    from flows.train import train
    from tasks.code import mirror_path

    p = private
    # alice again, in this process: her kept credential serves the clean URL
    _as(monkeypatch, p, p.alice_token)
    mine = train(model=p.model, dataset=p.dataset, repo=p.clean, revision=p.sha)
    assert mine["code_sha"] == p.sha
    assert mirror_path(p.clean, p.alice).is_dir()
    alices_run = mine["run_id"]

    # bob: the same URL at a commit alice's mirror holds; his job has no credential and its own
    # mirror, so the server asks and refuses
    _as(monkeypatch, p, p.bob_token)
    with pytest.raises(errors.CodeFetchError) as info:
        train(model=p.bob_model, dataset=p.dataset, repo=p.clean, revision=p.sha)
    message = str(info.value)
    assert "git-credentials set " + p.host in message and p.secret not in message
    assert not mirror_path(p.clean, p.bob).exists()
    bob_run = Client(p.hub_url, p.bob_token).list_runs(p.bob_model, limit=1)[0]
    assert bob_run.state == "failed" and p.secret not in bob_run.error

    # nor can he ask for alice's credential through her run, or start a job acting for her
    bob = Client(p.hub_url, p.bob_token)
    with pytest.raises(errors.NotFoundError):
        bob.run_git_credential(alices_run)
    with pytest.raises(errors.ForbiddenError, match="only an admin"):
        bob.create_run(p.bob_model, kind="train", dataset=p.dataset, code_url=p.clean, owner=p.alice)
    # and alice's own finished run releases nothing any more
    with pytest.raises(errors.ForbiddenError, match="running jobs only"):
        Client(p.hub_url, p.alice_token).run_git_credential(alices_run)


def test_a_wrong_credential_fails_clearly_without_echoing_it(
        private: Private, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from assethub import errors
    from flows.train import train
    from tests.integration.test_cli import Cli

    p = private
    wrong = f"wrong-{uuid.uuid4().hex}"
    cli = Cli(p.hub_url, p.bob_token, tmp_path / "cli")
    out = cli("git-credentials", "set", p.host, "--username", p.bob, "--password-stdin", input=wrong + "\n")
    assert p.host in out and wrong not in out
    assert wrong not in cli("git-credentials", "ls") and p.host in cli("git-credentials", "ls")
    _as(monkeypatch, p, p.bob_token)
    with pytest.raises(errors.CodeFetchError) as info:
        train(model=p.bob_model, dataset=p.dataset, repo=p.clean)
    message = str(info.value)
    assert "Authentication failed" in message and f"git-credentials set {p.host}" in message
    assert wrong not in message and p.clean in message
    run = Client(p.hub_url, p.bob_token).list_runs(p.bob_model, limit=1)[0]
    assert run.state == "failed" and wrong not in run.error
    assert [s.user for s in p.server.seen if s.allowed and s.user == p.bob] == []
    cli("git-credentials", "rm", p.host)
    assert cli.json("git-credentials", "ls") == []


def test_a_follow_keeps_the_clean_url_and_the_credential_apart(private: Private) -> None:
    from deployments.triggers import retrain_parameters

    p = private
    alice = Client(p.hub_url, p.alice_token)
    other = f"other-{uuid.uuid4().hex}"
    follow = alice.follow(p.model, p.dataset.split(":")[0],
                          repo=p.server.url("private.git", f"{p.alice}:{other}"))
    assert follow.settings["repo"] == p.clean
    listed = _get(p, p.alice_token, "/follows")
    assert other not in listed and p.clean in listed
    # what the follow's automation and schedule pass to the retrain deployment: its id only
    # (the server registers the run as alice with the follow's clean settings)
    params = retrain_parameters(follow.id)
    assert params == {"follow_id": follow.id} and p.secret not in str(params)
    # the credential in the URL replaced alice's kept one (and stays unreadable)
    assert [c.host for c in alice.list_git_credentials()] == [p.host]
    alice.set_git_credential(p.host, p.alice, p.secret)  # as it was, for the other tests
    alice.unfollow(follow.id)
