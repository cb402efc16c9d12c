"""The Asset Hub: who may do what, the catalog, storage and the audit log, behind one facade.

Every user-facing method takes the caller (a :class:`Principal`) first, checks the caller's role
on the folder before it touches storage, and records every change (and every refused change) in
the audit log. The HTTP server, follows and model serving are thin layers over :class:`Hub`.

The work is done by components, each given what it needs when it is made:

- :mod:`~assethub.hub.identity`: users, groups, API tokens, authentication, :class:`Principal`
- :mod:`~assethub.hub.audit`: the audited scope and the audit log's queries
- :mod:`~assethub.hub.permissions`: roles on folders, what a caller may see, asset look-up
- :mod:`~assethub.hub.folders`: folders and their shares
- :mod:`~assethub.hub.assets`: asset records and search
- :mod:`~assethub.hub.versions`: history, branches, tags, merge, publish, files, uploads, import
- :mod:`~assethub.hub.jobs`: runs, evaluations, lineage
- :mod:`~assethub.hub.git_credentials`: users' git credentials, released only to their jobs
- :mod:`~assethub.hub.sessions`: web console sign-ins (a cookie standing on an API token)
- :mod:`~assethub.hub.algorithms`: the algorithm library (versioned, shared training code)
- :mod:`~assethub.hub.settings`: models' job settings (``.assethub/job.yaml`` on main)

:class:`Hub` builds them and forwards each public method to the one that owns it, so a caller
needs one object; code that uses a single part may take that component instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy import or_, select

from assethub.catalog import Asset, Catalog, Folder, Follow
from assethub.hub.algorithms import Algorithms
from assethub.hub.assets import Assets, CatalogLocator
from assethub.hub.audit import AuditLog
from assethub.hub.folders import SUBJECT_TYPES, Folders
from assethub.hub.git_credentials import GitCredentials
from assethub.hub.identity import ANONYMOUS, Identity, Principal, now, require_admin, require_user
from assethub.hub.jobs import RUN_KINDS, RUN_STATES, RUN_TRIGGERS, Jobs
from assethub.hub.permissions import ROLES, Permissions
from assethub.hub.sessions import ConsoleLogin, Sessions
from assethub.hub.settings import JobSettings
from assethub.hub.versions import BUNDLE_MAX_FILES, Limits, Versions
from assethub.launcher import JobLauncher, NoJobLauncher
from assethub.refs import AssetPath, FolderPath
from assethub.storage import Storage
from assethub.triggers import FollowTriggers, LakeFSHook, NoFollowTriggers
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

_log = logging.getLogger("assethub.hub")

__all__ = [
    "ANONYMOUS",
    "BUNDLE_MAX_FILES",
    "ROLES",
    "RUN_KINDS",
    "RUN_STATES",
    "RUN_TRIGGERS",
    "SUBJECT_TYPES",
    "Algorithms",
    "AssetView",
    "Assets",
    "AuditLog",
    "AuditView",
    "CatalogLocator",
    "ConsoleLogin",
    "DatasetMeta",
    "EvaluationView",
    "FolderView",
    "Folders",
    "GitCredentials",
    "Hub",
    "Identity",
    "JobSettings",
    "Jobs",
    "Limits",
    "LineageView",
    "Permissions",
    "Principal",
    "RunView",
    "Sessions",
    "ShareView",
    "TokenView",
    "UserView",
    "Versions",
    "require_admin",
    "require_user",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Forward(Generic[_P, _R]):
    """A facade method that is ``method`` of the component in attribute ``component``.

    On an instance it gives the component's bound method itself (same signature, same
    docstring); the type checker sees that signature too.
    """

    def __init__(self, component: str, method: Callable[Concatenate[Any, _P], _R]) -> None:
        self.component = component
        self.method = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Forward[_P, _R]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> Callable[_P, _R]: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.component), self.method)


class Hub:
    """Catalog + storage + permissions + audit. Thread-safe; one per server process.

    ``storage`` finds repositories through the catalog: ``Storage(..., locate=
    CatalogLocator(catalog))`` (as :func:`assethub.server.build_hub` makes it), so that every
    server on one catalog reaches the same repository for a path, across renames.
    """

    def __init__(self, catalog: Catalog, storage: Storage, *, work_dir: Path,
                 limits: Limits | None = None, follow_triggers: FollowTriggers | None = None,
                 lakefs_hook: LakeFSHook | None = None,
                 clock: Callable[[], datetime] | None = None,
                 job_launcher: JobLauncher | None = None) -> None:
        self.catalog = catalog
        self.storage = storage
        self.limits = limits or Limits()
        # what starts follows' retrains (assethub.follows); the server's composition root wires it
        self.follow_triggers: FollowTriggers = follow_triggers or NoFollowTriggers(
            "the server was started without follow triggers")
        # what starts a person's job from the server (assethub.launcher.start_job; the console)
        self.job_launcher: JobLauncher = job_launcher or NoJobLauncher(
            "the server was started without a job launcher")
        # where lakeFS's actions call the server and the secret they present (server settings)
        self.lakefs_hook = lakefs_hook or LakeFSHook()
        self.uploads_dir = work_dir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = work_dir / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.audit_log = AuditLog(catalog)
        self.identity = Identity(catalog, self.audit_log, clock or now)
        self.sessions = Sessions(catalog, self.audit_log, self.identity)
        self.permissions = Permissions(catalog)
        self.folders = Folders(catalog, storage, self.audit_log)
        self.assets = Assets(catalog, storage, self.audit_log, self.permissions)
        self.versions = Versions(catalog, storage, self.audit_log, self.permissions,
                                 limits=self.limits, uploads_dir=self.uploads_dir,
                                 tmp_dir=self.tmp_dir)
        self.git_credentials = GitCredentials(catalog, self.audit_log, work_dir / "git-credentials.key")
        self.algorithms = Algorithms(catalog, self.audit_log, self.git_credentials)
        self.settings = JobSettings(storage, self.audit_log, self.permissions, self.git_credentials,
                                    self.algorithms)
        self.jobs = Jobs(catalog, storage, self.audit_log, self.permissions, self.git_credentials,
                         algorithms=self.algorithms, settings=self.settings)

    @property
    def clock(self) -> Callable[[], datetime]:
        """The time API tokens are made and expire by (identity's; tests set one they move)."""
        return self.identity.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.identity.clock = clock

    # -- the seams for code built on the hub (follows, model serving) -------------------------
    audited = _Forward("audit_log", AuditLog.audited)
    record = _Forward("audit_log", AuditLog.record)

    @staticmethod
    def require_user(who: Principal) -> str:
        """The caller's user name; anonymous callers are told to sign in."""
        return require_user(who)

    @staticmethod
    def require_admin(who: Principal) -> None:
        """Raise unless the caller is a signed-in admin."""
        require_admin(who)

    # -- identity ----------------------------------------------------------------------------
    authenticate = _Forward("identity", Identity.authenticate)
    ensure_admin = _Forward("identity", Identity.ensure_admin)
    ensure_service_user = _Forward("identity", Identity.ensure_service_user)
    whoami = _Forward("identity", Identity.whoami)
    principal_of = _Forward("identity", Identity.principal_of)
    create_user = _Forward("identity", Identity.create_user)
    list_users = _Forward("identity", Identity.list_users)
    update_user = _Forward("identity", Identity.update_user)
    create_group = _Forward("identity", Identity.create_group)
    list_groups = _Forward("identity", Identity.list_groups)
    delete_group = _Forward("identity", Identity.delete_group)
    add_member = _Forward("identity", Identity.add_member)
    remove_member = _Forward("identity", Identity.remove_member)
    create_token = _Forward("identity", Identity.create_token)
    list_tokens = _Forward("identity", Identity.list_tokens)
    revoke_token = _Forward("identity", Identity.revoke_token)

    # -- permissions -------------------------------------------------------------------------
    role = _Forward("permissions", Permissions.role)
    check = _Forward("permissions", Permissions.check)

    # -- folders and shares ------------------------------------------------------------------
    create_folder = _Forward("folders", Folders.create_folder)
    list_folders = _Forward("folders", Folders.list_folders)
    get_folder = _Forward("folders", Folders.get_folder)
    update_folder = _Forward("folders", Folders.update_folder)

    def delete_folder(self, who: Principal, folder: FolderPath | str) -> None:
        """Delete a folder and every asset in it (owner or admin), and the follows of its assets."""
        path = FolderPath.coerce(folder)
        follows = self._follows_of(select(Asset.id).join(Folder).where(
            Folder.owner == path.owner, Folder.kind == path.kind.value, Folder.name == path.name))
        self.folders.delete_folder(who, path)
        self._forget_follows(follows)

    share = _Forward("folders", Folders.share)
    unshare = _Forward("folders", Folders.unshare)
    list_shares = _Forward("folders", Folders.list_shares)

    # -- assets ------------------------------------------------------------------------------
    create_asset = _Forward("assets", Assets.create_asset)
    get_asset = _Forward("assets", Assets.get_asset)
    search = _Forward("assets", Assets.search)
    update_asset = _Forward("assets", Assets.update_asset)

    def delete_asset(self, who: Principal, asset: AssetPath | str) -> None:
        """Delete an asset (edit), and the follows that name it as model or dataset."""
        path = AssetPath.coerce(asset)
        follows = self._follows_of(select(Asset.id).join(Folder).where(
            Folder.owner == path.owner, Folder.kind == path.kind.value, Folder.name == path.folder,
            Asset.name == path.name))
        self.assets.delete_asset(who, path)
        self._forget_follows(follows)

    def _follows_of(self, assets: Any) -> list[int]:
        """The follows that name one of ``assets`` (a select of asset ids) as model or dataset."""
        with self.catalog.session() as s:
            ids = list(s.scalars(assets))
            return list(s.scalars(select(Follow.id).where(
                or_(Follow.model_id.in_(ids), Follow.dataset_id.in_(ids))))) if ids else []

    def _forget_follows(self, follow_ids: list[int]) -> None:
        """Follows of a deleted model or dataset go with it (the catalog deletes their rows with
        the asset), triggers too: otherwise they would retrain a stranger's asset."""
        with self.catalog.session() as s:
            for row in s.scalars(select(Follow).where(Follow.id.in_(follow_ids))):
                s.delete(row)  # any the catalog left (it deletes them with their asset)
        for follow_id in follow_ids:
            try:
                self.follow_triggers.remove(follow_id)
            except Exception as e:  # the follow is gone; a trigger left behind finds no follow
                _log.warning("could not remove the triggers of follow %s: %s", follow_id, e)

    # -- versions, files, uploads, import ----------------------------------------------------
    get_commit = _Forward("versions", Versions.get_commit)
    log = _Forward("versions", Versions.log)
    diff = _Forward("versions", Versions.diff)
    list_branches = _Forward("versions", Versions.list_branches)
    create_branch = _Forward("versions", Versions.create_branch)
    delete_branch = _Forward("versions", Versions.delete_branch)
    list_tags = _Forward("versions", Versions.list_tags)
    create_tag = _Forward("versions", Versions.create_tag)
    delete_tag = _Forward("versions", Versions.delete_tag)
    merge = _Forward("versions", Versions.merge)
    publish = _Forward("versions", Versions.publish)
    list_objects = _Forward("versions", Versions.list_objects)
    list_directory = _Forward("versions", Versions.list_directory)
    stat = _Forward("versions", Versions.stat)
    open_file = _Forward("versions", Versions.open_file)
    open_bundle = _Forward("versions", Versions.open_bundle)
    start_upload = _Forward("versions", Versions.start_upload)
    put_upload_file = _Forward("versions", Versions.put_upload_file)
    put_upload_bundle = _Forward("versions", Versions.put_upload_bundle)
    commit_upload = _Forward("versions", Versions.commit_upload)
    abort_upload = _Forward("versions", Versions.abort_upload)
    check_import = _Forward("versions", Versions.check_import)
    import_archive = _Forward("versions", Versions.import_archive)
    cleanup_stale_writes = _Forward("versions", Versions.cleanup_stale_writes)

    # -- jobs: runs, evaluations, lineage ----------------------------------------------------
    create_run = _Forward("jobs", Jobs.create_run)
    open_run = _Forward("jobs", Jobs.open_run)
    claim_run = _Forward("jobs", Jobs.claim_run)
    open_follow_run = _Forward("jobs", Jobs.open_follow_run)
    job_run = _Forward("jobs", Jobs.job_run)
    update_run = _Forward("jobs", Jobs.update_run)
    get_run = _Forward("jobs", Jobs.get_run)
    list_runs = _Forward("jobs", Jobs.list_runs)
    record_crashes = _Forward("jobs", Jobs.record_crashes)
    add_evaluation = _Forward("jobs", Jobs.add_evaluation)
    list_evaluations = _Forward("jobs", Jobs.list_evaluations)
    lineage = _Forward("jobs", Jobs.lineage)

    # -- models' job settings and the algorithm library ------------------------------------
    job_settings = _Forward("settings", JobSettings.job_settings)
    configure = _Forward("settings", JobSettings.configure)
    register_algorithm = _Forward("algorithms", Algorithms.register_algorithm)
    update_algorithm = _Forward("algorithms", Algorithms.update_algorithm)
    get_algorithm = _Forward("algorithms", Algorithms.get_algorithm)
    list_algorithms = _Forward("algorithms", Algorithms.list_algorithms)
    delete_algorithm = _Forward("algorithms", Algorithms.delete_algorithm)
    share_algorithm = _Forward("algorithms", Algorithms.share_algorithm)
    unshare_algorithm = _Forward("algorithms", Algorithms.unshare_algorithm)

    # -- git credentials (never returned; released to a user's running jobs) -----------------
    set_git_credential = _Forward("git_credentials", GitCredentials.set_git_credential)
    list_git_credentials = _Forward("git_credentials", GitCredentials.list_git_credentials)
    delete_git_credential = _Forward("git_credentials", GitCredentials.delete_git_credential)
    adopt_git_url = _Forward("git_credentials", GitCredentials.adopt_url)
    run_git_credential = _Forward("git_credentials", GitCredentials.run_git_credential)

    # -- audit log ---------------------------------------------------------------------------
    audit = _Forward("audit_log", AuditLog.query)
