"""Outages of what the server stands on are 503s that name it, never 500s.

A private lakeFS (and a private PostgreSQL) per module, stopped mid-run and started again: the
session's shared ones stay up for the other tests. Every section's representative routes are
called while it is down (503, the message names lakeFS or the catalog), and again once it is
back (they work).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _api import Api, message, zip_bytes

from assethub import errors
from assethub.client import Client
from tests.conftest import RunningServer, free_port, start_server

pytestmark = [pytest.mark.integration, pytest.mark.attacks]


@contextmanager
def _home(home: Path) -> Iterator[None]:
    """``ASSETHUB_HOME`` pointed at ``home`` for a while: where infra keeps a component's state,
    so that this module's lakeFS is not the session's."""
    old = os.environ["ASSETHUB_HOME"]
    os.environ["ASSETHUB_HOME"] = str(home)
    try:
        yield
    finally:
        os.environ["ASSETHUB_HOME"] = old


class PrivateLakeFS:
    def __init__(self, home: Path) -> None:
        self.home = home

    def start(self) -> Any:
        from infra import lakefs

        with _home(self.home):
            # the port is kept in the component's state: a restart comes back at the same address
            return lakefs.start(port=free_port())

    def stop(self) -> None:
        from infra import lakefs

        with _home(self.home):
            assert lakefs.stop()


@pytest.fixture(scope="module")
def private_lakefs(lakefs_server: Any, tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[tuple[PrivateLakeFS, Any]]:
    stack = PrivateLakeFS(tmp_path_factory.mktemp("outage-home"))
    instance = stack.start()
    try:
        yield stack, instance
    finally:
        from infra import lakefs

        with _home(stack.home):
            lakefs.stop()


@pytest.fixture(scope="module")
def server(private_lakefs: tuple[PrivateLakeFS, Any],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(private_lakefs[1], tmp_path_factory.mktemp("hub-outage"))
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


Call = tuple[str, str, dict[str, Any]]
ARCHIVE = zip_bytes({"cat/1.txt": b"1", "dog/1.txt": b"2"})


def _world(api: Api) -> dict[str, str]:
    """A model (main has w.bin, branch dev) and a dataset; an open upload of the model."""
    tag = uuid.uuid4().hex[:8]
    w = {"MF": f"admin/model/m{tag}", "DF": f"admin/dataset/d{tag}", "XF": f"admin/model/x{tag}"}
    w["M"], w["D"], w["X"] = f"{w['MF']}/net", f"{w['DF']}/data", f"{w['XF']}/gone"
    for f in (w["MF"], w["DF"], w["XF"]):
        api.admin("POST", "/folders", json={"path": f})
    api.admin("POST", "/assets", json={"path": w["M"]})
    api.admin("POST", "/assets", json={"path": w["X"]})
    api.admin("POST", "/assets", json={"path": w["D"], "dataset": {"format": "dir"}})
    api.commit("admin", w["M"], {"w.bin": b"weights"})
    api.admin("POST", f"/assets/{w['M']}/branches", json={"name": "dev"})
    api.commit("admin", w["M"], {"dev.bin": b"more"}, branch="dev")
    w["upload"] = api.admin("POST", f"/assets/{w['M']}/uploads", json={"branch": "main"})["upload_id"]
    return w


def _storage_calls(w: dict[str, str]) -> dict[str, Call]:
    """A representative route of each section that needs lakeFS."""
    m, d = w["M"], w["D"]
    return {
        "asset-create": ("POST", "/assets", {"json": {"path": f"{w['MF']}/new"}}),
        "refs-branches": ("GET", f"/assets/{m}/branches", {}),
        "refs-tags": ("GET", f"/assets/{m}/tags", {}),
        "refs-commit": ("GET", f"/assets/{m}/commit", {}),
        "history": ("GET", f"/assets/{m}/log", {}),
        "diff": ("GET", f"/assets/{m}/diff", {"params": {"left": "main", "right": "dev"}}),
        "objects": ("GET", f"/assets/{m}/objects", {}),
        "stat": ("GET", f"/assets/{m}/stat", {"params": {"file": "w.bin"}}),
        "download": ("GET", f"/assets/{m}/files/w.bin", {}),
        "bundle": ("POST", f"/assets/{m}/bundle", {"json": {"ref": "main", "paths": ["w.bin"]}}),
        "branch-create": ("POST", f"/assets/{m}/branches", {"json": {"name": "b2"}}),
        "tag-create": ("POST", f"/assets/{m}/tags", {"json": {"name": "t2"}}),
        "upload-start": ("POST", f"/assets/{m}/uploads", {"json": {"branch": "main"}}),
        "upload-put": ("PUT", f"/uploads/{w['upload']}/files/x.bin", {"content": b"x" * 1000}),
        "merge": ("POST", f"/assets/{m}/merge", {"json": {"source": "dev"}}),
        "import": ("POST", f"/assets/{d}/import", {"content": ARCHIVE}),
        "publish": ("POST", f"/assets/{d}/publish", {"json": {"tag": "v1"}}),
        "asset-delete": ("DELETE", f"/assets/{w['X']}", {}),
        "folder-delete": ("DELETE", f"/folders/{w['XF']}", {}),
        "run-create": ("POST", "/runs", {"json": {"kind": "train", "model": m,
                                                   "dataset": f"{d}:main"}}),
        "lineage": ("GET", f"/assets/{m}/lineage", {}),
    }


def test_lakefs_down_is_503_naming_lakefs_on_every_section(
        private_lakefs: tuple[PrivateLakeFS, Any], server: RunningServer, tmp_path: Path) -> None:
    stack, _ = private_lakefs
    api = Api(server.url, server.admin_token)
    w = _world(api)
    calls = _storage_calls(w)
    stack.stop()
    try:
        answers = {name: api.call("admin", method, url, **kw)
                   for name, (method, url, kw) in calls.items()}
        wrong = {name: (r.status_code, r.text[:200]) for name, r in answers.items()
                 if r.status_code != 503 or "lakeFS" not in message(r)}
        assert not wrong, wrong
        # the catalog alone still answers
        assert api.call("admin", "GET", f"/folders/{w['MF']}").status_code == 200
        # the SDK raises the server's error, with its message
        with pytest.raises(errors.StorageUnavailableError, match="lakeFS"):
            Client(server.url, server.admin_token, cache_dir=tmp_path / "c").list_branches(w["M"])
        # the commit of an upload staged before the outage
        r = api.call("admin", "POST", f"/uploads/{w['upload']}/commit", json={"message": "m"})
        assert r.status_code == 503 and "lakeFS" in message(r), r.text
    finally:
        stack.start()
    # back up: the same routes work again (the open upload was aborted by the failed commit)
    w = _world(api)
    for name, (method, url, kw) in _storage_calls(w).items():
        r = api.call("admin", method, url, **kw)
        assert r.is_success, (name, r.status_code, r.text[:300])


# -- the catalog database ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    from infra import postgres

    data_dir = tmp_path_factory.mktemp("outage-postgres")
    try:
        yield data_dir, postgres.start(data_dir=data_dir, port=free_port())
    finally:
        postgres.destroy(data_dir)


@pytest.fixture(scope="module")
def pg_server(lakefs_server: Any, private_postgres: tuple[Path, str],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(lakefs_server, tmp_path_factory.mktemp("hub-pg-outage"),
                           catalog_url=private_postgres[1])
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)


def _catalog_calls(w: dict[str, str]) -> dict[str, Call]:
    """A representative route of each section that reads the catalog. (Staging a file of an open
    upload needs only lakeFS, and the caller's token, which the server keeps for a while.)"""
    return {
        "whoami": ("GET", "/whoami", {}),
        "users": ("GET", "/users", {}),
        "audit": ("GET", "/audit", {}),
        "folders": ("GET", "/folders", {}),
        "folder-create": ("POST", "/folders", {"json": {"path": f"admin/model/n{uuid.uuid4().hex[:6]}"}}),
        "search": ("GET", "/assets", {}),
        "asset": ("GET", f"/assets/{w['M']}", {}),
        "refs": ("GET", f"/assets/{w['M']}/branches", {}),
        "download": ("GET", f"/assets/{w['M']}/files/w.bin", {}),
        "import": ("POST", f"/assets/{w['D']}/import", {"content": ARCHIVE}),
        "runs": ("GET", "/runs", {}),
        "follows": ("GET", "/follows", {}),
        "services": ("GET", "/services", {}),
    }


def test_catalog_down_is_503_naming_the_catalog(
        private_postgres: tuple[Path, str], pg_server: RunningServer, tmp_path: Path) -> None:
    from infra import postgres

    api = Api(pg_server.url, pg_server.admin_token)
    w = _world(api)
    postgres.stop(private_postgres[0])
    try:
        calls = _catalog_calls(w)
        asked = [("admin", name) for name in calls] + [("anonymous", "search"), ("anonymous", "asset")]
        for who, name in asked:
            method, url, kw = calls[name]
            r = api.call(who, method, url, **kw)
            assert r.status_code == 503 and "catalog" in message(r), (who, name, r.text[:300])
        with pytest.raises(errors.CatalogUnavailableError, match="catalog"):
            Client(pg_server.url, pg_server.admin_token, cache_dir=tmp_path / "c").list_folders()
        env = {"ASSETHUB_URL": pg_server.url, "ASSETHUB_TOKEN": pg_server.admin_token,
               "ASSETHUB_CONFIG": str(tmp_path / "config.json"), "ASSETHUB_HOME": str(tmp_path)}
        # a process of its own: in this one the in-process server's log lines would mix in
        cli = subprocess.run([str(Path(sys.executable).with_name("assethub")), "ls"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
        assert cli.returncode != 0 and "catalog" in cli.stderr, cli.stderr
        assert "Traceback" not in cli.stdout + cli.stderr
    finally:
        postgres.start(data_dir=private_postgres[0])
    for name, (method, url, kw) in _catalog_calls(w).items():
        r = api.call("admin", method, url, **kw)
        assert r.is_success, (name, r.status_code, r.text[:300])
