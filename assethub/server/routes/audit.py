"""The audit log: all events for admins, a user's own otherwise."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from assethub.hub import Hub, Principal
from assethub.server.routes._common import Authenticator, json_response


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/audit")
    def audit(who: Who, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              outcome: Literal["ok", "denied", "error"] | None = None,
              before: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        return json_response(hub.audit(who, actor=actor, action=action, target=target, since=since,
                                          outcome=outcome, before=before, limit=limit))

    return r
