"""Console pages: the audit log — your own events; an admin sees everyone's, with filters
(actor, action, target, outcome, since), a page at a time (newest first, "older" links)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assethub import errors
from assethub.console._web import render, viewer
from assethub.hub import Hub

PAGE = 100
OUTCOMES = ("ok", "denied", "error")


def _since(value: str) -> datetime | None:
    """A date (``2026-11-30``) or a date and time, UTC when no offset is given."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidReferenceError(
            f"'since' must be a date (2026-11-30) or a date and time (2026-11-30T08:00), "
            f"not {value[:40]!r}", part="since", value=value[:40]) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def router(hub: Hub) -> APIRouter:
    r = APIRouter()

    @r.get("/audit")
    def audit_page(request: Request, actor: str = "", action: str = "", target: str = "",
                   outcome: str = "", since: str = "", before: int | None = None) -> Response:
        who = viewer(hub, request)
        hub.require_user(who)
        for name, value, limit in (("actor", actor, 63), ("action", action, 64),
                                   ("target", target, 1024), ("since", since, 40)):
            if len(value) > limit:
                raise errors.InvalidReferenceError(f"{name} is over {limit} characters",
                                                   part=name, value=value[:40])
        if outcome and outcome not in OUTCOMES:
            raise errors.InvalidReferenceError(
                f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome[:20]!r}",
                part="outcome", value=outcome[:20])
        # one more than a page: whether there is an older page
        events = hub.audit(who, actor=actor or None, action=action or None,
                           target=target or None, outcome=outcome or None, since=_since(since),
                           before=before, limit=PAGE + 1)
        older = events[PAGE - 1].id if len(events) > PAGE else None
        filters = {"actor": actor, "action": action, "target": target, "outcome": outcome,
                   "since": since}
        return render(hub, request, "audit.html", events=events[:PAGE], filters=filters,
                      older=older, before=before, outcomes=OUTCOMES,
                      filtered=any(filters.values()))

    return r
