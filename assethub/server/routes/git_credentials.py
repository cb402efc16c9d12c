"""Git credentials: a user's secret per host, kept for their jobs; never returned."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.server.routes._common import Authenticator, StrictBody, json_response

HostP = Annotated[str, Path(max_length=255, description="host[:port], e.g. git.example.org")]


class GitCredentialIn(StrictBody):
    username: str = Field("", max_length=1024, description="user name, or the token alone")
    password: str = Field("", max_length=4096, description="password or token")


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/git-credentials")
    def list_git_credentials(who: Who) -> Any:
        return json_response(hub.list_git_credentials(who))

    @r.put("/git-credentials/{host}")
    def set_git_credential(who: Who, host: HostP, body: GitCredentialIn) -> Any:
        return jsonable(hub.set_git_credential(who, host, body.username, body.password))

    @r.delete("/git-credentials/{host}", status_code=204)
    def delete_git_credential(who: Who, host: HostP) -> Response:
        hub.delete_git_credential(who, host)
        return Response(status_code=204)

    return r
