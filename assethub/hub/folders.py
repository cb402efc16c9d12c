"""Folders (of one asset type each) and their shares: the unit of sharing and permissions."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from assethub.catalog import Asset, Catalog, Folder, Share
from assethub.errors import AlreadyExistsError, ForbiddenError, InvalidReferenceError, NotFoundError
from assethub.hub._rows import aware, keep_paths
from assethub.hub.audit import AuditLog
from assethub.hub.identity import Principal, find_group, find_user, require_user
from assethub.hub.permissions import ROLES, find_folder, rank, require, role_name
from assethub.hub.permissions import subject_name as subject_of
from assethub.refs import AssetKind, FolderPath
from assethub.storage import Storage
from assethub.wire import FolderView, ShareView

SUBJECT_TYPES = ("user", "group", "everyone")


def _folder_view(who: Principal, f: Folder, assets: int | None = None) -> FolderView:
    """``assets``: the folder's number of assets when the caller counted them already (in SQL)."""
    return FolderView(FolderPath(f.owner, AssetKind(f.kind), f.name), f.description,
                      aware(f.created_at) or f.created_at, f.created_by,
                      role_name(who, f), len(f.assets) if assets is None else assets,
                      any(sh.subject_type == "everyone" for sh in f.shares))


class Folders:
    """Create, list, rename and delete folders; share them with users, groups or everyone."""

    def __init__(self, catalog: Catalog, storage: Storage, audit: AuditLog) -> None:
        self.catalog = catalog
        self.storage = storage
        self.audit = audit

    def create_folder(self, who: Principal, folder: FolderPath | str, *,
                      description: str = "") -> FolderView:
        path = FolderPath.coerce(folder)
        with self.audit.audited(who, "folder.create", str(path)):
            me = require_user(who)
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
                return _folder_view(who, f)

    def list_folders(self, who: Principal, *, owner: str | None = None,
                     kind: str | None = None) -> list[FolderView]:
        # three queries whatever the number of folders: the folders with their asset counts,
        # then their shares (with each share's user or group) for the permission check
        counts = (select(Asset.folder_id, func.count(Asset.id).label("n"))
                  .group_by(Asset.folder_id).subquery())
        with self.catalog.session() as s:
            q = (select(Folder, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.folder_id == Folder.id)
                 .options(selectinload(Folder.shares))
                 .order_by(Folder.owner, Folder.kind, Folder.name))
            if owner:
                q = q.where(Folder.owner == owner)
            if kind:
                q = q.where(Folder.kind == AssetKind(kind).value)
            return [_folder_view(who, f, int(n)) for f, n in s.execute(q) if rank(who, f) > 0]

    def get_folder(self, who: Principal, folder: FolderPath | str) -> FolderView:
        path = FolderPath.coerce(folder)
        with self.catalog.session() as s:
            f = find_folder(s, path, who)
            require(who, f, "view", str(path))
            return _folder_view(who, f)

    def update_folder(self, who: Principal, folder: FolderPath | str, *,
                      new_name: str | None = None,
                      description: str | None = None) -> FolderView:
        path = FolderPath.coerce(folder)
        with self.audit.audited(who, "folder.update", str(path)), self.catalog.session() as s:
            f = find_folder(s, path, who)
            require(who, f, "owner" if new_name else "edit", str(path))
            if description is not None:
                f.description = description
            if new_name is not None and new_name != f.name:
                new_path = FolderPath(path.owner, path.kind, new_name)
                if s.scalar(select(Folder).where(Folder.owner == f.owner,
                                                 Folder.kind == f.kind,
                                                 Folder.name == new_name)) is not None:
                    raise AlreadyExistsError("folder", str(new_path))
                for a in f.assets:  # the records move with the folder; this keeps the
                    # repositories' own metadata (for standalone listing) in step
                    self.storage.rename_asset(path.asset(a.name), new_path.asset(a.name))
                f.name = new_name
            return _folder_view(who, f)

    def delete_folder(self, who: Principal, folder: FolderPath | str) -> None:
        """Delete a folder and every asset in it (owner or admin)."""
        path = FolderPath.coerce(folder)
        with self.audit.audited(who, "folder.delete", str(path)), self.catalog.session() as s:
            f = find_folder(s, path, who)
            require(who, f, "owner", str(path))
            for a in list(f.assets):
                self.storage.delete_asset(path.asset(a.name))
            keep_paths(s, list(f.assets))  # their runs, evaluations and services stay, detached
            s.delete(f)

    # -- shares ------------------------------------------------------------------------------
    def share(self, who: Principal, folder: FolderPath | str, *, subject_type: str,
              subject_name: str = "", role: str) -> ShareView:
        path = FolderPath.coerce(folder)
        with self.audit.audited(who, "folder.share",
                                f"{path} {subject_type}:{subject_name}={role}"):
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
                f = find_folder(s, path, who)
                require(who, f, "owner", str(path))
                # the share names the user or group by id: it goes when they go
                user_id = find_user(s, subject_name).id if subject_type == "user" else None
                group_id = find_group(s, subject_name).id if subject_type == "group" else None
                existing = next((sh for sh in f.shares if sh.subject_type == subject_type
                                 and sh.user_id == user_id and sh.group_id == group_id), None)
                if existing is None:
                    existing = Share(subject_type=subject_type, subject_name=subject_name,
                                     user_id=user_id, group_id=group_id,
                                     role=role, created_by=who.name or "")
                    f.shares.append(existing)
                existing.role = role
                return ShareView(path, subject_type, subject_name, role, existing.created_by)

    def unshare(self, who: Principal, folder: FolderPath | str, *, subject_type: str,
                subject_name: str = "") -> None:
        path = FolderPath.coerce(folder)
        with self.audit.audited(who, "folder.unshare", f"{path} {subject_type}:{subject_name}"):
            with self.catalog.session() as s:
                f = find_folder(s, path, who)
                require(who, f, "owner", str(path))
                before = len(f.shares)
                f.shares = [sh for sh in f.shares if not (
                    sh.subject_type == subject_type
                    and subject_of(sh) == ("" if subject_type == "everyone" else subject_name))]
                if len(f.shares) == before:
                    raise NotFoundError("share", f"{subject_type}:{subject_name} on {path}")

    def list_shares(self, who: Principal, folder: FolderPath | str) -> list[ShareView]:
        path = FolderPath.coerce(folder)
        with self.catalog.session() as s:
            f = find_folder(s, path, who)
            require(who, f, "view", str(path))
            shares = [(sh.subject_type, subject_of(sh), sh) for sh in f.shares]
            return [ShareView(path, kind, name, sh.role, sh.created_by)
                    for kind, name, sh in sorted(shares, key=lambda x: (x[0], x[1]))]
