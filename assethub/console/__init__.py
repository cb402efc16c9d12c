"""The web console: server-rendered pages over the same :class:`~assethub.hub.Hub` as the API.

Open ``http://127.0.0.1:8780/`` and sign in with an API token. Pages (each module's ``router``):

- :mod:`.auth`: sign-in / sign-out, your tokens, users (admin)
- :mod:`.home`: home (your folders, shared with you, public, presets), search, new folder
- :mod:`.folders`: a folder's assets and shares
- :mod:`.assets`: an asset: overview, files at a ref, file view, history, compare, refs
- :mod:`.change`: upload, edit README and metadata, merge, publish, import
- :mod:`.datasets`: a dataset's settings, published versions, preview and class distribution
- :mod:`.jobs`: evaluations, version comparison, lineage, job forms, runs
- :mod:`.services`: model services
- :mod:`.audit`: the audit log

Every page goes through the hub's permission layer with the signed-in person (anonymous sees
what is public): a hidden folder or asset answers exactly like a missing one. The only script
is ``static/console.js``; there is no Node build and no third-party code.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from assethub.console import assets, audit, auth, change, datasets, folders, home, jobs, services
from assethub.console._web import HERE, error_page
from assethub.hub import Hub

__all__ = ["PAGES", "error_page", "mount"]

#: the sections in the order their routes are matched
PAGES = (auth, home, folders, assets, change, datasets, jobs, services, audit)
#: URL prefixes that belong to the console (the rest is the API's)
PREFIXES = ("/", )


def mount(app: FastAPI, hub: Hub) -> None:
    """Add the console's pages and its static files to ``app``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")
    root = APIRouter(include_in_schema=False)
    for page in PAGES:
        root.include_router(page.router(hub))
    app.include_router(root)
