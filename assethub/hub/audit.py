"""The audit log: every change, and every refused change, recorded with who asked.

:meth:`AuditLog.audited` wraps an action: it records ``ok``, ``denied`` (the caller was refused or
told the subject does not exist) or ``error``, and re-raises. :meth:`AuditLog.query` reads the log
back: all of it for admins, a user's own events otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import insert, select

from assethub.catalog import AuditEvent, Catalog
from assethub.errors import AuthenticationError, ForbiddenError, NotFoundError
from assethub.hub._rows import aware
from assethub.hub.identity import Principal, require_user
from assethub.wire import AuditView


class AuditLog:
    """Writes and reads audit events in the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._listeners: list[Callable[[str], None]] = []

    def on_success(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(action)`` after each action that succeeded (e.g. to drop caches)."""
        self._listeners.append(listener)

    def record(self, who: Principal, action: str, target: str, outcome: str,
               detail: str = "") -> None:
        """Write one event (for outcomes :meth:`audited` does not cover, such as a refusal)."""
        # One INSERT in a transaction of its own, without the ORM's unit of work (half the
        # CPU of session.add + flush; every audited request pays it)
        with self.catalog.engine.begin() as c:
            c.execute(insert(AuditEvent).values(actor=who.name or "", action=action,
                                                target=target[:1024], outcome=outcome,
                                                detail=detail[:4000]))

    @contextmanager
    def audited(self, who: Principal, action: str, target: str) -> Iterator[None]:
        """Record the enclosed action's outcome: ok, denied or error (the error propagates)."""
        try:
            yield
        except (ForbiddenError, AuthenticationError, NotFoundError) as exc:
            self.record(who, action, target, "denied", str(exc))
            raise
        except Exception as exc:
            self.record(who, action, target, "error", f"{type(exc).__name__}: {exc}")
            raise
        for listener in self._listeners:
            listener(action)
        self.record(who, action, target, "ok")

    def query(self, who: Principal, *, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              outcome: str | None = None, before: int | None = None,
              limit: int = 100) -> list[AuditView]:
        """Audit events, newest first: all for admins, a user's own otherwise. ``before``: only
        events older than the event of that id (the next page after it)."""
        me = require_user(who)
        with self.catalog.session() as s:
            q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, 1000))
            if not who.is_admin:
                if actor and actor != me:
                    raise ForbiddenError("only an admin may read others' audit events",
                                         needed="admin")
                actor = me
            if actor:
                q = q.where(AuditEvent.actor == actor)
            if action:
                q = q.where(AuditEvent.action == action)
            if target:
                q = q.where(AuditEvent.target.contains(target))
            if since:
                q = q.where(AuditEvent.at >= since)
            if outcome:
                q = q.where(AuditEvent.outcome == outcome)
            if before is not None:
                q = q.where(AuditEvent.id < before)
            return [AuditView(e.id, aware(e.at) or e.at, e.actor, e.action, e.target,
                              e.outcome, e.detail) for e in s.scalars(q)]
