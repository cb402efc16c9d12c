"""The Asset Hub service: who may do what, the catalog, storage, and the audit log, in one place.

Every public method takes the caller (a :class:`Principal`) first, checks the caller's role on
the folder before it touches storage, and records every change (and every refused change) in
the audit log. The HTTP server is a thin layer over this class.

Roles on a folder: ``view`` (list, read, download) < ``run`` (view + use in jobs and services)
< ``edit`` (run + upload, commit, branch, tag, merge, delete) < owner (edit + share, rename and
delete the folder). The owner of the path's ``<owner>`` part and admins hold every role.
A caller who may not even view a subject is told it does not exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub import _repo_names, dataset_formats
from assethub.catalog import (
    ApiToken,
    Asset,
    AuditEvent,
    Catalog,
    Evaluation,
    Folder,
    Group,
    Membership,
    Publication,
    Run,
    Share,
    User,
)
from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AssetNotFoundError,
    AuthenticationError,
    ConcurrentUpdateError,
    ForbiddenError,
    InvalidReferenceError,
    NotAllowedError,
    NotFoundError,
    to_wire,
)
from assethub.lineage import Lineage, model_commit_of
from assethub.refs import (
    DEFAULT_BRANCH,
    AssetKind,
    AssetPath,
    AssetRef,
    FolderPath,
    validate_object_path,
    validate_tag_name,
)
from assethub.storage import (
    BranchInfo,
    CommitInfo,
    DiffEntry,
    ObjectInfo,
    Storage,
    Strategy,
    StreamedObject,
    TagInfo,
    Transaction,
)
from assethub.triggers import FollowTriggers, NoFollowTriggers
from assethub.wire import (  # the values on the wire; defined there, re-exported here
    AssetView,
    AuditView,
    DatasetMeta,
    EvaluationView,
    FolderView,
    LineageView,
    RunView,
    ShareView,
    TokenView,
    UserView,
)

ROLES = ("view", "run", "edit")
_RANK = {"none": 0, "view": 1, "run": 2, "edit": 3, "owner": 4}
_ROLE_OF_RANK = {v: k for k, v in _RANK.items()}
SUBJECT_TYPES = ("user", "group", "everyone")
_TOKEN_TOUCH = timedelta(minutes=1)
BUNDLE_MAX_FILES = 5000
_PRINCIPAL_TTL = 5.0  # seconds


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with their groups) or nobody (``name`` None)."""

    name: str | None
    is_admin: bool = False
    groups: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.name is None

    def __str__(self) -> str:
        return self.name or "anonymous"


ANONYMOUS = Principal(None)


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int = 64 * 2**30  # one file
    max_archive_bytes: int = 16 * 2**30  # uncompressed content of an imported zip
    max_archive_files: int = 1_000_000


RUN_KINDS = ("train", "continue_train", "evaluate", "merge", "retrain")
RUN_TRIGGERS = ("person", "schedule", "event")  # who or what started a job
RUN_STATES = ("pending", "running", "completed", "failed", "crashed")
_RUN_FIELDS = ("state", "branch", "base_commit", "dataset_commit", "code_sha", "command", "params",
               "metrics", "result_commit", "mlflow_run_id", "prefect_flow_run_id", "error")
# What a job needs on each asset it names: it commits to the model it trains, uses the rest.
_JOB_NEEDS = {"train": "edit", "continue_train": "edit", "evaluate": "run", "merge": "edit",
              "retrain": "edit"}


def _run_view(r: Run) -> RunView:
    return RunView(r.id, r.kind, r.state, r.model_path, r.branch, r.base_ref, r.base_commit,
                   r.dataset_ref, r.dataset_commit, r.code_url, r.code_revision, r.code_subpath,
                   r.code_sha, r.command, dict(r.params or {}), dict(r.metrics or {}),
                   r.result_commit, r.mlflow_run_id, r.prefect_flow_run_id, r.error, r.created_by,
                   _aware(r.created_at) or r.created_at, _aware(r.finished_at), r.trigger or "person")


def _evaluation_view(e: Evaluation) -> EvaluationView:
    return EvaluationView(e.id, e.model_path, e.model_commit, e.dataset_ref, e.dataset_commit,
                          dict(e.metrics or {}), e.run_id, e.created_by,
                          _aware(e.created_at) or e.created_at)


def _check_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k or len(k) > 250:
            raise InvalidReferenceError(f"invalid metric name {k!r}", part="metric", value=str(k))
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidReferenceError(f"metric {k!r} must be a finite number, not {v!r}",
                                        part="metric", value=str(v))
        out[k] = float(v)
    return out


def _hex_id(value: str | None) -> str:
    if value is None:
        return uuid.uuid4().hex
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidReferenceError("an id is 32 lowercase hex digits", part="id", value=value[:64])
    return value


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without a zone; they were stored as UTC.
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _check_user_name(name: str) -> str:
    AssetPath(name, AssetKind.MODEL, "f", "n")  # the owner rule of asset paths
    return name


class Hub:
    """Catalog + storage + permissions + audit. Thread-safe; one per server process."""

    def __init__(self, catalog: Catalog, storage: Storage, *, work_dir: Path,
                 limits: Limits | None = None, follow_triggers: FollowTriggers | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.catalog = catalog
        # the time by which API tokens are made and expire (tests pass a clock they move)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.storage = storage
        self.limits = limits or Limits()
        # what starts follows' retrains (assethub.follows); the server's composition root wires it
        self.follow_triggers: FollowTriggers = follow_triggers or NoFollowTriggers(
            "the server was started without follow triggers")
        self._principals: dict[str, tuple[float, Principal, datetime | None]] = {}
        self.uploads_dir = work_dir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = work_dir / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    # -- audit -------------------------------------------------------------------------------
    def _record(self, who: Principal, action: str, target: str, outcome: str,
                detail: str = "") -> None:
        with self.catalog.session() as s:
            s.add(AuditEvent(actor=who.name or "", action=action, target=target[:1024],
                             outcome=outcome, detail=detail[:4000]))

    @contextmanager
    def _audited(self, who: Principal, action: str, target: str) -> Iterator[None]:
        try:
            yield
        except (ForbiddenError, AuthenticationError, NotFoundError) as exc:
            self._record(who, action, target, "denied", str(exc))
            raise
        except Exception as exc:
            self._record(who, action, target, "error", f"{type(exc).__name__}: {exc}")
            raise
        if action.startswith(("user.", "group.", "token.")):
            self._principals.clear()  # who is who may have changed: look tokens up afresh
        self._record(who, action, target, "ok")

    # -- identity ----------------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> Principal:
        """The caller behind an API token; no token means anonymous.

        A result is reused for a few seconds (every request carries the token); any change to
        tokens, users or groups made through this Hub forgets them at once.
        """
        if not secret:
            return ANONYMOUS
        key = _hash_token(secret)
        hit = self._principals.get(key)
        if hit is not None and hit[0] > time.monotonic() and (hit[2] is None or hit[2] > self.clock()):
            return hit[1]
        principal, expires = self._authenticate(secret)
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[key] = (time.monotonic() + _PRINCIPAL_TTL, principal, expires)
        return principal

    def _authenticate(self, secret: str) -> tuple[Principal, datetime | None]:
        now = self.clock()
        with self.catalog.session() as s:
            token = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
            if token is None:
                raise AuthenticationError("unknown API token: log in again with a valid token")
            if token.revoked_at is not None:
                raise AuthenticationError("this API token was revoked: create a new one")
            expires = _aware(token.expires_at)
            if expires is not None and expires <= now:
                raise AuthenticationError("this API token has expired: create a new one")
            user = token.user
            if user.disabled:
                raise AuthenticationError(f"user {user.name} is disabled")
            last = _aware(token.last_used_at)
            if last is None or now - last > _TOKEN_TOUCH:
                token.last_used_at = now
            groups = s.scalars(
                select(Group.name).join(Membership).where(Membership.user_id == user.id)
            ).all()
            return Principal(user.name, user.is_admin, frozenset(groups)), expires

    def _require_user(self, who: Principal) -> str:
        if who.name is None:
            raise AuthenticationError("sign in: this needs an API token")
        return who.name

    def _require_admin(self, who: Principal) -> None:
        self._require_user(who)
        if not who.is_admin:
            raise ForbiddenError("only an admin may do this", needed="admin")

    def ensure_admin(self, name: str) -> str | None:
        """Create admin ``name`` with a token if there is no such user; returns the new secret."""
        _check_user_name(name)
        with self.catalog.session() as s:
            if s.scalar(select(User).where(User.name == name)) is not None:
                return None
            user = User(name=name, is_admin=True, display_name="Administrator")
            s.add(user)
            s.flush()
            secret = self._new_token(s, user, "bootstrap", None)
        self._record(Principal(name, True), "user.bootstrap", name, "ok")
        return secret

    def _new_token(self, s: Session, user: User, name: str, expires: datetime | None) -> str:
        secret = "ah_" + secrets.token_urlsafe(32)
        s.add(ApiToken(user_id=user.id, name=name, token_hash=_hash_token(secret),
                       prefix=secret[:10], expires_at=expires))
        return secret

    def whoami(self, who: Principal) -> UserView:
        name = self._require_user(who)
        with self.catalog.session() as s:
            return self._user_view(s, self._user(s, name))

    def _user(self, s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFoundError("user", name)
        return user

    def _user_view(self, s: Session, u: User) -> UserView:
        groups = s.scalars(select(Group.name).join(Membership)
                           .where(Membership.user_id == u.id).order_by(Group.name)).all()
        return UserView(u.name, u.display_name, u.email, u.is_admin, u.disabled, tuple(groups))

    # -- users, groups, tokens (admin) -------------------------------------------------------
    def create_user(self, who: Principal, name: str, *, display_name: str = "",
                    email: str = "", is_admin: bool = False) -> UserView:
        with self._audited(who, "user.create", name):
            self._require_admin(who)
            _check_user_name(name)
            with self.catalog.session() as s:
                if s.scalar(select(User).where(User.name == name)) is not None:
                    raise AlreadyExistsError("user", name)
                u = User(name=name, display_name=display_name, email=email, is_admin=is_admin)
                s.add(u)
                s.flush()
                return self._user_view(s, u)

    def list_users(self, who: Principal) -> list[UserView]:
        self._require_admin(who)
        with self.catalog.session() as s:
            return [self._user_view(s, u) for u in s.scalars(select(User).order_by(User.name))]

    def update_user(self, who: Principal, name: str, *, is_admin: bool | None = None,
                    disabled: bool | None = None, display_name: str | None = None,
                    email: str | None = None) -> UserView:
        with self._audited(who, "user.update", name):
            self._require_admin(who)
            with self.catalog.session() as s:
                u = self._user(s, name)
                if is_admin is not None:
                    u.is_admin = is_admin
                if disabled is not None:
                    u.disabled = disabled
                if display_name is not None:
                    u.display_name = display_name
                if email is not None:
                    u.email = email
                return self._user_view(s, u)

    def create_group(self, who: Principal, name: str) -> str:
        with self._audited(who, "group.create", name):
            self._require_admin(who)
            _check_user_name(name)
            with self.catalog.session() as s:
                if s.scalar(select(Group).where(Group.name == name)) is not None:
                    raise AlreadyExistsError("group", name)
                s.add(Group(name=name))
            return name

    def _group(self, s: Session, name: str) -> Group:
        g = s.scalar(select(Group).where(Group.name == name))
        if g is None:
            raise NotFoundError("group", name)
        return g

    def list_groups(self, who: Principal) -> dict[str, list[str]]:
        self._require_admin(who)
        with self.catalog.session() as s:
            return {g.name: sorted(m.user.name for m in g.members)
                    for g in s.scalars(select(Group).order_by(Group.name))}

    def delete_group(self, who: Principal, name: str) -> None:
        with self._audited(who, "group.delete", name):
            self._require_admin(who)
            with self.catalog.session() as s:
                s.delete(self._group(s, name))

    def add_member(self, who: Principal, group: str, user: str) -> None:
        with self._audited(who, "group.add_member", f"{group}:{user}"):
            self._require_admin(who)
            with self.catalog.session() as s:
                g, u = self._group(s, group), self._user(s, user)
                if not any(m.user_id == u.id for m in g.members):
                    g.members.append(Membership(user_id=u.id))

    def remove_member(self, who: Principal, group: str, user: str) -> None:
        with self._audited(who, "group.remove_member", f"{group}:{user}"):
            self._require_admin(who)
            with self.catalog.session() as s:
                g, u = self._group(s, group), self._user(s, user)
                g.members = [m for m in g.members if m.user_id != u.id]

    def create_token(self, who: Principal, user: str, *, name: str = "",
                     expires_in_days: float | None = None) -> tuple[TokenView, str]:
        """A new API token for ``user`` (yourself, or anyone for an admin); the secret once."""
        with self._audited(who, "token.create", user):
            me = self._require_user(who)
            if user != me and not who.is_admin:
                raise ForbiddenError("only an admin may create tokens for someone else",
                                     needed="admin")
            if expires_in_days is not None and expires_in_days <= 0:
                raise InvalidReferenceError("expires_in_days must be positive",
                                            part="expires_in_days", value=str(expires_in_days))
            expires = (self.clock() + timedelta(days=expires_in_days)
                       if expires_in_days is not None else None)
            with self.catalog.session() as s:
                u = self._user(s, user)
                secret = self._new_token(s, u, name, expires)
                s.flush()
                t = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
                assert t is not None
                return self._token_view(t), secret

    def _token_view(self, t: ApiToken) -> TokenView:
        return TokenView(t.id, t.user.name, t.name, t.prefix, _aware(t.created_at) or t.created_at,
                         _aware(t.expires_at), _aware(t.revoked_at), _aware(t.last_used_at))

    def list_tokens(self, who: Principal, user: str) -> list[TokenView]:
        me = self._require_user(who)
        if user != me and not who.is_admin:
            raise ForbiddenError("only an admin may list someone else's tokens", needed="admin")
        with self.catalog.session() as s:
            u = self._user(s, user)
            return [self._token_view(t) for t in s.scalars(
                select(ApiToken).where(ApiToken.user_id == u.id).order_by(ApiToken.id))]

    def revoke_token(self, who: Principal, token_id: int) -> None:
        with self._audited(who, "token.revoke", str(token_id)):
            me = self._require_user(who)
            if not 0 < token_id < 2**63:
                raise NotFoundError("token", str(token_id))
            with self.catalog.session() as s:
                t = s.get(ApiToken, token_id)
                if t is None or (t.user.name != me and not who.is_admin):
                    raise NotFoundError("token", str(token_id))
                if t.revoked_at is None:
                    t.revoked_at = datetime.now(UTC)

    # -- permissions -------------------------------------------------------------------------
    def _rank(self, who: Principal, folder: Folder, asset: Asset | None = None) -> int:
        if who.is_admin or (who.name is not None and who.name == folder.owner):
            return _RANK["owner"]
        best = 0
        for sh in folder.shares:
            if (sh.subject_type == "everyone"
                    or (sh.subject_type == "user" and sh.subject_name == who.name)
                    or (sh.subject_type == "group" and sh.subject_name in who.groups)):
                best = max(best, _RANK[sh.role])
        if asset is not None and asset.preset and not who.anonymous:
            best = max(best, _RANK["run"])
        if who.anonymous:
            best = min(best, _RANK["view"])  # nobody writes without signing in
        return best

    def _require(self, who: Principal, folder: Folder, needed: str, subject: str,
                 asset: Asset | None = None, *, missing: NotFoundError | None = None) -> None:
        rank = self._rank(who, folder, asset)
        if rank >= _RANK[needed]:
            return
        if rank == 0:
            raise self._not_found(who, missing or NotFoundError("folder", subject))
        raise ForbiddenError(
            f"your role on {folder.owner}/{folder.kind}/{folder.name} is "
            f"'{_ROLE_OF_RANK[rank]}'; this needs '{needed}'", needed=needed)

    @staticmethod
    def _not_found(who: Principal, error: NotFoundError) -> AssetHubError:
        """What a caller hears of a subject that is missing or hidden from them: the same."""
        if who.anonymous:
            return AuthenticationError(f"sign in to access {error.name}")
        return error

    def _folder(self, s: Session, path: FolderPath, who: Principal | None = None) -> Folder:
        f = s.scalar(select(Folder).where(Folder.owner == path.owner,
                                          Folder.kind == path.kind.value,
                                          Folder.name == path.name))
        if f is None:
            error = NotFoundError("folder", str(path))
            raise self._not_found(who, error) if who is not None else error
        return f

    def _asset(self, s: Session, who: Principal, path: AssetPath, needed: str) -> Asset:
        folder_path = FolderPath(path.owner, path.kind, path.folder)
        try:
            folder = self._folder(s, folder_path)
        except NotFoundError:
            raise self._not_found(who, AssetNotFoundError(str(path))) from None
        asset = s.scalar(select(Asset).where(Asset.folder_id == folder.id,
                                             Asset.name == path.name))
        if asset is None:
            raise self._not_found(who, AssetNotFoundError(str(path)))
        self._require(who, folder, needed, str(path), asset,
                      missing=AssetNotFoundError(str(path)))
        self.storage.bind(path, asset.repository)
        return asset

    def role(self, who: Principal, asset: AssetPath | str) -> str:
        """The caller's role on an asset: view, run, edit or owner."""
        path = AssetPath.coerce(asset)
        with self.catalog.session() as s:
            a = self._asset(s, who, path, "view")
            return _ROLE_OF_RANK[self._rank(who, a.folder, a)]

    def check(self, who: Principal, asset: AssetPath | str, needed: str) -> None:
        """Raise unless the caller holds ``needed`` (view/run/edit) on the asset."""
        if needed not in ROLES:
            raise InvalidReferenceError(f"unknown role {needed!r}", part="role", value=needed)
        with self.catalog.session() as s:
            self._asset(s, who, AssetPath.coerce(asset), needed)

    # -- folders -----------------------------------------------------------------------------
    def _folder_view(self, who: Principal, f: Folder) -> FolderView:
        return FolderView(FolderPath(f.owner, AssetKind(f.kind), f.name), f.description,
                          _aware(f.created_at) or f.created_at, f.created_by,
                          _ROLE_OF_RANK[self._rank(who, f)], len(f.assets))

    def create_folder(self, who: Principal, folder: FolderPath | str, *,
                      description: str = "") -> FolderView:
        path = FolderPath.coerce(folder)
        with self._audited(who, "folder.create", str(path)):
            me = self._require_user(who)
            if path.owner != me and not who.is_admin:
                raise ForbiddenError(f"only {path.owner} or an admin may create folders under "
                                     f"{path.owner}/", needed="owner")
            with self.catalog.session() as s:
                if s.scalar(select(Folder).where(Folder.owner == path.owner,
                                                 Folder.kind == path.kind.value,
                                                 Folder.name == path.name)) is not None:
                    raise AlreadyExistsError("folder", str(path))
                f = Folder(owner=path.owner, kind=path.kind.value, name=path.name,
                           description=description, created_by=me)
                s.add(f)
                s.flush()
                return self._folder_view(who, f)

    def list_folders(self, who: Principal, *, owner: str | None = None,
                     kind: str | None = None) -> list[FolderView]:
        with self.catalog.session() as s:
            q = select(Folder).order_by(Folder.owner, Folder.kind, Folder.name)
            if owner:
                q = q.where(Folder.owner == owner)
            if kind:
                q = q.where(Folder.kind == AssetKind(kind).value)
            return [self._folder_view(who, f) for f in s.scalars(q) if self._rank(who, f) > 0]

    def get_folder(self, who: Principal, folder: FolderPath | str) -> FolderView:
        path = FolderPath.coerce(folder)
        with self.catalog.session() as s:
            f = self._folder(s, path, who)
            self._require(who, f, "view", str(path))
            return self._folder_view(who, f)

    def update_folder(self, who: Principal, folder: FolderPath | str, *,
                      new_name: str | None = None,
                      description: str | None = None) -> FolderView:
        path = FolderPath.coerce(folder)
        with self._audited(who, "folder.update", str(path)), self.catalog.session() as s:
            f = self._folder(s, path, who)
            self._require(who, f, "owner" if new_name else "edit", str(path))
            if description is not None:
                f.description = description
            if new_name is not None and new_name != f.name:
                new_path = FolderPath(path.owner, path.kind, new_name)
                if s.scalar(select(Folder).where(Folder.owner == f.owner,
                                                 Folder.kind == f.kind,
                                                 Folder.name == new_name)) is not None:
                    raise AlreadyExistsError("folder", str(new_path))
                for a in f.assets:
                    old = path.asset(a.name)
                    self.storage.bind(old, a.repository)
                    self.storage.rename_asset(old, new_path.asset(a.name))
                f.name = new_name
            return self._folder_view(who, f)

    def delete_folder(self, who: Principal, folder: FolderPath | str) -> None:
        """Delete a folder and every asset in it (owner or admin)."""
        path = FolderPath.coerce(folder)
        with self._audited(who, "folder.delete", str(path)), self.catalog.session() as s:
            f = self._folder(s, path, who)
            self._require(who, f, "owner", str(path))
            for a in list(f.assets):
                self.storage.bind(path.asset(a.name), a.repository)
                self.storage.delete_asset(path.asset(a.name))
            s.delete(f)

    # -- shares ------------------------------------------------------------------------------
    def share(self, who: Principal, folder: FolderPath | str, *, subject_type: str,
              subject_name: str = "", role: str) -> ShareView:
        path = FolderPath.coerce(folder)
        with self._audited(who, "folder.share", f"{path} {subject_type}:{subject_name}={role}"):
            if subject_type not in SUBJECT_TYPES:
                raise InvalidReferenceError(
                    f"share with a 'user', a 'group' or 'everyone', not {subject_type!r}",
                    part="subject_type", value=subject_type)
            if role not in ROLES:
                raise InvalidReferenceError(f"role must be one of {', '.join(ROLES)}",
                                            part="role", value=role)
            if subject_type == "everyone":
                subject_name = ""
            with self.catalog.session() as s:
                f = self._folder(s, path, who)
                self._require(who, f, "owner", str(path))
                if subject_type == "user":
                    self._user(s, subject_name)
                elif subject_type == "group":
                    self._group(s, subject_name)
                existing = next((sh for sh in f.shares if sh.subject_type == subject_type
                                 and sh.subject_name == subject_name), None)
                if existing is None:
                    existing = Share(subject_type=subject_type, subject_name=subject_name,
                                     role=role, created_by=who.name or "")
                    f.shares.append(existing)
                existing.role = role
                return ShareView(path, subject_type, subject_name, role, existing.created_by)

    def unshare(self, who: Principal, folder: FolderPath | str, *, subject_type: str,
                subject_name: str = "") -> None:
        path = FolderPath.coerce(folder)
        with self._audited(who, "folder.unshare", f"{path} {subject_type}:{subject_name}"):
            with self.catalog.session() as s:
                f = self._folder(s, path, who)
                self._require(who, f, "owner", str(path))
                before = len(f.shares)
                f.shares = [sh for sh in f.shares if not (
                    sh.subject_type == subject_type
                    and sh.subject_name == ("" if subject_type == "everyone" else subject_name))]
                if len(f.shares) == before:
                    raise NotFoundError("share", f"{subject_type}:{subject_name} on {path}")

    def list_shares(self, who: Principal, folder: FolderPath | str) -> list[ShareView]:
        path = FolderPath.coerce(folder)
        with self.catalog.session() as s:
            f = self._folder(s, path, who)
            self._require(who, f, "view", str(path))
            return [ShareView(path, sh.subject_type, sh.subject_name, sh.role, sh.created_by)
                    for sh in sorted(f.shares, key=lambda x: (x.subject_type, x.subject_name))]

    # -- assets ------------------------------------------------------------------------------
    def _asset_view(self, who: Principal, a: Asset) -> AssetView:
        f = a.folder
        kind = AssetKind(f.kind)
        ds = (DatasetMeta(a.task_type, a.data_format, a.split_mode, a.split_ratio,
                          a.test_set_path) if kind is AssetKind.DATASET else None)
        return AssetView(
            AssetPath(f.owner, kind, f.name, a.name), a.repository, a.description,
            tuple(a.labels or ()), a.readme, _aware(a.created_at) or a.created_at, a.created_by,
            _aware(a.updated_at) or a.updated_at, _ROLE_OF_RANK[self._rank(who, f, a)], ds,
            a.preset, tuple((p.tag, p.commit_id) for p in a.publications))

    @staticmethod
    def _labels(labels: Iterable[str]) -> list[str]:
        out = []
        for label in labels:
            label = label.strip()
            if not label or len(label) > 64 or any(c in label for c in ",\n\r\t"):
                raise InvalidReferenceError(
                    f"invalid label {label!r}: 1-64 characters, no commas or line breaks",
                    part="label", value=label)
            if label not in out:
                out.append(label)
        return out

    def create_asset(self, who: Principal, asset: AssetPath | str, *, description: str = "",
                     labels: Iterable[str] = (), readme: str = "",
                     dataset: DatasetMeta | None = None) -> AssetView:
        path = AssetPath.coerce(asset)
        with self._audited(who, "asset.create", str(path)):
            self._require_user(who)
            meta = dataset or DatasetMeta()
            if path.is_dataset:
                meta.validate()
            elif dataset is not None and any(vars(dataset).values()):
                raise InvalidReferenceError("dataset metadata only applies to datasets",
                                            part="dataset", value=str(path))
            clean_labels = self._labels(labels)
            with self.catalog.session() as s:
                folder_path = FolderPath(path.owner, path.kind, path.folder)
                f = self._folder(s, folder_path, who)
                self._require(who, f, "edit", str(folder_path))
                if s.scalar(select(Asset).where(Asset.folder_id == f.id,
                                                Asset.name == path.name)) is not None:
                    raise AlreadyExistsError("asset", str(path))
                info = self.storage.create_asset(
                    path, repository=_repo_names.repository_name(path, salt=uuid.uuid4().hex))
                try:
                    a = Asset(folder_id=f.id, name=path.name, repository=info.repository,
                              description=description, labels=clean_labels, readme=readme,
                              created_by=who.name or "", task_type=meta.task_type,
                              data_format=meta.data_format or ("dir" if path.is_dataset else None),
                              split_mode=meta.split_mode, split_ratio=meta.split_ratio,
                              test_set_path=meta.test_set_path)
                    s.add(a)
                    s.flush()
                    s.refresh(a)
                    return self._asset_view(who, a)
                except Exception:
                    self.storage.delete_asset(path)  # keep catalog and lakeFS in step
                    raise

    def get_asset(self, who: Principal, asset: AssetPath | str) -> AssetView:
        path = AssetPath.coerce(asset)
        with self.catalog.session() as s:
            return self._asset_view(who, self._asset(s, who, path, "view"))

    def search(self, who: Principal, *, query: str = "", label: str | None = None,
               kind: str | None = None, owner: str | None = None, folder: str | None = None,
               limit: int = 100) -> list[AssetView]:
        """Assets the caller may see, by name/description words, label, type, owner, folder."""
        with self.catalog.session() as s:
            q = select(Asset).join(Folder).order_by(Folder.owner, Folder.kind, Folder.name,
                                                    Asset.name)
            if kind:
                q = q.where(Folder.kind == AssetKind(kind).value)
            if owner:
                q = q.where(Folder.owner == owner)
            if folder:
                q = q.where(Folder.name == folder)
            out: list[AssetView] = []
            needle = query.casefold().strip()
            for a in s.scalars(q):
                if needle and needle not in a.name.casefold() \
                        and needle not in a.description.casefold():
                    continue
                if label and label not in (a.labels or []):
                    continue
                if self._rank(who, a.folder, a) == 0:
                    continue
                out.append(self._asset_view(who, a))
                if len(out) >= limit:
                    break
            return out

    def update_asset(self, who: Principal, asset: AssetPath | str, *,
                     new_name: str | None = None, description: str | None = None,
                     labels: Iterable[str] | None = None, readme: str | None = None,
                     dataset: DatasetMeta | None = None, preset: bool | None = None) -> AssetView:
        path = AssetPath.coerce(asset)
        with self._audited(who, "asset.update", str(path)), self.catalog.session() as s:
            a = self._asset(s, who, path, "edit")
            if preset is not None:
                if not who.is_admin:
                    raise ForbiddenError("only an admin may mark a dataset as preset",
                                         needed="admin")
                if not path.is_dataset:
                    raise NotAllowedError("only datasets can be presets")
                a.preset = preset
            if dataset is not None:
                if not path.is_dataset:
                    raise InvalidReferenceError("dataset metadata only applies to datasets",
                                                part="dataset", value=str(path))
                dataset.validate()
                for k, v in vars(dataset).items():
                    if v is not None:
                        setattr(a, "data_format" if k == "data_format" else k, v)
            if description is not None:
                a.description = description
            if labels is not None:
                a.labels = self._labels(labels)
            if readme is not None:
                a.readme = readme
            if new_name is not None and new_name != a.name:
                new_path = AssetPath(path.owner, path.kind, path.folder, new_name)
                if s.scalar(select(Asset).where(Asset.folder_id == a.folder_id,
                                                Asset.name == new_name)) is not None:
                    raise AlreadyExistsError("asset", str(new_path))
                self.storage.rename_asset(path, new_path)
                a.name = new_name
            s.flush()
            return self._asset_view(who, a)

    def delete_asset(self, who: Principal, asset: AssetPath | str) -> None:
        path = AssetPath.coerce(asset)
        with self._audited(who, "asset.delete", str(path)), self.catalog.session() as s:
            a = self._asset(s, who, path, "edit")
            self.storage.delete_asset(path)
            s.delete(a)

    # -- versions ----------------------------------------------------------------------------
    def _ref(self, who: Principal, ref: AssetRef | str, needed: str) -> AssetRef:
        r = AssetRef.coerce(ref)
        with self.catalog.session() as s:
            self._asset(s, who, r.path, needed)
        return r

    def get_commit(self, who: Principal, ref: AssetRef | str) -> CommitInfo:
        return self.storage.get_commit(self._ref(who, ref, "view"))

    def log(self, who: Principal, ref: AssetRef | str, *, limit: int | None = 100,
            path: str | None = None) -> list[CommitInfo]:
        if path:
            validate_object_path(path.rstrip("/"))  # a file or a directory prefix
        return list(self.storage.log(self._ref(who, ref, "view"), limit=limit, path=path))

    def diff(self, who: Principal, left: AssetRef | str, right: AssetRef | str, *,
             prefix: str = "") -> list[DiffEntry]:
        # one permission check: storage refuses two refs of different assets before any read
        return self.storage.diff(self._ref(who, left, "view"), AssetRef.coerce(right),
                                 prefix=prefix)

    def list_branches(self, who: Principal, asset: AssetPath | str) -> list[BranchInfo]:
        return self.storage.list_branches(self._ref(who, AssetPath.coerce(asset).at(),
                                                    "view").path)

    def create_branch(self, who: Principal, asset: AssetPath | str, name: str, *,
                      source: str = DEFAULT_BRANCH) -> BranchInfo:
        path = AssetPath.coerce(asset)
        with self._audited(who, "branch.create", f"{path}:{name}"):
            return self.storage.create_branch(self._ref(who, path.at(), "edit").path, name,
                                              source=source)

    def delete_branch(self, who: Principal, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        with self._audited(who, "branch.delete", f"{path}:{name}"):
            self.storage.delete_branch(self._ref(who, path.at(), "edit").path, name)

    def list_tags(self, who: Principal, asset: AssetPath | str) -> list[TagInfo]:
        return self.storage.list_tags(self._ref(who, AssetPath.coerce(asset).at(), "view").path)

    def create_tag(self, who: Principal, asset: AssetPath | str, name: str, *,
                   ref: str = DEFAULT_BRANCH) -> TagInfo:
        path = AssetPath.coerce(asset)
        with self._audited(who, "tag.create", f"{path}:{name}"):
            return self.storage.create_tag(self._ref(who, path.at(), "edit").path, name, ref=ref)

    def delete_tag(self, who: Principal, asset: AssetPath | str, name: str) -> None:
        path = AssetPath.coerce(asset)
        with self._audited(who, "tag.delete", f"{path}:{name}"):
            self.storage.delete_tag(self._ref(who, path.at(), "edit").path, name)

    def merge(self, who: Principal, asset: AssetPath | str, source: str, *,
              into: str = DEFAULT_BRANCH, strategy: Strategy | None = None,
              message: str | None = None, metadata: dict[str, str] | None = None) -> CommitInfo:
        path = AssetPath.coerce(asset)
        with self._audited(who, "merge", f"{path}:{source}->{into}"):
            return self.storage.merge(
                self._ref(who, path.at(), "edit").path, source, into=into, strategy=strategy,
                message=message, metadata={**(metadata or {}), "author": who.name or ""})

    def publish(self, who: Principal, asset: AssetPath | str, tag: str, *,
                ref: str = DEFAULT_BRANCH) -> TagInfo:
        """Publish a dataset version: an immutable tag, recorded as published."""
        path = AssetPath.coerce(asset)
        with self._audited(who, "dataset.publish", f"{path}:{tag}"):
            validate_tag_name(tag)
            with self.catalog.session() as s:
                a = self._asset(s, who, path, "edit")
                if not path.is_dataset:
                    raise NotAllowedError(f"only datasets are published; tag model {path} instead")
                info = self.storage.create_tag(path, tag, ref=ref)
                a.publications.append(Publication(tag=tag, commit_id=info.commit_id,
                                                  published_by=who.name or ""))
                return info

    def list_objects(self, who: Principal, ref: AssetRef | str, *,
                     prefix: str = "") -> list[ObjectInfo]:
        return self.storage.list_objects(self._ref(who, ref, "view"), prefix=prefix)

    def stat(self, who: Principal, ref: AssetRef | str, path: str) -> ObjectInfo:
        return self.storage.stat(self._ref(who, ref, "view"), path)

    async def open_file(self, who: Principal, ref: AssetRef | str, path: str, *,
                        byte_range: str | None = None) -> StreamedObject:
        """A file of a version (or a byte range of it) as a stream straight from lakeFS."""
        return await self.storage.get_stream(self._ref(who, ref, "view"), path,
                                             byte_range=byte_range)

    async def open_bundle(self, who: Principal, ref: AssetRef | str,
                          paths: list[str]) -> AsyncIterator[bytes]:
        """Many files of one version as one stream: for each, a 4-byte big-endian length, a JSON
        header ``{"path", "size"}``, then the bytes. One permission check for all of them, one
        request from the client: what makes datasets of many small files fast to fetch."""
        r = self._ref(who, ref, "view")
        if len(paths) > BUNDLE_MAX_FILES:
            raise InvalidReferenceError(f"a bundle holds at most {BUNDLE_MAX_FILES} files, not {len(paths)}",
                                        part="paths", value=str(len(paths)))
        for p in paths:
            validate_object_path(p)
        if not r.looks_like_commit:  # one version throughout, even if the branch moves
            r = r.path.at(self.storage.resolve(r))
        first = await self.storage.get_stream(r, paths[0]) if paths else None  # a missing file: 404

        async def frames() -> AsyncIterator[bytes]:
            for i, p in enumerate(paths):
                try:
                    obj = first if i == 0 and first is not None else await self.storage.get_stream(r, p)
                except AssetHubError as e:  # the response has begun: say it in a last frame
                    body = to_wire(e)[1]  # the error protocol's body; "error" as before
                    header = json.dumps({**body, "path": p, "error": body["type"]}).encode()
                    yield len(header).to_bytes(4, "big") + header
                    return
                header = json.dumps({"path": p, "size": obj.length}).encode()
                yield len(header).to_bytes(4, "big") + header
                async for chunk in obj.chunks:
                    yield chunk

        return frames()

    # -- uploads (streamed into a lakeFS transaction, committed atomically) ---------------------
    def start_upload(self, who: Principal, ref: AssetRef | str, *,
                     parent_commit: str | None = None) -> str:
        """Open an upload to a branch: files stream in one by one, then commit together."""
        with self._audited(who, "upload.start", str(ref)):
            r = self._ref(who, ref, "edit")
            txn = self.storage.begin(r, parent_commit=parent_commit)
            upload_id = uuid.uuid4().hex
            (self.uploads_dir / f"{upload_id}.json").write_text(
                json.dumps({"user": who.name, "txn": txn.to_dict()}))
            return upload_id

    def _upload(self, who: Principal, upload_id: str) -> tuple[Path, Transaction]:
        if not upload_id.isalnum():
            raise NotFoundError("upload", upload_id)
        f = self.uploads_dir / f"{upload_id}.json"
        try:
            info = json.loads(f.read_text())
        except FileNotFoundError:
            raise NotFoundError("upload", upload_id) from None
        if info["user"] != who.name:
            raise NotFoundError("upload", upload_id)
        return f, Transaction.from_dict(info["txn"])

    async def put_upload_file(self, who: Principal, upload_id: str, path: str,
                              body: AsyncIterator[bytes], *,
                              sha256: str | None = None) -> ObjectInfo:
        """Stream one file of an upload into lakeFS; memory stays flat whatever its size."""
        validate_object_path(path)
        _, txn = self._upload(who, upload_id)
        return await self.storage.put_stream(txn, path, body, sha256=sha256,
                                             max_bytes=self.limits.max_upload_bytes)

    def commit_upload(self, who: Principal, upload_id: str, *, message: str,
                      metadata: dict[str, str] | None = None, delete: Iterable[str] = (),
                      parent_commit: str | None = None) -> CommitInfo:
        f, txn = self._upload(who, upload_id)
        with self._audited(who, "commit", txn.ref):
            try:
                self._ref(who, txn.ref, "edit")  # the role may have changed since the start
                deletes = [validate_object_path(x) for x in delete]
                if parent_commit is not None:
                    if not txn.head.startswith(parent_commit):
                        raise ConcurrentUpdateError(txn.ref, parent_commit, txn.head)
                    txn = dataclasses.replace(txn, parent_commit=parent_commit)
                return self.storage.finish(
                    txn, message=message, deletes=deletes,
                    metadata={**(metadata or {}), "author": who.name or ""})
            except BaseException:
                self.storage.abort(txn)  # finish() aborts too; this covers the checks before it
                raise
            finally:
                f.unlink(missing_ok=True)

    def abort_upload(self, who: Principal, upload_id: str) -> None:
        f, txn = self._upload(who, upload_id)
        self.storage.abort(txn)
        f.unlink(missing_ok=True)

    # -- dataset import ----------------------------------------------------------------------
    def check_import(self, who: Principal, asset: AssetPath | str) -> None:
        """Refuse an import before its (possibly large) archive is read; refusals are audited."""
        path = AssetPath.coerce(asset)
        with self._audited(who, "dataset.import", str(path)):
            self.check(who, path, "edit")
            if not path.is_dataset:
                raise NotAllowedError(f"only datasets are imported from archives; {path} is a model")

    def import_archive(self, who: Principal, asset: AssetPath | str, archive: Path, *,
                       message: str = "") -> tuple[CommitInfo, Any]:
        """Import a zip archive into a dataset's ``main`` after checking it and its layout."""
        path = AssetPath.coerce(asset)
        with self._audited(who, "dataset.import", str(path)):
            if not path.is_dataset:
                raise NotAllowedError(f"only datasets are imported from archives; {path} is a model")
            with self.catalog.session() as s:
                a = self._asset(s, who, path, "edit")
                data_format = a.data_format or "dir"
            with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
                root = Path(tmp) / "data"
                dataset_formats.safe_extract(
                    archive, root, max_total_bytes=self.limits.max_archive_bytes,
                    max_files=self.limits.max_archive_files)
                summary = dataset_formats.validate_layout(root, data_format)
                commit = self.storage.upload(
                    path.at(DEFAULT_BRANCH), root,
                    message=message or f"Import an archive of {summary.files} files",
                    metadata={"author": who.name or "", "format": data_format})
                return commit, summary

    def cleanup_stale_writes(self, *, older_than: float = 6 * 3600) -> int:
        """Drop temporary write branches of every asset left by writers that died."""
        with self.catalog.session() as s:
            assets = [(AssetPath(a.folder.owner, AssetKind(a.folder.kind), a.folder.name, a.name),
                       a.repository) for a in s.scalars(select(Asset))]
        removed = 0
        for path, repo in assets:
            self.storage.bind(path, repo)
            try:
                removed += len(self.storage.cleanup_transactions(path, older_than=older_than))
            except AssetHubError:
                continue  # one unreachable asset does not stop the sweep
        return removed

    # -- jobs: runs, evaluations, lineage ----------------------------------------------------
    def create_run(self, who: Principal, *, kind: str, model: AssetPath | str, branch: str = "",
                   dataset: str = "", base: str = "", code_url: str = "", code_revision: str = "",
                   code_subpath: str = "", command: str = "",
                   params: dict[str, Any] | None = None, trigger: str = "person") -> RunView:
        """Register a job before it starts: every permission it needs is checked here.

        The model needs ``edit`` (the job commits to it; ``run`` for an evaluation), the dataset
        and the base model ``run``. A refused job leaves no record but the audit event.
        """
        target = f"{model} ({kind})"
        with self._audited(who, "run.create", target):
            me = self._require_user(who)
            if kind not in RUN_KINDS:
                raise InvalidReferenceError(f"unknown job kind {kind!r}; use one of {', '.join(RUN_KINDS)}",
                                            part="kind", value=kind)
            if trigger not in RUN_TRIGGERS:
                raise InvalidReferenceError(f"unknown trigger {trigger!r}; use one of "
                                            f"{', '.join(RUN_TRIGGERS)}", part="trigger", value=trigger)
            model_path = AssetPath.coerce(model)
            if model_path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{model_path} is not a model: jobs write models",
                                            part="model", value=str(model_path))
            dataset_ref = AssetRef.coerce(dataset) if dataset else None
            if dataset_ref is not None and not dataset_ref.path.is_dataset:
                raise InvalidReferenceError(f"{dataset_ref.path} is not a dataset",
                                            part="dataset", value=str(dataset_ref))
            base_ref = AssetRef.coerce(base) if base else None
            if base_ref is not None and base_ref.path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{base_ref.path} is not a model",
                                            part="base", value=str(base_ref))
            with self.catalog.session() as s:
                self._asset(s, who, model_path, _JOB_NEEDS[kind])
                for ref in (dataset_ref, base_ref):
                    if ref is not None:
                        self._asset(s, who, ref.path, "run")
            # the refs must exist now: a typo fails before any work starts
            dataset_commit = self.storage.resolve(dataset_ref) if dataset_ref else ""
            base_commit = self.storage.resolve(base_ref) if base_ref else ""
            with self.catalog.session() as s:
                r = Run(id=uuid.uuid4().hex, kind=kind, state="pending", model_path=str(model_path),
                        branch=branch, base_ref=str(base_ref or ""), base_commit=base_commit,
                        dataset_ref=str(dataset_ref or ""), dataset_commit=dataset_commit,
                        code_url=code_url, code_revision=code_revision, code_subpath=code_subpath,
                        command=command, params=dict(params or {}), metrics={}, created_by=me,
                        trigger=trigger)
                s.add(r)
                s.flush()
                return _run_view(r)

    def _run(self, s: Session, who: Principal, run_id: str) -> Run:
        r = s.get(Run, run_id) if len(run_id) <= 32 else None
        if r is None:
            raise NotFoundError("run", run_id[:64])
        try:
            self._asset(s, who, AssetPath.parse(r.model_path), "view")
        except NotFoundError:
            raise self._not_found(who, NotFoundError("run", run_id)) from None
        return r

    def update_run(self, who: Principal, run_id: str, **changes: Any) -> RunView:
        """Record a job's progress; only whoever started it (or an admin) may."""
        with self._audited(who, "run.update", run_id[:64]):
            me = self._require_user(who)
            unknown = set(changes) - set(_RUN_FIELDS)
            if unknown:
                raise InvalidReferenceError(f"cannot change {', '.join(sorted(unknown))} of a run",
                                            part="run field", value=sorted(unknown)[0])
            if "state" in changes and changes["state"] not in RUN_STATES:
                raise InvalidReferenceError(f"unknown run state {changes['state']!r}; use one of "
                                            f"{', '.join(RUN_STATES)}", part="state",
                                            value=str(changes["state"]))
            if "metrics" in changes:
                changes["metrics"] = _check_metrics(dict(changes["metrics"] or {}))
            with self.catalog.session() as s:
                r = self._run(s, who, run_id)
                if r.created_by != me and not who.is_admin:
                    raise ForbiddenError(f"run {run_id} was started by {r.created_by}", needed="owner")
                for name, value in changes.items():
                    setattr(r, name, value)
                if changes.get("state") in ("completed", "failed", "crashed"):
                    r.finished_at = datetime.now(UTC)
                s.flush()
                return _run_view(r)

    def get_run(self, who: Principal, run_id: str) -> RunView:
        with self.catalog.session() as s:
            return _run_view(self._run(s, who, run_id))

    def list_runs(self, who: Principal, *, model: AssetPath | str | None = None,
                  state: str | None = None, kind: str | None = None, limit: int = 50) -> list[RunView]:
        """Runs, newest first: of one model (which you may view), or those you started."""
        me = self._require_user(who)
        with self.catalog.session() as s:
            q = select(Run).order_by(Run.created_at.desc(), Run.id).limit(max(1, min(limit, 1000)))
            if model is not None:
                path = AssetPath.coerce(model)
                self._asset(s, who, path, "view")
                q = q.where(Run.model_path == str(path))
            elif not who.is_admin:
                q = q.where(Run.created_by == me)
            if state:
                q = q.where(Run.state == state)
            if kind:
                q = q.where(Run.kind == kind)
            return [_run_view(r) for r in s.scalars(q)]

    def add_evaluation(self, who: Principal, model: AssetRef | str, *, dataset: str,
                       metrics: dict[str, Any], run_id: str = "",
                       evaluation_id: str | None = None) -> EvaluationView:
        """Record metrics of a model version on a dataset version (both resolved to commits)."""
        ref = AssetRef.coerce(model)
        with self._audited(who, "evaluation.add", str(ref)):
            me = self._require_user(who)
            dataset_ref = AssetRef.coerce(dataset)
            clean = _check_metrics(metrics)
            with self.catalog.session() as s:
                self._asset(s, who, ref.path, "run")
                self._asset(s, who, dataset_ref.path, "view")
            model_commit = self.storage.resolve(ref)
            dataset_commit = self.storage.resolve(dataset_ref)
            with self.catalog.session() as s:
                e = Evaluation(id=_hex_id(evaluation_id), model_path=str(ref.path),
                               model_commit=model_commit, dataset_ref=str(dataset_ref),
                               dataset_commit=dataset_commit, metrics=clean, run_id=run_id[:32],
                               created_by=me)
                s.add(e)
                s.flush()
                return _evaluation_view(e)

    def list_evaluations(self, who: Principal, model: AssetPath | str, *,
                         commit: str | None = None) -> list[EvaluationView]:
        path = AssetPath.coerce(model)
        with self.catalog.session() as s:
            self._asset(s, who, path, "view")
            q = select(Evaluation).where(Evaluation.model_path == str(path))
            if commit:
                q = q.where(Evaluation.model_commit == commit)
            return [_evaluation_view(e) for e in s.scalars(q.order_by(Evaluation.created_at.desc()))]

    def lineage(self, who: Principal, ref: AssetRef | str) -> LineageView:
        """What produced the model version at ``ref``, and how it scored."""
        r = self._ref(who, ref, "view")
        history = list(self.storage.log(r, limit=50))
        head = history[0].id if history else self.storage.resolve(r)
        model_commit = model_commit_of((c.id, c.metadata) for c in history) or head
        info = next((c for c in history if c.id == model_commit), None)
        if info is None:
            info = self.storage.get_commit(r.path.at(model_commit))
        lineage = Lineage.from_metadata(info.metadata)
        with self.catalog.session() as s:
            evals = s.scalars(select(Evaluation).where(Evaluation.model_path == str(r.path),
                                                       Evaluation.model_commit == model_commit)
                              .order_by(Evaluation.created_at.desc()))
            evaluations = tuple(_evaluation_view(e) for e in evals)
            run = s.get(Run, lineage.run_id) if lineage and lineage.run_id else None
            run_view = _run_view(run) if run is not None else None
        return LineageView(str(r), head, model_commit, lineage, evaluations, run_view)

    # -- audit log ---------------------------------------------------------------------------
    def audit(self, who: Principal, *, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              limit: int = 100) -> list[AuditView]:
        """Audit events, newest first: all for admins, a user's own otherwise."""
        me = self._require_user(who)
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
            return [AuditView(e.id, _aware(e.at) or e.at, e.actor, e.action, e.target,
                              e.outcome, e.detail) for e in s.scalars(q)]
