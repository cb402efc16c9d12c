"""Web console sessions: a person signs in with an API token and gets a session cookie.

The cookie carries a random secret; the catalog keeps only its SHA-256, the CSRF token of the
session and the API token it stands on. Every request re-checks that token (revoked, expired,
user disabled -> the session is over), so revoking a token signs out every browser that used
it. Job tokens cannot sign in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from assethub.catalog import ApiToken, Catalog, ConsoleSession, Group, Membership
from assethub.errors import AuthenticationError
from assethub.hub._rows import aware
from assethub.hub.audit import AuditLog
from assethub.hub.identity import JOB_TOKEN_PREFIX, Identity, Principal

#: how long a console session lasts at most (the token's own expiry may end it sooner)
SESSION_HOURS = 12.0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleLogin:
    """A signed-in browser: who, the session's CSRF token, and when the session ends."""

    principal: Principal
    csrf: str
    expires_at: datetime
    token_id: int


class Sessions:
    """Opens, checks and ends console sessions (sign-in and sign-out are audited)."""

    def __init__(self, catalog: Catalog, audit: AuditLog, identity: Identity,
                 hours: float = SESSION_HOURS) -> None:
        self.catalog = catalog
        self.audit = audit
        self.identity = identity
        self.hours = hours

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.identity.clock

    def sign_in(self, api_token: str) -> tuple[str, ConsoleLogin]:
        """A new session for the holder of ``api_token``: (the cookie's secret, the login).
        A bad, revoked or expired token, a job token, or no token: AuthenticationError."""
        api_token = api_token.strip()
        if not api_token:
            raise AuthenticationError("paste an API token to sign in")
        if api_token.startswith(JOB_TOKEN_PREFIX):
            raise AuthenticationError("a job token cannot sign in to the console")
        try:
            who = self.identity.authenticate(api_token)
        except AuthenticationError as e:
            self.audit.record(Principal(None), "session.create", "", "denied", str(e))
            raise
        at = self.clock()
        secret = "ahs_" + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.catalog.session() as s:
            token = s.scalar(select(ApiToken).where(
                ApiToken.token_hash == hashlib.sha256(api_token.encode()).hexdigest()))
            if token is None:  # revoked between the two look-ups
                raise AuthenticationError("unknown API token: sign in with a valid token")
            expires = at + timedelta(hours=self.hours)
            token_expires = aware(token.expires_at)
            if token_expires is not None:
                expires = min(expires, token_expires)
            s.add(ConsoleSession(session_hash=_hash(secret), token_id=token.id, csrf=csrf,
                                 created_at=at, expires_at=expires))
            token_id = token.id
        self.audit.record(who, "session.create", f"token {token_id}", "ok")
        return secret, ConsoleLogin(who, csrf, expires, token_id)

    def check(self, secret: str | None) -> ConsoleLogin | None:
        """The login behind a cookie's secret; None when there is no such live session (never
        raises for a stale cookie: the console then asks to sign in)."""
        if not secret or not secret.startswith("ahs_") or len(secret) > 100:
            return None
        at = self.clock()
        with self.catalog.session() as s:
            # the session with its token and the token's user in one query (every page asks)
            row = s.scalar(select(ConsoleSession)
                           .options(joinedload(ConsoleSession.token).joinedload(ApiToken.user))
                           .where(ConsoleSession.session_hash == _hash(secret)))
            if row is None or row.ended_at is not None:
                return None
            if (aware(row.expires_at) or at) <= at:
                return None
            token = row.token
            token_expires = aware(token.expires_at)
            if token.revoked_at is not None or (token_expires is not None and token_expires <= at):
                row.ended_at = at
                return None
            user = token.user
            if user.disabled:
                return None
            groups = s.scalars(
                select(Group.name).join(Membership).where(Membership.user_id == user.id)).all()
            who = Principal(user.name, user.is_admin, frozenset(groups))
            return ConsoleLogin(who, row.csrf, aware(row.expires_at) or at, token.id)

    def sign_out(self, secret: str | None) -> None:
        """End the session of ``secret`` (nothing happens for an unknown one)."""
        if not secret:
            return
        login = self.check(secret)
        with self.catalog.session() as s:
            # the session with its token and the token's user in one query (every page asks)
            row = s.scalar(select(ConsoleSession)
                           .options(joinedload(ConsoleSession.token).joinedload(ApiToken.user))
                           .where(ConsoleSession.session_hash == _hash(secret)))
            if row is not None and row.ended_at is None:
                row.ended_at = self.clock()
        if login is not None:
            self.audit.record(login.principal, "session.end", f"token {login.token_id}", "ok")

    @staticmethod
    def csrf_matches(login: ConsoleLogin, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(login.csrf.encode(), (presented or "").encode())
