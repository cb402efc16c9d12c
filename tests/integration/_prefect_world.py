"""Shared by the integration tests that run jobs through Prefect deployments and a worker
(test_deployments, test_launcher): the user ``deployer``'s dataset and models, and how to talk
to the session's Prefect server. The fixtures that use these are in conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the deployer's dataset (digits) and the model its follows retrain
DATASET = "deployer/dataset/images/digits"
MODEL = "deployer/model/digits/followed"


@contextmanager
def on_prefect(api: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        yield


def worker_env(hub_server: Any, tracking: str) -> dict[str, str]:
    """The environment `assethub up` gives the worker: the service user's token, never the admin's."""
    service = hub_server.hub.ensure_service_user("prefect", new_token=True)
    return {"ASSETHUB_URL": hub_server.url, "ASSETHUB_TOKEN": service, "MLFLOW_TRACKING_URI": tracking,
            "ASSETHUB_HOME": os.environ["ASSETHUB_HOME"]}
