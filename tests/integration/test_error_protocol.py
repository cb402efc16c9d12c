"""The error protocol end to end: every public error, raised by the real server (on the real
lakeFS), comes out of the SDK as the same class with the same fields.

Two ways for each error of :data:`assethub.errors.WIRE_ERRORS`:

- by a real request that makes the server raise it, where one exists (``REAL``);
- for every error, by a test-only route on a second server (its own catalog, the same lakeFS,
  the application's real handlers and middleware) that raises an instance made with the
  error's own constructor.

Plus the SDK's own error: a server that is not there is ``ServerUnavailableError``, not lakeFS's
``StorageUnavailableError``.
"""

from __future__ import annotations

import socket
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assethub import errors
from assethub.client import Client
from assethub.wire import AddFile, DatasetMeta
from tests._error_samples import PUBLIC, SAMPLES, fields_of
from tests.conftest import RunningServer, start_server
from tests.integration._api import zip_bytes

pytestmark = pytest.mark.integration

RAISE = "/api/v1/_test/raise"


# -- servers and callers --------------------------------------------------------------------------
def _raising_routes(app: Any) -> None:
    """``GET /api/v1/_test/raise/{code}`` raises the sample error of that wire name."""
    by_code = {errors.wire_error(exc).code: exc for exc in SAMPLES.values()}

    @app.get(RAISE + "/{code}")
    def raise_sample(code: str) -> None:
        raise by_code[code]


@pytest.fixture(scope="module")
def raising_server(lakefs_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(lakefs_server, tmp_path_factory.mktemp("hub-raise"), extend=_raising_routes)
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server_without_lakefs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose lakeFS is not there (nothing listens on its port)."""
    dead = types.SimpleNamespace(endpoint=f"http://127.0.0.1:{_closed_port()}",
                                 access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="x" * 40)
    running = start_server(dead, tmp_path_factory.mktemp("hub-no-lakefs"))
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def admin(hub_server: Any, tmp_path: Path) -> Client:
    return Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "cache")


def _user(admin: Client, hub_server: Any, tmp_path: Path) -> tuple[str, Client]:
    name = f"u{uuid.uuid4().hex[:8]}"
    admin.create_user(name)
    secret = admin.create_token(name, name="t").secret
    return name, Client(hub_server.url, secret, cache_dir=tmp_path / f"cache-{name}")


# -- real requests ---------------------------------------------------------------------------------
class World:
    """A folder with a model (main has ``a.txt``) and a dataset, owned by the admin."""

    def __init__(self, admin: Client, hub_server: Any, tmp_path: Path) -> None:
        self.admin, self.hub_server, self.tmp = admin, hub_server, tmp_path
        self.folder = f"admin/model/errors-{uuid.uuid4().hex[:8]}"
        self.model = f"{self.folder}/net"
        self.datasets = f"admin/dataset/errors-{uuid.uuid4().hex[:8]}"
        self.dataset = f"{self.datasets}/data"
        admin.create_folder(self.folder)
        admin.create_asset(self.model)
        admin.create_folder(self.datasets)
        admin.create_asset(self.dataset, dataset=DatasetMeta(data_format="dir"))
        self.file = tmp_path / "a.txt"
        self.file.write_text("ten bytes!")
        self.first = admin.upload(f"{self.model}:main", self.file, message="first")

    def local(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content)
        return path


def _invalid_reference(w: World) -> None:
    w.admin.create_asset(f"{w.datasets}/bad", dataset=DatasetMeta(task_type="astrology"))


def _forbidden(w: World) -> None:
    name, viewer = _user(w.admin, w.hub_server, w.tmp)
    w.admin.share(w.folder, role="view", user=name)
    viewer.create_branch(w.model, "mine")


def _invalid_dataset(w: World) -> None:
    archive = w.tmp / "evil.zip"
    archive.write_bytes(zip_bytes({"../escape.txt": b"x"}))
    w.admin.import_archive(w.dataset, archive)


def _range_not_satisfiable(w: World) -> None:
    w.admin._call("GET", f"/assets/{w.model}/files/a.txt", params={"ref": "main"},
                  headers={"Range": "bytes=100-200"})


def _merge_conflict(w: World) -> None:
    for branch, text in (("left", "left side"), ("right", "right side")):
        w.admin.create_branch(w.model, branch)
        w.admin.upload(f"{w.model}:{branch}", w.local(f"{branch}.txt", text), path="a.txt")
    w.admin.merge(w.model, "left")
    w.admin.merge(w.model, "right")


def _concurrent_update(w: World) -> None:
    w.admin.upload(f"{w.model}:main", w.local("b.txt", "moved on"), message="second")
    w.admin.upload(f"{w.model}:main", w.local("c.txt", "late"), parent_commit=w.first.id)


def _checksum_mismatch(w: World) -> None:
    upload = w.admin._call("POST", f"/assets/{w.model}/uploads", json={"branch": "main"})["upload_id"]
    try:
        w.admin._call("PUT", f"/uploads/{upload}/files/x.bin", content=b"actual bytes",
                      headers={"X-Asset-Sha256": "0" * 64})
    finally:
        w.admin._call("DELETE", f"/uploads/{upload}")


def _not_servable(w: World) -> None:
    w.admin.services.create(f"{w.model}:main", name=f"s{uuid.uuid4().hex[:8]}")


# error class -> (make the server raise it, the fields the SDK must see)
REAL: dict[type[errors.AssetHubError], tuple[Callable[[World], Any], Callable[[World], dict[str, Any]]]] = {
    errors.InvalidReferenceError: (_invalid_reference, lambda w: {"part": "task_type", "value": "astrology"}),
    errors.NotFoundError: (lambda w: w.admin.get_folder(f"{w.folder}-missing"),
                           lambda w: {"what": "folder", "name": f"{w.folder}-missing"}),
    errors.AssetNotFoundError: (lambda w: w.admin.get_asset(f"{w.folder}/missing"),
                                lambda w: {"what": "asset", "name": f"{w.folder}/missing",
                                           "path": f"{w.folder}/missing"}),
    errors.RefNotFoundError: (lambda w: w.admin.get_commit(f"{w.model}:no-such-branch"),
                              lambda w: {"ref": f"{w.model}:no-such-branch"}),
    errors.ObjectNotFoundError: (lambda w: w.admin.stat(f"{w.model}:main", "missing.txt"),
                                 lambda w: {"ref": f"{w.model}:main", "path": "missing.txt"}),
    errors.AlreadyExistsError: (lambda w: w.admin.create_folder(w.folder),
                                lambda w: {"what": "folder", "name": w.folder}),
    errors.NotAllowedError: (lambda w: w.admin.delete_branch(w.model, "main"),
                             lambda w: {"reason": f"the 'main' branch of {w.model} cannot be deleted"}),
    errors.AuthenticationError: (
        lambda w: Client(w.hub_server.url, "ah_not-a-token", cache_dir=w.tmp / "c").whoami(),
        lambda w: {}),
    errors.ForbiddenError: (_forbidden, lambda w: {"needed": "edit"}),
    errors.InvalidDatasetError: (_invalid_dataset, lambda w: {"path": "../escape.txt"}),
    errors.PayloadTooLargeError: (lambda w: w.admin.create_folder(f"{w.folder}x", description="x" * 2**21),
                                  lambda w: {}),
    errors.RangeNotSatisfiableError: (_range_not_satisfiable, lambda w: {}),
    errors.MergeConflictError: (_merge_conflict, lambda w: {
        "source": f"{w.model}:right", "dest": f"{w.model}:main", "paths": ["a.txt"]}),
    errors.ConcurrentUpdateError: (_concurrent_update, lambda w: {"expected": w.first.id}),
    errors.NothingToCommitError: (
        lambda w: w.admin.create_commit(f"{w.model}:main", [AddFile(w.file, "a.txt")], message="same"),
        lambda w: {"ref": f"{w.model}:main"}),
    errors.ChecksumMismatchError: (_checksum_mismatch, lambda w: {"path": "x.bin"}),
    errors.NotServableError: (_not_servable, lambda w: {"ref": f"{w.model}:main",
                                                        "reason": "no model/MLmodel"}),
}


@pytest.mark.parametrize("cls", list(REAL), ids=lambda c: c.__name__)
def test_a_real_request_that_fails_raises_the_same_error_with_its_fields(
        cls: type[errors.AssetHubError], admin: Client, hub_server: Any, tmp_path: Path) -> None:
    world = World(admin, hub_server, tmp_path)
    make, expected = REAL[cls]
    with pytest.raises(errors.AssetHubError) as caught:
        make(world)
    assert type(caught.value) is cls, repr(caught.value)
    got = fields_of(caught.value)
    for name, value in expected(world).items():
        assert got[name] == value, (name, got)
    assert str(caught.value)


def test_a_server_that_cannot_reach_lakefs_says_so(server_without_lakefs: RunningServer,
                                                    tmp_path: Path) -> None:
    hub = Client(server_without_lakefs.url, server_without_lakefs.admin_token, cache_dir=tmp_path / "c")
    folder = f"admin/model/down-{uuid.uuid4().hex[:6]}"
    hub.create_folder(folder)  # the catalog alone
    with pytest.raises(errors.StorageUnavailableError) as caught:
        hub.create_asset(f"{folder}/net")
    assert type(caught.value) is errors.StorageUnavailableError
    assert isinstance(caught.value, ConnectionError)


def test_an_unreachable_server_is_not_an_unreachable_lakefs(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(errors.ServerUnavailableError) as caught:
        Client(url, "ah_x", cache_dir=tmp_path / "c").whoami()
    assert type(caught.value) is errors.ServerUnavailableError
    assert caught.value.url == url and "assethub up" in str(caught.value)


# -- every error, through a test-only route -------------------------------------------------------
@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_error_comes_back_as_the_same_class_with_the_same_fields(
        cls: type[errors.AssetHubError], raising_server: RunningServer, tmp_path: Path) -> None:
    sample = SAMPLES[cls]
    row = errors.wire_error(sample)
    hub = Client(raising_server.url, raising_server.admin_token, cache_dir=tmp_path / "c")
    with pytest.raises(errors.AssetHubError) as caught:
        hub._call("GET", f"/_test/raise/{row.code}")
    assert type(caught.value) is cls
    assert fields_of(caught.value) == fields_of(sample)
    if cls is errors.AssetHubError:  # the server's own failure: the cause stays in its log
        assert "see the server log" in str(caught.value)
    else:
        assert str(caught.value) == str(sample)
    raw = httpx.get(f"{raising_server.url}{RAISE}/{row.code}")
    assert raw.status_code == row.status
    assert raw.json()["error"]["type"] == row.code
