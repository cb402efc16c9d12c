"""A service's request metrics: what each replica counts, how its supervisor keeps a rolling
window of them, and the figures the server shows (requests/s, error rate, latency percentiles).

Three places, one format. A replica counts its scoring requests (``POST /invocations``) in a
``prometheus_client`` registry (requests by status class, a latency histogram) and writes them,
as :data:`Counters`, to a file of its own (:func:`write_counters`); only that replica's
directory is mounted writable in its sandbox, so it cannot write another replica's file. The
supervisor reads the files (:func:`read_counters`: no symlinks, regular files, small, numbers
checked), keeps them in a :class:`Window` (counts never go down; a replica that is gone stays
until it is older than :data:`MAX_WINDOW`, then joins ``retired``), and writes the window to
``metrics.json`` in the service's directory, which only the server reads: :func:`window_stats`
and :func:`prometheus_text` turn it into figures.

No I/O but the two file helpers; no dependency but prometheus_client (imported where used).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: latency buckets (seconds) of every service's histogram; the last is +Inf
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                              60.0, math.inf)
MAX_WINDOW = 3600.0  # the longest window the server can ask about (seconds)
RESOLUTION = 2.0  # seconds between two samples of the window
MAX_FILE = 64 * 1024  # a replica's counters file is far smaller; anything larger is refused
_WINDOW = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")

Counters = dict[str, Any]  # {"requests", "4xx", "5xx": int, "buckets": [int per BUCKET], "sum": float}


def zero() -> Counters:
    return {"requests": 0, "4xx": 0, "5xx": 0, "buckets": [0] * len(BUCKETS), "sum": 0.0}


def valid(data: Any) -> Counters | None:
    """``data`` as counters if it is well formed (whole non-negative counts, cumulative buckets
    whose last equals the requests); None if not."""
    if not isinstance(data, Mapping):
        return None
    out = zero()
    for key in ("requests", "4xx", "5xx"):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            return None
        out[key] = v
    buckets, total = data.get("buckets"), data.get("sum")
    if (not isinstance(buckets, list) or len(buckets) != len(BUCKETS)
            or any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in buckets)
            or any(a > b for a, b in itertools.pairwise(buckets))
            or buckets[-1] != out["requests"] or out["4xx"] + out["5xx"] > out["requests"]):
        return None
    if isinstance(total, bool) or not isinstance(total, int | float) or not 0 <= total < math.inf:
        return None
    out["buckets"], out["sum"] = list(buckets), float(total)
    return out


def add(a: Counters, b: Counters) -> Counters:
    return {"requests": a["requests"] + b["requests"], "4xx": a["4xx"] + b["4xx"],
            "5xx": a["5xx"] + b["5xx"], "sum": a["sum"] + b["sum"],
            "buckets": [x + y for x, y in zip(a["buckets"], b["buckets"], strict=True)]}


def sub(a: Counters, b: Counters) -> Counters:
    """``a - b``, never below zero (counts that went down are not believed)."""
    return {"requests": max(0, a["requests"] - b["requests"]), "4xx": max(0, a["4xx"] - b["4xx"]),
            "5xx": max(0, a["5xx"] - b["5xx"]), "sum": max(0.0, a["sum"] - b["sum"]),
            "buckets": [max(0, x - y) for x, y in zip(a["buckets"], b["buckets"], strict=True)]}


def not_below(new: Counters, old: Counters) -> bool:
    """Whether ``new`` is ``old`` or later: no count went down."""
    return (all(new[k] >= old[k] for k in ("requests", "4xx", "5xx"))
            and all(x >= y for x, y in zip(new["buckets"], old["buckets"], strict=True)))


def quantile(buckets: list[int], q: float) -> float | None:
    """The ``q`` quantile of a cumulative histogram (Prometheus's histogram_quantile: linear
    within the bucket; the highest finite bound when it falls in +Inf); None without data."""
    total = buckets[-1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip(BUCKETS, buckets, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return BUCKETS[-2]
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return BUCKETS[-2]


def parse_window(text: str | float | int) -> float:
    """Seconds in ``30s``, ``5m``, ``1h`` (or a number of seconds), 1 s to :data:`MAX_WINDOW`."""
    from assethub.errors import InvalidReferenceError

    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _WINDOW.fullmatch(str(text).strip().lower())
        if not m:
            raise InvalidReferenceError(f"invalid window {str(text)[:40]!r}: use e.g. 30s, 5m or 1h",
                                        part="window", value=str(text)[:40])
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 1 <= seconds <= MAX_WINDOW:
        raise InvalidReferenceError(f"a window is 1s to {MAX_WINDOW / 3600:.0f}h, not {text!r}",
                                    part="window", value=str(text)[:40])
    return seconds


# -- the replica's side ---------------------------------------------------------------------------
class Recorder:
    """A replica's counts, in a prometheus_client registry of its own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("requests", "Scoring requests answered", ["status"],
                                registry=self.registry)
        self.latency = Histogram("request_duration_seconds", "Time to answer a scoring request",
                                 buckets=BUCKETS, registry=self.registry)
        for label in ("2xx", "4xx", "5xx"):
            self.requests.labels(label)  # present at 0
        self.changes = 0
        self._lock = threading.Lock()  # a request is counted and timed before anyone reads

    def observe(self, status: int, seconds: float) -> None:
        label = "5xx" if status >= 500 else "4xx" if status >= 400 else "2xx"
        with self._lock:
            self.requests.labels(label).inc()
            self.latency.observe(max(0.0, seconds))
            self.changes += 1

    def counters(self) -> Counters:
        with self._lock:
            return self._counters()

    def _counters(self) -> Counters:
        out = zero()
        by_bound: dict[float, int] = {}
        for family in self.registry.collect():
            for s in family.samples:
                if s.name == "requests_total":
                    out["requests"] += int(s.value)
                    if s.labels.get("status") in ("4xx", "5xx"):
                        out[s.labels["status"]] += int(s.value)
                elif s.name == "request_duration_seconds_bucket":
                    by_bound[float(s.labels["le"])] = int(s.value)
                elif s.name == "request_duration_seconds_sum":
                    out["sum"] = float(s.value)
        out["buckets"] = [by_bound.get(b, 0) for b in BUCKETS]
        return out


def write_counters(path: Path, counters: Counters) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(counters))
    os.replace(tmp, path)


def read_counters(path: Path) -> Counters | None:
    """A replica's counters file, if it is a small regular file (not a link, not a pipe) holding
    valid counters; None otherwise. The replica wrote it: nothing in it is trusted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
            return None
        data = os.read(fd, MAX_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return valid(json.loads(data))
    except (ValueError, RecursionError):
        return None


# -- the supervisor's side -----------------------------------------------------------------------
class Window:
    """The replicas' counts now and at moments of the last :data:`MAX_WINDOW` seconds.

    ``replicas``: id -> {"pid", "counters", "started", "gone"}; ``samples``: [time, {id:
    counters}] whenever something changed (at most every :data:`RESOLUTION` s), the oldest
    being the last one before the window; ``retired``: the counts of replicas long gone."""

    def __init__(self, doc: Mapping[str, Any] | None = None, now: float = 0.0) -> None:
        self.replicas: dict[str, dict[str, Any]] = {}
        self.samples: list[list[Any]] = []
        self.retired = zero()
        self.started = now
        self.dirty = False
        if doc:  # a new supervisor of the same service: the old one's counts are history
            lifetime = lifetime_counters(doc)
            self.retired = lifetime if lifetime is not None else zero()
            self.started = float(doc.get("started") or now)

    def observe(self, rid: str, pid: int, counters: Counters, now: float) -> None:
        entry = self.replicas.get(rid)
        if entry is None:
            self.replicas[rid] = {"pid": pid, "counters": counters, "started": now, "gone": None}
            self.dirty = self.dirty or counters["requests"] > 0
        elif counters != entry["counters"] and not_below(counters, entry["counters"]):
            entry["counters"] = counters
            self.dirty = True

    def gone(self, rid: str, now: float) -> None:
        entry = self.replicas.get(rid)
        if entry is not None and entry["gone"] is None:
            entry["gone"] = now

    def tick(self, now: float) -> bool:
        """Take a sample if anything changed; forget what is older than the longest window.
        True if the document changed (write it)."""
        changed = False
        if self.dirty and (not self.samples or now - self.samples[-1][0] >= RESOLUTION):
            self.samples.append([now, {rid: e["counters"] for rid, e in self.replicas.items()}])
            self.dirty, changed = False, True
        cutoff = now - MAX_WINDOW
        while len(self.samples) > 1 and self.samples[1][0] <= cutoff:
            self.samples.pop(0)
            changed = True
        for rid, e in list(self.replicas.items()):
            if e["gone"] is not None and e["gone"] < cutoff:  # no window sees it change
                self.retired = add(self.retired, e["counters"])
                del self.replicas[rid]
                for _, by in self.samples:
                    by.pop(rid, None)
                changed = True
        return changed

    def doc(self, now: float) -> dict[str, Any]:
        return {"updated": now, "started": self.started, "retired": self.retired,
                "replicas": self.replicas, "samples": self.samples}


# -- the server's side ---------------------------------------------------------------------------
def lifetime_counters(doc: Mapping[str, Any]) -> Counters | None:
    """Everything the service's replicas answered since it was created; None for a bad document."""
    total = valid(doc.get("retired")) if "retired" in doc else zero()
    if total is None:
        return None
    for e in (doc.get("replicas") or {}).values():
        c = valid(e.get("counters")) if isinstance(e, Mapping) else None
        if c is not None:
            total = add(total, c)
    return total


def _figures(c: Counters, seconds: float) -> dict[str, Any]:
    n = c["requests"]
    return {"requests": n, "requests_per_second": n / seconds if seconds > 0 else 0.0,
            "errors_4xx": c["4xx"], "errors_5xx": c["5xx"],
            "error_rate": (c["4xx"] + c["5xx"]) / n if n else 0.0,
            "p50": quantile(c["buckets"], 0.50), "p95": quantile(c["buckets"], 0.95),
            "p99": quantile(c["buckets"], 0.99), "latency_count": c["buckets"][-1],
            "latency_sum": round(c["sum"], 6)}


def window_stats(doc: Mapping[str, Any], window: float, now: float) -> dict[str, Any]:
    """Figures of the last ``window`` seconds from the supervisor's document: per replica (id,
    pid, whether it is gone) and in total; seconds is the time covered (less than the window
    for a younger service)."""
    start = now - window
    base: Mapping[str, Any] = {}
    for t, by in doc.get("samples") or []:
        if t <= start:
            base = by
        else:
            break
    seconds = max(1e-9, min(window, now - float(doc.get("started") or start)))
    total = zero()
    replicas = []
    for rid, e in sorted((doc.get("replicas") or {}).items(), key=lambda kv: kv[1].get("started", 0)):
        end = valid(e.get("counters"))
        if end is None:
            continue
        before = valid(base.get(rid)) or zero()
        delta = sub(end, before)
        if e.get("gone") is not None and delta["requests"] == 0:
            continue
        total = add(total, delta)
        replicas.append({"replica": rid, "pid": e.get("pid"), "gone": e.get("gone") is not None,
                         **_figures(delta, seconds)})
    return {"window_seconds": window, "seconds": round(seconds, 3), "total": _figures(total, seconds),
            "replicas": replicas}


def prometheus_text(service: str, model: str, doc: Mapping[str, Any]) -> bytes:
    """The service's counters in the Prometheus text format (per replica, cumulative)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    class _Collector:
        def collect(self) -> Any:
            requests = CounterMetricFamily("assethub_service_requests", "Scoring requests answered",
                                           labels=["service", "model", "replica", "status"])
            latency = HistogramMetricFamily("assethub_service_request_duration_seconds",
                                            "Time to answer a scoring request",
                                            labels=["service", "model", "replica"])
            rows = [(rid, valid(e.get("counters"))) for rid, e in (doc.get("replicas") or {}).items()]
            rows.append(("retired", valid(doc.get("retired")) if "retired" in doc else zero()))
            for rid, c in rows:
                if c is None:
                    continue
                labels = [service, model, rid]
                requests.add_metric([*labels, "2xx"], c["requests"] - c["4xx"] - c["5xx"])
                requests.add_metric([*labels, "4xx"], c["4xx"])
                requests.add_metric([*labels, "5xx"], c["5xx"])
                latency.add_metric(labels, [("+Inf" if math.isinf(b) else repr(b), n)
                                            for b, n in zip(BUCKETS, c["buckets"], strict=True)],
                                   c["sum"])
            yield requests
            yield latency

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(generate_latest(registry))
