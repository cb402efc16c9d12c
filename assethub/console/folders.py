"""Console pages: a folder's assets and shares; new asset, share, unshare, delete folder.

A folder the person may not see answers exactly like a missing one (the hub's NotFoundError);
the write controls show only to those whose role allows them, and the hub checks again on
every POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from assethub import errors
from assethub.console._web import asset_url, field, folder_url, form_of, redirect, render, viewer
from assethub.hub import DatasetMeta, Hub, Principal
from assethub.refs import FolderPath
from assethub.wire import FORMATS, SPLIT_MODES, TASK_TYPES

#: assets listed on a folder page (more on request, up to MAX_ASSETS)
PAGE = 200
MAX_ASSETS = 5000
#: errors shown next to the form that caused them (the rest get the error page)
FORM_ERRORS = (errors.InvalidReferenceError, errors.AlreadyExistsError, errors.NotAllowedError,
               errors.NotFoundError)
SUBJECTS = ("user", "group", "everyone")
ROLES = ("view", "run", "edit")


def folder_path(owner: str, kind: str, folder: str) -> FolderPath:
    return FolderPath.parse(f"{owner}/{kind}/{folder}")


def _ratio(value: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise errors.InvalidReferenceError(f"split ratio must be a number like 0.9, not {value!r}",
                                           part="split_ratio", value=value[:20]) from None


def dataset_meta(form: Mapping[str, Any]) -> DatasetMeta:
    """The dataset settings of a new-asset form (empty fields: the defaults)."""
    mode = field(form, "split_mode", limit=16) or None
    meta = DatasetMeta(task_type=field(form, "task_type", limit=64) or None,
                       data_format=field(form, "format", limit=32) or None,
                       split_mode=mode,
                       split_ratio=_ratio(field(form, "split_ratio", limit=20)) if mode == "ratio"
                       else None,
                       test_set_path=field(form, "test_set_path", limit=1024) or None
                       if mode == "test_set" else None)
    meta.validate()
    return meta


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    F = "/f/{owner}/{kind}/{folder}"

    def page(request: Request, path: FolderPath, *, limit: int = PAGE, status: int = 200,
             error: str = "", error_form: str = "", form: Mapping[str, Any] | None = None,
             ) -> Response:
        who = viewer(hub, request)
        view = hub.get_folder(who, path)  # hidden or missing: the same NotFoundError
        assets = hub.search(who, owner=path.owner, kind=path.kind.value, folder=path.name,
                            limit=limit + 1)
        shares = hub.list_shares(who, path)
        return render(hub, request, "folder.html", status=status, folder=view,
                      assets=assets[:limit], more=len(assets) > limit and limit < MAX_ASSETS,
                      next_limit=min(limit * 5, MAX_ASSETS), shares=shares, error=error,
                      error_form=error_form, form=dict(form or {}),
                      may_edit=view.your_role in ("edit", "owner"),
                      is_owner=view.your_role == "owner", task_types=TASK_TYPES,
                      formats=FORMATS, split_modes=SPLIT_MODES, subjects=SUBJECTS, roles=ROLES)

    @r.get(F)
    def folder(request: Request, owner: str, kind: str, folder: str, limit: int = PAGE) -> Response:
        return page(request, folder_path(owner, kind, folder),
                    limit=max(1, min(limit, MAX_ASSETS)))

    async def change(request: Request, path: FolderPath, which: str, action: Any) -> Response:
        """Run ``action(who, form)`` for a posted form; its refusal shows next to the form."""
        login, form = await form_of(hub, request)
        try:
            target, message = await run_in_threadpool(action, login.principal, form)
        except FORM_ERRORS as e:
            if isinstance(e, errors.NotFoundError) and which != "share":
                raise  # the folder itself: the error page, like any hidden folder
            status, _ = errors.to_wire(e)
            hub.get_folder(login.principal, path)  # hidden: the error page, never the form
            return page(request, path, status=status, error=str(e), error_form=which, form=form)
        return redirect(target, message, request)

    @r.post(F + "/assets")
    async def create_asset(request: Request, owner: str, kind: str, folder: str) -> Response:
        path = folder_path(owner, kind, folder)

        def act(who: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
            name = field(form, "name", limit=128)
            labels = [x for x in field(form, "labels", limit=2000).split(",") if x.strip()]
            meta = dataset_meta(form) if path.kind.value == "dataset" else None
            asset = hub.create_asset(who, path.asset(name),
                                     description=field(form, "description", limit=10_000),
                                     labels=labels, dataset=meta)
            return asset_url(asset.path), f"Asset {asset.path} created"

        return await change(request, path, "asset", act)

    @r.post(F + "/shares")
    async def share(request: Request, owner: str, kind: str, folder: str) -> Response:
        path = folder_path(owner, kind, folder)

        def act(who: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
            subject_type = field(form, "subject_type", limit=10)
            subject = field(form, "subject_name", limit=63)
            role = field(form, "role", limit=10)
            if subject_type in ("user", "group") and not subject:
                raise errors.InvalidReferenceError(f"name the {subject_type} to share with",
                                                   part="subject_name", value="")
            hub.share(who, path, subject_type=subject_type, subject_name=subject, role=role)
            whom = "everyone" if subject_type == "everyone" else f"{subject_type} {subject}"
            return folder_url(path), f"Shared {path} with {whom} ({role})"

        return await change(request, path, "share", act)

    @r.post(F + "/shares/delete")
    async def unshare(request: Request, owner: str, kind: str, folder: str) -> Response:
        path = folder_path(owner, kind, folder)

        def act(who: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
            subject_type = field(form, "subject_type", limit=10)
            subject = field(form, "subject_name", limit=63)
            hub.unshare(who, path, subject_type=subject_type, subject_name=subject)
            whom = "everyone" if subject_type == "everyone" else f"{subject_type} {subject}"
            return folder_url(path), f"{path} is no longer shared with {whom}"

        return await change(request, path, "share", act)

    @r.post(F + "/delete")
    async def delete_folder(request: Request, owner: str, kind: str, folder: str) -> Response:
        path = folder_path(owner, kind, folder)

        def act(who: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
            if field(form, "confirm", limit=200) != path.name:
                hub.get_folder(who, path)
                if hub.get_folder(who, path).your_role != "owner":
                    raise errors.ForbiddenError("only the folder's owner or an admin may delete "
                                                "it", needed="owner")
                raise errors.InvalidReferenceError(
                    f"type the folder's name ({path.name}) to delete it", part="confirm",
                    value=field(form, "confirm", limit=200)[:40])
            hub.delete_folder(who, path)
            return "/", f"Folder {path} deleted"

        return await change(request, path, "delete", act)

    return r
