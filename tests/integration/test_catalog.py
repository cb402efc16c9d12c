"""The catalog on SQLite and on a real PostgreSQL server, through the Hub (real lakeFS too)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, text

from assethub.catalog import ApiToken, Asset, AuditEvent, Catalog, ConsoleSession, Folder, Share
from assethub.errors import (
    AlreadyExistsError,
    AssetNotFoundError,
    AuthenticationError,
    NotFoundError,
)
from assethub.hub import CatalogLocator, DatasetMeta, Hub, Principal
from assethub.refs import AssetRef
from assethub.storage import AddFile, Storage
from tests._clock import Clock

pytestmark = pytest.mark.integration


def _empty_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str, filename: str) -> str:
    """The URL of an empty database: a SQLite file, or a fresh database on the session's
    PostgreSQL server."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / filename}"
    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = Catalog(base)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(_empty_database(request, tmp_path, request.param, "catalog.db"))
    cat.migrate()
    yield cat
    cat.dispose()


def make_hub(catalog: Catalog, lakefs_server: Any, work: Path) -> Hub:
    """A hub as the server builds it: storage finds repositories through the catalog."""
    storage = Storage(lakefs_server.endpoint, lakefs_server.access_key_id,
                      lakefs_server.secret_access_key, cache_dir=work / "cache",
                      locate=CatalogLocator(catalog))
    return Hub(catalog, storage, work_dir=work / "work")


@pytest.fixture
def hub(catalog: Catalog, lakefs_server: Any, tmp_path: Path) -> Hub:
    return make_hub(catalog, lakefs_server, tmp_path)


@pytest.fixture
def other_hub(catalog: Catalog, lakefs_server: Any, tmp_path: Path) -> Iterator[Hub]:
    """A second server's hub on the same catalog database (its own engine, storage, cache)."""
    second = Catalog(catalog.url)
    yield make_hub(second, lakefs_server, tmp_path / "other")
    second.dispose()


def test_migrations_create_every_table_and_are_idempotent(catalog: Catalog) -> None:
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"users", "groups", "memberships", "api_tokens", "folders", "assets", "shares",
            "publications", "audit_events", "runs", "evaluations", "follows", "services",
            "alembic_version"} <= tables
    catalog.migrate()  # a second run is a no-op
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from assethub.catalog.db import MIGRATIONS, _alembic_config
    from assethub.catalog.models import Base

    head = ScriptDirectory.from_config(_alembic_config(catalog.url)).get_current_head()
    assert head is not None and (MIGRATIONS / "versions").is_dir()
    with catalog.engine.connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar() == head
        # the migrations build exactly the tables the models describe
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_console_sessions_stand_on_their_token(hub: Hub, catalog: Catalog) -> None:
    """A console session: only its hash is stored; it ends at sign-out, after its hours, when its
    token expires or is revoked, and when its user is disabled; job tokens cannot sign in."""
    hub.clock = clock = Clock()
    admin = hub.authenticate(hub.ensure_admin("root"))
    hub.create_user(admin, "carol")
    _, token = hub.create_token(admin, "carol", expires_in_days=30)
    secret, login = hub.sessions.sign_in(token)
    assert login.principal.name == "carol" and len(login.csrf) > 20
    with catalog.session() as s:
        assert s.scalars(select(ConsoleSession.session_hash)).all() == [
            hashlib.sha256(secret.encode()).hexdigest()]
    checked = hub.sessions.check(secret)
    assert checked is not None and checked.principal.name == "carol"
    assert hub.sessions.csrf_matches(checked, login.csrf)
    assert not hub.sessions.csrf_matches(checked, "") and not hub.sessions.csrf_matches(checked, "x")
    assert hub.sessions.check("ahs_not-a-session") is None and hub.sessions.check(None) is None
    clock.advance(hours=12, seconds=1)
    assert hub.sessions.check(secret) is None  # a session lasts 12 hours
    # ... or less, when its token expires first
    _, short = hub.create_token(admin, "carol", expires_in_days=0.25)
    secret, login = hub.sessions.sign_in(short)
    assert login.expires_at == clock() + timedelta(hours=6)
    clock.advance(hours=6)
    assert hub.sessions.check(secret) is None
    # revoked token, disabled user, sign-out: over
    view, token = hub.create_token(admin, "carol")
    first, _ = hub.sessions.sign_in(token)
    second, _ = hub.sessions.sign_in(token)
    hub.sessions.sign_out(first)
    assert hub.sessions.check(first) is None and hub.sessions.check(second) is not None
    hub.update_user(admin, "carol", disabled=True)
    assert hub.sessions.check(second) is None
    hub.update_user(admin, "carol", disabled=False)
    assert hub.sessions.check(second) is not None
    hub.revoke_token(admin, view.id)
    assert hub.sessions.check(second) is None
    with pytest.raises(AuthenticationError, match="revoked"):
        hub.sessions.sign_in(token)
    with pytest.raises(AuthenticationError, match="job token"):
        hub.sessions.sign_in("ahj_anything")
    actions = [e.action for e in hub.audit(admin, actor="carol")]
    assert "session.create" in actions and "session.end" in actions


def test_tokens_are_stored_hashed_and_expire_and_revoke(hub: Hub, catalog: Catalog) -> None:
    hub.clock = clock = Clock()
    secret = hub.ensure_admin("root")
    assert secret is not None and hub.ensure_admin("root") is None
    admin = hub.authenticate(secret)
    assert admin == Principal("root", True, frozenset())
    with catalog.session() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored

    hub.create_user(admin, "bob")
    view, short = hub.create_token(admin, "bob", name="ci", expires_in_days=1)
    assert view.expires_at is not None and view.expires_at.tzinfo is not None
    assert view.expires_at == clock() + timedelta(days=1)
    clock.advance(days=1, seconds=-1)
    assert hub.authenticate(short).name == "bob"  # (and now remembered for a few seconds...)
    clock.advance(seconds=1)
    with pytest.raises(AuthenticationError, match="expired"):  # (...but not past its expiry)
        hub.authenticate(short)
    view2, long = hub.create_token(admin, "bob", name="laptop")
    hub.revoke_token(Principal("bob"), view2.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        hub.authenticate(long)
    with pytest.raises(AuthenticationError, match="unknown"):
        hub.authenticate("ah_not-a-token")
    hub.update_user(admin, "bob", disabled=True)
    _, third = hub.create_token(admin, "bob")
    with pytest.raises(AuthenticationError, match="disabled"):
        hub.authenticate(third)


def test_folders_assets_shares_and_cascading_delete(hub: Hub, catalog: Catalog) -> None:
    admin = hub.authenticate(hub.ensure_admin("root"))
    hub.create_user(admin, "ann")
    hub.create_group(admin, "team")
    hub.add_member(admin, "team", "ann")
    assert hub.authenticate(hub.create_token(admin, "ann")[1]).groups == frozenset({"team"})
    ann = Principal("ann", False, frozenset({"team"}))
    owner = f"own{uuid.uuid4().hex[:6]}"
    hub.create_user(admin, owner)
    me = Principal(owner)
    hub.create_folder(me, f"{owner}/dataset/images", description="pictures")
    with pytest.raises(AlreadyExistsError):
        hub.create_folder(me, f"{owner}/dataset/images")
    a = hub.create_asset(me, f"{owner}/dataset/images/数字", labels=["digits", "digits", "png"],
                         dataset=DatasetMeta("image_classification", "dir", "ratio", 0.9))
    assert a.labels == ("digits", "png") and a.dataset is not None
    assert a.dataset.split_ratio == 0.9 and a.created_at.tzinfo is not None
    hub.share(me, f"{owner}/dataset/images", subject_type="group", subject_name="team",
              role="view")
    assert [v.path.name for v in hub.search(ann, label="digits")] == ["数字"]
    assert hub.role(ann, f"{owner}/dataset/images/数字") == "view"
    renamed = hub.update_asset(me, f"{owner}/dataset/images/数字", new_name="digits-v2")
    assert str(renamed.path) == f"{owner}/dataset/images/digits-v2"
    # the storage follows the rename: the history is still there under the new name
    assert hub.log(me, f"{owner}/dataset/images/digits-v2:main")
    with pytest.raises(NotFoundError):
        hub.get_asset(me, f"{owner}/dataset/images/数字")

    hub.delete_folder(me, f"{owner}/dataset/images")
    with catalog.session() as s:
        assert s.scalar(select(Folder).where(Folder.owner == owner)) is None
        assert s.scalar(select(Asset).where(Asset.name == "digits-v2")) is None
        assert not s.scalars(select(Share).where(Share.subject_name == "team")).all()
    assert not hub.storage.asset_exists(f"{owner}/dataset/images/digits-v2")


def _write(hub: Hub, who: Principal, ref: str, name: str, data: bytes, tmp: Path) -> str:
    """One file committed through the hub's storage, after the hub's check (as jobs write)."""
    hub.check(who, ref.split(":")[0], "edit")
    local = tmp / uuid.uuid4().hex
    local.write_bytes(data)
    return hub.storage.commit(ref, [AddFile(local, name)], message=f"write {name}").id


def test_two_hubs_on_one_catalog_agree_on_repositories(hub: Hub, other_hub: Hub,
                                                        tmp_path: Path) -> None:
    """The catalog alone maps paths to repositories: a rename or a delete-and-create made on
    one server is what every other server on the catalog reaches next, with nothing cached."""
    a, b = hub, other_hub
    owner = f"two{uuid.uuid4().hex[:6]}"
    a.create_user(a.authenticate(a.ensure_admin("root")), owner)
    me = Principal(owner)
    a.create_folder(me, f"{owner}/model/f")
    old, new = f"{owner}/model/f/net", f"{owner}/model/f/net2"
    repo = a.create_asset(me, old).repository
    first = _write(a, me, f"{old}:main", "w.bin", b"1", tmp_path)
    assert b.get_commit(me, f"{old}:main").id == first  # b has used the old path

    # renamed on a: b reads and writes by the new path, into the same repository
    a.update_asset(me, old, new_name="net2")
    assert b.storage.repository(new) == repo
    assert [o.path for o in b.list_objects(me, f"{new}:main")] == ["w.bin"]
    second = _write(b, me, f"{new}:main", "x.bin", b"2", tmp_path)
    assert [c.id for c in a.log(me, f"{new}:main")][:2] == [second, first]
    with pytest.raises(NotFoundError):
        b.log(me, f"{old}:main")
    with pytest.raises(AssetNotFoundError):
        b.storage.repository(old)
    # storage kept the repository's own metadata in step, for standalone listing
    assert {str(i.path) for i in b.storage.list_assets() if i.repository == repo} == {new}

    # the folder renamed on b: a follows
    b.update_folder(me, f"{owner}/model/f", new_name="g")
    moved = f"{owner}/model/g/net2"
    assert a.get_commit(me, f"{moved}:main").id == second
    assert not a.storage.asset_exists(new)

    # deleted and created again on a: b reaches the new, empty repository, not the old one
    a.delete_asset(me, moved)
    with pytest.raises(NotFoundError):
        b.list_objects(me, f"{moved}:main")
    fresh = a.create_asset(me, moved).repository
    assert fresh != repo and b.storage.repository(moved) == fresh
    assert b.list_objects(me, f"{moved}:main") == []
    assert second not in {c.id for c in b.log(me, f"{moved}:main")}
    third = _write(b, me, f"{moved}:main", "y.bin", b"3", tmp_path)
    assert [o.path for o in a.list_objects(me, f"{moved}:main")] == ["y.bin"]
    assert a.get_commit(me, f"{moved}:main").id == third


def test_the_locator_reads_committed_records_while_a_session_writes(hub: Hub,
                                                                     catalog: Catalog) -> None:
    """Storage looks up the catalog inside an open hub session too (renames and deletes do):
    the lookup waits for no lock or connection the session holds and sees committed rows."""
    admin = hub.authenticate(hub.ensure_admin("root"))
    folder = f"root/model/l{uuid.uuid4().hex[:6]}"
    hub.create_folder(admin, folder)
    repo = hub.create_asset(admin, f"{folder}/net").repository
    with catalog.session() as s:
        row = s.scalar(select(Asset).where(Asset.repository == repo))
        assert row is not None
        row.name = "renamed"
        s.flush()  # the write is in the database, uncommitted; the row is locked
        assert hub.storage.repository(f"{folder}/net") == repo
        with pytest.raises(AssetNotFoundError):
            hub.storage.repository(f"{folder}/renamed")
    assert hub.storage.repository(f"{folder}/renamed") == repo


def test_stale_writes_are_swept(hub: Hub) -> None:
    admin = hub.authenticate(hub.ensure_admin("root"))
    hub.create_folder(admin, "root/model/sweep")
    hub.create_asset(admin, "root/model/sweep/net")
    hub.start_upload(admin, "root/model/sweep/net:main")  # a writer that never comes back
    assert len(hub.storage.transaction_branches("root/model/sweep/net")) == 1
    assert hub.cleanup_stale_writes() == 0  # young: it may still be writing
    assert hub.cleanup_stale_writes(older_than=0) == 1
    assert hub.storage.transaction_branches("root/model/sweep/net") == []


def test_audit_log_records_outcomes(hub: Hub) -> None:
    admin = hub.authenticate(hub.ensure_admin("root"))
    hub.create_user(admin, "eve")
    eve = Principal("eve")
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the outcome is what we check
        hub.create_folder(eve, "root/model/secret")
    hub.create_folder(eve, "eve/model/mine")
    events = hub.audit(admin, actor="eve")
    assert [(e.action, e.outcome) for e in events] == [("folder.create", "ok"),
                                                       ("folder.create", "denied")]
    assert all(e.at.tzinfo is not None for e in events)
    assert [e.actor for e in hub.audit(eve)] == ["eve", "eve"]  # users see their own events


def test_server_runs_on_postgresql(lakefs_server: Any, postgres_url: str, tmp_path: Path) -> None:
    from tests.conftest import start_server

    running = start_server(lakefs_server, tmp_path / "pg-hub", catalog_url=postgres_url)
    try:
        h = {"Authorization": f"Bearer {running.admin_token}"}
        with httpx.Client(base_url=running.url + "/api/v1", headers=h, timeout=60) as c:
            assert c.post("/folders", json={"path": "admin/model/pg"}).status_code == 201
            assert c.post("/assets", json={"path": "admin/model/pg/net"}).status_code == 201
            up = c.post("/assets/admin/model/pg/net/uploads", json={"branch": "main"}).json()
            assert c.put(f"/uploads/{up['upload_id']}/files/w.bin", content=b"w").status_code == 200
            commit = c.post(f"/uploads/{up['upload_id']}/commit", json={"message": "on pg"}).json()
            assert commit["metadata"]["author"] == "admin"
            assert c.get("/assets/admin/model/pg/net/files/w.bin").content == b"w"
            actions = [e["action"] for e in c.get("/audit").json()]
            assert {"folder.create", "asset.create", "commit"} <= set(actions)
        with running.hub.catalog.session() as s:
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "commit")) is not None
        assert running.hub.catalog.engine.dialect.name == "postgresql"
    finally:
        running.server.should_exit = True
        running.thread.join(timeout=10)


def test_deleting_a_model_or_its_folder_removes_its_follows(hub: Hub) -> None:
    """A follow names its model and dataset by id: when either is deleted the follow goes too,
    so a new asset of that name starts without it (and can be followed again)."""
    from assethub.follows import create_follow, list_follows

    admin = hub.authenticate(hub.ensure_admin("root"))
    tag = uuid.uuid4().hex[:6]
    data, model = f"root/dataset/f{tag}/d", f"root/model/f{tag}/m"
    hub.create_folder(admin, f"root/dataset/f{tag}")
    hub.create_folder(admin, f"root/model/f{tag}")
    hub.create_asset(admin, data, dataset=DatasetMeta("image_classification", "dir", "ratio", 0.9))
    hub.create_asset(admin, model)
    settings = {"repo": "https://example.org/code.git"}
    create_follow(hub, admin, model, data, settings)
    assert [f.model for f in list_follows(hub, admin, model=model)] == [model]
    hub.delete_asset(admin, model)
    hub.create_asset(admin, model)
    assert list_follows(hub, admin, model=model) == []  # the new model inherits nothing
    create_follow(hub, admin, model, data, settings)  # not "exists"
    hub.delete_folder(admin, f"root/model/f{tag}")
    hub.create_folder(admin, f"root/model/f{tag}")
    hub.create_asset(admin, model)
    assert list_follows(hub, admin, model=model) == []


# -- records keyed by identity: runs, evaluations, follows, services and shares ------------------
def _model_and_data(hub: Hub, admin: Principal, owner: str) -> tuple[Principal, str, str]:
    """A user ``owner`` (created by ``admin``) with a model and a dataset."""
    hub.create_user(admin, owner)
    me = Principal(owner)
    hub.create_folder(me, f"{owner}/model/m")
    hub.create_folder(me, f"{owner}/dataset/d")
    hub.create_asset(me, f"{owner}/model/m/net")
    hub.create_asset(me, f"{owner}/dataset/d/pics",
                     dataset=DatasetMeta("image_classification", "dir", "ratio", 0.9))
    return me, f"{owner}/model/m/net", f"{owner}/dataset/d/pics"


def _service_row(catalog: Catalog, hub: Hub, who: Principal, model: str, name: str) -> None:
    """A service of ``model`` as the manager records one (on Kubernetes: no process to run)."""
    from assethub.catalog import Service

    with catalog.session() as s:
        asset = hub.permissions.asset(s, who, AssetRef.parse(model).path, "run")
        s.add(Service(name=name, model_id=asset.id, model_ref=model, model_commit="c" * 64,
                      target="kubernetes", state="stopped", created_by=who.name or ""))


@pytest.mark.attacks
def test_renamed_model_keeps_its_runs_evaluations_lineage_and_services(
        hub: Hub, catalog: Catalog, tmp_path: Path) -> None:
    """Runs, evaluations and services refer to assets by id: renaming a model (and its folder)
    and a dataset keeps them, and every view shows the current paths."""
    from assethub.follows import create_follow, list_follows
    from assethub.serving.manager import ServiceManager

    admin = hub.authenticate(hub.ensure_admin("root"))
    owner = f"ren{uuid.uuid4().hex[:6]}"
    me, model, data = _model_and_data(hub, admin, owner)
    run = hub.create_run(me, kind="train", model=model, dataset=f"{data}:main")
    ev = hub.add_evaluation(me, f"{model}:main", dataset=f"{data}:main", metrics={"acc": 0.9},
                            run_id=run.id)
    create_follow(hub, me, model, data, {"repo": "https://example.org/code.git"})
    _service_row(catalog, hub, me, f"{model}:main", f"svc{owner}")
    services = ServiceManager(hub, work_dir=tmp_path / "services")

    hub.update_asset(me, model, new_name="net2")
    hub.update_folder(me, f"{owner}/model/m", new_name="m2")
    hub.update_asset(me, data, new_name="pics2")
    new_model, new_data = f"{owner}/model/m2/net2", f"{owner}/dataset/d/pics2"

    runs = hub.list_runs(me, model=new_model)
    assert [(r.id, r.model, r.dataset_ref) for r in runs] == [(run.id, new_model, f"{new_data}:main")]
    assert hub.get_run(me, run.id).model == new_model
    evals = hub.list_evaluations(me, new_model)
    assert [(e.id, e.model, e.dataset_ref) for e in evals] == [(ev.id, new_model, f"{new_data}:main")]
    assert [e.id for e in hub.lineage(me, f"{new_model}:main").evaluations] == [ev.id]
    assert [(f.model, f.dataset) for f in list_follows(hub, me, model=new_model)] == [(new_model, new_data)]
    assert [(v.name, v.model) for v in services.list(me)] == [(f"svc{owner}", f"{new_model}:main")]
    with pytest.raises(NotFoundError):
        hub.list_runs(me, model=model)  # the old path names nothing now


@pytest.mark.attacks
def test_a_recreated_asset_starts_clean(hub: Hub, catalog: Catalog, tmp_path: Path) -> None:
    """Deleting a model detaches its runs, evaluations and services and deletes its follows: a
    new model of the same name (here another user's, through a share) shows none of them, and
    the old records stay with whoever made them, under the path they had."""
    from assethub.follows import create_follow, list_follows
    from assethub.serving.manager import ServiceManager

    admin = hub.authenticate(hub.ensure_admin("root"))
    owner = f"rec{uuid.uuid4().hex[:6]}"
    me, model, data = _model_and_data(hub, admin, owner)
    hub.create_user(admin, f"{owner}x")
    other = Principal(f"{owner}x")
    hub.share(me, f"{owner}/model/m", subject_type="user", subject_name=other.name or "", role="edit")
    hub.share(me, f"{owner}/dataset/d", subject_type="user", subject_name=other.name or "", role="run")
    run = hub.create_run(me, kind="train", model=model, dataset=f"{data}:main")
    ev = hub.add_evaluation(me, f"{model}:main", dataset=f"{data}:main", metrics={"acc": 0.9})
    create_follow(hub, me, model, data, {"repo": "https://example.org/code.git"})
    _service_row(catalog, hub, me, f"{model}:main", f"svc{owner}")
    services = ServiceManager(hub, work_dir=tmp_path / "services")
    assert [v.name for v in services.list(other)] == [f"svc{owner}"]

    hub.delete_asset(me, model)
    hub.create_asset(other, model)  # the same path, a new model (made by the other user)
    for who in (me, other):
        assert hub.list_runs(who, model=model) == []
        assert hub.list_evaluations(who, model) == []
        assert hub.lineage(who, f"{model}:main").evaluations == ()
        assert list_follows(hub, who, model=model) == []
    assert services.list(other) == []
    with pytest.raises(NotFoundError):
        hub.get_run(other, run.id)
    with pytest.raises(NotFoundError):
        services.get(other, f"svc{owner}")
    # the old records are kept, detached, for who made them: under the path they were made with
    assert hub.get_run(me, run.id).model == model
    assert [v.model for v in services.list(me)] == [f"{model}:main"]
    from assethub.catalog import Evaluation, Run, Service

    with catalog.session() as s:
        assert s.get(Run, run.id).model_id is None  # type: ignore[union-attr]
        assert s.get(Evaluation, ev.id).model_id is None  # type: ignore[union-attr]
        assert s.scalar(select(Service.model_id).where(Service.name == f"svc{owner}")) is None
    # a new follow of the new model is no "already exists"
    create_follow(hub, other, model, data, {"repo": "https://example.org/code.git"})


@pytest.mark.attacks
def test_a_deleted_groups_shares_do_not_pass_to_a_new_group_of_its_name(
        hub: Hub, catalog: Catalog) -> None:
    admin = hub.authenticate(hub.ensure_admin("root"))
    tag = uuid.uuid4().hex[:6]
    owner, ann, bob, group = f"own{tag}", f"ann{tag}", f"bob{tag}", f"grp{tag}"
    for name in (owner, ann, bob):
        hub.create_user(admin, name)
    hub.create_group(admin, group)
    hub.add_member(admin, group, ann)
    me = Principal(owner)
    hub.create_folder(me, f"{owner}/model/shared")
    hub.create_asset(me, f"{owner}/model/shared/net")
    hub.share(me, f"{owner}/model/shared", subject_type="group", subject_name=group, role="edit")
    ann_p = hub.authenticate(hub.create_token(admin, ann)[1])
    assert hub.role(ann_p, f"{owner}/model/shared/net") == "edit"
    assert [(v.subject_type, v.subject_name) for v in hub.list_shares(me, f"{owner}/model/shared")] \
        == [("group", group)]

    hub.delete_group(admin, group)
    with catalog.session() as s:  # the share went with its group
        assert s.scalars(select(Share).where(Share.subject_name == group)).all() == []
    hub.create_group(admin, group)  # the same name, other people
    hub.add_member(admin, group, bob)
    bob_p = hub.authenticate(hub.create_token(admin, bob)[1])
    assert bob_p.groups == frozenset({group})
    with pytest.raises(NotFoundError):
        hub.role(bob_p, f"{owner}/model/shared/net")
    assert hub.list_shares(me, f"{owner}/model/shared") == []
    assert [v.path.name for v in hub.search(bob_p, owner=owner)] == []


def _old_row(cat: Catalog, meta: Any, table: str, **values: Any) -> None:
    """Insert into an old schema's ``table``, every other required column given an empty value."""
    from datetime import UTC, datetime

    t = meta.tables[table]
    for c in t.columns:
        if c.name in values or c.nullable or (c.primary_key and c.autoincrement):
            continue
        py = c.type.python_type
        values[c.name] = (datetime(2026, 1, 1, tzinfo=UTC) if py is datetime else {} if py is dict
                          else False if py is bool else 0 if py is int else "")
    with cat.engine.begin() as conn:
        conn.execute(t.insert().values(**values))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.attacks
def test_migration_0006_keys_existing_records_by_id(backend: str, request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    """A catalog made at revision 0004 with records in it: upgrading fills in the ids from the
    paths and names; records whose asset or subject is gone, or is a later one of the same name,
    are not attached to it."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import MetaData

    from assethub.catalog.db import _alembic_config

    url = _empty_database(request, tmp_path, backend, "old.db")
    cat = Catalog(url)
    try:
        cfg = _alembic_config(url)
        with cat.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
        early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
        meta = MetaData()
        meta.reflect(cat.engine)

        def row(table: str, **values: Any) -> None:
            _old_row(cat, meta, table, **values)

        row("users", id=1, name="ann", created_at=early)
        row("groups", id=1, name="team", created_at=early)
        row("groups", id=2, name="late", created_at=late)  # made again after its share
        row("folders", id=1, owner="ann", kind="model", name="m", created_at=early)
        row("folders", id=2, owner="ann", kind="dataset", name="d", created_at=early)
        row("assets", id=1, folder_id=1, name="net", repository="r1", labels=[], created_at=early)
        row("assets", id=2, folder_id=2, name="pics", repository="r2", labels=[], created_at=early)
        row("assets", id=3, folder_id=1, name="new", repository="r3", labels=[], created_at=late)
        m, d = "ann/model/m/net", "ann/dataset/d/pics"
        row("runs", id="a" * 32, kind="train", model_path=m, dataset_ref=f"{d}:main",
            base_ref=f"{m}:v1", created_at=late, params={}, metrics={})
        row("runs", id="b" * 32, kind="train", model_path="ann/model/m/gone", created_at=late,
            params={}, metrics={})
        row("runs", id="c" * 32, kind="train", model_path="ann/model/m/new", created_at=early,
            params={}, metrics={})  # made before "new": an older model of that name
        row("evaluations", id="e" * 32, model_path=m, model_commit="x", dataset_ref=f"{d}:v2",
            dataset_commit="y", created_at=late, metrics={})
        row("evaluations", id="f" * 32, model_path="ann/model/m/gone", model_commit="x",
            dataset_ref=f"{d}:main", dataset_commit="y", created_at=late, metrics={})
        row("follows", id=1, model_path=m, dataset_path=d, created_at=late, settings={})
        row("follows", id=2, model_path="ann/model/m/gone", dataset_path=d, created_at=late,
            settings={})
        row("services", id=1, name="s1", model_ref=f"{m}:main", model_commit="x", created_at=late)
        row("services", id=2, name="s2", model_ref="ann/model/m/gone:main", model_commit="x",
            created_at=late)
        for i, (kind, subject) in enumerate([("user", "ann"), ("group", "team"), ("everyone", ""),
                                             ("group", "late"), ("user", "nobody")], start=1):
            row("shares", id=i, folder_id=1, subject_type=kind, subject_name=subject, role="view",
                created_at=datetime(2026, 3, 1, tzinfo=UTC))

        cat.migrate()
        with cat.engine.connect() as c:
            def q(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in c.execute(text(sql))]

            assert q("select id, model_id, dataset_id, base_id from runs order by id") == [
                ("a" * 32, 1, 2, 1), ("b" * 32, None, None, None), ("c" * 32, None, None, None)]
            assert q("select id, model_id, dataset_id from evaluations order by id") == [
                ("e" * 32, 1, 2), ("f" * 32, None, 2)]
            assert q("select id, model_id, dataset_id from follows") == [(1, 1, 2)]
            assert q("select id, model_id from services order by id") == [(1, 1), (2, None)]
            assert q("select id, user_id, group_id from shares order by id") == [
                (1, 1, None), (2, None, 1), (3, None, None)]
            # the recorded path is kept for display
            assert q("select model_path from runs where model_id is null order by id") == [
                ("ann/model/m/gone",), ("ann/model/m/new",)]
        with cat.engine.begin() as conn:  # and back: the paths are all there still
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with cat.engine.connect() as c:
            assert "model_id" not in {col["name"] for col in inspect(c).get_columns("runs")}
            assert c.execute(text("select count(*) from runs")).scalar() == 3
        cat.migrate()
    finally:
        cat.dispose()
