"""Roles on folders, and what a caller may see.

Roles on a folder: ``view`` (list, read, download) < ``run`` (view + use in jobs and services)
< ``edit`` (run + upload, commit, branch, tag, merge, delete) < owner (edit + share, rename and
delete the folder). The owner of the path's ``<owner>`` part and admins hold every role; a
preset dataset gives every signed-in user ``run``; anonymous callers at most ``view``.
A caller who may not even view a subject is told it does not exist (:func:`not_found`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub.catalog import Asset, Catalog, Folder, Share
from assethub.errors import (
    AssetHubError,
    AssetNotFoundError,
    AuthenticationError,
    ForbiddenError,
    InvalidReferenceError,
    NotFoundError,
)
from assethub.hub.identity import Principal
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


def rank(who: Principal, folder: Folder, asset: Asset | None = None) -> int:
    """The caller's role on a folder (or an asset in it) as a number: 0 means hidden."""
    if who.is_admin or (who.name is not None and who.name == folder.owner):
        return RANK["owner"]
    best = 0
    for sh in folder.shares:
        if (sh.subject_type == "everyone"
                or (sh.subject_type == "user" and sh.user is not None and sh.user.name == who.name)
                or (sh.subject_type == "group" and sh.group is not None
                    and sh.group.name in who.groups)):
            best = max(best, RANK[sh.role])
    if asset is not None and asset.preset and not who.anonymous:
        best = max(best, RANK["run"])
    if who.anonymous:
        best = min(best, RANK["view"])  # nobody writes without signing in
    return best


def role_name(who: Principal, folder: Folder, asset: Asset | None = None) -> str:
    """The caller's role on a folder or asset: none, view, run, edit or owner."""
    return ROLE_OF_RANK[rank(who, folder, asset)]


def require(who: Principal, folder: Folder, needed: str, subject: str,
            asset: Asset | None = None, *, missing: NotFoundError | None = None) -> None:
    """Raise unless the caller holds ``needed`` on the folder; hidden means not found."""
    have = rank(who, folder, asset)
    if have >= RANK[needed]:
        return
    if have == 0:
        raise not_found(who, missing or NotFoundError("folder", subject))
    raise ForbiddenError(
        f"your role on {folder.owner}/{folder.kind}/{folder.name} is "
        f"'{ROLE_OF_RANK[have]}'; this needs '{needed}'", needed=needed)


def find_folder(s: Session, path: FolderPath, who: Principal | None = None) -> Folder:
    """The folder's row; missing (as ``who`` would hear it, when given) otherwise."""
    f = s.scalar(select(Folder).where(Folder.owner == path.owner,
                                      Folder.kind == path.kind.value,
                                      Folder.name == path.name))
    if f is None:
        error = NotFoundError("folder", str(path))
        raise not_found(who, error) if who is not None else error
    return f


class Permissions:
    """Resolves assets for a caller who needs a role on them."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

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
        with self.catalog.session() as s:
            self.asset(s, who, r.path, needed)
        return r

    def role(self, who: Principal, asset: AssetPath | str) -> str:
        """The caller's role on an asset: view, run, edit or owner."""
        path = AssetPath.coerce(asset)
        with self.catalog.session() as s:
            a = self.asset(s, who, path, "view")
            return role_name(who, a.folder, a)

    def check(self, who: Principal, asset: AssetPath | str, needed: str) -> None:
        """Raise unless the caller holds ``needed`` (view/run/edit) on the asset."""
        if needed not in ROLES:
            raise InvalidReferenceError(f"unknown role {needed!r}", part="role", value=needed)
        with self.catalog.session() as s:
            self.asset(s, who, AssetPath.coerce(asset), needed)
