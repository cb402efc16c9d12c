"""Console pages: home (your folders, shared with you, public, presets), search, new folder."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assethub import errors
from assethub.console._web import field, folder_url, form_of, redirect, render, viewer
from assethub.hub import Hub
from assethub.refs import FolderPath
from assethub.wire import TASK_TYPES

KINDS = ("model", "dataset")


def router(hub: Hub) -> APIRouter:
    r = APIRouter()

    @r.get("/")
    def home(request: Request) -> Response:
        who = viewer(hub, request)
        folders = hub.list_folders(who)
        mine = [f for f in folders if who.name and f.path.owner == who.name]
        shared = [f for f in folders if f not in mine and not f.public]
        public = [f for f in folders if f not in mine and f.public]
        presets = hub.search(who, kind="dataset", preset=True, limit=1000)
        return render(hub, request, "home.html", mine=mine, shared=shared, public=public,
                      presets=presets, kinds=KINDS)

    @r.get("/search")
    def search(request: Request, q: str = "", label: str = "", kind: str = "", owner: str = "",
               task_type: str = "") -> Response:
        who = viewer(hub, request)
        if kind and kind not in KINDS:
            raise errors.InvalidReferenceError(f"kind must be 'model' or 'dataset', not {kind!r}",
                                               part="kind", value=kind[:20])
        if len(q) > 200:
            raise errors.InvalidReferenceError("a search is at most 200 characters", part="q",
                                               value=q[:20])
        results = hub.search(who, query=q, label=label or None, kind=kind or None,
                             owner=owner or None, task_type=task_type or None, limit=200)
        return render(hub, request, "search.html", results=results, q=q, label=label, kind=kind,
                      owner=owner, task_type=task_type, kinds=KINDS, task_types=TASK_TYPES,
                      searched=bool(q or label or kind or owner or task_type))

    @r.post("/folders")
    async def create_folder(request: Request) -> Response:
        login, form = await form_of(hub, request)
        who = login.principal
        me = hub.require_user(who)
        kind = field(form, "kind", limit=10)
        name = field(form, "name", limit=128)
        owner = field(form, "owner", me, limit=63) or me
        if kind not in KINDS:
            raise errors.InvalidReferenceError("choose a kind: model or dataset", part="kind",
                                               value=kind[:20])
        path = FolderPath.parse(f"{owner}/{kind}/{name}")
        hub.create_folder(who, path, description=field(form, "description", limit=2000))
        return redirect(folder_url(path), f"Folder {path} created", request)

    return r

