"""Follow settings, the lakeFS action and the Prefect server's null-body fix, without servers."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from assethub.errors import InvalidReferenceError
from assethub.follows import action_yaml, check_settings
from deployments import gpu_job_template
from deployments.triggers import retrain_parameters
from infra._prefect_server import NullsAsDefaults


def test_settings_get_defaults_and_bad_ones_are_named() -> None:
    s = check_settings({"repo": "https://example.org/code.git", "margin": 1})
    assert s["metric"] == "accuracy" and s["margin"] == 1.0 and s["revision"] == "main"
    for bad, match in (({}, "needs the training code"), ({"repo": "r", "margin": -1}, "margin"),
                       ({"repo": "r", "schedule": "every day"}, "cron"),
                       ({"repo": "r", "colour": "blue"}, "unknown follow setting"),
                       ({"repo": "r", "margin": "lots"}, "'margin' must be a float")):
        with pytest.raises(InvalidReferenceError, match=match):
            check_settings(bad)


def test_retrain_parameters_carry_the_follow() -> None:
    s = check_settings({"repo": "r", "params": {"epochs": 1}, "schedule": "0 3 * * *"})
    p = retrain_parameters("a/model/f/m", "a/dataset/f/d", s)
    assert p["model"] == "a/model/f/m" and p["params"] == {"epochs": 1} and "schedule" not in p


def test_the_action_fires_on_main_only() -> None:
    text = action_yaml("http://hub/api/v1/hooks/lakefs?secret=s")
    assert "post-commit:\n    branches: [main]" in text and "post-merge:\n    branches: [main]" in text
    assert 'url: "http://hub/api/v1/hooks/lakefs?secret=s"' in text


def test_gpu_template_variables_are_all_declared() -> None:
    t = gpu_job_template()
    used = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            used.update(re.findall(r"\{\{ *(\w+) *\}\}", v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(t["job_configuration"])
    assert used <= set(t["variables"]["properties"]), used - set(t["variables"]["properties"])
    assert "token" not in json.dumps(t["variables"]["properties"]["token_secret_name"]["default"])


def test_null_filter_fields_are_dropped_before_prefect_sees_them() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["body"] = (await receive())["body"]
        seen["length"] = dict(scope["headers"])[b"content-length"]

    body = json.dumps({"limit": None, "offset": 0, "sort": None}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Any:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/api/deployments/filter",
             "headers": [(b"content-length", str(len(body)).encode())]}
    asyncio.run(NullsAsDefaults(app)(scope, receive, None))
    assert json.loads(seen["body"]) == {"offset": 0}
    assert int(seen["length"]) == len(seen["body"])
