"""Health, the caller (whoami), users, groups and API tokens."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.server.routes._common import Authenticator, StrictBody, json_response


class UserIn(StrictBody):
    name: str = Field(max_length=63)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=320)
    is_admin: bool = False


class UserPatch(StrictBody):
    is_admin: bool | None = None
    disabled: bool | None = None
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)


class GroupIn(StrictBody):
    name: str = Field(max_length=63)


class MemberIn(StrictBody):
    user: str = Field(max_length=63)


class TokenIn(StrictBody):
    name: str = Field("", max_length=100)
    expires_in_days: float | None = Field(None, gt=0, le=36500)


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @r.get("/whoami")
    def whoami(who: Who) -> Any:
        return json_response(hub.whoami(who))

    @r.get("/users")
    def list_users(who: Who) -> Any:
        return json_response(hub.list_users(who))

    @r.post("/users", status_code=201)
    def create_user(who: Who, body: UserIn) -> Any:
        return jsonable(hub.create_user(who, body.name, display_name=body.display_name,
                                        email=body.email, is_admin=body.is_admin))

    @r.patch("/users/{user}")
    def update_user(who: Who, user: str, body: UserPatch) -> Any:
        return jsonable(hub.update_user(who, user, is_admin=body.is_admin,
                                        disabled=body.disabled,
                                        display_name=body.display_name, email=body.email))

    @r.get("/users/{user}/tokens")
    def list_tokens(who: Who, user: str) -> Any:
        return json_response(hub.list_tokens(who, user))

    @r.post("/users/{user}/tokens", status_code=201)
    def create_token(who: Who, user: str, body: TokenIn) -> Any:
        view, secret = hub.create_token(who, user, name=body.name,
                                        expires_in_days=body.expires_in_days)
        return {**jsonable(view), "token": secret}

    @r.delete("/tokens/{token_id}", status_code=204)
    def revoke_token(who: Who, token_id: int) -> Response:
        hub.revoke_token(who, token_id)
        return Response(status_code=204)

    @r.get("/groups")
    def list_groups(who: Who) -> Any:
        return hub.list_groups(who)

    @r.post("/groups", status_code=201)
    def create_group(who: Who, body: GroupIn) -> Any:
        return {"name": hub.create_group(who, body.name)}

    @r.delete("/groups/{group}", status_code=204)
    def delete_group(who: Who, group: str) -> Response:
        hub.delete_group(who, group)
        return Response(status_code=204)

    @r.post("/groups/{group}/members", status_code=204)
    def add_member(who: Who, group: str, body: MemberIn) -> Response:
        hub.add_member(who, group, body.user)
        return Response(status_code=204)

    @r.delete("/groups/{group}/members/{user}", status_code=204)
    def remove_member(who: Who, group: str, user: str) -> Response:
        hub.remove_member(who, group, user)
        return Response(status_code=204)

    return r
