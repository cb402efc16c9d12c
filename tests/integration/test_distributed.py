"""The integration suite's storage, permission, job and serving cases against the distributed
profile (`assethub up --profile distributed`: PostgreSQL, SeaweedFS, lakeFS on S3 + PostgreSQL,
the catalog, Prefect and MLflow on PostgreSQL, MLflow's artifacts on S3 — real processes), and
what only that profile has: each piece on its backend, the bytes in the bucket, an object store
outage answered 503 naming the storage.

The tests of this module share one stack and run in order; the outage case is last (it stops
the object store, and starts it again)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from assethub import errors
from assethub.client import Client
from tests._wait import wait_for
from tests.integration._distributed import DistributedStack, in_home, start, stop, volumes
from tests.integration._jobs import EXAMPLES, git_repo

pytestmark = [pytest.mark.integration, pytest.mark.distributed]


@pytest.fixture(scope="module")
def distributed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributedStack]:
    """The whole distributed profile in a home of its own, for this module (down after it)."""
    from tests.conftest import free_port

    stack = start(tmp_path_factory.mktemp("distributed-home"), free_port())
    try:
        yield stack
    finally:
        stop(stack)


@dataclass
class People:
    admin: Client
    alice: Client
    bob: Client
    alice_name: str
    bob_name: str
    alice_token: str


@pytest.fixture(scope="module")
def people(distributed_stack: DistributedStack) -> People:
    s = distributed_stack
    admin = Client(s.url, s.admin_token)
    suffix = uuid.uuid4().hex[:6]
    names, tokens = [], []
    for who in ("alice", "bob"):
        name = f"{who}{suffix}"
        admin.create_user(name)
        names.append(name)
        tokens.append(admin.create_token(name, name="distributed").secret)
    return People(admin, Client(s.url, tokens[0]), Client(s.url, tokens[1]), names[0], names[1], tokens[0])


def test_each_piece_runs_on_its_backend(distributed_stack: DistributedStack) -> None:
    s = distributed_stack
    status = s.assethub("status")
    assert status.returncode == 0, status.stderr
    assert "profile: distributed" in status.stdout
    for component in ("postgres", "seaweedfs", "lakefs", "server", "mlflow", "prefect-server",
                      "prefect-worker"):
        line = next(li for li in status.stdout.splitlines() if li.split()[:1] == [component])
        assert "not running" not in line and "external" not in line, line
    # lakeFS: S3 blockstore and its KV store in its own PostgreSQL database
    config = (s.home / "lakefs" / "config.yaml").read_text()
    assert "blockstore:\n  type: s3" in config and "database:\n  type: postgres" in config
    assert "kv" in s.tables("lakefs")
    # Prefect, MLflow and the catalog: their tables in their databases (and no SQLite files)
    assert {"flow_run", "deployment", "work_pool"} <= s.tables("prefect")
    assert {"experiments", "runs", "metrics"} <= s.tables("mlflow")
    assert {"users", "api_tokens", "assets", "runs", "services"} <= s.tables("assethub")
    assert not list(s.home.rglob("*.db")), list(s.home.rglob("*.db"))
    # the profile is remembered: `logs` knows its components
    logs = s.assethub("logs", "seaweedfs", "-n", "5")
    assert logs.returncode == 0, logs.stderr


def test_storage_round_trip_lands_in_the_bucket(distributed_stack: DistributedStack, people: People,
                                                tmp_path: Path) -> None:
    s, hub, me = distributed_stack, people.alice, people.alice_name
    hub.create_folder(f"{me}/model/store")
    asset = f"{me}/model/store/net"
    hub.create_asset(asset)
    src = tmp_path / "src"
    (src / "weights").mkdir(parents=True)
    files = {"weights/a.bin": os.urandom(300_000), "weights/b.bin": os.urandom(5_000),
             "README.md": b"# net\n"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    before = s.objects("assethub-data")
    hub.upload(f"{asset}:main", src, message="first")
    hub.create_branch(asset, "exp", source="main")
    (tmp_path / "c.bin").write_bytes(changed := os.urandom(70_000))
    hub.upload(f"{asset}:exp", tmp_path / "c.bin", path="weights/c.bin", message="more")
    assert "weights/c.bin" not in {o.path for o in hub.list_objects(f"{asset}:main")}
    hub.merge(asset, "exp")
    out = tmp_path / "out"
    hub.download(f"{asset}:main", out)
    got = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == {**files, "weights/c.bin": changed}
    # the bytes are in SeaweedFS's bucket, under the repositories' namespace, as they are
    new = {k: v for k, v in s.objects("assethub-data").items() if k not in before}
    assert all(k.startswith("repos/") for k in new)
    sizes = sorted(v for v in new.values())
    for data in (files["weights/a.bin"], changed):
        assert len(data) in sizes
    key = next(k for k, v in new.items() if v == len(changed))
    body = s.store.client().get_object(Bucket="assethub-data", Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(changed).hexdigest()


def test_a_non_admin_cannot_read_or_write_what_is_not_shared(distributed_stack: DistributedStack,
                                                             people: People, tmp_path: Path) -> None:
    alice, bob, me = people.alice, people.bob, people.alice_name
    alice.create_folder(f"{me}/dataset/private")
    asset = f"{me}/dataset/private/secret"
    alice.create_asset(asset)
    (tmp_path / "s.txt").write_text("secret\n")
    alice.upload(f"{asset}:main", tmp_path / "s.txt", message="secret")
    with pytest.raises(errors.NotFoundError):  # not shared: as if it did not exist
        bob.download(f"{asset}:main", tmp_path / "bob")
    with pytest.raises(errors.NotFoundError):
        bob.upload(f"{asset}:main", tmp_path / "s.txt", path="bob.txt", message="mine")
    alice.share(f"{me}/dataset/private", role="view", user=people.bob_name)
    bob.download(f"{asset}:main", tmp_path / "bob")
    assert (tmp_path / "bob" / "s.txt").read_text() == "secret\n"
    with pytest.raises(errors.ForbiddenError):  # view is not edit
        bob.upload(f"{asset}:main", tmp_path / "s.txt", path="bob.txt", message="mine")
    assert [o.path for o in alice.list_objects(f"{asset}:main")] == ["s.txt"]


@dataclass
class Trained:
    model: str
    ref: str
    data: Path
    result: dict[str, Any]


@pytest.fixture(scope="module")
def trained(distributed_stack: DistributedStack, people: People,
            tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One training job through the deployment train/local, run by the Prefect worker of the
    PostgreSQL-backed Prefect server, as alice (`assethub train --deployment`)."""
    from assethub.hub import DatasetMeta
    from deployments import deploy_all
    from tests.integration._console import small_digits
    from tests.integration._prefect_world import on_prefect
    from tests.integration.test_cli import Cli

    s, hub, me = distributed_stack, people.alice, people.alice_name
    with on_prefect(s.prefect_api):
        deploy_all()
    hub.create_folder(f"{me}/dataset/images")
    hub.create_folder(f"{me}/model/digits")
    dataset = f"{me}/dataset/images/digits"
    hub.create_asset(dataset, dataset=DatasetMeta("image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("distributed-digits")
    small_digits(data)  # 30 training and 8 test images per class: one short training
    hub.upload(f"{dataset}:main", data, message="digits")
    hub.publish(dataset, "v1")
    model = f"{me}/model/digits/cnn"
    hub.create_asset(model)
    repo, _ = git_repo(EXAMPLES / "digits-classifier", tmp_path_factory.mktemp("distributed-code") / "repo")
    cli = Cli(s.url, people.alice_token, tmp_path_factory.mktemp("distributed-cli"))
    cli.env["PREFECT_API_URL"] = s.prefect_api
    with in_home(s.home):
        from infra import prefect

        cli.env["PREFECT_HOME"] = prefect.prefect_home()  # as `assethub up` sets it: the worker's results
    result = cli.json("train", model, "--dataset", f"{dataset}:v1", "--repo", repo, "--param", "epochs=1",
                      "--param", "seed=1", "--branch", "dist", "--deployment")
    return Trained(model, f"{model}:dist", data, result)


def test_a_training_job_runs_on_the_worker_with_runs_in_postgres_and_artifacts_in_s3(
        distributed_stack: DistributedStack, people: People, trained: Trained) -> None:
    s = distributed_stack
    assert trained.result["branch"] == "dist" and trained.result["metrics"]["accuracy"] > 0
    lineage = people.alice.lineage(trained.ref).lineage
    assert lineage is not None and lineage.prefect_flow_run_id and lineage.params["epochs"] == 1
    [run] = [r for r in people.alice.list_runs(trained.model, kind="train", limit=5) if r.branch == "dist"]
    assert run.state == "completed" and run.mlflow_run_id
    # the MLflow run is a row of MLflow's PostgreSQL database ...
    import psycopg

    with psycopg.connect(s.database("mlflow"), connect_timeout=10) as conn:
        row = conn.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.mlflow_run_id,)).fetchone()
    assert row is not None and row[0] == "FINISHED"
    # ... and its artifacts are in the MLflow bucket (through MLflow's proxy: the job has no S3 keys)
    keys = s.objects("assethub-mlflow", "artifacts/")
    assert any(f"/{run.mlflow_run_id}/" in k for k in keys), sorted(keys)[:20]


def test_the_trained_version_is_served_and_answers(distributed_stack: DistributedStack, people: People,
                                                   trained: Trained) -> None:
    from examples.datasets import digits_test_arrays

    hub = people.alice
    name = f"dist-{uuid.uuid4().hex[:6]}"
    view = hub.services.create(trained.ref, name=name, replicas=1)
    try:
        assert view.state == "running" and view.ready == 1
        x, y = digits_test_arrays(trained.data)
        answer = hub.services.predict(name, {"inputs": x.tolist()})
        probabilities = np.asarray(answer["predictions"], dtype=np.float32)
        assert probabilities.shape == (len(y), 10)
        direct = httpx.post(f"{view.address}/invocations", json={"inputs": x[:5].tolist()}, timeout=60)
        assert direct.status_code == 200
        assert np.allclose(direct.json()["predictions"], probabilities[:5], atol=1e-6)
    finally:
        hub.services.delete(name)


def test_pieces_given_from_outside_are_used_and_never_started_or_stopped(
        distributed_stack: DistributedStack, people: People,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A second home whose S3, lakeFS, PostgreSQL, Prefect and MLflow are the first stack's, by
    settings only: `up` starts only its server and worker, `down` stops only those."""
    from tests.conftest import free_port

    s, me = distributed_stack, people.alice_name
    lake = json.loads((s.home / "lakefs" / "credentials.json").read_text())
    hook = json.loads((s.home / "lakefs" / "state.json").read_text())["hook_secret"]
    home = tmp_path_factory.mktemp("distributed-outside")
    other = DistributedStack(home, "", "", "", "", "", "", s.store, {
        **s.env, "ASSETHUB_HOME": str(home), "ASSETHUB_CONFIG": str(home / "cli-config.json"),
        "ASSETHUB_S3_ENDPOINT": s.store.endpoint, "ASSETHUB_S3_ACCESS_KEY_ID": s.store.access_key_id,
        "ASSETHUB_S3_SECRET_ACCESS_KEY": s.store.secret_access_key,
        "ASSETHUB_LAKEFS_ENDPOINT": s.lakefs, "ASSETHUB_LAKEFS_ACCESS_KEY_ID": lake["access_key_id"],
        "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": lake["secret_access_key"], "ASSETHUB_HOOK_SECRET": hook,
        "ASSETHUB_POSTGRES_URL": s.postgres_url, "PREFECT_API_URL": s.prefect_api,
        "MLFLOW_TRACKING_URI": s.mlflow})
    port = free_port()
    up = other.assethub("up", "--port", str(port), timeout=600)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        for piece in ("s3", "lakefs", "postgres", "prefect-server", "mlflow"):
            assert f"{piece} is given from outside" in up.stdout, up.stdout
        status = other.assethub("status").stdout
        assert "profile: distributed" in status
        shown = {li.split()[0]: li.split()[1] for li in status.splitlines()[1:]}
        for piece in ("seaweedfs", "lakefs", "postgres", "prefect-server", "mlflow"):
            assert shown[piece] == "external", status
        # nothing of theirs here (prefect/ is the worker's PREFECT_HOME: its results, no server)
        assert not {"lakefs", "seaweedfs", "postgres", "mlflow"} & {p.name for p in home.iterdir()}
        assert not (home / "prefect" / "server.pid").exists()
        # the same catalog and the same lakeFS: what alice stored through the first server
        hub = people.alice
        hub.create_folder(f"{me}/dataset/shared-backends")
        asset = f"{me}/dataset/shared-backends/d"
        hub.create_asset(asset)
        src = home / "f.txt"
        src.write_text("both\n")
        hub.upload(f"{asset}:main", src, message="one")
        second = Client(f"http://127.0.0.1:{port}", people.alice_token)
        assert [o.path for o in second.list_objects(f"{asset}:main")] == ["f.txt"]
    finally:
        down = other.assethub("down", timeout=300)
    assert down.returncode == 0 and down.stdout.strip() == "stopped prefect, server", down.stdout
    # the first stack's pieces still run
    status = s.assethub("status").stdout
    assert "not running" not in status, status


def test_object_store_down_a_download_answers_503_naming_the_storage(
        distributed_stack: DistributedStack, people: People, tmp_path: Path) -> None:
    from infra import seaweedfs

    s, hub, me = distributed_stack, people.alice, people.alice_name
    hub.create_folder(f"{me}/dataset/outage")
    asset = f"{me}/dataset/outage/d"
    hub.create_asset(asset)
    (tmp_path / "x.bin").write_bytes(os.urandom(10_000))
    hub.upload(f"{asset}:main", tmp_path / "x.bin", message="x")
    known = volumes(s)
    assert known, "SeaweedFS's master lists no volume"
    with in_home(s.home):
        assert seaweedfs.stop()
    try:
        r = httpx.get(f"{s.url}/api/v1/assets/{asset}/files/x.bin", timeout=120,
                      headers={"Authorization": f"Bearer {people.alice_token}"})
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["type"] == "StorageUnavailableError"
        assert "lakeFS" in error["message"] and "x.bin" in error["message"]
    finally:
        with in_home(s.home):
            seaweedfs.start()
        # its S3 gateway answers before the volume server has reported its volumes again
        wait_for("SeaweedFS's volumes to be known again", lambda: known <= volumes(s), timeout=120)
    hub.download(f"{asset}:main", tmp_path / "again")  # back: the same request works
    assert (tmp_path / "again" / "x.bin").read_bytes() == (tmp_path / "x.bin").read_bytes()
