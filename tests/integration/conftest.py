"""Session fixtures shared by the integration tests of jobs and services: a real MLflow tracking
server and the stack's real Prefect server (one of each per session, logs under ASSETHUB_HOME)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# the web console's browser fixtures (Chromium per module, a `console` per test)
from tests.integration._console import browser, console  # noqa: F401


@pytest.fixture(scope="session")
def mlflow_uri(lakefs_server: Any) -> Iterator[str]:
    from infra import mlflow

    url = mlflow.start()
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
    prefect.stop()
