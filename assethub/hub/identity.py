"""Who is calling: users, groups, API tokens, and the :class:`Principal` a token stands for.

Every user-facing action takes a :class:`Principal` first. :func:`require_user` and
:func:`require_admin` are the two checks that need no catalog look-up; the roles on folders are
in :mod:`assethub.hub.permissions`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub.catalog import ApiToken, Catalog, Group, JobToken, Membership, User
from assethub.catalog.db import RECONNECTED
from assethub.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ForbiddenError,
    InvalidReferenceError,
    NotFoundError,
)
from assethub.hub._rows import aware
from assethub.refs import AssetKind, AssetPath
from assethub.wire import TokenView, UserView

if TYPE_CHECKING:
    from assethub.hub.audit import AuditLog

_TOKEN_TOUCH = timedelta(minutes=1)
JOB_TOKEN_PREFIX = "ahj_"  # job tokens (bound to one run) start with it; API tokens with "ah_"
RUN_ENDED = ("completed", "failed", "crashed")
_PRINCIPAL_TTL = 5.0  # seconds
#: what the catalog's subscribers hear when users, groups or tokens changed
IDENTITY_CHANNEL = "identity"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with their groups) or nobody (``name`` None); with
    ``job_run_id``, a job acting for that user on one run only (see :mod:`assethub.hub.jobs`)."""

    name: str | None
    is_admin: bool = False
    groups: frozenset[str] = frozenset()
    # set when the caller holds a job token: it acts as the run's owner, limited to that run
    job_run_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.name is None

    def __str__(self) -> str:
        return self.name or "anonymous"


ANONYMOUS = Principal(None)


def now() -> datetime:
    """The current time (UTC): token expiry, last use and revocation are measured with it."""
    return datetime.now(UTC)


def require_user(who: Principal) -> str:
    """The caller's user name; anonymous callers are told to sign in."""
    if who.name is None:
        raise AuthenticationError("sign in: this needs an API token")
    return who.name


def refuse_job_token(who: Principal, what: str = "this") -> None:
    """Refuse ``what`` to a job token (it may only act on its run)."""
    if who.job_run_id is not None:
        raise ForbiddenError(f"a job token may only act on its run ({who.job_run_id}): "
                             f"{what} is not part of it", needed="job scope")


def require_admin(who: Principal) -> None:
    """Raise unless the caller is a signed-in admin."""
    require_user(who)
    refuse_job_token(who)
    if not who.is_admin:
        raise ForbiddenError("only an admin may do this", needed="admin")


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user or group name (the owner rule of asset paths)."""
    AssetPath(name, AssetKind.MODEL, "f", "n")
    return name


def find_user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError("user", name)
    return user


def find_group(s: Session, name: str) -> Group:
    g = s.scalar(select(Group).where(Group.name == name))
    if g is None:
        raise NotFoundError("group", name)
    return g


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_job_token() -> tuple[str, str]:
    """A fresh job token: (secret, the hash the catalog keeps)."""
    secret = JOB_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, _hash_token(secret)


def _user_view(s: Session, u: User) -> UserView:
    groups = s.scalars(select(Group.name).join(Membership)
                       .where(Membership.user_id == u.id).order_by(Group.name)).all()
    return UserView(u.name, u.display_name, u.email, u.is_admin, u.disabled, tuple(groups))


def _token_view(t: ApiToken) -> TokenView:
    return TokenView(t.id, t.user.name, t.name, t.prefix, aware(t.created_at) or t.created_at,
                     aware(t.expires_at), aware(t.revoked_at), aware(t.last_used_at))


def _new_token(s: Session, user: User, name: str, expires: datetime | None) -> str:
    secret = "ah_" + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, name=name, token_hash=_hash_token(secret),
                   prefix=secret[:10], expires_at=expires))
    return secret


class Identity:
    """Users, groups and tokens (admin work audited), and token authentication."""

    def __init__(self, catalog: Catalog, audit: AuditLog,
                 clock: Callable[[], datetime] = now) -> None:
        self.catalog = catalog
        self.audit = audit
        # the time by which API tokens are made and expire (tests pass a clock they move)
        self.clock = clock
        self._principals: dict[str, tuple[float, Principal, datetime | None]] = {}
        audit.on_success(self._changed)
        # every server on the catalog forgets at once (PostgreSQL: LISTEN/NOTIFY between them)
        catalog.subscribe(self._on_change)

    def _changed(self, action: str) -> None:
        if action.startswith(("user.", "group.", "token.")):
            self.catalog.publish(IDENTITY_CHANNEL, action)

    def _on_change(self, channel: str, _payload: str) -> None:
        if channel in (IDENTITY_CHANNEL, RECONNECTED):
            self._principals.clear()  # who is who may have changed: look tokens up afresh

    # -- authentication ----------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> Principal:
        """The caller behind an API token; no token means anonymous.

        A result is reused for a few seconds (every request carries the token); any change to
        tokens, users or groups made through any server on the catalog forgets them at once
        (:meth:`Catalog.publish`; while another server's message is unread or the catalog's
        notifications are lost, the catalog is asked).
        """
        if not secret:
            return ANONYMOUS
        if secret.startswith(JOB_TOKEN_PREFIX):
            return self._authenticate_job(secret)  # never cached: it ends with its run
        key = _hash_token(secret)
        hit = self._principals.get(key)
        if hit is not None and hit[0] > time.monotonic() and (hit[2] is None or hit[2] > self.clock()) \
                and not self.catalog.changes_pending():  # nothing heard from other servers unread
            return hit[1]
        principal, expires = self._authenticate(secret)
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[key] = (time.monotonic() + _PRINCIPAL_TTL, principal, expires)
        return principal

    def _authenticate(self, secret: str) -> tuple[Principal, datetime | None]:
        at = self.clock()
        with self.catalog.session() as s:
            token = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
            if token is None:
                raise AuthenticationError("unknown API token: log in again with a valid token")
            if token.revoked_at is not None:
                raise AuthenticationError("this API token was revoked: create a new one")
            expires = aware(token.expires_at)
            if expires is not None and expires <= at:
                raise AuthenticationError("this API token has expired: create a new one")
            user = token.user
            if user.disabled:
                raise AuthenticationError(f"user {user.name} is disabled")
            last = aware(token.last_used_at)
            if last is None or at - last > _TOKEN_TOUCH:
                token.last_used_at = at
            groups = s.scalars(
                select(Group.name).join(Membership).where(Membership.user_id == user.id)
            ).all()
            return Principal(user.name, user.is_admin, frozenset(groups)), expires

    def _authenticate_job(self, secret: str) -> Principal:
        """The principal of a job token: the run's owner, limited to the run (``job_run_id``)."""
        at = self.clock()
        with self.catalog.session() as s:
            token = s.scalar(select(JobToken).where(JobToken.token_hash == _hash_token(secret)))
            if token is None:
                raise AuthenticationError("unknown job token")
            run = token.run
            if token.revoked_at is not None or run.state in RUN_ENDED:
                raise AuthenticationError(f"this job token ended with its run {run.id} ({run.state})")
            expires = aware(token.expires_at)
            if expires is not None and expires <= at:
                raise AuthenticationError(f"this job token has expired (run {run.id})")
            user = find_user(s, run.owner or run.created_by)
            if user.disabled:
                raise AuthenticationError(f"user {user.name} is disabled")
            groups = s.scalars(
                select(Group.name).join(Membership).where(Membership.user_id == user.id)
            ).all()
            return Principal(user.name, user.is_admin, frozenset(groups), job_run_id=run.id)

    def ensure_service_user(self, name: str, *, new_token: bool) -> str | None:
        """Create the service user ``name`` (not an admin, no shares) if missing; with
        ``new_token``, or when it was created, a new API token for it (the secret)."""
        check_user_name(name)
        with self.catalog.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            created = user is None
            if user is None:
                user = User(name=name, display_name="Service user (the Prefect worker)")
                s.add(user)
                s.flush()
            elif user.is_admin:
                raise ForbiddenError(f"the service user {name} must not be an admin", needed="admin")
            secret = _new_token(s, user, "worker", None) if created or new_token else None
        if created:
            self.audit.record(Principal(name), "user.bootstrap", name, "ok")
        self.catalog.publish(IDENTITY_CHANNEL, "user.bootstrap")
        return secret

    def ensure_admin(self, name: str) -> str | None:
        """Create admin ``name`` with a token if there is no such user; returns the new secret."""
        check_user_name(name)
        with self.catalog.session() as s:
            if s.scalar(select(User).where(User.name == name)) is not None:
                return None
            user = User(name=name, is_admin=True, display_name="Administrator")
            s.add(user)
            s.flush()
            secret = _new_token(s, user, "bootstrap", None)
        self.audit.record(Principal(name, True), "user.bootstrap", name, "ok")
        return secret

    def principal_of(self, name: str) -> Principal:
        """The principal of user ``name`` as their own token would give it (for work done on
        their behalf, e.g. a follow's retrain); NotFoundError without such a user,
        AuthenticationError when they are disabled."""
        with self.catalog.session() as s:
            user = find_user(s, name)
            if user.disabled:
                raise AuthenticationError(f"user {user.name} is disabled")
            groups = s.scalars(
                select(Group.name).join(Membership).where(Membership.user_id == user.id)
            ).all()
            return Principal(user.name, user.is_admin, frozenset(groups))

    def whoami(self, who: Principal) -> UserView:
        name = require_user(who)
        with self.catalog.session() as s:
            return _user_view(s, find_user(s, name))

    # -- users, groups, tokens (admin) -------------------------------------------------------
    def create_user(self, who: Principal, name: str, *, display_name: str = "",
                    email: str = "", is_admin: bool = False) -> UserView:
        with self.audit.audited(who, "user.create", name):
            require_admin(who)
            check_user_name(name)
            with self.catalog.session() as s:
                if s.scalar(select(User).where(User.name == name)) is not None:
                    raise AlreadyExistsError("user", name)
                u = User(name=name, display_name=display_name, email=email, is_admin=is_admin)
                s.add(u)
                s.flush()
                return _user_view(s, u)

    def list_users(self, who: Principal) -> list[UserView]:
        require_admin(who)
        with self.catalog.session() as s:
            return [_user_view(s, u) for u in s.scalars(select(User).order_by(User.name))]

    def update_user(self, who: Principal, name: str, *, is_admin: bool | None = None,
                    disabled: bool | None = None, display_name: str | None = None,
                    email: str | None = None) -> UserView:
        with self.audit.audited(who, "user.update", name):
            require_admin(who)
            with self.catalog.session() as s:
                u = find_user(s, name)
                if is_admin is not None:
                    u.is_admin = is_admin
                if disabled is not None:
                    u.disabled = disabled
                if display_name is not None:
                    u.display_name = display_name
                if email is not None:
                    u.email = email
                return _user_view(s, u)

    def create_group(self, who: Principal, name: str) -> str:
        with self.audit.audited(who, "group.create", name):
            require_admin(who)
            check_user_name(name)
            with self.catalog.session() as s:
                if s.scalar(select(Group).where(Group.name == name)) is not None:
                    raise AlreadyExistsError("group", name)
                s.add(Group(name=name))
            return name

    def list_groups(self, who: Principal) -> dict[str, list[str]]:
        require_admin(who)
        with self.catalog.session() as s:
            return {g.name: sorted(m.user.name for m in g.members)
                    for g in s.scalars(select(Group).order_by(Group.name))}

    def delete_group(self, who: Principal, name: str) -> None:
        with self.audit.audited(who, "group.delete", name):
            require_admin(who)
            with self.catalog.session() as s:
                s.delete(find_group(s, name))

    def add_member(self, who: Principal, group: str, user: str) -> None:
        with self.audit.audited(who, "group.add_member", f"{group}:{user}"):
            require_admin(who)
            with self.catalog.session() as s:
                g, u = find_group(s, group), find_user(s, user)
                if not any(m.user_id == u.id for m in g.members):
                    g.members.append(Membership(user_id=u.id))

    def remove_member(self, who: Principal, group: str, user: str) -> None:
        with self.audit.audited(who, "group.remove_member", f"{group}:{user}"):
            require_admin(who)
            with self.catalog.session() as s:
                g, u = find_group(s, group), find_user(s, user)
                g.members = [m for m in g.members if m.user_id != u.id]

    def create_token(self, who: Principal, user: str, *, name: str = "",
                     expires_in_days: float | None = None) -> tuple[TokenView, str]:
        """A new API token for ``user`` (yourself, or anyone for an admin); the secret once."""
        with self.audit.audited(who, "token.create", user):
            me = require_user(who)
            if user != me and not who.is_admin:
                raise ForbiddenError("only an admin may create tokens for someone else",
                                     needed="admin")
            if expires_in_days is not None and expires_in_days <= 0:
                raise InvalidReferenceError("expires_in_days must be positive",
                                            part="expires_in_days", value=str(expires_in_days))
            expires = (self.clock() + timedelta(days=expires_in_days)
                       if expires_in_days is not None else None)
            with self.catalog.session() as s:
                u = find_user(s, user)
                secret = _new_token(s, u, name, expires)
                s.flush()
                t = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
                assert t is not None
                return _token_view(t), secret

    def list_tokens(self, who: Principal, user: str) -> list[TokenView]:
        me = require_user(who)
        if user != me and not who.is_admin:
            raise ForbiddenError("only an admin may list someone else's tokens", needed="admin")
        with self.catalog.session() as s:
            u = find_user(s, user)
            return [_token_view(t) for t in s.scalars(
                select(ApiToken).where(ApiToken.user_id == u.id).order_by(ApiToken.id))]

    def revoke_token(self, who: Principal, token_id: int) -> None:
        with self.audit.audited(who, "token.revoke", str(token_id)):
            me = require_user(who)
            if not 0 < token_id < 2**63:
                raise NotFoundError("token", str(token_id))
            with self.catalog.session() as s:
                t = s.get(ApiToken, token_id)
                if t is None or (t.user.name != me and not who.is_admin):
                    raise NotFoundError("token", str(token_id))
                if t.revoked_at is None:
                    t.revoked_at = now()
