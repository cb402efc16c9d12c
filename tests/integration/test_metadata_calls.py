"""The metadata calls' fast paths (issue 17, part 5) against the real server and catalog:
small files answered whole, listings encoded row by row, audit rows written on a WAL catalog
that fsyncs at checkpoints only."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from assethub.catalog import AuditEvent, Catalog
from assethub.client import Client
from assethub.storage import SMALL_READ

pytestmark = pytest.mark.integration


@pytest.fixture
def owned(hub_server: Any, tmp_path: Path) -> tuple[Client, str]:
    c = Client(hub_server.url, hub_server.admin_token, cache_dir=tmp_path / "cache")
    folder = f"admin/model/meta-{uuid.uuid4().hex[:6]}"
    c.create_folder(folder)
    c.create_asset(f"{folder}/net")
    return c, f"{folder}/net"


def test_small_and_large_files_answer_alike_at_a_branch_and_at_a_commit(
        owned: tuple[Client, str], hub_server: Any, tmp_path: Path) -> None:
    """A file up to SMALL_READ is read whole and answered in one message, a larger one is
    streamed; through lakeFS (a branch) or the local blockstore (a commit) the status, length,
    range, ETag and bytes are the same, and every byte counts as proxied."""
    c, asset = owned
    files = {"small.bin": os.urandom(1024), "edge.bin": os.urandom(SMALL_READ),
             "large.bin": os.urandom(SMALL_READ + 4097)}
    for name, data in files.items():
        (tmp_path / "up" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "up" / name).write_bytes(data)
    c.upload(f"{asset}:main", tmp_path / "up", message="three sizes")
    commit = c.resolve(f"{asset}:main")
    http = httpx.Client(base_url=f"{hub_server.url}/api/v1",
                        headers={"Authorization": f"Bearer {hub_server.admin_token}"})
    meter = hub_server.hub.versions.proxied_bytes
    for name, data in files.items():
        for byte_range, want in ((None, data), ("bytes=10-19", data[10:20]),
                                 ("bytes=-7", data[-7:]), ("bytes=5-", data[5:])):
            answers = []
            for ref in ("main", commit):
                before = meter.snapshot()["down"]
                r = http.get(f"/assets/{asset}/files/{name}", params={"ref": ref},
                             headers={"Range": byte_range} if byte_range else None)
                assert r.content == want, (name, byte_range, ref)
                assert meter.snapshot()["down"] - before == len(want)
                answers.append((r.status_code, r.headers["content-length"],
                                r.headers.get("content-range"), r.headers.get("etag")))
            assert answers[0] == answers[1], (name, byte_range)
            assert answers[0][0] == (200 if byte_range is None else 206)
            assert answers[0][3]  # lakeFS's ETag, both ways
    missing = http.get(f"/assets/{asset}/files/nothing.bin", params={"ref": "main"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "ObjectNotFoundError"
    outside = http.get(f"/assets/{asset}/files/small.bin", headers={"Range": "bytes=5000-"})
    assert outside.status_code == 416


def test_a_stranger_reads_no_small_file_and_lists_nothing(
        owned: tuple[Client, str], hub_server: Any, tmp_path: Path) -> None:
    """The fast paths keep the permission check: a signed-in user without a share gets what a
    missing asset gets, for the file, its listing and a new branch."""
    c, asset = owned
    (tmp_path / "s.bin").write_bytes(b"secret")
    c.upload(f"{asset}:main", tmp_path / "s.bin", message="s")
    name = f"stranger{uuid.uuid4().hex[:6]}"
    c.create_user(name)
    token = c.create_token(name).secret
    them = httpx.Client(base_url=f"{hub_server.url}/api/v1",
                        headers={"Authorization": f"Bearer {token}"})
    for r in (them.get(f"/assets/{asset}/files/s.bin"),
              them.get(f"/assets/{asset}/objects"),
              them.post(f"/assets/{asset}/branches", json={"name": "mine"})):
        assert r.status_code == 404, r.text
        assert b"secret" not in r.content
    assert [b.name for b in c.list_branches(asset)] == ["main"]
    denied = hub_server.hub.audit_log.query(hub_server.hub.authenticate(hub_server.admin_token),
                                        actor=name, action="branch.create")
    assert [e.outcome for e in denied] == ["denied"]


def test_listing_rows_are_the_generic_encoding(owned: tuple[Client, str], hub_server: Any,
                                               tmp_path: Path) -> None:
    """The list route's row-by-row encoding gives what jsonable gives, read back by the SDK."""
    from assethub._json import jsonable

    c, asset = owned
    for i in range(12):
        (tmp_path / "l" / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "l" / f"d{i % 3}" / f"f{i}.txt").write_text(f"file {i}")
    c.upload(f"{asset}:main", tmp_path / "l", message="12 files")
    r = httpx.get(f"{hub_server.url}/api/v1/assets/{asset}/objects", params={"prefix": "d1"},
                  headers={"Authorization": f"Bearer {hub_server.admin_token}"})
    rows = hub_server.hub.list_objects(hub_server.hub.authenticate(hub_server.admin_token),
                                       f"{asset}:main", prefix="d1")
    assert r.json() == jsonable(rows) and len(rows) == 4
    assert [o.path for o in c.list_objects(f"{asset}:main", prefix="d1")] == \
        [f"d1/f{i}.txt" for i in (1, 10, 4, 7)]


_CRASH = """
import os, signal, sys
from assethub.catalog import Catalog
from assethub.hub.audit import AuditLog
from assethub.hub.identity import Principal
catalog = Catalog(sys.argv[1])
AuditLog(catalog).record(Principal("crasher"), "branch.create", sys.argv[2], "ok")
os.kill(os.getpid(), signal.SIGKILL)  # no clean shutdown, no checkpoint, no close
"""


def test_a_sqlite_catalog_keeps_every_committed_row_when_its_process_is_killed(
        tmp_path: Path) -> None:
    """synchronous=NORMAL in WAL mode: a commit is in the log (the OS's page cache) when it
    returns; a killed process loses nothing of it (only a power cut could)."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(url)
    catalog.migrate()
    with catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    catalog.dispose()
    targets = [f"admin/model/f/a:b{i}" for i in range(3)]
    for target in targets:
        done = subprocess.run([sys.executable, "-c", _CRASH, url, target], capture_output=True,
                              timeout=120)
        assert done.returncode == -9, done.stderr.decode()
    catalog = Catalog(url)
    try:
        with catalog.session() as s:
            got = s.scalars(select(AuditEvent.target).where(AuditEvent.actor == "crasher")
                            .order_by(AuditEvent.id)).all()
        assert got == targets
    finally:
        catalog.dispose()
