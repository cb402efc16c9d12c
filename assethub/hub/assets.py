"""Assets: the catalog records of datasets and models (description, labels, README, dataset
metadata), their creation next to a lakeFS repository, rename, delete and search; and
:class:`CatalogLocator`, through which storage finds an asset's repository by its record."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, cast, func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from assethub import _repo_names
from assethub.catalog import Asset, Catalog, Folder
from assethub.errors import (
    AlreadyExistsError,
    AssetNotFoundError,
    ForbiddenError,
    InvalidReferenceError,
    NotAllowedError,
)
from assethub.hub._rows import aware, keep_paths
from assethub.hub.audit import AuditLog
from assethub.hub.identity import Principal, require_user
from assethub.hub.permissions import AccessCache, Permissions, find_folder, rank, require, role_name
from assethub.refs import AssetKind, AssetPath, FolderPath
from assethub.storage import Storage
from assethub.wire import AssetView, DatasetMeta


def _asset_view(who: Principal, a: Asset) -> AssetView:
    f = a.folder
    kind = AssetKind(f.kind)
    ds = (DatasetMeta(a.task_type, a.data_format, a.split_mode, a.split_ratio,
                      a.test_set_path) if kind is AssetKind.DATASET else None)
    return AssetView(
        AssetPath(f.owner, kind, f.name, a.name), a.repository, a.description,
        tuple(a.labels or ()), a.readme, aware(a.created_at) or a.created_at, a.created_by,
        aware(a.updated_at) or a.updated_at, role_name(who, f, a), ds,
        a.preset, tuple((p.tag, p.commit_id) for p in a.publications))

def _not_ascii(s: Session, column: Any) -> ColumnElement[bool]:
    """SQL: ``column`` holds a character beyond ASCII (more bytes than characters)."""
    if s.get_bind().dialect.name == "sqlite":
        return func.length(cast(column, LargeBinary)) != func.length(column)
    return func.octet_length(column) != func.length(column)


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


class CatalogLocator:
    """Storage's locator for the hub: the repository the catalog's asset record names.

    The catalog owns path -> repository: a rename changes the record and keeps the repository,
    and a path deleted and created again gets a new one, for every server on the catalog at
    once. What the request's role check has just read answers when current (the catalog's
    :class:`~assethub.hub.permissions.AccessCache`, forgotten on every such change by any
    server); otherwise one indexed read of committed rows (:meth:`Catalog.lookup`), so it
    works inside and outside an open catalog session.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.access = AccessCache.of(catalog)

    def __call__(self, path: AssetPath) -> str:
        known = self.access.get(path)  # what the request's role check has just read
        if known is not None:
            return known.repository
        repository = self.catalog.lookup(
            select(Asset.repository).join(Folder).where(
                Folder.owner == path.owner, Folder.kind == path.kind.value,
                Folder.name == path.folder, Asset.name == path.name))
        if repository is None:
            raise AssetNotFoundError(str(path))
        return str(repository)

    def __repr__(self) -> str:
        return f"CatalogLocator({self.catalog!r})"


class Assets:
    """Create, read, search, update and delete assets (the records; versions are elsewhere)."""

    def __init__(self, catalog: Catalog, storage: Storage, audit: AuditLog,
                 permissions: Permissions) -> None:
        self.catalog = catalog
        self.storage = storage
        self.audit = audit
        self.permissions = permissions

    def create_asset(self, who: Principal, asset: AssetPath | str, *, description: str = "",
                     labels: Iterable[str] = (), readme: str = "",
                     dataset: DatasetMeta | None = None) -> AssetView:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "asset.create", str(path)):
            require_user(who)
            meta = dataset or DatasetMeta()
            if path.is_dataset:
                meta.validate()
            elif dataset is not None and any(vars(dataset).values()):
                raise InvalidReferenceError("dataset metadata only applies to datasets",
                                            part="dataset", value=str(path))
            clean_labels = _labels(labels)
            with self.catalog.session() as s:
                folder_path = FolderPath(path.owner, path.kind, path.folder)
                f = find_folder(s, folder_path, who)
                require(who, f, "edit", str(folder_path))
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
                    return _asset_view(who, a)
                except Exception:  # keep catalog and lakeFS in step (no record: name it)
                    self.storage.delete_asset(path, repository=info.repository)
                    raise

    def get_asset(self, who: Principal, asset: AssetPath | str) -> AssetView:
        path = AssetPath.coerce(asset)
        with self.catalog.session() as s:
            return _asset_view(who, self.permissions.asset(s, who, path, "view"))

    def search(self, who: Principal, *, query: str = "", label: str | None = None,
               kind: str | None = None, owner: str | None = None, folder: str | None = None,
               task_type: str | None = None, preset: bool | None = None,
               limit: int = 100) -> list[AssetView]:
        """Assets the caller may see, by name/description words, label, type, owner, folder,
        dataset task type, preset or not."""
        with self.catalog.session() as s:
            # the folder comes with each asset (one join), its shares and the assets'
            # publications in one query each: no query per asset
            q = (select(Asset).join(Folder)
                 .options(contains_eager(Asset.folder).selectinload(Folder.shares),
                          selectinload(Asset.publications))
                 .order_by(Folder.owner, Folder.kind, Folder.name, Asset.name))
            if kind:
                q = q.where(Folder.kind == AssetKind(kind).value)
            if owner:
                q = q.where(Folder.owner == owner)
            if folder:
                q = q.where(Folder.name == folder)
            if task_type:
                q = q.where(Asset.task_type == task_type)
            if preset is not None:
                q = q.where(Asset.preset.is_(preset))
            out: list[AssetView] = []
            needle = query.casefold().strip()
            if needle and needle.isascii():
                # narrowed in SQL: lower() agrees with casefold on ASCII text; a name or
                # description with other characters (whose casefold may be ASCII: 'ß' is 'ss')
                # goes through to the exact test below
                like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                q = q.where(func.lower(Asset.name).like(like, escape="\\")
                            | func.lower(Asset.description).like(like, escape="\\")
                            | _not_ascii(s, Asset.name) | _not_ascii(s, Asset.description))
            # read in batches (each with its folders' shares and its publications), so that a
            # search stops reading once it has ``limit`` assets the caller may see
            for a in s.scalars(q.execution_options(yield_per=max(min(limit, 500), 50))):
                if needle and needle not in a.name.casefold() \
                        and needle not in a.description.casefold():
                    continue
                if label and label not in (a.labels or []):
                    continue
                if rank(who, a.folder, a) == 0:
                    continue
                out.append(_asset_view(who, a))
                if len(out) >= limit:
                    break
            return out

    def update_asset(self, who: Principal, asset: AssetPath | str, *,
                     new_name: str | None = None, description: str | None = None,
                     labels: Iterable[str] | None = None, readme: str | None = None,
                     dataset: DatasetMeta | None = None, preset: bool | None = None) -> AssetView:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "asset.update", str(path)), self.catalog.session() as s:
            a = self.permissions.asset(s, who, path, "edit")
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
                a.labels = _labels(labels)
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
            return _asset_view(who, a)

    def delete_asset(self, who: Principal, asset: AssetPath | str) -> None:
        path = AssetPath.coerce(asset)
        with self.audit.audited(who, "asset.delete", str(path)), self.catalog.session() as s:
            a = self.permissions.asset(s, who, path, "edit")
            self.storage.delete_asset(path)
            keep_paths(s, [a])  # its runs, evaluations and services stay, detached
            s.delete(a)

