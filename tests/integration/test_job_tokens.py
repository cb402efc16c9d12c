"""Job tokens, through the real HTTP API: a run's own token acts as the run's owner on that run
only, ends with the run, and the worker's service user claims only what was registered for it.

Callers: ``ownr`` (owns the folders), ``other`` (a second user), the service user ``prefect``
(the Prefect worker's identity: no admin, no shares), and job tokens of ``ownr``'s runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _api import Api, fresh, message

from tests._clock import Clock

pytestmark = [pytest.mark.integration, pytest.mark.attacks]

SCOPE = "a job token may only act on its run"


@dataclass
class World:
    api: Api
    o: str
    model: str  # ownr's model, with a commit on main
    other_model: str  # another of ownr's models
    dataset: str  # ownr's dataset
    commit: str  # its main
    other_dataset: str  # another dataset ownr may use

    def job(self, name: str, token: str) -> str:
        self.api.tokens[name], self.api.names[name] = token, self.o
        return name

    def open_run(self, who: str = "ownr", **body: Any) -> dict[str, Any]:
        run: dict[str, Any] = self.api.ok(who, "POST", "/runs", json={
            "kind": "train", "model": self.model, "dataset": f"{self.dataset}:{self.commit}", **body})
        return run


@pytest.fixture(scope="module")
def w(hub_server: Any) -> World:
    api = Api(hub_server.url, hub_server.admin_token)
    o = api.add_user("ownr")
    api.add_user("other")
    # the service user, as the server makes it at start (`assethub up`): not an admin, no shares
    api.tokens["prefect"] = hub_server.hub.ensure_service_user("prefect", new_token=True)
    api.names["prefect"] = "prefect"
    mf, df = f"{o}/model/{fresh('m')}", f"{o}/dataset/{fresh('d')}"
    for folder in (mf, df):
        api.ok("ownr", "POST", "/folders", json={"path": folder})
    world = World(api, o, f"{mf}/net", f"{mf}/other", f"{df}/digits", "", f"{df}/letters")
    for asset in (world.model, world.other_model, world.dataset, world.other_dataset):
        api.ok("ownr", "POST", "/assets", json={"path": asset})
    api.commit("ownr", world.model, {"weights.bin": b"w1"})
    api.commit("ownr", world.other_model, {"weights.bin": b"o1"})
    world.commit = api.commit("ownr", world.dataset, {"cat/1.txt": b"meow"})["id"]
    api.commit("ownr", world.dataset, {"cat/2.txt": b"purr"})  # main moved on: not the run's
    api.commit("ownr", world.other_dataset, {"a/1.txt": b"a"})
    return world


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 403, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert SCOPE in message(r)


def test_opening_a_run_returns_its_token_once_acting_as_the_owner(w: World) -> None:
    run = w.open_run()
    assert run["job_token"].startswith("ahj_") and run["branch"] == f"train-{run['id'][:8]}"
    assert "job_token" not in w.api.ok("ownr", "GET", f"/runs/{run['id']}")  # shown once
    job = w.job(fresh("job"), run["job_token"])
    assert w.api.ok(job, "GET", "/whoami")["name"] == w.o
    assert w.api.ok(job, "GET", f"/runs/{run['id']}")["id"] == run["id"]


def test_a_job_token_reads_its_dataset_at_the_pinned_commit_only(w: World) -> None:
    run = w.open_run()
    job = w.job(fresh("job"), run["job_token"])
    files = w.api.ok(job, "GET", f"/assets/{w.dataset}/objects", params={"ref": w.commit})
    assert [f["path"] for f in files] == ["cat/1.txt"]
    assert w.api.call(job, "GET", f"/assets/{w.dataset}/files/cat/1.txt",
                      params={"ref": w.commit}).content == b"meow"
    # the dataset at another version, another dataset, another model: refused
    _refused(w.api.call(job, "GET", f"/assets/{w.dataset}/files/cat/2.txt", params={"ref": "main"}))
    _refused(w.api.call(job, "POST", f"/assets/{w.dataset}/bundle",
                        json={"ref": "main", "paths": ["cat/2.txt"]}))
    _refused(w.api.call(job, "GET", f"/assets/{w.other_dataset}"))
    _refused(w.api.call(job, "GET", f"/assets/{w.other_dataset}/objects"))
    _refused(w.api.call(job, "GET", f"/assets/{w.other_model}/files/weights.bin"))
    # its own model: any version (an evaluation compares them)
    assert w.api.call(job, "GET", f"/assets/{w.model}/files/weights.bin").content == b"w1"


def test_a_job_token_writes_only_its_runs_branch(w: World, tmp_path: Path) -> None:
    run = w.open_run()
    job = w.job(fresh("job"), run["job_token"])
    before = {m: w.api.state(m) for m in (w.model, w.other_model, w.dataset)}
    last = w.api.last_audit_id()
    for method, url, body in [
        ("POST", f"/assets/{w.model}/uploads", {"branch": "main"}),
        ("POST", f"/assets/{w.model}/branches", {"name": fresh("b"), "source": "main"}),
        ("POST", f"/assets/{w.model}/tags", {"name": fresh("t")}),
        ("PATCH", f"/assets/{w.model}", {"description": "changed by a job"}),
        ("DELETE", f"/assets/{w.model}", None),
        ("POST", f"/assets/{w.model}/merge", {"source": "main", "into": run["branch"]}),
        ("POST", f"/assets/{w.other_model}/uploads", {"branch": "main"}),
        ("POST", f"/assets/{w.dataset}/uploads", {"branch": "main"}),
        ("POST", f"/assets/{w.dataset}/publish", {"tag": fresh("v")}),
        ("POST", "/assets", {"path": f"{w.model.rsplit('/', 1)[0]}/{fresh('a')}"}),
        ("POST", f"/users/{w.o}/tokens", {"name": "escape"}),  # no personal token from a job's
        ("POST", f"/folders/{w.model.rsplit('/', 1)[0]}/shares",
         {"subject_type": "user", "subject_name": w.api.names["other"], "role": "edit"}),
        ("GET", "/runs", None),
        ("POST", "/follows", {"model": w.model, "dataset": w.dataset, "settings": {"repo": "x"}}),
    ]:
        _refused(w.api.call(job, method, url, json=body))
    assert {m: w.api.state(m) for m in before} == before, "a refused job changed something"
    refused = [e for e in w.api.audit_since(last) if e["action"] == "job.refused"]
    assert len(refused) == 14 and all(e["actor"] == w.o and e["outcome"] == "denied" for e in refused)
    # its branch: created, written, committed
    w.api.ok(job, "POST", f"/assets/{w.model}/branches", json={"name": run["branch"], "source": "main"})
    committed = w.api.commit(job, w.model, {"model/MLmodel": b"m"}, branch=run["branch"])
    assert committed["metadata"]["author"] == w.o
    # many small files, as the SDK sends them (upload bundles), to its branch only
    from assethub import errors
    from assethub.client import Client

    src = tmp_path / "model"
    for i in range(6):
        (src / f"f{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (src / f"f{i}.txt").write_text(f"part {i}")
    sdk = Client(w.api.url, run["job_token"], cache_dir=tmp_path / "cache")
    sdk.upload(f"{w.model}:{run['branch']}", src, path="model/parts", message="parts")
    assert len(sdk.list_objects(f"{w.model}:{run['branch']}", prefix="model/parts/")) == 6
    with pytest.raises(errors.ForbiddenError):
        sdk.upload(f"{w.model}:main", src, path="model/parts", message="not its branch")
    # and the job cannot move its run to another branch to write there
    refused_run = w.api.call(job, "PATCH", f"/runs/{run['id']}", json={"branch": "main"})
    assert refused_run.status_code == 403 and SCOPE in message(refused_run)


def test_a_job_token_updates_only_its_run_and_ends_with_it(w: World) -> None:
    run, mine = w.open_run(), w.open_run()
    job = w.job(fresh("job"), run["job_token"])
    _refused(w.api.call(job, "PATCH", f"/runs/{mine['id']}", json={"state": "failed"}))
    _refused(w.api.call(job, "GET", f"/runs/{mine['id']}"))
    assert w.api.ok("ownr", "GET", f"/runs/{mine['id']}")["state"] == "pending"
    # evaluations: of its model, for its run only
    body = {"ref": "main", "dataset": f"{w.dataset}:{w.commit}", "metrics": {"accuracy": 0.5}}
    refused_eval = w.api.call(job, "POST", f"/assets/{w.model}/evaluations",
                               json={**body, "run_id": mine["id"]})
    assert refused_eval.status_code == 403 and SCOPE in message(refused_eval)
    w.api.ok(job, "POST", f"/assets/{w.model}/evaluations", json={**body, "run_id": run["id"]})
    _refused(w.api.call(job, "POST", f"/assets/{w.other_model}/evaluations",
                        json={**body, "run_id": run["id"]}))
    # a plain training's token opens no runs
    _refused(w.api.call(job, "POST", "/runs", json={"kind": "train", "model": w.model,
                                                    "dataset": f"{w.dataset}:{w.commit}"}))
    w.api.ok(job, "PATCH", f"/runs/{run['id']}", json={"state": "running"})
    w.api.ok(job, "PATCH", f"/runs/{run['id']}", json={"state": "completed"})
    r = w.api.call(job, "GET", "/whoami")
    assert r.status_code == 401 and "ended with its run" in message(r)
    # a crashed or failed run's token ends too; the owner's own token is untouched
    failed = w.open_run()
    other_job = w.job(fresh("job"), failed["job_token"])
    w.api.ok("ownr", "PATCH", f"/runs/{failed['id']}", json={"state": "failed", "error": "x"})
    assert w.api.call(other_job, "GET", f"/runs/{failed['id']}").status_code == 401
    assert w.api.ok("ownr", "GET", "/whoami")["name"] == w.o


def test_a_retrain_token_opens_only_its_steps_each_with_its_own_token(w: World) -> None:
    branch = f"retrain-{w.commit[:12]}"
    retrain = w.open_run(kind="retrain", branch=branch, trigger="event")
    job = w.job(fresh("job"), retrain["job_token"])
    step = w.api.ok(job, "POST", "/runs", json={
        "kind": "continue_train", "model": w.model, "dataset": f"{w.dataset}:{w.commit}",
        "base": f"{w.model}:main", "branch": branch})
    assert step["created_by"] == w.o and step["trigger"] == "event"  # as the retrain's
    assert step["job_token"] != retrain["job_token"]
    for body in ({"kind": "train", "model": w.other_model, "dataset": f"{w.dataset}:{w.commit}"},
                 {"kind": "train", "model": w.model, "dataset": f"{w.dataset}:main"},
                 {"kind": "train", "model": w.model, "dataset": f"{w.other_dataset}:main"},
                 {"kind": "evaluate", "model": w.model, "dataset": f"{w.dataset}:{w.commit}",
                  "base": f"{w.other_model}:main"},
                 {"kind": "retrain", "model": w.model, "dataset": f"{w.dataset}:{w.commit}"},
                 {"kind": "train", "model": w.model, "dataset": f"{w.dataset}:{w.commit}",
                  "owner": w.api.names["other"]}):
        r = w.api.call(job, "POST", "/runs", json=body)
        assert r.status_code == 403 and SCOPE in message(r), (body, r.text)
    # the step's token opens nothing more
    step_job = w.job(fresh("job"), step["job_token"])
    _refused(w.api.call(step_job, "POST", "/runs", json={
        "kind": "train", "model": w.model, "dataset": f"{w.dataset}:{w.commit}"}))


def test_a_deferred_run_is_claimed_once_by_the_service_user_only(w: World) -> None:
    run = w.open_run(deferred=True)
    assert "job_token" not in run
    for who in ("ownr", "other", "admin"):
        r = w.api.call(who, "POST", f"/runs/{run['id']}/claim")
        assert r.status_code in (403, 404), (who, r.text)
    claimed = w.api.ok("prefect", "POST", f"/runs/{run['id']}/claim")
    job = w.job(fresh("job"), claimed["job_token"])
    assert w.api.ok(job, "GET", "/whoami")["name"] == w.o  # acts for whoever registered it
    r = w.api.call("prefect", "POST", f"/runs/{run['id']}/claim")
    assert r.status_code == 403 and "claimed once" in message(r)
    # a run opened normally (its token went to its opener) is not the worker's to claim
    r = w.api.call("prefect", "POST", f"/runs/{w.open_run()['id']}/claim")
    assert r.status_code == 403
    # the service user itself has no rights on ownr's assets
    assert w.api.call("prefect", "GET", f"/assets/{w.model}").status_code == 404
    assert w.api.ok("prefect", "GET", "/whoami")["is_admin"] is False


def test_a_follows_retrain_is_registered_as_the_follows_owner(w: World) -> None:
    follow = w.api.ok("ownr", "POST", "/follows", json={
        "model": w.model, "dataset": w.dataset, "settings": {"repo": "https://example.org/x.git"}})
    try:
        r = w.api.call("other", "POST", f"/follows/{follow['id']}/runs")
        assert r.status_code == 403 and "service user" in message(r)
        run = w.api.ok("prefect", "POST", f"/follows/{follow['id']}/runs", params={"trigger": "schedule"})
        main = w.api.ok("ownr", "GET", f"/assets/{w.dataset}/commit")["id"]
        assert run["created_by"] == w.o and run["kind"] == "retrain" and run["trigger"] == "schedule"
        assert run["dataset_commit"] == main and run["branch"] == f"retrain-{main[:12]}"
        assert run["code_url"] == "https://example.org/x.git"
        job = w.job(fresh("job"), run["job_token"])
        assert w.api.ok(job, "GET", "/whoami")["name"] == w.o
        _refused(w.api.call(job, "GET", f"/assets/{w.other_dataset}"))
        # the owner lost edit on the model: the next retrain is refused as theirs
        w.api.admin("PATCH", f"/users/{w.o}", json={"disabled": True})
        try:
            assert w.api.call("prefect", "POST", f"/follows/{follow['id']}/runs").status_code == 403
            assert w.api.call(job, "GET", "/whoami").status_code == 401  # nor do their jobs go on
        finally:
            w.api.admin("PATCH", f"/users/{w.o}", json={"disabled": False})
    finally:
        w.api.ok("ownr", "DELETE", f"/follows/{follow['id']}")


def test_a_job_token_expires_after_its_maximum_lifetime(w: World, hub_server: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    run = w.open_run()
    job = w.job(fresh("job"), run["job_token"])
    clock = Clock()
    monkeypatch.setattr(hub_server.hub, "clock", clock)  # the server's hub: tokens expire by it
    clock.advance(hours=hub_server.hub.jobs.job_token_lifetime.total_seconds() / 3600 - 0.1)
    w.api.ok(job, "GET", f"/runs/{run['id']}")  # still running, still valid
    clock.advance(hours=0.2)
    r = w.api.call(job, "GET", f"/runs/{run['id']}")
    assert r.status_code == 401 and "expired" in message(r)
    assert w.api.ok("ownr", "GET", f"/runs/{run['id']}")["state"] == "pending"  # the run stays
