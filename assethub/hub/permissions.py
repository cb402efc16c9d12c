"""Roles on folders, and what a caller may see.

Roles on a folder: ``view`` (list, read, download) < ``run`` (view + use in jobs and services)
< ``edit`` (run + upload, commit, branch, tag, merge, delete) < owner (edit + share, rename and
delete the folder). The owner of the path's ``<owner>`` part and admins hold every role; a
preset dataset gives every signed-in user ``run``; anonymous callers at most ``view``.
A caller who may not even view a subject is told it does not exist (:func:`not_found`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from assethub.catalog import Asset, Catalog, Folder, Group, Membership, Share, User
from assethub.catalog.db import RECONNECTED
from assethub.errors import (
    AssetHubError,
    AssetNotFoundError,
    AuthenticationError,
    ForbiddenError,
    InvalidReferenceError,
    NotFoundError,
)
from assethub.hub.identity import IDENTITY_CHANNEL, Principal
from assethub.refs import AssetPath, AssetRef, FolderPath

ROLES = ("view", "run", "edit")
RANK = {"none": 0, "view": 1, "run": 2, "edit": 3, "owner": 4}
ROLE_OF_RANK = {v: k for k, v in RANK.items()}


def not_found(who: Principal, error: NotFoundError) -> AssetHubError:
    """What a caller hears of a subject that is missing or hidden from them: the same."""
    if who.anonymous:
        return AuthenticationError(f"sign in to access {error.name}")
    return error


def subject_name(share: Share) -> str:
    """The current name of the user or group a share names by id ("" for everyone)."""
    subject = share.user if share.subject_type == "user" else share.group
    return subject.name if subject is not None else ""


#: a folder's share as the role check reads it: (subject type, user name, group name, role)
ShareFact = tuple[str, str | None, str | None, str]


def _share_facts(folder: Folder) -> tuple[ShareFact, ...]:
    return tuple((sh.subject_type, sh.user.name if sh.user is not None else None,
                  sh.group.name if sh.group is not None else None, sh.role)
                 for sh in folder.shares)


def _rank(who: Principal, owner: str, shares: Iterable[ShareFact], preset: bool) -> int:
    if who.is_admin or (who.name is not None and who.name == owner):
        return RANK["owner"]
    best = 0
    for subject_type, user, group, role in shares:
        if (subject_type == "everyone"
                or (subject_type == "user" and user is not None and user == who.name)
                or (subject_type == "group" and group is not None and group in who.groups)):
            best = max(best, RANK[role])
    if preset and not who.anonymous:
        best = max(best, RANK["run"])
    if who.anonymous:
        best = min(best, RANK["view"])  # nobody writes without signing in
    return best


def rank(who: Principal, folder: Folder, asset: Asset | None = None) -> int:
    """The caller's role on a folder (or an asset in it) as a number: 0 means hidden."""
    return _rank(who, folder.owner, _share_facts(folder), asset is not None and asset.preset)


def role_name(who: Principal, folder: Folder, asset: Asset | None = None) -> str:
    """The caller's role on a folder or asset: none, view, run, edit or owner."""
    return ROLE_OF_RANK[rank(who, folder, asset)]


def require(who: Principal, folder: Folder, needed: str, subject: str,
            asset: Asset | None = None, *, missing: NotFoundError | None = None) -> None:
    """Raise unless the caller holds ``needed`` on the folder; hidden means not found."""
    _require(who, rank(who, folder, asset), needed, f"{folder.owner}/{folder.kind}/{folder.name}",
             missing or NotFoundError("folder", subject))


def _require(who: Principal, have: int, needed: str, folder: str, missing: NotFoundError) -> None:
    if have >= RANK[needed]:
        return
    if have == 0:
        raise not_found(who, missing)
    raise ForbiddenError(f"your role on {folder} is '{ROLE_OF_RANK[have]}'; this needs '{needed}'",
                         needed=needed)


def find_folder(s: Session, path: FolderPath, who: Principal | None = None) -> Folder:
    """The folder's row; missing (as ``who`` would hear it, when given) otherwise."""
    f = s.scalar(select(Folder).where(Folder.owner == path.owner,
                                      Folder.kind == path.kind.value,
                                      Folder.name == path.name))
    if f is None:
        error = NotFoundError("folder", str(path))
        raise not_found(who, error) if who is not None else error
    return f


# -- what a role check reads of an asset, remembered ----------------------------------------
_FACTS_TTL = 5.0  # seconds; changes through any server on the catalog forget them at once
#: what the catalog's subscribers hear when folders, shares, assets, users or groups changed
ACCESS_CHANNEL = "access"
_WATCHED = (Folder, Share, Asset, User, Group, Membership)
_CHANGED = "assethub.access_changed"  # a session's info key: it wrote a watched row


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What deciding a role on an asset and finding its repository read in the catalog."""

    folder: str  # owner/kind/name, for messages
    owner: str
    shares: tuple[ShareFact, ...]
    preset: bool
    repository: str

    def rank(self, who: Principal) -> int:
        return _rank(who, self.owner, self.shares, self.preset)


class AccessCache:
    """Each asset path's :class:`AssetFacts`, shared by the role checks and the storage
    locator of one catalog (:meth:`of`): a read request then costs no catalog round trip.

    Any commit of a catalog session that wrote a folder, share, asset, user, group or
    membership row (found by SQLAlchemy's flush, whatever code made it) forgets every entry,
    in this process at once and in every other server on the catalog through
    :meth:`Catalog.publish`; an entry is used only while no such message is unread
    (:meth:`Catalog.changes_pending`), for a few seconds at most (the bound for a change a
    notification could not announce), and only if no change came while it was read.
    Missing assets are not remembered.

    On PostgreSQL each :class:`Catalog` object has its own (it hears the others, in this
    process or not, through its own LISTEN connection). SQLite has no notifications: there
    the catalogs of one database file in this process share one, told by each of them; a
    process that writes such rows without a server (no such writer today) is seen within
    the few seconds an entry lives, as for :class:`~assethub.hub.identity.Identity`'s tokens.
    """

    _by_catalog: ClassVar[weakref.WeakKeyDictionary[Catalog, AccessCache]] = \
        weakref.WeakKeyDictionary()
    _by_sqlite_file: ClassVar[weakref.WeakValueDictionary[str, AccessCache]] = \
        weakref.WeakValueDictionary()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, catalog: Catalog) -> AccessCache:
        with cls._lock:
            found = cls._by_catalog.get(catalog)
            if found is None:
                database = catalog.engine.url.database or ":memory:"
                file = None if catalog.is_postgresql or database == ":memory:" else database
                shared = cls._by_sqlite_file.get(file) if file is not None else None
                found = shared if shared is not None else cls(catalog)
                found._attach(catalog)
                cls._by_catalog[catalog] = found
                if file is not None:
                    cls._by_sqlite_file[file] = found
            return found

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog  # whose notifications say whether an entry may be stale
        self._facts: dict[AssetPath, tuple[float, AssetFacts]] = {}
        self._generation = 0
        self._mutex = threading.Lock()

    def _attach(self, catalog: Catalog) -> None:
        catalog.subscribe(self._on_change)
        sessions = catalog.session_factory  # every session of this catalog (Catalog.session)

        def committed(session: Session) -> None:
            if session.info.pop(_CHANGED, False):
                catalog.publish(ACCESS_CHANNEL, "")

        event.listen(sessions, "after_flush", _note_changes)
        event.listen(sessions, "after_commit", committed)
        event.listen(sessions, "after_rollback", _forget_changes)

    def _on_change(self, channel: str, _payload: str) -> None:
        if channel in (ACCESS_CHANNEL, IDENTITY_CHANNEL, RECONNECTED):
            with self._mutex:
                self._generation += 1
                self._facts.clear()

    def get(self, path: AssetPath) -> AssetFacts | None:
        """The remembered facts of ``path`` while they are known to be current, else None."""
        hit = self._facts.get(path)
        if hit is None or hit[0] <= time.monotonic() or self.catalog.changes_pending():
            return None
        return hit[1]

    def facts(self, path: AssetPath) -> AssetFacts | None:
        """``path``'s facts (None: no such asset), from memory when current."""
        hit = self.get(path)
        if hit is not None:
            return hit
        with self._mutex:
            generation = self._generation
        found = self._read(path)
        if found is not None:
            with self._mutex:
                if generation == self._generation:  # nothing changed while it was read
                    if len(self._facts) > 10_000:
                        self._facts.clear()
                    self._facts[path] = (time.monotonic() + _FACTS_TTL, found)
        return found

    def _read(self, path: AssetPath) -> AssetFacts | None:
        with self.catalog.session() as s:
            try:
                folder = find_folder(s, FolderPath(path.owner, path.kind, path.folder))
            except NotFoundError:
                return None
            asset = s.scalar(select(Asset).where(Asset.folder_id == folder.id,
                                                 Asset.name == path.name))
            if asset is None:
                return None
            return AssetFacts(f"{folder.owner}/{folder.kind}/{folder.name}", folder.owner,
                              _share_facts(folder), bool(asset.preset), asset.repository)


def _note_changes(session: Session, _context: Any) -> None:
    """after_flush: remember whether this session wrote a row a role check reads."""
    if not session.info.get(_CHANGED) and any(
            isinstance(o, _WATCHED)
            for rows in (session.new, session.dirty, session.deleted) for o in rows):
        session.info[_CHANGED] = True


def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class Permissions:
    """Resolves assets for a caller who needs a role on them."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.access = AccessCache.of(catalog)

    def require(self, who: Principal, path: AssetPath, needed: str) -> AssetFacts:
        """Raise unless the caller holds ``needed`` on the asset (hidden means not found);
        the facts read (remembered: see :class:`AccessCache`)."""
        facts = self.access.facts(path)
        if facts is None:
            raise not_found(who, AssetNotFoundError(str(path)))
        _require(who, facts.rank(who), needed, facts.folder, AssetNotFoundError(str(path)))
        return facts

    def asset(self, s: Session, who: Principal, path: AssetPath, needed: str) -> Asset:
        """The asset's row if the caller holds ``needed`` on it."""
        folder_path = FolderPath(path.owner, path.kind, path.folder)
        try:
            folder = find_folder(s, folder_path)
        except NotFoundError:
            raise not_found(who, AssetNotFoundError(str(path))) from None
        asset = s.scalar(select(Asset).where(Asset.folder_id == folder.id,
                                             Asset.name == path.name))
        if asset is None:
            raise not_found(who, AssetNotFoundError(str(path)))
        require(who, folder, needed, str(path), asset, missing=AssetNotFoundError(str(path)))
        return asset

    def ref(self, who: Principal, ref: AssetRef | str, needed: str) -> AssetRef:
        """``ref`` parsed, after checking the caller holds ``needed`` on its asset."""
        r = AssetRef.coerce(ref)
        self.require(who, r.path, needed)
        return r

    def role(self, who: Principal, asset: AssetPath | str) -> str:
        """The caller's role on an asset: view, run, edit or owner."""
        return ROLE_OF_RANK[self.require(who, AssetPath.coerce(asset), "view").rank(who)]

    def check(self, who: Principal, asset: AssetPath | str, needed: str) -> None:
        """Raise unless the caller holds ``needed`` (view/run/edit) on the asset."""
        if needed not in ROLES:
            raise InvalidReferenceError(f"unknown role {needed!r}", part="role", value=needed)
        self.require(who, AssetPath.coerce(asset), needed)
