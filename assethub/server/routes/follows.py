"""Follows and the lakeFS hook that reports dataset updates (see :mod:`assethub.follows`)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from assethub import follows
from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.server.routes import API
from assethub.triggers import HOOK_HEADER


class FollowIn(BaseModel):
    model: str = Field(max_length=600)
    dataset: str = Field(max_length=600)
    settings: dict[str, Any] = Field(default_factory=dict)


def router(hub: Hub, principal: Callable[[Request], Awaitable[Principal]]) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.post("/follows", status_code=201)
    def create_follow(who: Who, body: FollowIn) -> Any:
        # the hook's URL is a server setting (hub.lakefs_hook), never this request's Host
        return jsonable(follows.create_follow(hub, who, body.model, body.dataset, body.settings))

    @r.get("/follows")
    def list_follows(who: Who, model: Annotated[str | None, Query(max_length=600)] = None,
                     dataset: Annotated[str | None, Query(max_length=600)] = None) -> Any:
        return jsonable(follows.list_follows(hub, who, model=model, dataset=dataset))

    @r.post("/follows/{follow_id}/resume")
    def resume_follow(who: Who, follow_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
        # only its owner, once they hold the rights a retrain needs again
        return jsonable(follows.resume_follow(hub, who, follow_id))

    @r.delete("/follows/{follow_id}", status_code=204)
    def delete_follow(who: Who, follow_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
        follows.delete_follow(hub, who, follow_id)
        return Response(status_code=204)

    @r.post(follows.HOOK_PATH.removeprefix(API))
    async def lakefs_hook(secret: Annotated[str, Header(alias=HOOK_HEADER, max_length=200)] = "",
                          event: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
        # called by lakeFS actions, with the secret lakeFS holds in its environment; no user token
        return await run_in_threadpool(follows.on_lakefs_event, hub, secret, event or {})

    return r
