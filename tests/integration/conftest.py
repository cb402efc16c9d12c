"""Session fixtures shared by the integration tests of jobs and services: a real MLflow tracking
server and the stack's real Prefect server (one of each per session, logs under ASSETHUB_HOME);
for the tests of deployments (test_deployments, test_launcher), the user ``deployer``'s world and
a process worker with the deployments registered."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from assethub.client import Client

# `admin` and `new_user()` through the CLI (test_cli.py has its own, with `assethub login`)
from tests.integration._cli_users import admin, new_user  # noqa: F401

# the web console's browser fixtures (Chromium per module, a `console` per test)
from tests.integration._console import browser, console  # noqa: F401
from tests.integration._jobs import EXAMPLES, JobWorld, git_repo
from tests.integration._prefect_world import DATASET, MODEL, on_prefect, worker_env
from tests.integration._serving_world import world  # noqa: F401 - the trained digits model


@pytest.fixture(scope="session")
def mlflow_uri(lakefs_server: Any) -> Iterator[str]:
    from infra import mlflow

    url = mlflow.start(timeout=180)  # launched at the session's start (tests/conftest.py _prelaunch)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    yield url
    mlflow.stop()
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session")
def prefect_api(lakefs_server: Any) -> Iterator[str]:
    """The stack's Prefect server with its services (scheduler, automations), as `assethub up`
    runs it, for the whole session; flows run in this process report to it.

    Not prefect_test_harness: its server writes to this process's captured output, so its
    errors would reach no log the gate reads."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from infra import prefect

    api = prefect.start_server(timeout=180)
    with temporary_settings({PREFECT_API_URL: api}):
        yield api
        # what this process's flows still have to send (their logs and events) goes before the
        # server stops: sent after, Prefect prints "Error logging to API" at the process's exit
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            with contextlib.suppress(Exception):
                worker.drain_all(timeout=30)
    prefect.stop()


@pytest.fixture(scope="session")
def tracking(lakefs_server: Any) -> Iterator[str]:
    from infra import mlflow

    ours = mlflow.status() is None
    url = mlflow.start(timeout=180)  # launched at the session's start (tests/conftest.py _prelaunch)
    yield url
    if ours:
        mlflow.stop()


@pytest.fixture(scope="session")
def deploy_world(hub_server: Any, tracking: str, tmp_path_factory: pytest.TempPathFactory) -> JobWorld:
    from assethub.hub import DatasetMeta
    from tests.integration._console import small_digits

    admin_client = Client(hub_server.url, hub_server.admin_token)
    admin_client.create_user("deployer")
    token = admin_client.create_token("deployer", name="worker").secret
    hub = Client(hub_server.url, token)
    hub.create_folder("deployer/dataset/images")
    hub.create_folder("deployer/model/digits")
    hub.create_asset(DATASET, dataset=DatasetMeta("image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("deploy-digits")
    small_digits(data)  # 30 training and 8 test images per class: jobs run the same steps, shorter
    hub.upload(f"{DATASET}:main", data, message="digits")
    commit = hub.resolve(f"{DATASET}:main")
    hub.create_asset("deployer/model/digits/cnn")
    hub.create_asset(MODEL)
    repo, sha = git_repo(EXAMPLES / "digits-classifier", tmp_path_factory.mktemp("deploy-code") / "repo")
    return JobWorld(hub, "deployer", token, "deployer/model/digits/cnn", f"{DATASET}:{commit}", commit,
                    repo, sha)


#: the test modules that use the Prefect worker (prefect_stack) and have not finished yet
_WORKER_MODULES: set[str] = set()


def _uses_worker(item: pytest.Item) -> bool:
    return "prefect_stack" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what will not run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """The modules that use the Prefect worker run one after the other, where the first of them
    is (each keeps its own order): the worker starts once for them all, and stops after the last
    (it polls the session's Prefect server, where test_replicas runs workers of its own)."""
    users = {item.nodeid.split("::")[0] for item in items if _uses_worker(item)}
    if len(users) > 1:
        first = min(i for i, item in enumerate(items) if item.nodeid.split("::")[0] in users)
        moved = [item for item in items if item.nodeid.split("::")[0] in users]
        rest = [item for item in items if item.nodeid.split("::")[0] not in users]
        items[:] = rest[:first] + moved + rest[first:]
    _WORKER_MODULES.clear()
    _WORKER_MODULES.update(users)


@pytest.fixture(scope="session")
def prefect_worker(deploy_world: JobWorld, hub_server: Any, tracking: str, prefect_api: str) -> Iterator[str]:
    """The session's Prefect server + a process worker of the embedded stack, deployments
    registered: started by the first module that uses prefect_stack, stopped by its last one."""
    from infra import prefect

    # the worker holds the service user's token (never the admin's), as `assethub up` gives it:
    # runs registered by a person or a follow act for them with their run's token; runs started
    # in the Prefect UI act as the service user, with the shares an admin granted it
    prefect.start_worker(worker_env(hub_server, tracking))
    admin_client = Client(hub_server.url, hub_server.admin_token)
    admin_client.share("deployer/model/digits", role="edit", user="prefect")
    admin_client.share("deployer/dataset/images", role="run", user="prefect")
    from deployments import deploy_all

    with on_prefect(prefect_api):
        deploy_all()
    yield prefect_api
    prefect.WORKER.stop()  # when a run stopped early (the last module's teardown stops it too)


@pytest.fixture(scope="module")
def prefect_stack(prefect_worker: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's Prefect server + a process worker of the embedded stack, deployments
    registered (the worker is shared by the modules that use this, which run one after the
    other: see pytest_collection_modifyitems; it stops after the last of them: 2 cores)."""
    from infra import prefect

    api = prefect_worker
    old = os.environ.get("ASSETHUB_PREFECT_API_URL")
    os.environ["ASSETHUB_PREFECT_API_URL"] = api  # the in-process hub server's hook and follows
    yield api
    _WORKER_MODULES.discard(request.node.nodeid.split("::")[0])
    if not _WORKER_MODULES:
        prefect.WORKER.stop()
    if old is None:
        os.environ.pop("ASSETHUB_PREFECT_API_URL", None)
    else:
        os.environ["ASSETHUB_PREFECT_API_URL"] = old
