"""Two Asset Hub servers on one PostgreSQL catalog and the session's lakeFS: any request to
either is correct. Uploads live in the catalog (started on one, files and commit on the other),
concurrent writes through both lose nothing, a token revoked or a share removed on one is seen
by the other at the next request (LISTEN/NOTIFY clears its caches), one server holds the lead of
the background loops, and a client given both retries on the other when one is SIGKILLed in the
middle of an upload."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from assethub import errors
from assethub.catalog import Catalog
from assethub.catalog.db import NOTIFY_CHANNEL, RECONNECTED
from assethub.client import Client
from tests._wait import wait_for
from tests.conftest import RunningServer, free_port, start_server
from tests.integration._prefect_world import on_prefect

pytestmark = pytest.mark.integration


@dataclass
class Replicas:
    catalog_url: str
    a: RunningServer
    b: RunningServer
    admin: str  # the admin's token (made by the first server; the second finds the user)


def _new_database(base: str) -> str:
    name = f"rep_{uuid.uuid4().hex[:10]}"
    admin = Catalog(base)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def replicas(lakefs_server: Any, postgres_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    url = _new_database(postgres_url)
    homes = [tmp_path_factory.mktemp("replica-a"), tmp_path_factory.mktemp("replica-b")]
    # replicas share the server's key for stored git credentials (a deployment mounts one
    # secret on each), else one could not read what the other stored
    key = Fernet.generate_key()
    for home in homes:
        (home / "server").mkdir()
        (home / "server" / "git-credentials.key").write_bytes(key)
    a = start_server(lakefs_server, homes[0], catalog_url=url)
    b = start_server(lakefs_server, homes[1], catalog_url=url)
    assert a.admin_token and not b.admin_token  # one admin, made once, on the shared catalog
    yield Replicas(url, a, b, a.admin_token)
    for r in (a, b):
        r.server.should_exit = True
    for r in (a, b):
        r.thread.join(timeout=10)
        r.hub.catalog.dispose()


@pytest.fixture(scope="module")
def alice(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A non-admin user's token (made through server A)."""
    admin = Client(replicas.a.url, replicas.admin, cache_dir=tmp_path_factory.mktemp("admin-cache"))
    admin.create_user("alice")
    return admin.create_token("alice", name="replicas").secret


def _client(url: str, token: str, tmp_path: Path, **kw: Any) -> Client:
    return Client(url, token, cache_dir=tmp_path / f"cache-{uuid.uuid4().hex[:6]}", **kw)


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _downloaded(hub: Client, ref: str, dest: Path) -> dict[str, str]:
    hub.download(ref, dest)
    return {p.relative_to(dest).as_posix(): _sha(p.read_bytes()) for p in dest.rglob("*") if p.is_file()}


# -- uploads are not tied to one server ---------------------------------------------------------
def test_an_upload_started_on_one_server_takes_files_on_the_other_and_commits_on_the_first(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    me = _client(replicas.a.url, alice, tmp_path)
    me.create_folder("alice/model/handover")
    me.create_asset("alice/model/handover/net")
    h = {"Authorization": f"Bearer {alice}"}
    with httpx.Client(base_url=replicas.a.url + "/api/v1", headers=h, timeout=60) as a, \
            httpx.Client(base_url=replicas.b.url + "/api/v1", headers=h, timeout=60) as b:
        start = "/assets/alice/model/handover/net/uploads"
        upload = a.post(start, json={"branch": "main"}).json()["upload_id"]
        assert b.put(f"/uploads/{upload}/files/w.bin", content=b"weights").status_code == 200
        assert a.put(f"/uploads/{upload}/files/README.md", content=b"# net").status_code == 200
        done = a.post(f"/uploads/{upload}/commit", json={"message": "across replicas"})
        assert done.status_code == 200, done.text
        # the commit answered again (a client retrying on the other replica) is the same commit
        again = b.post(f"/uploads/{upload}/commit", json={"message": "across replicas"})
        assert again.status_code == 200 and again.json()["id"] == done.json()["id"]
        # but no file goes into a committed upload
        late = b.put(f"/uploads/{upload}/files/late.bin", content=b"late")
        assert late.status_code == 409 and late.json()["error"]["type"] == "NotAllowedError"
        # someone else's upload is nobody's: the admin gets a 404 on either server
        other = a.post(start, json={"branch": "main"}).json()["upload_id"]
        adm = {"Authorization": f"Bearer {replicas.admin}"}
        assert b.put(f"/uploads/{other}/files/x", content=b"x", headers=adm).status_code == 404
        assert b.delete(f"/uploads/{other}").status_code in (200, 204)
        assert a.post(f"/uploads/{other}/commit", json={"message": "gone"}).status_code == 404
    files = _downloaded(_client(replicas.b.url, alice, tmp_path), "alice/model/handover/net:main",
                        tmp_path / "out")
    assert files == {"w.bin": _sha(b"weights"), "README.md": _sha(b"# net")}


# -- concurrent writes through both --------------------------------------------------------------
def test_concurrent_writes_through_both_servers_lose_nothing(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    setup = _client(replicas.a.url, alice, tmp_path)
    setup.create_folder("alice/model/busy")
    for name in ("shared", "own0", "own1"):
        setup.create_asset(f"alice/model/busy/{name}")
    writers = [("shared", replicas.a.url), ("shared", replicas.b.url), ("shared", replicas.a.url),
               ("shared", replicas.b.url), ("own0", replicas.a.url), ("own1", replicas.b.url)]
    rounds = 3
    expected: dict[str, dict[str, str]] = {"shared": {}, "own0": {}, "own1": {}}
    commits: dict[str, list[str]] = {"shared": [], "own0": [], "own1": []}
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(writers))

    def write(i: int, asset: str, url: str) -> None:
        try:
            hub = _client(url, alice, tmp_path)
            start.wait()
            for k in range(rounds):
                data = f"writer {i} round {k} {uuid.uuid4().hex}".encode() * 100
                src = _tree(tmp_path / f"w{i}-{k}", {f"w{i}/r{k}.txt": data})
                c = hub.upload(f"alice/model/busy/{asset}:main", src, message=f"w{i} r{k}")
                with lock:
                    expected[asset][f"w{i}/r{k}.txt"] = _sha(data)
                    commits[asset].append(c.id)
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(i, asset, url)) for i, (asset, url) in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not failures, failures
    reader = _client(replicas.b.url, alice, tmp_path)
    for asset, files in expected.items():
        assert _downloaded(reader, f"alice/model/busy/{asset}:main", tmp_path / f"read-{asset}") == files
        logged = {c.id for c in reader.log(f"alice/model/busy/{asset}:main", limit=100)}
        assert set(commits[asset]) <= logged  # every commit is in the history: none lost
    assert len(commits["shared"]) == 4 * rounds


def test_concurrent_commits_from_one_parent_through_both_servers_fail_cleanly(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    """Writers that each require the same parent commit: one wins, the others get the clean
    ConcurrentUpdateError or MergeConflictError (no other error, no half-commit), and main
    holds the winner's file."""
    setup = _client(replicas.a.url, alice, tmp_path)
    setup.create_folder("alice/model/race")
    setup.create_asset("alice/model/race/net")
    base = setup.upload("alice/model/race/net:main", _tree(tmp_path / "base", {"v.txt": b"base"}),
                        message="base").id
    urls = [replicas.a.url, replicas.b.url] * 2
    outcomes: dict[int, Any] = {}
    start = threading.Barrier(len(urls))

    def write(i: int, url: str) -> None:
        hub = _client(url, alice, tmp_path)
        src = _tree(tmp_path / f"race{i}", {"v.txt": f"writer {i}".encode()})
        start.wait()
        try:
            outcomes[i] = hub.upload("alice/model/race/net:main", src, message=f"w{i}", parent_commit=base)
        except errors.AssetHubError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=write, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    won = {i: c for i, c in outcomes.items() if not isinstance(c, errors.AssetHubError)}
    lost = {i: e for i, e in outcomes.items() if isinstance(e, errors.AssetHubError)}
    assert len(outcomes) == len(urls) and len(won) == 1, outcomes
    # refused whole: the parent moved (seen before the merge) or the merge met the winner's file
    assert all(isinstance(e, errors.ConcurrentUpdateError | errors.MergeConflictError)
               for e in lost.values()), lost
    (winner, commit), = won.items()
    reader = _client(replicas.b.url, alice, tmp_path)
    assert reader.resolve("alice/model/race/net:main") == commit.id
    assert _downloaded(reader, "alice/model/race/net:main", tmp_path / "won") == {
        "v.txt": _sha(f"writer {winner}".encode())}


# -- caches across replicas -----------------------------------------------------------------------
def test_a_token_revoked_or_a_user_disabled_on_one_server_is_refused_by_the_other_at_once(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    admin_a = _client(replicas.a.url, replicas.admin, tmp_path)
    made = admin_a.create_token("alice", name="to-revoke")
    on_b = _client(replicas.b.url, made.secret, tmp_path)
    assert on_b.whoami().name == "alice"  # B has it cached now
    admin_a.revoke_token(made.token.id)
    with pytest.raises(errors.AuthenticationError, match="revoked"):
        on_b.whoami()  # the next request, no wait
    admin_a.create_user("carol")
    carol_b = _client(replicas.b.url, admin_a.create_token("carol").secret, tmp_path)
    assert carol_b.whoami().name == "carol"
    admin_a.update_user("carol", disabled=True)
    with pytest.raises(errors.AuthenticationError, match="disabled"):
        carol_b.whoami()


def test_a_share_removed_on_one_server_hides_the_folder_on_the_other(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    admin_a = _client(replicas.a.url, replicas.admin, tmp_path)
    admin_a.create_user("dave")
    dave_b = _client(replicas.b.url, admin_a.create_token("dave").secret, tmp_path)
    alice_a = _client(replicas.a.url, alice, tmp_path)
    alice_a.create_folder("alice/dataset/shared")
    alice_a.share("alice/dataset/shared", role="view", user="dave")
    assert dave_b.get_folder("alice/dataset/shared").your_role == "view"
    alice_a.unshare("alice/dataset/shared", user="dave")
    with pytest.raises(errors.NotFoundError):
        dave_b.get_folder("alice/dataset/shared")  # the next request, no wait



def test_an_assets_access_changed_on_one_server_holds_on_the_other_at_once(
        replicas: Replicas, alice: str, tmp_path: Path) -> None:
    """B remembers what its role checks and repository look-ups read of an asset; every change
    made on A (role, rename, share removed, asset deleted and made again) holds on B at its
    next request."""
    admin_a = _client(replicas.a.url, replicas.admin, tmp_path)
    admin_a.create_user("erin")
    erin_b = _client(replicas.b.url, admin_a.create_token("erin").secret, tmp_path)
    alice_a = _client(replicas.a.url, alice, tmp_path)
    alice_a.create_folder("alice/model/seen")
    alice_a.create_asset("alice/model/seen/net")
    (tmp_path / "w.bin").write_bytes(b"weights")
    alice_a.upload("alice/model/seen/net:main", tmp_path / "w.bin", message="w")
    alice_a.share("alice/model/seen", role="edit", user="erin")
    erin_b.create_branch("alice/model/seen/net", "b1")  # B has read the asset's facts
    assert [o.path for o in erin_b.list_objects("alice/model/seen/net:main")] == ["w.bin"]

    alice_a.share("alice/model/seen", role="view", user="erin")  # a narrower role
    with pytest.raises(errors.ForbiddenError):
        erin_b.create_branch("alice/model/seen/net", "b2")

    alice_a.update_asset("alice/model/seen/net", new_name="net2")
    with pytest.raises(errors.NotFoundError):
        erin_b.list_objects("alice/model/seen/net:main")
    assert [o.path for o in erin_b.list_objects("alice/model/seen/net2:main")] == ["w.bin"]

    alice_a.unshare("alice/model/seen", user="erin")
    with pytest.raises(errors.NotFoundError):
        erin_b.list_objects("alice/model/seen/net2:main")

    # deleted and made again at the same path: a new repository, reached from B at once
    alice_a.share("alice/model/seen", role="view", user="erin")
    assert erin_b.list_objects("alice/model/seen/net2:main")
    alice_a.delete_asset("alice/model/seen/net2")
    alice_a.create_asset("alice/model/seen/net2")
    assert erin_b.list_objects("alice/model/seen/net2:main") == []

# -- one leader among replicas -------------------------------------------------------------------
def test_one_server_leads_the_background_loops_and_another_takes_over(replicas: Replicas) -> None:
    a, b = replicas.a.hub.catalog, replicas.b.hub.catalog
    with a.leadership("test.replicas.loop") as a_leads:
        with b.leadership("test.replicas.loop") as b_leads:
            assert a_leads() and not b_leads()  # while A leads, B does not
        with b.leadership("test.replicas.other") as b_other:
            assert b_other()  # leaderships are per name
    with b.leadership("test.replicas.loop") as b_leads:
        assert b_leads()  # A let go: B takes it


def test_notifications_reach_the_other_server_and_survive_a_lost_connection(replicas: Replicas) -> None:
    heard: list[tuple[str, str]] = []
    replicas.b.hub.catalog.subscribe(lambda ch, payload: heard.append((ch, payload)))
    replicas.a.hub.catalog.publish("test.replicas", "hello")
    wait_for("B to hear A's message", lambda: ("test.replicas", "hello") in heard, timeout=10)
    heard.clear()
    # the listening connections are cut (a PostgreSQL restart, a proxy timeout): each server
    # listens again and, having maybe missed messages, forgets what it cached
    with replicas.a.hub.catalog.engine.connect() as c:
        cut = c.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND query = 'LISTEN {NOTIFY_CHANNEL}'")).all()
    assert cut
    # told twice: when the connection is lost, and when it listens again
    wait_for("B to listen again", lambda: heard.count((RECONNECTED, "")) >= 2, timeout=30)
    replicas.a.hub.catalog.publish("test.replicas", "again")
    wait_for("B to hear A's next message", lambda: ("test.replicas", "again") in heard, timeout=10)
    # and B's caches answer again (while it was not listening, they were bypassed)
    wait_for("B to have read every message", lambda: not replicas.b.hub.catalog.changes_pending(),
             timeout=10)


# -- a server killed mid-upload ------------------------------------------------------------------
@pytest.fixture
def killable(replicas: Replicas, lakefs_server: Any,
             tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A third server on the same catalog, as its own process (`python -m assethub.server`)."""
    port = free_port()
    home = tmp_path / "replica-c"
    home.mkdir()
    env = {**os.environ, "ASSETHUB_HOME": str(home), "ASSETHUB_CATALOG_URL": replicas.catalog_url,
           "ASSETHUB_LAKEFS_ENDPOINT": lakefs_server.endpoint,
           "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lakefs_server.access_key_id,
           "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lakefs_server.secret_access_key,
           "ASSETHUB_HOOK_SECRET": getattr(lakefs_server, "hook_secret", ""),
           "ASSETHUB_PORT": str(port), "ASSETHUB_FOLLOW_TRIGGERS": "none",
           "ASSETHUB_JOB_LAUNCHER": "none"}
    with open(tmp_path / "replica-c.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assethub.server"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server C exited: {(tmp_path / 'replica-c.log').read_text()[-2000:]}")
        try:
            return httpx.get(url + "/api/v1/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for("server C to start", up, timeout=120, every=0.2)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_killing_a_server_mid_upload_loses_nothing_the_client_goes_on_with_the_other(
        replicas: Replicas, alice: str, killable: tuple[str, subprocess.Popen[bytes]],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import assethub.client as client_module

    c_url, proc = killable
    setup = _client(replicas.b.url, alice, tmp_path)
    setup.create_folder("alice/model/failover")
    setup.create_asset("alice/model/failover/net")
    files = {f"replica/part-{i:04d}.bin": os.urandom(64 * 1024 * (1 + i % 3)) for i in range(12)}
    files["replica/part-0100.bin"] = os.urandom(6 * 1024 * 1024)  # six 1 MiB chunks
    src = _tree(tmp_path / "src", files)
    killed = threading.Event()
    real = client_module._chunks

    class KillingChunks(real):  # type: ignore[misc,valid-type]
        """The big file's body: after its first chunk left for server C, C is SIGKILLed."""

        def __iter__(self) -> Iterator[bytes]:
            for n, chunk in enumerate(super().__iter__()):
                yield chunk
                if n == 0 and self.path.name == "part-0100.bin" and not killed.is_set():
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=30)
                    killed.set()

    monkeypatch.setattr(client_module, "_chunks", KillingChunks)
    hub = _client(f"{c_url},{replicas.b.url}", alice, tmp_path)
    commit = hub.upload("alice/model/failover/net:main", src, message="through a dying server")
    assert killed.is_set() and proc.returncode == -signal.SIGKILL
    got = _downloaded(_client(replicas.a.url, alice, tmp_path), f"alice/model/failover/net:{commit.id}",
                      tmp_path / "out")
    assert got == {path: _sha(data) for path, data in files.items()}  # every file, every byte
    assert hub.urls[0] == c_url and hub.resolve("alice/model/failover/net:main") == commit.id


# -- two Prefect workers on one pool -----------------------------------------------------------
POOL = "replicas-test"


@pytest.fixture(scope="module")
def two_workers(replicas: Replicas, alice: str, prefect_api: str) -> Iterator[str]:
    """Two process workers on one work pool, each running one flow run at a time, whose jobs
    reach the Asset Hub through both server replicas (ASSETHUB_URL lists them)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    from infra import prefect
    from infra._process import ManagedProcess

    with on_prefect(prefect_api), get_client(sync_client=True) as c:
        with contextlib.suppress(ObjectAlreadyExists):
            c.create_work_pool(WorkPoolCreate(
                name=POOL, type="process",
                base_job_template=ProcessWorker.get_default_base_job_template()))
    workers = [ManagedProcess(f"replica-worker-{n}", default_port=4240 + n, health_path="/health")
               for n in (1, 2)]
    for n, w in enumerate(workers, 1):
        port = w.claim_port()
        env = {**prefect.base_env(), "PREFECT_API_URL": prefect_api,
               "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1", "PREFECT_WORKER_WEBSERVER_PORT": str(port),
               "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
               "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
               "ASSETHUB_URL": f"{replicas.a.url},{replicas.b.url}", "ASSETHUB_TOKEN": alice,
               "ASSETHUB_TEST_WORKER": f"w{n}"}
        w.start([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process",
                 "--with-healthcheck", "--name", f"replica-w{n}", "--limit", "1"],
                env=env, timeout=120, port=port, wait=False)
    for w in workers:
        w.wait(120)
    try:
        with on_prefect(prefect_api):
            yield POOL
    finally:
        for w in workers:
            w.stop()


def test_two_workers_on_one_pool_run_two_jobs_at_once_through_both_servers(
        replicas: Replicas, alice: str, two_workers: str, tmp_path: Path) -> None:
    from prefect import Flow
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    hub = _client(replicas.a.url, alice, tmp_path)
    hub.create_folder("alice/model/jobs")
    hub.create_asset("alice/model/jobs/pair")
    flow = cast(Any, Flow.from_source(str(Path(__file__).parent), "_replica_job.py:replica_job"))
    flow.deploy(name="pair", work_pool_name=two_workers, build=False, push=False,
                print_next_steps=False, ignore_warnings=True)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    runs = [cast(Any, run_deployment)("replica-job/pair", timeout=0, parameters={
        "asset": "alice/model/jobs/pair", "job": job, "meeting": str(meeting)}) for job in ("j1", "j2")]

    def finished() -> list[Any] | None:
        with get_client(sync_client=True) as c:
            states = [c.read_flow_run(r.id).state for r in runs]
        if any(s is not None and s.is_final() and not s.is_completed() for s in states):
            raise AssertionError(f"a job did not complete: {states}")
        return [s.name for s in states if s is not None] if all(
            s is not None and s.is_completed() for s in states) else None

    wait_for("both jobs to complete", finished, timeout=600, every=1)
    # each worker ran one (one run at a time each, and the jobs had to run together)
    assert sorted(p.read_text() for p in meeting.iterdir()) == ["w1", "w2"]
    files = _downloaded(_client(replicas.b.url, alice, tmp_path), "alice/model/jobs/pair:main",
                        tmp_path / "out")
    assert set(files) == {"j1.txt", "j2.txt"}  # both commits are there


def test_one_server_supervises_the_services_and_another_takes_over(
        replicas: Replicas, tmp_path: Path) -> None:
    """The service monitors of two replicas: only the leader checks (and would restart) the
    local services; when it stops, the other takes over. (The servers' own monitors contend for
    the real leadership; these two for one of their own.)"""
    import asyncio

    from assethub.serving.manager import ServiceManager

    checks = {"a": 0, "b": 0}

    class Counting(ServiceManager):
        leadership = "test.replicas.services"  # not the running servers' own monitors'

        def __init__(self, name: str, running: RunningServer) -> None:
            super().__init__(running.hub, work_dir=tmp_path / name, health_interval=0.1, hosts=())
            self.name = name

        def check_all(self) -> None:
            checks[self.name] += 1

    first = Counting("a", replicas.a)
    first.open()
    wait_for("A to lead the checks", lambda: checks["a"] >= 2, timeout=30)
    second = Counting("b", replicas.b)
    second.open()
    try:
        # B tried (and failed) to take the lead at least twice meanwhile: it checked nothing
        seen = checks["a"]
        wait_for("A to go on checking", lambda: checks["a"] >= seen + 5, timeout=30)
        assert checks["b"] == 0
        asyncio.run(first.aclose())
        wait_for("B to take over the checks", lambda: checks["b"] >= 2, timeout=30)
    finally:
        asyncio.run(first.aclose())
        asyncio.run(second.aclose())
