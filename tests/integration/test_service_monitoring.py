"""Service monitoring end to end, on the session's trained digits model (``world``, _serving_world.py):
request metrics under a bounded load sent here match exactly (per replica, in total, in the
Prometheus text); an error-rate alert fires on bad requests (audit log, ``services show``, a
webhook received by a real HTTP server here) and resolves after good traffic; a failing webhook
is retried and given up without harming the service; a killed replica's restart is an event;
the version's lineage lists the service with its request count; who may read and change what.
A replica cannot write another replica's metrics (the sandbox mounts only its own directory).

No sleeps: every wait is on the observable effect (the supervisor collects the replicas'
counters twice a second; the server's monitor reads them every few seconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from assethub import errors
from assethub.client import Client
from assethub.serving.manager import WEBHOOK_ATTEMPTS, WEBHOOK_HOSTS_SETTING
from assethub.wire import ServiceStats, ServiceView
from tests._wait import wait_for
from tests.integration._serving_world import World, acting_as, delete_services

pytestmark = pytest.mark.integration

NAME = "monitored"
GOOD, BAD_SHAPE, NO_TYPE = 40, 4, 3  # 40 good requests, 7 bad ones (400 and 415)


@dataclass
class Hook:
    """A real local HTTP server standing in for an alert receiver."""

    url: str
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    """The receiver, on loopback: the server's administrator allows its address as a webhook
    (the server's environment; the server runs in this process)."""
    received = Hook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            received.bodies.append(json.loads(body))
            received.auth.append(self.headers.get("authorization", ""))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://hook:s3cret@127.0.0.1:{server.server_address[1]}/alerts?token=t0ps3cret"
    monkeypatch.setenv(WEBHOOK_HOSTS_SETTING, f"127.0.0.1:{server.server_address[1]}")
    try:
        yield received
    finally:
        server.shutdown()
        thread.join(timeout=10)


@dataclass
class Served:
    address: str
    dir: Path  # the service's local files (status.json, metrics.json)
    stranger: Client
    stranger_token: str
    viewer_token: str


@pytest.fixture(scope="module")
def served(world: World, hub_server: Any) -> Iterator[Served]:
    view = world.hub.services.create(world.model, name=NAME, replicas=2)
    assert view.state == "running" and view.ready == 2
    root = hub_server.hub.tmp_dir.parent / "services"
    folder = next(p.parent for p in root.glob("*/spec.json") if json.loads(p.read_text())["name"] == NAME)
    suffix = uuid.uuid4().hex[:6]
    world.admin.create_user(f"nosy{suffix}")
    token = world.admin.create_token(f"nosy{suffix}", name="monitoring").secret
    viewer = world.viewer.whoami().name
    viewer_token = world.admin.create_token(viewer, name="monitoring").secret
    with acting_as(world.url, world.token):
        yield Served(view.address, folder, Client(world.url, token), token, viewer_token)
    delete_services(world.admin)


def _send(address: str, n: int, body: Any = None, content: bytes | None = None,
          headers: dict[str, str] | None = None) -> list[int]:
    """``n`` requests straight to the service, each on a connection of its own (so the kernel
    hands them to either replica)."""
    codes = []
    for _ in range(n):
        if content is not None:
            r = httpx.post(f"{address}/invocations", content=content, headers=headers or {}, timeout=60)
        else:
            r = httpx.post(f"{address}/invocations", json=body, timeout=60)
        codes.append(r.status_code)
    return codes


def _good(world: World, served: Served, n: int) -> None:
    assert set(_send(served.address, n, {"inputs": world.x_test[:1].tolist()})) == {200}


def _bad(served: Served, n: int) -> None:
    assert set(_send(served.address, n, {"inputs": [[1.0]]})) == {400}  # wrong shape


def _alerting(hub: Client, firing: bool) -> ServiceView | None:
    view = hub.services.get(NAME)
    return view if view.alerts and view.alerts[0].firing == firing else None


def test_metrics_under_a_bounded_load_match_exactly(world: World, served: Served,
                                                    tmp_path: Path) -> None:
    hub = world.hub
    _good(world, served, GOOD)
    _bad(served, BAD_SHAPE)
    assert set(_send(served.address, NO_TYPE, content=b"{}")) == {415}  # no Content-Type
    sent = GOOD + BAD_SHAPE + NO_TYPE

    def counted() -> ServiceStats | None:
        stats = hub.services.stats(NAME, window="1h")
        return stats if stats.total.requests == sent else None

    stats = wait_for(f"the stats to count the {sent} requests sent", counted, timeout=60, every=0.5)
    total = stats.total
    assert (total.errors_4xx, total.errors_5xx) == (BAD_SHAPE + NO_TYPE, 0)
    assert total.error_rate == pytest.approx((BAD_SHAPE + NO_TYPE) / sent)
    assert total.latency_count == sent
    assert total.p50 is not None and total.p95 is not None and total.p99 is not None
    assert 0 < total.p50 <= total.p95 <= total.p99
    assert total.requests_per_second > 0
    assert len(stats.replicas) == 2 and {r.gone for r in stats.replicas} == {False}
    assert sum(r.requests for r in stats.replicas) == sent
    assert sum(r.errors_4xx for r in stats.replicas) == BAD_SHAPE + NO_TYPE
    assert sum(r.latency_count for r in stats.replicas) == sent
    # health checks (/ping) are not requests
    assert hub.services.stats(NAME, window="1h").total.requests == sent

    # the Prometheus text, as a scraper with a viewer's token reads it
    r = httpx.get(f"{world.url}/api/v1/services/{NAME}/metrics",
                  headers={"Authorization": f"Bearer {served.viewer_token}"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = [s for s in families["assethub_service_requests"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in requests) == sent
    assert sum(s.value for s in requests if s.labels["status"] == "4xx") == BAD_SHAPE + NO_TYPE
    latency = families["assethub_service_request_duration_seconds"].samples
    assert sum(s.value for s in latency if s.name.endswith("_count")) == sent
    assert {s.labels["service"] for s in requests} == {NAME}
    assert {s.labels["replica"] for s in requests} >= {r.replica for r in stats.replicas}

    # the CLI
    from assethub.cli import app

    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "ASSETHUB_HOME": str(tmp_path),
           "ASSETHUB_CONFIG": str(tmp_path / "config.json"), "COLUMNS": "250"}
    as_json = CliRunner().invoke(app, ["services", "stats", NAME, "--window", "1h", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["total"]["requests"] == sent
    table = CliRunner().invoke(app, ["services", "stats", NAME, "-w", "1h"], env=env)
    assert table.exit_code == 0 and "total" in table.stdout and "p95 ms" in table.stdout
    bad_window = CliRunner().invoke(app, ["services", "stats", NAME, "--window", "forever"], env=env)
    assert bad_window.exit_code != 0 and "invalid window" in bad_window.stderr


def test_an_error_rate_alert_fires_on_bad_requests_and_resolves_after_good_traffic(
        world: World, served: Served, hook: Hook, tmp_path: Path) -> None:
    hub = world.hub
    rules = hub.services.set_alert(NAME, error_rate=0.2, window="1m", webhook=hook.url)
    assert rules[0].metric == "error_rate" and not rules[0].firing
    shown = hub.services.alerts(NAME)[0].webhook
    assert shown.startswith("http://127.0.0.1:") and "s3cret" not in shown
    assert "s3cret" not in json.dumps(httpx.get(
        f"{world.url}/api/v1/services/{NAME}", headers={"Authorization": f"Bearer {world.token}"}).json())

    _bad(served, 20)  # at least 20 of at most 20 + 47 in the last minute: above 20%
    fired = wait_for("the alert to fire", lambda: _alerting(hub, True), timeout=90, every=0.5)
    assert any(e.kind == "alert_fired" and "error_rate" in e.detail for e in fired.events)
    wait_for("the webhook to be called", lambda: len(hook.bodies) >= 1, timeout=30, every=0.2)
    assert hook.bodies[0]["state"] == "firing" and hook.bodies[0]["service"] == NAME
    assert hook.bodies[0]["alert"] == "error_rate" and hook.bodies[0]["value"] > 0.2
    assert hook.auth[0].startswith("Basic ")  # the URL's credentials, used, never shown
    audit = world.admin.audit(action="service.alert.fired", target=NAME)
    assert audit and audit[0].actor == "assethub-monitor" and "error_rate" in audit[0].detail

    _good(world, served, 120)  # at most 20 + 7 errors of at least 140 in the last minute: below
    resolved = wait_for("the alert to resolve", lambda: _alerting(hub, False), timeout=90, every=0.5)
    assert any(e.kind == "alert_resolved" for e in resolved.events)
    wait_for("the webhook to hear it resolved", lambda: len(hook.bodies) >= 2, timeout=30, every=0.2)
    assert hook.bodies[1]["state"] == "resolved" and len(hook.bodies) == 2
    assert world.admin.audit(action="service.alert.resolved", target=NAME)

    from assethub.cli import app

    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "ASSETHUB_HOME": str(tmp_path),
           "ASSETHUB_CONFIG": str(tmp_path / "config.json"), "COLUMNS": "250"}
    show = CliRunner().invoke(app, ["services", "show", NAME], env=env)
    assert show.exit_code == 0 and "alert_fired" in show.stdout and "alert_resolved" in show.stdout
    assert "s3cret" not in show.stdout
    listed = CliRunner().invoke(app, ["services", "alert", NAME], env=env)
    assert listed.exit_code == 0 and "error_rate > 0.2 over 60s: ok" in listed.stdout
    cleared = CliRunner().invoke(app, ["services", "alert", NAME, "--clear"], env=env)
    assert cleared.exit_code == 0 and "removed 1" in cleared.stdout
    assert hub.services.alerts(NAME) == []


def test_a_failing_webhook_is_retried_then_given_up_and_the_service_keeps_serving(
        world: World, served: Served, hook: Hook) -> None:
    hub = world.hub
    hook.status = 500
    hub.services.set_alert(NAME, error_rate=0.2, window="1m", webhook=hook.url)
    _bad(served, 60)  # above 20% whatever else the last minute holds (at most 167 good)

    def given_up() -> Any:
        view = hub.services.get(NAME)
        return next((e for e in view.events if e.kind == "webhook_failed"), None)

    event = wait_for("the webhook to be given up", given_up, timeout=120, every=0.5)
    assert len(hook.bodies) == WEBHOOK_ATTEMPTS and {b["state"] for b in hook.bodies} == {"firing"}
    assert "HTTP 500" in event.detail and "s3cret" not in event.detail and "t0ps3cret" not in event.detail
    view = hub.services.get(NAME)
    assert view.state == "running" and view.ready == 2 and view.alerts[0].firing
    assert len(hub.services.predict(NAME, {"inputs": world.x_test[:2].tolist()})["predictions"]) == 2
    assert hub.services.clear_alert(NAME) == 1


def test_a_killed_replica_restart_is_an_event(world: World, served: Served) -> None:
    hub = world.hub
    victim = json.loads((served.dir / "status.json").read_text())["replicas"][0]["pid"]
    os.kill(victim, 9)

    def recorded() -> Any:
        view = hub.services.get(NAME)
        return next((e for e in view.events if e.kind == "replica_restart" and str(victim) in e.detail), None)

    event = wait_for("the killed replica's restart as a service event", recorded, timeout=120, every=0.5)
    assert "exited with code" in event.detail
    wait_for("two replicas ready again", lambda: hub.services.get(NAME).ready == 2, timeout=180, every=0.5)
    # the killed replica's counts stay in the window
    stats = hub.services.stats(NAME, window="1h")
    assert stats.total.requests == sum(r.requests for r in stats.replicas)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a replica is the sandbox's process and the replica inside)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _tree(int(child))
    return found


def test_a_service_that_stops_answering_is_a_health_event_and_its_recovery_too(
        world: World, served: Served) -> None:
    """Both replicas frozen (SIGSTOP: alive, not answering): the server's health check records
    the failure; thawed, the recovery."""
    hub = world.hub
    wait_for("two replicas ready", lambda: hub.services.get(NAME).ready == 2, timeout=180, every=0.5)
    replicas = json.loads((served.dir / "status.json").read_text())["replicas"]
    frozen = [p for r in replicas for p in _tree(r["pid"])]
    seen = {e.at for e in hub.services.get(NAME).events}

    def new_event(kind: str) -> Any:
        return lambda: next((e for e in hub.services.get(NAME).events
                             if e.kind == kind and e.at not in seen), None)

    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        failed = wait_for("the health failure as an event", new_event("health_failed"), timeout=120,
                          every=0.5)
        assert "/ping" in failed.detail
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    wait_for("the recovery as an event", new_event("health_ok"), timeout=120, every=0.5)
    assert len(hub.services.predict(NAME, {"inputs": world.x_test[:1].tolist()})["predictions"]) == 1


def test_the_served_versions_lineage_lists_the_service_with_its_request_count(
        world: World, served: Served, tmp_path: Path) -> None:
    hub = world.hub
    _good(world, served, 3)

    def counted() -> Any:
        served_so_far = hub.services.stats(NAME, window="1h").total.requests
        usage = [u for u in hub.lineage(world.model).services if u.service == NAME]
        return usage[0] if usage and usage[0].requests == served_so_far else None

    usage = wait_for("the lineage to count the service's requests", counted, timeout=60, every=0.5)
    assert usage.active and usage.requests >= GOOD + BAD_SHAPE + NO_TYPE + 3 and usage.errors > 0
    from assethub.cli import app

    env = {"ASSETHUB_URL": world.url, "ASSETHUB_TOKEN": world.token, "ASSETHUB_HOME": str(tmp_path),
           "ASSETHUB_CONFIG": str(tmp_path / "config.json"), "COLUMNS": "250"}
    shown = CliRunner().invoke(app, ["lineage", world.model], env=env)
    assert shown.exit_code == 0 and f"served by {NAME}" in shown.stdout
    assert f"{usage.requests} requests" in shown.stdout


def test_a_webhook_inside_the_stacks_network_is_called_only_when_the_administrator_allows_it(
        world: World, served: Served, hook: Hook, lakefs_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever may set an alert must not make the server send requests to the stack's own
    services (lakeFS, the catalog's database, MLflow) or a cloud's metadata endpoint."""
    hub = world.hub
    monkeypatch.delenv(WEBHOOK_HOSTS_SETTING)
    lake = lakefs_server.endpoint.rstrip("/")
    for inside in (f"{lake}/api/v1/auth/users", "http://localhost:5432/", "http://169.254.169.254/latest/",
                   "http://[::1]:8000/", "http://10.1.2.3/hook", hook.url):
        with pytest.raises(errors.NotAllowedError, match="internal address") as refused:
            hub.services.set_alert(NAME, error_rate=0.2, window="1m", webhook=inside)
        assert "s3cret" not in str(refused.value) and "t0ps3cret" not in str(refused.value)
    assert hub.services.alerts(NAME) == []

    # allowed when set; the setting narrowed before it fires: not called, and the event says why
    monkeypatch.setenv(WEBHOOK_HOSTS_SETTING, hook.url.split("@", 1)[1].split("/", 1)[0])
    hub.services.set_alert(NAME, error_rate=0.2, window="1m", webhook=hook.url)
    monkeypatch.delenv(WEBHOOK_HOSTS_SETTING)
    _bad(served, 60)

    def not_called() -> Any:
        view = hub.services.get(NAME)
        return next((e for e in view.events if e.kind == "webhook_failed" and "not called" in e.detail),
                    None)

    event = wait_for("the refused webhook's event", not_called, timeout=120, every=0.5)
    assert "internal address" in event.detail and "s3cret" not in event.detail
    assert hook.bodies == []
    assert hub.services.clear_alert(NAME) == 1


def test_strangers_see_nothing_and_viewers_may_read_but_not_set_alerts(
        world: World, served: Served, hook: Hook) -> None:
    with pytest.raises(errors.NotFoundError):
        served.stranger.services.stats(NAME)
    with pytest.raises(errors.NotFoundError):
        served.stranger.services.set_alert(NAME, error_rate=0.1)
    for path in ("stats", "metrics", "alerts"):
        r = httpx.get(f"{world.url}/api/v1/services/{NAME}/{path}",
                      headers={"Authorization": f"Bearer {served.stranger_token}"}, timeout=30)
        assert r.status_code == 404, (path, r.text)
        assert httpx.get(f"{world.url}/api/v1/services/{NAME}/{path}", timeout=30).status_code == 401
    # a viewer of the model reads the figures, but may not point the server at a webhook
    assert world.viewer.services.stats(NAME, window="1h").total.requests > 0
    with pytest.raises(errors.ForbiddenError, match="'run'"):
        world.viewer.services.set_alert(NAME, error_rate=0.1, webhook=hook.url)
    r = httpx.put(f"{world.url}/api/v1/services/{NAME}/alerts/error_rate",
                  json={"threshold": 0.1, "webhook": hook.url},
                  headers={"Authorization": f"Bearer {served.viewer_token}"}, timeout=30)
    assert r.status_code == 403 and "s3cret" not in r.text
    with pytest.raises(errors.ForbiddenError):
        world.viewer.services.clear_alert(NAME)
    assert world.hub.services.alerts(NAME) == []
    # bad rules get a clear error, without the webhook's secrets
    with pytest.raises(errors.InvalidReferenceError, match="fraction"):
        world.hub.services.set_alert(NAME, error_rate=1.5)
    with pytest.raises(errors.InvalidReferenceError, match="window"):
        world.hub.services.set_alert(NAME, p95=0.5, window="3d")
    with pytest.raises(errors.InvalidReferenceError, match="webhook") as bad:
        world.hub.services.set_alert(NAME, p95=0.5, webhook="ftp://hook:s3cret@example.com/x")
    assert "s3cret" not in str(bad.value)


def test_a_replica_cannot_write_another_replicas_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         lakefs_server: Any) -> None:
    """Two stand-in replicas in the sandbox: each may write its own metrics file, neither the
    other's (only its own directory is mounted), nor the supervisor's window."""
    from tests.integration._fake_replica import probe_service

    with probe_service(tmp_path, monkeypatch, 2) as (handle, port, _):
        ids = [r["id"] for r in handle.status()["replicas"]]
        files = {rid: tmp_path / "svc" / "metrics" / rid / "metrics.json" for rid in ids}
        answers: dict[str, dict[str, Any]] = {}

        def probe_both() -> bool:
            targets = {"write": [str(f) for f in files.values()] + [str(tmp_path / "svc" / "metrics.json")]}
            answer = httpx.get(f"http://127.0.0.1:{port}/probe", params=targets, timeout=30).json()
            answers.setdefault(answer["replica"], answer)
            return len(answers) == 2

        wait_for("an answer from each replica", probe_both, timeout=60, every=0.05)
    for rid, answer in answers.items():
        other = next(o for o in ids if o != rid)
        assert answer[f"write:{files[rid]}"] == "allowed"  # its own
        assert answer[f"write:{files[other]}"] != "allowed"
        assert answer[f"write:{tmp_path / 'svc' / 'metrics.json'}"] != "allowed"
