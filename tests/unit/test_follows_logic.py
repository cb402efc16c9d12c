"""Follow settings, the lakeFS action and the Prefect server's null-body fix, without servers."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from assethub.errors import InvalidReferenceError
from assethub.follows import action_yaml, check_settings
from assethub.triggers import HOOK_HEADER, HOOK_SECRET_ENV, LAKEFS_ENV_PREFIX, LakeFSHook
from deployments import gpu_job_template
from deployments.triggers import retrain_parameters
from infra._prefect_server import NullsAsDefaults


def test_settings_get_defaults_and_bad_ones_are_named() -> None:
    s = check_settings({"repo": "https://example.org/code.git", "margin": 1})
    assert s["metric"] == "accuracy" and s["margin"] == 1.0 and s["revision"] == ""
    for bad, match in (({}, "needs the training code"), ({"repo": "r", "margin": -1}, "margin"),
                       ({"repo": "r", "schedule": "every day"}, "cron"),
                       ({"repo": "r", "colour": "blue"}, "unknown follow setting"),
                       ({"repo": "r", "margin": "lots"}, "'margin' must be a float")):
        with pytest.raises(InvalidReferenceError, match=match):
            check_settings(bad)


def test_retrain_parameters_carry_only_the_follows_id() -> None:
    # Prefect shows parameters in its UI: the server looks the follow's settings and owner up
    assert retrain_parameters(7) == {"follow_id": 7}


def test_the_action_fires_on_main_only_and_holds_no_secret() -> None:
    text = action_yaml(LakeFSHook("http://hub:8780/", "s3cr3t-value"))
    assert "post-commit:\n    branches: [main]" in text and "post-merge:\n    branches: [main]" in text
    assert 'url: "http://hub:8780/api/v1/hooks/lakefs"' in text
    assert "s3cr3t-value" not in text  # lakeFS fills the header in from its own environment
    action = yaml.safe_load(text)["hooks"][0]["properties"]
    assert action["headers"] == {HOOK_HEADER: "{{ ENV.LAKEFSACTION_ASSETHUB_HOOK_SECRET }}"}
    assert HOOK_SECRET_ENV.startswith(LAKEFS_ENV_PREFIX)


def test_the_hook_url_comes_from_settings() -> None:
    from assethub.server import ServerSettings

    def settings(**kw: Any) -> ServerSettings:
        return ServerSettings(home=Path("/nonexistent"), catalog_url="sqlite://", lakefs_endpoint="x",
                              lakefs_access_key_id="k", lakefs_secret_access_key="s", **kw)

    assert settings(port=8780).hook_base_url() == "http://127.0.0.1:8780"
    assert settings(host="0.0.0.0", port=1).hook_base_url() == "http://127.0.0.1:1"
    assert settings(host="::", port=1).hook_base_url() == "http://[::1]:1"
    assert settings(hook_url="https://hub.internal/").hook_base_url() == "https://hub.internal"
    assert "s3cr3t" not in repr(settings(hook_secret="s3cr3t"))


def test_reserved_paths() -> None:
    from assethub.errors import NotAllowedError
    from assethub.storage._policy import covers_reserved, is_reserved, user_path

    for p in ("_lakefs_actions", "_lakefs_actions/", "_lakefs_actions/x.yaml", "_lakefs_actions/a/b"):
        assert is_reserved(p)
        with pytest.raises(NotAllowedError, match="'_lakefs_actions/' is reserved"):
            user_path(p, "write")
    for p in ("_lakefs_actionsx", "data/_lakefs_actions/x.yaml", "_lakefs", "lakefs_actions/x"):
        assert not is_reserved(p) and user_path(p) == p
    assert covers_reserved("") and covers_reserved("_lake") and not covers_reserved("data/")


def test_services_listen_on_loopback_unless_the_setting_allows_more() -> None:
    from assethub.errors import NotAllowedError
    from assethub.serving import allowed_hosts, check_host

    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert check_host(host) == host
    for host in ("0.0.0.0", "::", "10.0.0.5", "example.org"):
        with pytest.raises(NotAllowedError, match=r"loopback only.*ASSETHUB_SERVICE_HOSTS"):
            check_host(host)
    assert check_host("10.0.0.5", allowed_hosts("10.0.0.5, 10.0.0.6")) == "10.0.0.5"
    assert check_host("0.0.0.0", allowed_hosts("*")) == "0.0.0.0"
    with pytest.raises(NotAllowedError):
        check_host("0.0.0.0", allowed_hosts("10.0.0.5"))


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
