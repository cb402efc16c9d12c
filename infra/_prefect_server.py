"""Run Prefect's API server and UI (what ``prefect server start`` runs), with two fixes.

1. Prefect 3.8's client sends ``"limit": null`` / ``"sort": null`` in the bodies of its filter
calls and means "the default"; FastAPI 0.15x validates an explicit null against ``int`` and
refuses the call (422), so deployments, work pools and the UI's lists fail. Dropping null
top-level keys from those bodies lets the server apply its defaults, as Prefect intends.

2. On SQLite, the worker channel's heartbeat (and its setup) reads the work pool and then upserts
the worker in one DEFERRED transaction. When another connection commits in between, SQLite cannot upgrade the
read to a write and answers "database is locked" at once (SQLITE_BUSY_SNAPSHOT: the busy timeout
does not apply), and the server logs "Worker channel heartbeat persistence failed" and drops the
channel. Starting that transaction as IMMEDIATE takes the write lock first, so it waits its turn
like every other write. (Prefect already does this for its own ``with_for_update`` sessions.)

    python -m infra._prefect_server --host 127.0.0.1 --port 4210
"""

from __future__ import annotations

import argparse
import json
from typing import Any

_ENDINGS = ("/filter", "/count", "/paginate", "/history")


class NullsAsDefaults:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or \
                not scope["path"].rstrip("/").endswith(_ENDINGS):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            body = json.dumps({k: v for k, v in data.items() if v is not None}).encode()
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def heartbeats_take_the_write_lock_first() -> None:
    """Fix 2: the worker channel's read-then-write transactions (its setup and every heartbeat)
    begin IMMEDIATE (see the module docstring)."""
    from prefect.server.api import workers
    from prefect.server.database import configurations
    from prefect.server.utilities import worker_channel

    def immediate(call: Any) -> Any:
        if getattr(call, "assethub_immediate", False):
            return call

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            # read by Prefect's SQLite "begin" listener when the session's first statement
            # starts the transaction
            token = configurations.SQLITE_BEGIN_MODE.set("IMMEDIATE")
            try:
                return await call(*args, **kwargs)
            finally:
                configurations.SQLITE_BEGIN_MODE.reset(token)

        wrapped.assethub_immediate = True  # type: ignore[attr-defined]
        return wrapped

    worker_channel._persist_worker_channel_heartbeat = immediate(
        worker_channel._persist_worker_channel_heartbeat)
    workers._build_worker_ready_frame = immediate(workers._build_worker_ready_frame)


def main(argv: list[str] | None = None) -> int:
    import uvicorn
    from prefect.server.api.server import create_app

    heartbeats_take_the_write_lock_first()

    parser = argparse.ArgumentParser(prog="python -m infra._prefect_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args(argv)
    uvicorn.run(NullsAsDefaults(create_app(final=True)), host=args.host, port=args.port,
                log_level="warning", timeout_keep_alive=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
