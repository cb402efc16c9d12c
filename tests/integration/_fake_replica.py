"""A stand-in replica for the supervisor's tests: answers every request with its pid and its id
(the name of its ready file: in the sandbox every replica is pid 2 of its own PID namespace), at
once; ``GET /probe?path=P`` says whether it can read ``P`` (and ``?write=P``: write it).

    python -m tests.integration._fake_replica --fd N --ready FILE

:func:`probe_service` runs a service of them under a real supervisor, in the sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

READY: Path | None = None


@contextlib.contextmanager
def probe_service(tmp_path: Path, monkeypatch: Any, replicas: int) -> Iterator[tuple[Any, int, Path]]:
    """A local service of ``replicas`` stand-in replicas (its files in ``tmp_path / "svc"``, a
    dummy model in ``tmp_path / "model"``), ready: its handle, its port and the model; stopped
    after."""
    from assethub.serving.local import LocalService, bind
    from tests._wait import wait_for

    model = tmp_path / "model"
    model.mkdir(mode=0o755)
    (model / "MLmodel").write_text("flavors: {}\n")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    handle = LocalService(tmp_path / "svc")
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    handle.launch(sock, {"name": "probe", "model_dir": str(model), "host": "127.0.0.1", "port": port,
                         "replica_module": "tests.integration._fake_replica"}, replicas)
    try:
        wait_for(f"{replicas} replica(s) ready", lambda: handle.status().get("ready") == replicas,
                 timeout=120, every=0.2)
        yield handle, port, model
    finally:
        handle.terminate()


def _probe(query: dict[str, list[str]]) -> dict[str, object]:
    out: dict[str, object] = {"uid": os.getuid()}
    for path in query.get("path", []):
        try:
            Path(path).read_bytes() if not Path(path).is_dir() else os.listdir(path)
            out[path] = "allowed"
        except OSError as e:
            out[path] = type(e).__name__
    for path in query.get("write", []):
        try:
            Path(path).write_text("x")
            out["write:" + path] = "allowed"
        except OSError as e:
            out["write:" + path] = type(e).__name__
    return out


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        url = urlsplit(self.path)
        answer = {"pid": os.getpid(), "replica": READY.name if READY else ""}
        if url.path == "/probe":
            answer.update(_probe(parse_qs(url.query)))
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--metrics", type=Path)  # the real replica writes its counters there
    args = parser.parse_args()
    global READY
    READY = args.ready
    if os.environ.get("FAKE_REPLICA_CRASH"):
        return 3  # dies while starting, every time
    server = HTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
    server.socket = socket.socket(fileno=args.fd)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if args.ready:
        args.ready.write_text(str(os.getpid()))
    server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
