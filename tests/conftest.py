"""Shared fixtures. Integration tests run against a real lakeFS server, started once per
test session in a private data directory on a free loopback port and stopped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lakefs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from infra import lakefs

    home = tmp_path_factory.mktemp("assethub-home")
    old = os.environ.get("ASSETHUB_HOME")
    os.environ["ASSETHUB_HOME"] = str(home)
    try:
        instance = lakefs.start(port=18770)
        yield instance
    finally:
        lakefs.stop()
        if old is None:
            os.environ.pop("ASSETHUB_HOME", None)
        else:
            os.environ["ASSETHUB_HOME"] = old


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
