"""Folders and their shares."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.server.routes._common import FOLDER, Authenticator, FolderP, StrictBody, json_response


class FolderIn(StrictBody):
    path: str = Field(max_length=400, description="<owner>/<model|dataset>/<folder>")
    description: str = Field("", max_length=10_000)


class FolderPatch(StrictBody):
    name: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=10_000)


class ShareIn(StrictBody):
    subject_type: Literal["user", "group", "everyone"]
    subject_name: str = Field("", max_length=63)
    role: Literal["view", "run", "edit"]


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/folders")
    def list_folders(who: Who, owner: str | None = None,
                     kind: Literal["model", "dataset"] | None = None) -> Any:
        return json_response(hub.list_folders(who, owner=owner, kind=kind))

    @r.post("/folders", status_code=201)
    def create_folder(who: Who, body: FolderIn) -> Any:
        return jsonable(hub.create_folder(who, body.path, description=body.description))

    @r.get(FOLDER)
    def get_folder(who: Who, path: FolderP) -> Any:
        return json_response(hub.get_folder(who, path))

    @r.patch(FOLDER)
    def update_folder(who: Who, path: FolderP, body: FolderPatch) -> Any:
        return jsonable(hub.update_folder(who, path, new_name=body.name,
                                          description=body.description))

    @r.delete(FOLDER, status_code=204)
    def delete_folder(who: Who, path: FolderP) -> Response:
        hub.delete_folder(who, path)
        return Response(status_code=204)

    @r.get(f"{FOLDER}/shares")
    def list_shares(who: Who, path: FolderP) -> Any:
        return json_response(hub.list_shares(who, path))

    @r.post(f"{FOLDER}/shares", status_code=201)
    def share(who: Who, path: FolderP, body: ShareIn) -> Any:
        return jsonable(hub.share(who, path, subject_type=body.subject_type,
                                  subject_name=body.subject_name, role=body.role))

    @r.delete(f"{FOLDER}/shares", status_code=204)
    def unshare(who: Who, path: FolderP,
                subject_type: Literal["user", "group", "everyone"],
                subject_name: Annotated[str, Query(max_length=63)] = "") -> Response:
        hub.unshare(who, path, subject_type=subject_type, subject_name=subject_name)
        return Response(status_code=204)

    return r
