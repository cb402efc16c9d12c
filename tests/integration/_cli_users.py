"""CLI fixtures for tests that act as several users: ``admin`` (the stack's admin through the
CLI) and ``new_user()`` (a fresh user with a token, signed in by ``ASSETHUB_TOKEN``). Shared
through conftest.py; test_cli.py keeps its own, which also checks `assethub login`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import Cli


@pytest.fixture
def admin(hub_server: Any, tmp_path: Path) -> Cli:
    return Cli(hub_server.url, hub_server.admin_token, tmp_path / "admin")


@pytest.fixture
def new_user(admin: Cli, hub_server: Any, tmp_path: Path) -> Callable[[], tuple[str, Cli]]:
    def make() -> tuple[str, Cli]:
        name = f"u{uuid.uuid4().hex[:8]}"
        admin("user", "create", name)
        secret = admin.json("token", "create", "--user", name, "--name", "t")["token"]
        return name, Cli(hub_server.url, secret, tmp_path / name)

    return make
