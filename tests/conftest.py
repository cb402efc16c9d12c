"""Shared fixtures. Integration tests run against a real lakeFS server, started once per
test session in a private data directory on a free loopback port and stopped afterwards."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._wait import wait_for

# No phoning home from the Prefect and MLflow servers the tests start (no network here anyway).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

# The Asset Hub servers the tests run in this process log here (warnings and errors, with
# tracebacks), next to the other components' logs: the log gate reads them all.
_SERVER_LOGGERS = ("assethub", "uvicorn")
_GATE = pytest.StashKey[tuple[list, list]]()


#: ``--part 2``: modules that mostly wait (on jobs through the Prefect worker, schedules, a whole
#: second stack), about half of the suite's time (a guess from CI's slowest steps, to refine on
#: a full run's durations); ``--part 1`` is all else (the unit and example tests too, and any new file).
#: `make test-parallel` runs the two as sessions side by side, each with its own stacks: one
#: session kept the 2 cores about a third busy (24 CPU minutes in a 40 minute run).
PART_TWO = (
    "tests/examples/test_examples.py",  # trainings of each example (part 1 has the serving world's)
    "tests/integration/test_console_journey.py",
    "tests/integration/test_deployments.py",
    "tests/integration/test_distributed.py",
    "tests/integration/test_flows.py",
    "tests/integration/test_launcher.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--part", choices=("1", "2"), default=None,
                     help="run one of the suite's two parts (tests/conftest.py PART_TWO): "
                          "`make test-parallel` runs both side by side")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--part``, the other part's test modules are not even imported."""
    part = config.getoption("--part")
    if part is None or not collection_path.name.startswith("test_") or collection_path.suffix != ".py":
        return None
    second = collection_path.relative_to(config.rootpath).as_posix() in PART_TWO
    return True if second != (part == "2") else None


def pytest_sessionstart(session: pytest.Session) -> None:
    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    (base / "hub-server").mkdir(exist_ok=True)
    handler = logging.FileHandler(base / "hub-server" / "server.log")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in _SERVER_LOGGERS:
        logging.getLogger(name).addHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The log gate (tests/_log_gate.py): errors in the components' logs fail the run."""
    from tests._log_gate import scan

    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    for name in _SERVER_LOGGERS:
        for h in list(logging.getLogger(name).handlers):
            if isinstance(h, logging.FileHandler):
                h.close()
    bad, allowed = scan(base)
    session.config.stash[_GATE] = (bad, allowed)
    if bad and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The log gate's verdict, printed last (after the durations), where a CI log's tail shows it."""
    bad, allowed = terminalreporter.config.stash.get(_GATE, ([], []))
    if allowed:
        terminalreporter.write_line(f"log gate: {len(allowed)} expected error(s) in component logs "
                                    "(allow-listed)")
    if bad:
        terminalreporter.write_sep("=", f"log gate: {len(bad)} error(s) in component logs", red=True)
        for entry in bad:
            terminalreporter.write_line(str(entry))


def free_port() -> int:
    """A loopback port free now (the kernel's pick): where a component of this session goes, so
    that sessions side by side never reach for the same one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prelaunch(session: pytest.Session) -> list[Any]:
    """Launch (not wait for) the session's MLflow and Prefect servers when its tests will use
    them: each takes seconds of imports to start, and they start side by side, meanwhile the
    first tests run; their fixtures (mlflow_uri, tracking, prefect_api) wait for them. What was
    launched is returned, to be stopped when no fixture did."""
    from infra import mlflow, prefect

    # ports the kernel picks, as for the other components: near their defaults they would be
    # what another session's servers, starting meanwhile, pick too (`make test-parallel` runs
    # two; on a shared machine other sessions run beside this one)
    for component in (mlflow.SERVER, prefect.SERVER, prefect.WORKER):
        component.claim_port(free_port())
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    launched: list[Any] = []
    if needed & {"mlflow_uri", "tracking"}:
        mlflow.start(wait=False)
        launched.append(mlflow)
    if "prefect_api" in needed:
        prefect.start_server(wait=False)
        launched.append(prefect)
    return launched


@pytest.fixture(scope="session")
def lakefs_server(tmp_path_factory: pytest.TempPathFactory,
                  request: pytest.FixtureRequest) -> Iterator[object]:
    from infra import lakefs

    home = tmp_path_factory.mktemp("assethub-home")
    old = os.environ.get("ASSETHUB_HOME")
    os.environ["ASSETHUB_HOME"] = str(home)
    launched: list[Any] = []
    try:
        instance = lakefs.start(port=free_port())
        launched = _prelaunch(request.session)
        yield instance
    finally:
        for component in launched:  # stopped by their fixtures, unless none ran (then here)
            component.stop()
        lakefs.stop()
        if old is None:
            os.environ.pop("ASSETHUB_HOME", None)
        else:
            os.environ["ASSETHUB_HOME"] = old


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL server private to this test session."""
    from infra import postgres

    data_dir = tmp_path_factory.mktemp("postgres")
    try:
        yield postgres.start(data_dir=data_dir, port=free_port())
    finally:
        postgres.destroy(data_dir)


@pytest.fixture
def storage(lakefs_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    from assethub.storage import Storage

    return Storage(
        lakefs_server.endpoint,
        lakefs_server.access_key_id,
        lakefs_server.secret_access_key,
        cache_dir=tmp_path / "cache",
    )


@pytest.fixture
def unique() -> str:
    """A short unique suffix so that tests never share an asset."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def model_path(storage, unique: str) -> str:  # type: ignore[no-untyped-def]
    path = f"alice/model/image-classification/net-{unique}"
    storage.create_asset(path)
    return path


@pytest.fixture
def dataset_path(storage, unique: str) -> str:  # type: ignore[no-untyped-def]
    path = f"alice/dataset/digits/digits-{unique}"
    storage.create_asset(path)
    return path


# -- the Asset Hub server, on the session's lakeFS ---------------------------------------------
@dataclass
class RunningServer:
    url: str
    hub: Any
    admin_token: str
    thread: threading.Thread
    server: Any


def start_server(lakefs_server: Any, home: Path, catalog_url: str | None = None,
                 extend: Callable[[Any], None] | None = None, limits: Any = None) -> RunningServer:
    """An Asset Hub server in a thread of the test process, on a free loopback port;
    ``extend(app)`` may add test-only routes to its application first; ``limits`` are its
    :class:`assethub.hub.Limits` (the defaults when None)."""
    import uvicorn

    from assethub.hub import Limits
    from assethub.server import ServerSettings, build_hub, create_app

    settings = ServerSettings(
        home=home,
        catalog_url=catalog_url or f"sqlite:///{home / 'catalog.db'}",
        lakefs_endpoint=lakefs_server.endpoint,
        lakefs_access_key_id=lakefs_server.access_key_id,
        lakefs_secret_access_key=lakefs_server.secret_access_key,
        port=free_port(),
        limits=limits or Limits(),
        # as `assethub up` passes it: lakeFS holds it too
        hook_secret=getattr(lakefs_server, "hook_secret", ""),
    )
    hub = build_hub(settings)
    token = hub.ensure_admin("admin")
    app = create_app(hub)
    if extend is not None:
        extend(app)
    # log_config=None: uvicorn keeps its hands off logging, so its errors reach the gate's file
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1",
                                           port=settings.port, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the Asset Hub server exited while starting")
        return bool(server.started)

    wait_for("the Asset Hub server to start", started, timeout=30, every=0.05)
    return RunningServer(f"http://127.0.0.1:{settings.port}", hub, token or "", thread, server)


@pytest.fixture(scope="session")
def hub_server(lakefs_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(lakefs_server, tmp_path_factory.mktemp("hub"))
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)
