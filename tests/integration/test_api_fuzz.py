"""Property-based fuzzing of the live API with Schemathesis: whatever the input, no 5xx.

Every operation of the API's OpenAPI document gets ``MAX_EXAMPLES`` generated requests (valid
and invalid, fixed seed), each sent anonymously and as an ordinary signed-in user who owns
some data. Hypothesis also chooses whether the path parameters name that user's real asset
(and branch, tag, upload...), so that requests get past "not found" into the code that does
the work. Only ``not_a_server_error`` is checked; a failure shows the request, as curl.

The schema is built from ``create_app`` at import time (Schemathesis' pytest integration needs
it before the server exists; its fixture-based loader does not run on pytest 9), and
``test_the_live_server_serves_this_schema`` checks that the running server serves the same.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from _api import Api, zip_bytes
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from assethub.server.app import create_app

pytestmark = pytest.mark.integration

SEED = 20_240_601
MAX_EXAMPLES = 25
SPEC = create_app(None).openapi()  # type: ignore[arg-type]  # the hub is only used per request

schema = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_dict({
    "seed": SEED,
    "suppress-health-check": ["all"],
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "no-shrink": True},
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
               "stateful": {"enabled": False}},
}))


class Fuzzer:
    """The signed-in user the fuzzer acts as, their data, and a way to put it back."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.user = api.add_user("fuzz")
        self.model, self.dataset = f"{self.user}/model/f/m", f"{self.user}/dataset/d/ds"
        self.restore()

    def restore(self) -> None:
        """(Re-)create the user's folders and assets with their files, and a valid token."""
        if self.api.call("fuzz", "GET", "/whoami").status_code == 401:  # it revoked its token
            self.api.tokens["fuzz"] = self.api.admin(
                "POST", f"/users/{self.user}/tokens", json={})["token"]
        for asset in (self.model, self.dataset):
            for url, path in (("/folders", asset.rsplit("/", 1)[0]), ("/assets", asset)):
                r = self.api.call("fuzz", "POST", url, json={"path": path})
                assert r.status_code in (201, 409), r.text
            if r.status_code == 201 and asset == self.model:
                self.api.commit("fuzz", asset, {"weights.bin": b"w", "dir/a.txt": b"a"})
            elif r.status_code == 201:
                self.api.ok("fuzz", "POST", f"/assets/{asset}/import",
                            content=zip_bytes({"cat/1.txt": b"meow", "dog/1.txt": b"woof"}))
        for what in ("branches", "tags"):  # dev and v1
            r = self.api.call("fuzz", "POST", f"/assets/{self.model}/{what}",
                              json={"name": "dev" if what == "branches" else "v1"})
            assert r.status_code in (201, 409), r.text

    def aim(self, case: schemathesis.Case, target: str) -> None:
        """Point the path parameters at real data: "asset" (just which asset) or "all"."""
        params = case.path_parameters
        if target == "generated" or not params:
            return
        asset = self.dataset if params.get("kind") == "dataset" else self.model
        real = dict(zip(("owner", "kind", "folder", "name"), asset.split("/"), strict=True))
        if target == "all":
            real.update(branch="dev", tag="v1", user=self.user, file="dir/a.txt")
            if "upload_id" in params:
                real["upload_id"] = self.api.ok("fuzz", "POST", f"/assets/{self.model}/uploads",
                                                json={})["upload_id"]
        params.update({k: v for k, v in real.items() if k in params})

    def headers(self, signed_in: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api.tokens['fuzz']}"} if signed_in else {}


@pytest.fixture(scope="module")
def fuzzer(hub_server: Any) -> Fuzzer:
    return Fuzzer(Api(hub_server.url, hub_server.admin_token))


def test_the_live_server_serves_this_schema(hub_server: Any) -> None:
    assert httpx.get(f"{hub_server.url}/api/v1/openapi.json").json() == SPEC


def known_bug(case: schemathesis.Case, response: Any) -> bool:
    """A 5xx already reported and not fixed yet (none now: every 5xx fails the test)."""
    return False


def expected_outage(case: schemathesis.Case, response: Any) -> bool:
    """Starting a job (``POST .../export``) needs the orchestrator, which this server may not
    reach in the suite: its documented answer is 503 OrchestratorUnavailableError naming Prefect,
    not a failure of the server."""
    if case.method != "POST" or not case.path.endswith("/export") or response.status_code != 503:
        return False
    try:
        return bool(response.json()["error"]["type"] == "OrchestratorUnavailableError")
    except (ValueError, KeyError, TypeError):
        return False


@schema.parametrize()
@schema.given(target=st.sampled_from(["generated", "asset", "all"]))
def test_no_input_makes_the_server_fail(case: schemathesis.Case, target: str,
                                        hub_server: Any, fuzzer: Fuzzer) -> None:
    fuzzer.aim(case, target)
    for signed_in in (False, True):
        headers = fuzzer.headers(signed_in)
        response = case.call(base_url=hub_server.url, headers=headers, timeout=60)
        if not known_bug(case, response) and not expected_outage(case, response):
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
    if case.method != "GET" and response.status_code < 300:
        fuzzer.restore()  # a fuzzed DELETE, rename or token revocation may have hit our data
