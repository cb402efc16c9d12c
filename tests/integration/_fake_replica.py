"""A stand-in replica for the supervisor's tests: answers every request with its pid, at once.

    python -m tests.integration._fake_replica --fd N --ready FILE [--crash]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"pid": os.getpid()}).encode()
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
    args = parser.parse_args()
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
