"""The digits model the serving tests share (test_serving, test_service_monitoring, test_export):
trained once per session through ``flows.train`` on a small digits set, with a viewer and a
stranger of its folder, and a model version that has no MLflow model."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assethub.client import Client
from tests.integration._jobs import EXAMPLES, git_repo

DIGITS = EXAMPLES / "digits-classifier"


@dataclass
class World:
    hub: Client  # the publisher
    admin: Client
    url: str
    token: str
    model: str  # the trained model version (a branch ref)
    trained: dict[str, Any]
    x_test: np.ndarray
    y_test: np.ndarray
    viewer: Client  # may view the model's folder, not run it
    stranger: Client  # may not see it at all
    empty_model: str  # a model version without an MLflow model
    data: Path  # the digits files it was trained on (small_digits)

    @property
    def owner(self) -> str:
        return self.model.split("/", 1)[0]


def _user(admin: Client, url: str, name: str) -> tuple[Client, str]:
    admin.create_user(name)
    secret = admin.create_token(name, name="serving").secret
    return Client(url, secret), secret


@pytest.fixture(scope="session")
def world(hub_server: Any, mlflow_uri: str, prefect_api: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from assethub.hub import DatasetMeta
    from examples.datasets import digits_test_arrays
    from flows.train import train
    from tests.integration._console import small_digits

    suffix = uuid.uuid4().hex[:6]
    admin = Client(hub_server.url, hub_server.admin_token)
    hub, token = _user(admin, hub_server.url, f"pub{suffix}")
    viewer, _ = _user(admin, hub_server.url, f"view{suffix}")
    stranger, _ = _user(admin, hub_server.url, f"other{suffix}")
    me = f"pub{suffix}"
    hub.create_folder(f"{me}/dataset/images")
    hub.create_folder(f"{me}/model/digits")
    hub.share(f"{me}/model/digits", role="view", user=f"view{suffix}")
    hub.create_asset(f"{me}/dataset/images/digits", dataset=DatasetMeta(
        "image_classification", "dir", "test_set", None, "test"))
    data = tmp_path_factory.mktemp("digits")
    small_digits(data)  # 30 training and 8 test images per class: the tests need a model, not a good one
    hub.upload(f"{me}/dataset/images/digits:main", data, message="digits")
    hub.publish(f"{me}/dataset/images/digits", "v1")
    hub.create_asset(f"{me}/model/digits/cnn")
    hub.create_asset(f"{me}/model/digits/empty")
    readme = tmp_path_factory.mktemp("empty") / "README.md"
    readme.write_text("no model here\n")
    hub.upload(f"{me}/model/digits/empty:main", readme, message="just a README")
    repo, _ = git_repo(DIGITS, tmp_path_factory.mktemp("code") / "repo")
    with acting_as(hub_server.url, token):  # the flow reaches the hub as the publisher
        trained = train(model=f"{me}/model/digits/cnn", dataset=f"{me}/dataset/images/digits:v1",
                        repo=repo, params={"epochs": 1, "seed": 3})
    x, y = digits_test_arrays(data)
    try:
        yield World(hub, admin, hub_server.url, token, trained["model_ref"], trained, x, y, viewer,
                    stranger, f"{me}/model/digits/empty:main", data)
    finally:
        delete_services(admin)


@contextlib.contextmanager
def acting_as(url: str, token: str) -> Iterator[None]:
    """Flows run in this process reach the hub at ``url`` with ``token`` (their environment),
    restored after: a module's fixture, never the whole session's."""
    old = {k: os.environ.get(k) for k in ("ASSETHUB_URL", "ASSETHUB_TOKEN")}
    os.environ.update(ASSETHUB_URL=url, ASSETHUB_TOKEN=token)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def delete_services(admin: Client) -> None:
    """Every service (a module's teardown: replicas are processes that hold memory)."""
    for service in admin.services.list():
        admin.services.delete(service.name)
