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

from assethub.catalog import ApiToken, Asset, AuditEvent, Catalog, Folder, Share
from assethub.errors import (
    AlreadyExistsError,
    AssetNotFoundError,
    AuthenticationError,
    NotFoundError,
)
from assethub.hub import CatalogLocator, DatasetMeta, Hub, Principal
from assethub.storage import AddFile, Storage
from tests._clock import Clock

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        base = request.getfixturevalue("postgres_url")
        # a fresh database per test, on the session's server
        name = f"t_{uuid.uuid4().hex[:10]}"
        admin = Catalog(base)
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.rsplit("/", 1)[0] + "/" + name
    cat = Catalog(url)
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
    """A follow names its model and dataset by path: when either is deleted the follow goes too,
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
