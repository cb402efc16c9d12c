"""Evaluations merges can trust, and follows re-checked at every trigger (issue 11).

Real lakeFS, the real server over HTTP, callers who are not admins. Only a job of the model or
an editor of it records an evaluation; ``run`` alone is refused. A follow whose owner lost a
right (or was disabled) is paused when lakeFS next reports new data, starts nothing, shows why,
and is resumed by its owner once the rights are back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from assethub import errors
from assethub.catalog import Catalog, Evaluation
from assethub.hub import Principal
from tests._wait import wait_for
from tests.integration._api import Api, fresh, message

pytestmark = [pytest.mark.integration, pytest.mark.attacks]

REPO = "https://example.org/ml/digits.git"


class World:
    """An owner's dataset and model folders; a runner and an editor on both."""

    def __init__(self, hub_server: Any) -> None:
        self.server = hub_server
        self.api = api = Api(hub_server.url, hub_server.admin_token)
        o = api.add_user("owner")
        for who in ("runner", "editor"):
            api.add_user(who)
        self.dfolder, self.mfolder = f"{o}/dataset/{fresh('d')}", f"{o}/model/{fresh('m')}"
        for folder in (self.dfolder, self.mfolder):
            api.ok("owner", "POST", "/folders", json={"path": folder})
        for who, role in (("runner", "run"), ("editor", "edit")):
            self.share(self.mfolder, who, role)
            self.share(self.dfolder, who, role)

    def share(self, folder: str, who: str, role: str) -> None:
        self.api.ok("owner", "POST", f"/folders/{folder}/shares",
                    json={"subject_type": "user", "subject_name": self.api.names[who], "role": role})

    def asset(self, folder: str, prefix: str) -> str:
        path = f"{folder}/{fresh(prefix)}"
        self.api.ok("owner", "POST", "/assets", json={"path": path})
        self.api.commit("owner", path, {"a/1.txt": b"one", "b/1.txt": b"two"})
        return path


@pytest.fixture(scope="module")
def world(hub_server: Any) -> World:
    return World(hub_server)


def _evaluate(w: World, who: str, model: str, dataset: str, **extra: Any) -> Any:
    return w.api.call(who, "POST", f"/assets/{model}/evaluations",
                      json={"ref": "main", "dataset": f"{dataset}:main", "metrics": {"accuracy": 0.99},
                            **extra})


# -- evaluations ------------------------------------------------------------------------------
def test_run_alone_cannot_record_an_evaluation_an_editor_can(world: World) -> None:
    w = world
    model, dataset = w.asset(w.mfolder, "net"), w.asset(w.dfolder, "data")
    before = w.api.last_audit_id()
    r = _evaluate(w, "runner", model, dataset)
    assert r.status_code == 403, r.text
    assert "needs 'edit'" in message(r) and "assethub evaluate" in message(r)
    assert w.api.admin("GET", f"/assets/{model}/evaluations") == [], "nothing was recorded"
    assert [(e["action"], e["outcome"]) for e in w.api.audit_since(before)
            if e["target"].startswith(model)] == [("evaluation.add", "denied")]
    # the runner may still start an evaluation job (its job records the result)
    run = w.api.ok("runner", "POST", "/runs", json={"kind": "evaluate", "model": model,
                                                     "base": f"{model}:main",
                                                     "dataset": f"{dataset}:main"})
    # naming that run does not lend its rights to the runner's own token
    r = _evaluate(w, "runner", model, dataset, run_id=run["id"])
    assert r.status_code == 403, r.text
    # an editor may, and the evaluation says who and which run produced it
    e = w.api.ok("editor", "POST", f"/assets/{model}/evaluations",
                 json={"ref": "main", "dataset": f"{dataset}:main", "metrics": {"accuracy": 0.5},
                       "run_id": run["id"]})
    assert (e["created_by"], e["run_id"], e["trusted"]) == (w.api.names["editor"], run["id"], True)
    by_hand = w.api.ok("editor", "POST", f"/assets/{model}/evaluations",
                       json={"ref": "main", "dataset": f"{dataset}:main", "metrics": {"accuracy": 0.6}})
    assert (by_hand["run_id"], by_hand["trusted"]) == ("", True)
    # a run that is not of this model cannot be named
    other = w.asset(w.mfolder, "other")
    foreign = w.api.ok("editor", "POST", "/runs", json={"kind": "train", "model": other})
    r = _evaluate(w, "editor", model, dataset, run_id=foreign["id"])
    assert r.status_code == 400 and "is no run of" in message(r), r.text
    assert len(w.api.admin("GET", f"/assets/{model}/evaluations")) == 2


def test_a_job_records_evaluations_only_of_its_own_model_while_it_runs(world: World) -> None:
    """The job-token path: the principal a job token stands for carries its run."""
    w = world
    hub = w.server.hub
    model, dataset = w.asset(w.mfolder, "net"), w.asset(w.dfolder, "data")
    runner = Principal(w.api.names["runner"])
    evaluate = hub.create_run(runner, kind="evaluate", model=model, base=f"{model}:main",
                              dataset=f"{dataset}:main")
    job = Principal(runner.name, job_run_id=evaluate.id)
    with pytest.raises(errors.ForbiddenError, match="may only act on its run"):
        hub.add_evaluation(job, f"{model}:main", dataset=f"{dataset}:main", metrics={"accuracy": 0.7},
                           run_id="f" * 32)  # a job names no other run
    e = hub.add_evaluation(job, f"{model}:main", dataset=f"{dataset}:main", metrics={"accuracy": 0.7})
    assert (e.run_id, e.created_by, e.trusted) == (evaluate.id, runner.name, True)
    # a merge run is no evaluation; nor is a run of another model
    editor = Principal(w.api.names["editor"])
    merge = hub.create_run(editor, kind="merge", model=model, branch="x")
    other = w.asset(w.mfolder, "other")
    foreign = hub.create_run(editor, kind="train", model=other)
    for run_id in (merge.id, foreign.id, "0" * 32):
        with pytest.raises(errors.ForbiddenError, match="only an evaluate, train or continue-train"):
            hub.add_evaluation(Principal(editor.name, job_run_id=run_id), f"{model}:main",
                               dataset=f"{dataset}:main", metrics={"accuracy": 1.0})
    # once its run has ended, the job's token records nothing more
    hub.update_run(runner, evaluate.id, state="completed")
    with pytest.raises(errors.ForbiddenError, match="has ended"):
        hub.add_evaluation(job, f"{model}:main", dataset=f"{dataset}:main", metrics={"accuracy": 1.0})
    assert [x.id for x in hub.list_evaluations(editor, model)] == [e.id]


def test_evaluations_stored_before_the_rule_are_kept_untrusted(tmp_path: Path) -> None:
    """Before, ``run`` on the model was enough to post one: the migration marks them untrusted."""
    from alembic import command

    from assethub.catalog.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0004")
    old = Catalog(url)
    try:
        with old.session() as s:
            s.execute(text("insert into evaluations (id, model_path, model_commit, dataset_ref, "
                           "dataset_commit, metrics, run_id, created_by, created_at) values "
                           "('a', 'o/model/f/n', 'c', 'o/dataset/f/d:v1', 'dc', '{\"accuracy\": 1.0}', "
                           "'', 'mallory', '2026-01-01 00:00:00')"))
            for i, (kind, name) in enumerate((("model", "n"), ("dataset", "d")), start=1):
                s.execute(text(f"insert into folders (id, owner, kind, name, description, created_at, "
                               f"created_by) values ({i}, 'o', '{kind}', 'f', '', '2025-01-01 00:00:00', "
                               "'o')"))
                s.execute(text(f"insert into assets (id, folder_id, name, repository, description, "
                               f"labels, readme, preset, created_at, created_by, updated_at) values "
                               f"({i}, {i}, '{name}', 'r{i}', '', '[]', '', 0, '2025-01-01 00:00:00', 'o', "
                               f"'2025-01-01 00:00:00')"))
            s.execute(text("insert into follows (model_path, dataset_path, settings, created_by, "
                           "created_at) values ('o/model/f/n', 'o/dataset/f/d', '{}', 'o', "
                           "'2026-01-01 00:00:00')"))
        old.migrate()
        with old.session() as s:
            e = s.get(Evaluation, "a")
            assert e is not None and e.trusted is False and e.created_by == "mallory"
            s.add(Evaluation(id="b", model_path="o/model/f/n", model_commit="c", dataset_ref="d:v1",
                             dataset_commit="dc", metrics={}))
        with old.session() as s:
            new = s.get(Evaluation, "b")
            assert new is not None and new.trusted is True
            assert s.execute(text("select paused from follows")).scalar() == ""
    finally:
        old.dispose()


# -- follows ----------------------------------------------------------------------------------
def _follow_of(w: World, who: str, follow_id: int) -> dict[str, Any]:
    found = [f for f in w.api.ok(who, "GET", "/follows") if f["id"] == follow_id]
    assert len(found) == 1, found
    return found[0]


def _paused(w: World, who: str, follow_id: int) -> str:
    return str(_follow_of(w, who, follow_id)["paused"])


def test_a_follow_whose_owner_lost_a_right_is_paused_and_resumed_by_its_owner(
        world: World, tmp_path: Path) -> None:
    from tests.integration.test_cli import Cli

    w = world
    assert w.server.hub.lakefs_hook.secret, "lakeFS calls the hook on a dataset's new commits"
    dataset, model = w.asset(w.dfolder, "data"), w.asset(w.mfolder, "net")
    # the editor follows: edit on the model, and (edit on the dataset) installs the action
    f = w.api.ok("editor", "POST", "/follows", json={"model": model, "dataset": dataset,
                                                     "settings": {"repo": REPO}})
    assert f["paused"] == "" and f["created_by"] == w.api.names["editor"]
    # the owner takes the editor's edit on the model away: run is not enough to retrain it
    w.share(w.mfolder, "editor", "run")
    try:
        w.api.commit("owner", dataset, {"a/2.txt": b"more"})  # lakeFS calls the hook
        why = wait_for("the hook to pause the follow", lambda: _paused(w, "editor", f["id"]),
                       timeout=60, every=0.2)
        assert why == f"its owner {w.api.names['editor']} no longer has 'edit' on the model {model}"
        assert [r for r in w.api.admin("GET", "/runs", params={"model": model})] == [], "nothing started"
        # the CLI shows it (to anyone who sees the model)
        cli = Cli(w.server.url, w.api.tokens["runner"], tmp_path / "cli")
        assert "paused: its owner" in cli("follows", "--model", model)
        # resuming needs the rights back first; only its owner may resume it
        r = w.api.call("editor", "POST", f"/follows/{f['id']}/resume")
        assert r.status_code == 403 and "stays paused" in message(r), r.text
    finally:
        w.share(w.mfolder, "editor", "edit")
    r = w.api.call("owner", "POST", f"/follows/{f['id']}/resume")
    assert r.status_code == 403 and "only the follow's owner" in message(r), r.text
    editor_cli = Cli(w.server.url, w.api.tokens["editor"], tmp_path / "editor")
    assert f"follow {f['id']} is active" in editor_cli("resume-follow", str(f["id"]))
    assert _paused(w, "editor", f["id"]) == ""
    # a disabled owner's follow pauses at the next trigger too
    editor = w.api.names["editor"]
    w.api.admin("PATCH", f"/users/{editor}", json={"disabled": True})
    try:
        w.api.commit("owner", dataset, {"a/3.txt": b"again"})
        why = wait_for("the hook to pause the follow", lambda: _paused(w, "owner", f["id"]),
                       timeout=60, every=0.2)
        assert why == f"its owner {editor} is disabled"
    finally:
        w.api.admin("PATCH", f"/users/{editor}", json={"disabled": False})
    # a paused follow can be deleted (by an editor of the model)
    w.api.ok("editor", "DELETE", f"/follows/{f['id']}")
    assert [x for x in w.api.ok("owner", "GET", "/follows") if x["id"] == f["id"]] == []


def test_an_active_follow_is_not_paused_by_the_hook(world: World) -> None:
    w = world
    dataset, model = w.asset(w.dfolder, "data"), w.asset(w.mfolder, "net")
    f = w.api.ok("owner", "POST", "/follows", json={"model": model, "dataset": dataset,
                                                    "settings": {"repo": REPO}})
    hub = w.server.hub
    from assethub.follows import on_lakefs_event

    repository = hub.get_asset(Principal("admin", is_admin=True), dataset).repository
    out = on_lakefs_event(hub, hub.lakefs_hook.secret, {
        "repository_id": repository, "branch_id": "main", "commit_id": "c" * 64,
        "event_type": "post-commit"})
    assert out["follows"] == 1 and "paused" not in out, out
    assert _paused(w, "owner", f["id"]) == ""


# -- runs whose job never started -------------------------------------------------------------
def test_a_run_whose_job_never_started_is_recorded_crashed(world: World) -> None:
    w = world
    hub = w.server.hub
    model = w.asset(w.mfolder, "net")
    editor = Principal(w.api.names["editor"])
    never = hub.create_run(editor, kind="train", model=model)
    started = hub.create_run(editor, kind="train", model=model)
    hub.update_run(editor, started.id, prefect_flow_run_id="0" * 32)
    system = Principal("assethub-server", is_admin=True)
    # younger than the setting: left alone
    assert never.id not in {r.id for r in hub.record_crashes(system, lambda ids: {},
                                                             never_started_after=3600)}
    marked = hub.record_crashes(system, lambda ids: {}, never_started_after=0)
    assert never.id in {r.id for r in marked} and started.id not in {r.id for r in marked}
    view = hub.get_run(editor, never.id)
    assert view.state == "crashed" and view.finished_at is not None
    assert view.error == "its job never started: pending for more than 0 s without a flow run"
    assert hub.get_run(editor, started.id).state == "pending", "it has a flow run: that one decides"
    with pytest.raises(errors.ForbiddenError):
        hub.record_crashes(editor, lambda ids: {}, never_started_after=0)


def test_a_scheduled_retrain_re_checks_the_owner_and_pauses_the_follow(world: World) -> None:
    """A schedule or automation fires: the service user asks for the follow's retrain, which is
    registered as the follow's owner only while the owner still holds the rights."""
    from assethub import follows

    w = world
    hub = w.server.hub
    service = Principal(hub.jobs.service_user)
    dataset, model = w.asset(w.dfolder, "sched-data"), w.asset(w.mfolder, "sched-net")
    f = w.api.ok("editor", "POST", "/follows", json={"model": model, "dataset": dataset,
                                                     "settings": {"repo": REPO}})
    # nobody but the service user starts a follow's retrain
    r = w.api.call("editor", "POST", f"/follows/{f['id']}/runs", params={"trigger": "schedule"})
    assert r.status_code == 403 and "only the service user" in message(r), r.text
    w.share(w.mfolder, "editor", "run")  # the owner loses edit on the model
    try:
        with pytest.raises(errors.ForbiddenError, match=r"is paused: its owner .* no longer has 'edit'"):
            follows.start_follow_run(hub, service, f["id"], trigger="schedule")
        assert "no longer has 'edit'" in _paused(w, "editor", f["id"])
        assert w.api.admin("GET", "/runs", params={"model": model}) == [], "nothing started"
        # paused stays paused: the next firing is refused without a new check
        with pytest.raises(errors.ForbiddenError, match="is paused"):
            follows.start_follow_run(hub, service, f["id"], trigger="schedule")
    finally:
        w.share(w.mfolder, "editor", "edit")
    w.api.ok("editor", "POST", f"/follows/{f['id']}/resume")
    run, token = follows.start_follow_run(hub, service, f["id"], trigger="schedule")
    assert token and (run.kind, run.trigger, run.created_by) == ("retrain", "schedule", w.api.names["editor"])
    hub.update_run(Principal(w.api.names["editor"]), run.id, state="failed", error="test: not run")
    w.api.ok("editor", "DELETE", f"/follows/{f['id']}")
