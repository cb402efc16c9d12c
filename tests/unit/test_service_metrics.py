"""Service metrics without processes: the replica's recorder, the files it writes and how the
supervisor reads them (nothing in them trusted), the rolling window, the figures and the
Prometheus text; webhook addresses shown without their secrets."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from assethub.errors import InvalidReferenceError
from assethub.serving import metrics
from assethub.serving.manager import check_webhook, redact_url, webhook_refusal


def _recorded(statuses_and_seconds: list[tuple[int, float]]) -> metrics.Counters:
    r = metrics.Recorder()
    for status, seconds in statuses_and_seconds:
        r.observe(status, seconds)
    return r.counters()


def test_the_recorder_counts_by_status_class_and_times_every_request() -> None:
    c = _recorded([(200, 0.003)] * 5 + [(400, 0.02), (415, 0.001), (500, 2.0)])
    assert (c["requests"], c["4xx"], c["5xx"]) == (8, 2, 1)
    assert c["buckets"][-1] == 8 and c["buckets"][0] == 6  # 5 x 3 ms and the 1 ms refusal
    assert c["sum"] == pytest.approx(5 * 0.003 + 0.02 + 0.001 + 2.0)
    assert metrics.valid(c) == c


@pytest.mark.parametrize("bad", [
    None, [], {"requests": -1}, "x",
    {"requests": 2, "4xx": 0, "5xx": 0, "buckets": [0] * 13 + [2], "sum": float("nan")},
    {"requests": 2, "4xx": 0, "5xx": 0, "buckets": [2] + [1] * 12 + [2], "sum": 0.1},  # not cumulative
    {"requests": 3, "4xx": 0, "5xx": 0, "buckets": [0] * 13 + [2], "sum": 0.1},  # count != requests
    {"requests": 1, "4xx": 1, "5xx": 1, "buckets": [0] * 13 + [1], "sum": 0.1},  # more errors than requests
    {"requests": True, "4xx": 0, "5xx": 0, "buckets": [0] * 13 + [1], "sum": 0.1},
    {"requests": 1, "4xx": 0, "5xx": 0, "buckets": [0] * 5 + [1], "sum": 0.1},  # wrong buckets
])
def test_malformed_counters_are_refused(bad: object) -> None:
    assert metrics.valid(bad) is None


def test_a_counters_file_must_be_a_small_regular_file_not_a_link_or_a_pipe(tmp_path: Path) -> None:
    good = _recorded([(200, 0.01)])
    metrics.write_counters(tmp_path / "metrics.json", good)
    assert metrics.read_counters(tmp_path / "metrics.json") == good
    (tmp_path / "link.json").symlink_to(tmp_path / "metrics.json")  # another replica's file, say
    assert metrics.read_counters(tmp_path / "link.json") is None
    os.mkfifo(tmp_path / "fifo.json")  # would block a reader that opened it plainly
    assert metrics.read_counters(tmp_path / "fifo.json") is None
    (tmp_path / "big.json").write_text(" " * (metrics.MAX_FILE + 10) + json.dumps(good))
    assert metrics.read_counters(tmp_path / "big.json") is None
    (tmp_path / "junk.json").write_text("[[[[")
    assert metrics.read_counters(tmp_path / "junk.json") is None
    assert metrics.read_counters(tmp_path / "missing.json") is None


def test_quantiles_interpolate_within_the_bucket() -> None:
    buckets = [0] * len(metrics.BUCKETS)
    assert metrics.quantile(buckets, 0.5) is None
    # 10 requests, all between 10 ms and 25 ms
    buckets = [0, 0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    assert metrics.quantile(buckets, 0.5) == pytest.approx(0.0175)
    assert metrics.quantile(buckets, 1.0) == pytest.approx(0.025)
    slow = [0] * 13 + [4]  # all beyond the last finite bound
    assert metrics.quantile(slow, 0.99) == metrics.BUCKETS[-2]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("90", 90),
                                               (120, 120), ("1.5m", 90)])
def test_windows(text: str | int, seconds: float) -> None:
    assert metrics.parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "2h", "0s", "-1m", "1d"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="window"):
        metrics.parse_window(text)


def test_the_window_counts_only_what_happened_in_it_per_replica_and_in_total() -> None:
    w = metrics.Window(now=1000.0)
    a = [(200, 0.01)] * 10
    w.observe("a", 11, _recorded(a), 1001.0)
    w.observe("b", 12, _recorded([(200, 0.01)] * 3), 1001.0)
    w.tick(1001.0)
    # 100 s later: a answered 5 more (2 refused), b died after 1 more
    w.observe("a", 11, _recorded(a + [(200, 0.01)] * 3 + [(400, 0.01)] * 2), 1101.0)
    w.observe("b", 12, _recorded([(200, 0.01)] * 4), 1101.0)
    w.gone("b", 1101.0)
    w.observe("c", 13, _recorded([(500, 0.5)]), 1101.0)  # b's replacement
    w.tick(1101.0)
    doc = json.loads(json.dumps(w.doc(1102.0)))  # as the server reads it
    last_minute = metrics.window_stats(doc, 60, 1102.0)
    by = {r["replica"]: r for r in last_minute["replicas"]}
    assert (by["a"]["requests"], by["a"]["errors_4xx"]) == (5, 2)
    assert by["b"]["requests"] == 1 and by["b"]["gone"]
    assert (by["c"]["requests"], by["c"]["errors_5xx"]) == (1, 1)
    total = last_minute["total"]
    assert total["requests"] == 7 == sum(r["requests"] for r in by.values()) == total["latency_count"]
    assert total["error_rate"] == pytest.approx(3 / 7)
    assert total["requests_per_second"] == pytest.approx(7 / 60, abs=1e-4)
    everything = metrics.window_stats(doc, 3600, 1102.0)
    assert everything["total"]["requests"] == 10 + 5 + 4 + 1
    assert everything["seconds"] == pytest.approx(102.0)  # the service is that young
    assert metrics.lifetime_counters(doc)["requests"] == 20  # type: ignore[index]


def test_counts_that_go_down_are_not_believed() -> None:
    w = metrics.Window(now=0.0)
    w.observe("a", 1, _recorded([(200, 0.01)] * 5), 1.0)
    w.observe("a", 1, _recorded([(200, 0.01)] * 2), 2.0)  # a replica forging a smaller count
    assert w.replicas["a"]["counters"]["requests"] == 5


def test_long_gone_replicas_join_the_retired_counts_and_a_new_supervisor_keeps_them() -> None:
    w = metrics.Window(now=0.0)
    w.observe("a", 1, _recorded([(200, 0.01)] * 4), 1.0)
    w.tick(1.0)
    w.gone("a", 2.0)
    w.observe("b", 2, _recorded([(200, 0.01)]), 3.0)
    w.tick(3.0)
    w.tick(2.0 + metrics.MAX_WINDOW + 10)
    assert "a" not in w.replicas and w.retired["requests"] == 4
    assert all("a" not in by for _, by in w.samples)
    again = metrics.Window(json.loads(json.dumps(w.doc(5000.0))), now=5000.0)
    assert again.retired["requests"] == 5 and not again.replicas


def test_the_prometheus_text_parses_and_holds_every_replica() -> None:
    w = metrics.Window(now=0.0)
    w.observe("replica-1", 1, _recorded([(200, 0.01)] * 3 + [(400, 0.01)]), 1.0)
    w.observe("replica-2", 2, _recorded([(503, 0.2)]), 1.0)
    w.tick(1.0)
    text = metrics.prometheus_text("digits", "alice/model/d/cnn:v1", w.doc(2.0)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["assethub_service_requests"]
    counts = {(s.labels["replica"], s.labels["status"]): s.value for s in requests.samples
              if s.name.endswith("_total")}
    assert counts[("replica-1", "2xx")] == 3 and counts[("replica-1", "4xx")] == 1
    assert counts[("replica-2", "5xx")] == 1
    latency = families["assethub_service_request_duration_seconds"]
    count = {s.labels["replica"]: s.value for s in latency.samples if s.name.endswith("_count")}
    assert count == {"replica-1": 4, "replica-2": 1, "retired": 0}
    assert {s.labels["service"] for s in latency.samples} == {"digits"}
    assert any(s.labels.get("le") == "+Inf" for s in latency.samples)
    assert math.isinf(metrics.BUCKETS[-1])


def test_webhook_addresses_are_shown_without_their_secrets() -> None:
    url = "https://user:s3cret@hooks.example.com:8443/services/T000/B000/XXXXsecret?token=abc"
    shown = redact_url(url)
    assert shown == "https://hooks.example.com:8443/..."
    assert check_webhook(url) == url
    for bad in ("ftp://user:s3cret@host/x", "hooks.example.com/x", "https://user:s3cret@/x",
                "http://host:99999/x", "https://host/a b"):
        with pytest.raises(InvalidReferenceError) as e:
            check_webhook(bad)
        assert "s3cret" not in str(e.value) and "s3cret" not in e.value.value


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://169.254.169.254/latest/", "http://[fd00::1]/",
                                 "http://10.0.0.7:8000/", "http://192.168.1.1/", "http://0.0.0.0:8000/",
                                 "http://u:s3cret@[::1]:8000/?t=x"])
def test_webhooks_to_internal_addresses_are_refused_unless_allowed(url: str) -> None:
    refused = webhook_refusal(url, frozenset())
    assert "internal address" in refused and "s3cret" not in refused
    host = urlsplit(url).hostname
    assert webhook_refusal(url, frozenset({"*"})) == ""
    assert host and webhook_refusal(url, frozenset({host})) == ""


def test_webhooks_to_global_addresses_pass_and_the_port_can_narrow_an_allowance() -> None:
    assert webhook_refusal("https://8.8.8.8/hook", frozenset()) == ""
    assert webhook_refusal("http://127.0.0.1:9/x", frozenset({"127.0.0.1:9"})) == ""
    assert "internal address" in webhook_refusal("http://127.0.0.1:10/x", frozenset({"127.0.0.1:9"}))
