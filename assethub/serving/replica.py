"""One replica of a local service: MLflow's own scoring app, served by uvicorn on a socket it inherits.

    python -m assethub.serving.replica --fd N --ready FILE [--metrics FILE]
                                                  # env: __pyfunc_model_path__=<model dir>

This is what ``mlflow models serve -m <dir> --env-manager local`` runs (``uvicorn
mlflow.pyfunc.scoring_server.app:app`` with the model path in the environment), except that the
listening socket is the supervisor's, shared by every replica of the service, instead of one the
replica binds itself: the address outlives the replicas. The replica writes ``FILE`` once uvicorn
accepts connections, so the supervisor can tell a loading replica from a serving one.

Two things are added in front of MLflow's app: a guard for a request that names no content type
(MLflow's app fails on it with a 500), and, outermost, the request metrics: every scoring request
(``POST /invocations``) is counted by status class and timed into the replica's
``prometheus_client`` registry (:class:`assethub.serving.metrics.Recorder`), which is written to
``--metrics FILE`` twice a second when it changed (the supervisor collects it). Everything else
is MLflow's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from assethub.serving.metrics import Recorder, write_counters

MODEL_PATH_ENV = "__pyfunc_model_path__"  # mlflow.pyfunc.scoring_server._SERVER_MODEL_PATH


class _RequireContentType:
    """415 with a reason for ``POST /invocations`` without a Content-Type; the rest passes through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope.get("method") == "POST"
                and scope.get("path") == "/invocations"
                and not any(k == b"content-type" for k, _ in scope.get("headers") or [])):
            body = (b'{"error_code": "BAD_REQUEST", "message": "no Content-Type: send '
                    b'application/json (MLflow\'s inputs, instances, dataframe_split or '
                    b'dataframe_records) or text/csv"}')
            await send({"type": "http.response.start", "status": 415,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _Metrics:
    """Counts and times ``POST /invocations`` (the status of its response; 500 when the app
    fails before answering) into ``recorder``; the rest (``/ping``, ``/health``) is not counted."""

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (scope["type"] == "http" and scope.get("path") == "/invocations"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.recorder.observe(status, time.perf_counter() - started)


def _flush(recorder: Recorder, path: Path, stop: threading.Event) -> None:
    """Write the counters to ``path`` when they changed, every half second until ``stop``."""
    written = -1
    while True:
        stopping = stop.wait(0.5)
        if recorder.changes != written:
            written = recorder.changes
            try:
                write_counters(path, recorder.counters())
            except OSError as exc:
                print(f"replica {os.getpid()}: cannot write its metrics: {exc}", file=sys.stderr)
        if stopping:
            return


def load_app() -> Any:
    """MLflow's scoring app for the model at ``$__pyfunc_model_path__`` (loads the model)."""
    if not os.environ.get(MODEL_PATH_ENV):
        raise SystemExit(f"set {MODEL_PATH_ENV} to the MLflow model directory")
    return _RequireContentType(importlib.import_module("mlflow.pyfunc.scoring_server.app").app)


async def _serve(app: Any, sock: socket.socket, ready: Path | None) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=30))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started and ready is not None:
        ready.write_text(str(os.getpid()))
    await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assethub.serving.replica")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    parser.add_argument("--ready", type=Path, help="file written once the replica accepts requests")
    parser.add_argument("--metrics", type=Path, help="file the request counters are written to")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)  # family and type come from the descriptor
    recorder = Recorder()
    app = _Metrics(load_app(), recorder)
    stop = threading.Event()
    flusher = None
    if args.metrics is not None:
        write_counters(args.metrics, recorder.counters())
        flusher = threading.Thread(target=_flush, args=(recorder, args.metrics, stop), daemon=True)
        flusher.start()
    try:
        asyncio.run(_serve(app, sock, args.ready))
    finally:
        stop.set()
        if flusher is not None:
            flusher.join(timeout=5)  # the last requests' counts
    return 0


if __name__ == "__main__":
    sys.exit(main())
