"""The web console: server-rendered pages over the same :class:`~assethub.hub.Hub` as the API.

Open ``http://127.0.0.1:8780/`` and sign in with an API token. Pages (each module's ``router``):

- :mod:`.auth`: sign-in / sign-out, your tokens, users (admin)
- :mod:`.home`: home (your folders, shared with you, public, presets), search, new folder
- :mod:`.folders`: a folder's assets and shares
- :mod:`.assets`: an asset: overview, files at a ref, file view, history, compare, refs
- :mod:`.change`: upload, edit README and metadata, merge, publish, import
- :mod:`.datasets`: a dataset's settings, published versions, preview and class distribution
- :mod:`.data`: a dataset's statistics, version graph and restore, file preview, sample diff
- :mod:`.jobs`: evaluations, version comparison, lineage, job forms, runs
- :mod:`.services`: model services
- :mod:`.audit`: the audit log

Every page goes through the hub's permission layer with the signed-in person (anonymous sees
what is public): a hidden folder or asset answers exactly like a missing one. The only script
is ``static/console.js``; there is no Node build and no third-party code.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from assethub.console import assets, audit, auth, change, data, datasets, folders, home, jobs, services
from assethub.console._web import HERE, error_page
from assethub.hub import Hub

__all__ = ["PAGES", "error_page", "mount"]

#: the sections in the order their routes are matched
PAGES = (auth, home, folders, assets, change, datasets, data, jobs, services, audit)


class _ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` to every console response: the time from the
    request's arrival to its response head (data look-ups and rendering), what the console's
    benchmark and the demo report. API routes are left untouched (and unwrapped)."""

    def __init__(self, app: Any, api_prefix: str) -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"server-timing", f"app;dur={took:.1f}".encode())]
            await send(message)

        await self.app(scope, receive, timed)


def mount(app: FastAPI, hub: Hub, api_prefix: str = "/api/") -> None:
    """Add the console's pages and its static files to ``app``."""
    app.add_middleware(_ServerTiming, api_prefix=api_prefix)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")
    root = APIRouter(include_in_schema=False)
    for page in PAGES:
        root.include_router(page.router(hub))
    app.include_router(root)
