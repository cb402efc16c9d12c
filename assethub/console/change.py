"""Console pages that change an asset: upload files (one atomic commit), edit the README and
metadata, merge a branch (with the metric gate for models), publish a dataset version, import a
dataset archive.

The upload page's script (``static/upload.js``) talks to four routes that answer JSON and take
the CSRF token in the ``X-CSRF-Token`` header: start an upload session, stream each file into it
(``PUT``, a streamed body: see :func:`streamed_bodies`), commit it with the message, or abort it.
They are the hub's upload session (the REST API's upload routes use the same calls), with the
same permission checks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub._json import jsonable
from assethub.console._web import (
    asset_url,
    field,
    form_of,
    login_of,
    redirect,
    same_origin,
    viewer,
)
from assethub.console._web import render as render_page
from assethub.console.render import human_size, markdown
from assethub.hub import ConsoleLogin, Hub, Principal
from assethub.lineage import MODEL_COMMIT, MergeDecision, decide_merge
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef
from assethub.wire import FORMATS, TASK_TYPES, AssetView, DatasetMeta

ASSET = "/a/{owner}/{kind}/{folder}/{name}"
UPLOAD_FILE = ASSET + "/upload/{upload_id}/files/{file:path}"
IMPORT = ASSET + "/import"
#: files sent at once by the upload page
PARALLEL = 4
SPLIT_MODES = ("ratio", "test_set")


def streamed_bodies(hub: Hub) -> list[tuple[str, str, Any]]:
    """The console routes that stream their body (registered with the server's body guard, like
    the API's): a file of an upload (up to the upload limit) and an imported archive."""
    return [("PUT", UPLOAD_FILE, lambda: hub.limits.max_upload_bytes),
            ("POST", IMPORT, lambda: hub.limits.max_archive_bytes)]


def asset_path(owner: str, kind: str, folder: str, name: str) -> AssetPath:
    return AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")


def branch_ref(path: AssetPath, branch: str) -> AssetRef:
    """``path`` at ``branch`` (validated); datasets change on ``main`` only."""
    branch = branch or DEFAULT_BRANCH
    if path.is_dataset and branch != DEFAULT_BRANCH:
        raise errors.NotAllowedError(f"datasets change on {DEFAULT_BRANCH} only, not {branch!r}")
    return AssetRef.parse(f"{path}:{branch}")


def editable(hub: Hub, who: Principal, path: AssetPath) -> AssetView:
    """The asset, once the caller may edit it (a hidden one reads as missing, as everywhere)."""
    hub.check(who, path, "edit")
    return hub.get_asset(who, path)


def json_error(exc: Exception) -> JSONResponse:
    """The API's error shape (what console.js reads), for the upload page's script."""
    status, body = errors.to_wire(exc)
    return JSONResponse({"error": body}, status_code=status)


def script_login(hub: Hub, request: Request) -> ConsoleLogin:
    """The signed-in person of a request from the console's script: the CSRF token in the
    X-CSRF-Token header, a same-origin request. Nothing of the body is read."""
    login = login_of(hub, request)
    if login is None:
        raise errors.AuthenticationError("sign in first")
    if not hub.sessions.csrf_matches(login, request.headers.get("x-csrf-token") or "") \
            or not same_origin(request):
        hub.record(login.principal, "console.csrf", request.url.path, "denied",
                   "missing or wrong CSRF token, or a cross-site request")
        raise errors.ForbiddenError("this page is out of date or the request was not sent from "
                                    "the console (CSRF check failed): reload the page")
    return login


async def json_body(request: Request) -> Mapping[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise errors.InvalidReferenceError("expected a JSON object", part="body", value="")
    return body


def text_of(body: Mapping[str, Any], name: str, limit: int = 10_000) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise errors.InvalidReferenceError(f"{name} must be text", part=name, value=str(value)[:40])
    if len(value) > limit:
        raise errors.InvalidReferenceError(f"{name} is over {limit} characters", part=name,
                                           value=value[:40])
    return value.strip()


def text_field(form: Mapping[str, Any], name: str, limit: int) -> str:
    """A multi-line field as written (not stripped: Markdown's indentation matters), with the
    browser's CRLF line ends made LF."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise errors.InvalidReferenceError(f"{name} is over {limit} characters", part=name,
                                           value=value[:40])
    return value.replace("\r\n", "\n")


def render(hub: Hub, request: Request, template: str, status: int = 200,
           **context: Any) -> Response:
    return render_page(hub, request, template, status=status, human_size=human_size, **context)


def _labels(text: str) -> list[str]:
    return [x.strip() for x in text.replace("\n", ",").split(",") if x.strip()]


def router(hub: Hub) -> APIRouter:
    r = APIRouter()

    # -- upload ------------------------------------------------------------------------------
    @r.get(ASSET + "/upload")
    def upload_page(request: Request, owner: str, kind: str, folder: str, name: str,
                    ref: str = "") -> Response:
        who = viewer(hub, request)
        path = asset_path(owner, kind, folder, name)
        asset = editable(hub, who, path)
        branch = DEFAULT_BRANCH if path.is_dataset else (ref or DEFAULT_BRANCH)
        branch_ref(path, branch)
        branches = [] if path.is_dataset else [b.name for b in hub.list_branches(who, path)][:500]
        return render(hub, request, "change_upload.html", asset=asset, ref=branch, tab="upload",
                      branch=branch, branches=branches, limit=hub.limits.max_upload_bytes,
                      parallel=PARALLEL)

    @r.post(ASSET + "/upload/start")
    async def upload_start(request: Request, owner: str, kind: str, folder: str,
                           name: str) -> Response:
        try:
            who = script_login(hub, request).principal
            path = asset_path(owner, kind, folder, name)
            body = await json_body(request)
            ref = branch_ref(path, text_of(body, "branch", 128))
            upload_id = await run_in_threadpool(hub.start_upload, who, ref)
            return JSONResponse({"upload_id": upload_id, "branch": ref.ref}, status_code=201)
        except errors.AssetHubError as e:
            return json_error(e)

    @r.put(UPLOAD_FILE)  # a streamed body: see streamed_bodies
    async def upload_file(request: Request, owner: str, kind: str, folder: str, name: str,
                          upload_id: str, file: str) -> Response:
        try:
            who = script_login(hub, request).principal
            path = asset_path(owner, kind, folder, name)
            await run_in_threadpool(hub.check, who, path, "edit")  # before reading the body
            info = await hub.put_upload_file(who, upload_id, file, request.stream())
            return JSONResponse({"path": info.path, "size": info.size, "sha256": info.sha256})
        except errors.AssetHubError as e:
            return json_error(e)

    @r.post(ASSET + "/upload/{upload_id}/commit")
    async def upload_commit(request: Request, owner: str, kind: str, folder: str, name: str,
                            upload_id: str) -> Response:
        try:
            who = script_login(hub, request).principal
            path = asset_path(owner, kind, folder, name)
            body = await json_body(request)
            message = text_of(body, "message")
            if not message:
                raise errors.InvalidReferenceError("a commit needs a message", part="message",
                                                   value="")
            info = await run_in_threadpool(lambda: hub.commit_upload(who, upload_id,
                                                                     message=message))
            branch = text_of(body, "branch", 128) or DEFAULT_BRANCH
            return JSONResponse({"commit": jsonable(info),
                                 "history": asset_url(path, "history", ref=branch)})
        except errors.AssetHubError as e:
            return json_error(e)

    @r.post(ASSET + "/upload/{upload_id}/abort")
    async def upload_abort(request: Request, owner: str, kind: str, folder: str, name: str,
                           upload_id: str) -> Response:
        try:
            who = script_login(hub, request).principal
            asset_path(owner, kind, folder, name)
            await run_in_threadpool(hub.abort_upload, who, upload_id)
            return JSONResponse({"aborted": upload_id})
        except errors.AssetHubError as e:
            return json_error(e)

    # -- settings: README and metadata --------------------------------------------------------
    def settings_page(request: Request, asset: AssetView, values: Mapping[str, Any],
                      message: str = "", status: int = 200, preview: Any = None) -> Response:
        return render(hub, request, "change_settings.html", status=status, asset=asset, ref="",
                      tab="settings", values=values, message=message, preview=preview,
                      task_types=TASK_TYPES, formats=FORMATS, split_modes=SPLIT_MODES)

    def current_values(asset: AssetView) -> dict[str, Any]:
        d = asset.dataset or DatasetMeta()
        return {"readme": asset.readme, "description": asset.description,
                "labels": ", ".join(asset.labels), "name": asset.path.name,
                "task_type": d.task_type or "", "format": d.data_format or "",
                "split_mode": d.split_mode or "",
                "split_ratio": "" if d.split_ratio is None else f"{d.split_ratio:g}",
                "test_set_path": d.test_set_path or "", "preset": asset.preset}

    @r.get(ASSET + "/settings")
    def settings(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        who = viewer(hub, request)
        asset = editable(hub, who, asset_path(owner, kind, folder, name))
        return settings_page(request, asset, current_values(asset))

    @r.post(ASSET + "/settings")
    async def save_settings(request: Request, owner: str, kind: str, folder: str,
                            name: str) -> Response:
        login, form = await form_of(hub, request)
        who = login.principal
        path = asset_path(owner, kind, folder, name)
        asset = editable(hub, who, path)
        values: dict[str, Any] = {
            "readme": text_field(form, "readme", limit=200_000),
            "description": field(form, "description", limit=10_000),
            "labels": field(form, "labels", limit=5_000),
            "name": field(form, "name", asset.path.name, limit=128) or asset.path.name,
            "task_type": field(form, "task_type", limit=64),
            "format": field(form, "format", limit=32),
            "split_mode": field(form, "split_mode", limit=16),
            "split_ratio": field(form, "split_ratio", limit=32),
            "test_set_path": field(form, "test_set_path", limit=1024),
            "preset": form.get("preset") == "on"}
        if form.get("action") == "preview":
            return settings_page(request, asset, values, preview=markdown(values["readme"]))
        try:
            dataset = None
            if path.is_dataset:
                try:
                    ratio = float(values["split_ratio"]) if values["split_ratio"] else None
                except ValueError:
                    raise errors.InvalidReferenceError(
                        "the split ratio is a number between 0 and 1 (e.g. 0.9)",
                        part="split_ratio", value=values["split_ratio"][:20]) from None
                dataset = DatasetMeta(task_type=values["task_type"] or None,
                                      data_format=values["format"] or None,
                                      split_mode=values["split_mode"] or None,
                                      split_ratio=ratio,
                                      test_set_path=values["test_set_path"] or None)
            preset = values["preset"] if who.is_admin and path.is_dataset else None
            new_name = values["name"] if values["name"] != path.name else None
            updated = hub.update_asset(who, path, new_name=new_name,
                                       description=values["description"],
                                       labels=_labels(values["labels"]), readme=values["readme"],
                                       dataset=dataset, preset=preset)
        except errors.AssetHubError as e:
            status, _ = errors.to_wire(e)
            return settings_page(request, asset, values, message=str(e), status=status)
        return redirect(asset_url(updated.path, "settings"), "Settings saved", request)

    # -- merge --------------------------------------------------------------------------------
    def merge_page(request: Request, asset: AssetView, values: Mapping[str, Any], *,
                   status: int = 200, message: str = "", decision: MergeDecision | None = None,
                   conflicts: list[str] | None = None) -> Response:
        who = viewer(hub, request)
        branches = [b.name for b in hub.list_branches(who, asset.path)][:500]
        return render(hub, request, "change_merge.html", status=status, asset=asset, ref="",
                      tab="compare", values=values, branches=branches, message=message,
                      decision=decision, conflicts=conflicts or [])

    @r.get(ASSET + "/merge")
    def merge_form(request: Request, owner: str, kind: str, folder: str, name: str,
                   source: str = "", target: str = "") -> Response:
        who = viewer(hub, request)
        asset = editable(hub, who, asset_path(owner, kind, folder, name))
        values = {"source": source, "target": target or DEFAULT_BRANCH,
                  "metric": "accuracy" if not asset.path.is_dataset else "", "margin": "0",
                  "lower_is_better": False, "strategy": ""}
        return merge_page(request, asset, values)

    @r.post(ASSET + "/merge")
    async def merge(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        login, form = await form_of(hub, request)
        who = login.principal
        path = asset_path(owner, kind, folder, name)
        asset = editable(hub, who, path)
        values: dict[str, Any] = {"source": field(form, "source", limit=200),
                  "target": field(form, "target", DEFAULT_BRANCH, limit=200) or DEFAULT_BRANCH,
                  "metric": field(form, "metric", limit=100) if not path.is_dataset else "",
                  "margin": field(form, "margin", "0", limit=32) or "0",
                  "lower_is_better": form.get("lower_is_better") == "on",
                  "strategy": field(form, "strategy", limit=20)}
        source, target, metric = values["source"], values["target"], values["metric"]
        try:
            if not source:
                raise errors.InvalidReferenceError("choose the branch to merge", part="source",
                                                   value="")
            if values["strategy"] not in ("", "source-wins", "dest-wins"):
                raise errors.InvalidReferenceError("strategy is source-wins or dest-wins",
                                                   part="strategy", value=values["strategy"][:20])
            try:
                margin = float(values["margin"])
            except ValueError:
                raise errors.InvalidReferenceError("the margin is a number (e.g. 0.005)",
                                                   part="margin", value=values["margin"][:20]) from None
            metadata: dict[str, str] = {}
            note = ""
            if metric:  # the metric gate: what `assethub merge --metric` (flows/merge.py) decides
                src = hub.lineage(who, AssetRef.parse(f"{path}:{source}"))
                dst = hub.lineage(who, AssetRef.parse(f"{path}:{target}"))
                decision = decide_merge(src, dst, metric, higher_is_better=not values["lower_is_better"],
                                        margin=margin)
                if not decision.merge:
                    return merge_page(request, asset, values, status=409, decision=decision,
                                      message=f"Not merged: {decision.reason}")
                metadata[MODEL_COMMIT] = src.model_commit
                note = f": {decision.reason}"
            strategy = values["strategy"] or ("source-wins" if metric else None)
            info = hub.merge(who, path, source, into=target, strategy=strategy,  # type: ignore[arg-type]
                             message=f"Merge {source} into {target}{note}", metadata=metadata)
        except errors.MergeConflictError as e:
            return merge_page(request, asset, values, status=409, conflicts=list(e.paths),
                              message=f"Not merged: {source} and {target} both changed "
                                      f"{len(e.paths)} file(s)")
        except errors.AssetHubError as e:
            status, _ = errors.to_wire(e)
            return merge_page(request, asset, values, status=status, message=str(e))
        return redirect(asset_url(path, "history", ref=target),
                        f"Merged {source} into {target}: commit {info.id[:12]}", request)

    # -- publish (datasets) -------------------------------------------------------------------
    @r.post(ASSET + "/publish")
    async def publish(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        login, form = await form_of(hub, request)
        path = asset_path(owner, kind, folder, name)
        tag = field(form, "tag", limit=128)
        if not tag:
            raise errors.InvalidReferenceError("name the version to publish (e.g. v1)", part="tag",
                                               value="")
        info = hub.publish(login.principal, path, tag, ref=DEFAULT_BRANCH)
        return redirect(asset_url(path, "dataset", ref=tag),
                        f"Published {tag} at commit {info.commit_id[:12]}", request)

    # -- import (datasets) --------------------------------------------------------------------
    def import_page(request: Request, asset: AssetView, *, status: int = 200, message: str = "",
                    problem: str = "", files: list[str] | None = None, result: Any = None,
                    commit_message: str = "") -> Response:
        return render(hub, request, "change_import.html", status=status, asset=asset, ref="",
                      tab="import", message=message, problem=problem, files=files or [],
                      result=result, commit_message=commit_message,
                      limit=hub.limits.max_archive_bytes)

    @r.get(IMPORT)
    def import_form(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        who = viewer(hub, request)
        path = asset_path(owner, kind, folder, name)
        asset = editable(hub, who, path)
        if not path.is_dataset:
            raise errors.NotAllowedError(f"only datasets are imported from archives; {path} is a model")
        return import_page(request, asset)

    @r.post(IMPORT)  # a streamed body: see streamed_bodies
    async def import_archive(request: Request, owner: str, kind: str, folder: str,
                             name: str) -> Response:
        login = login_of(hub, request)
        if login is None:
            raise errors.AuthenticationError("sign in first")
        path = asset_path(owner, kind, folder, name)
        await run_in_threadpool(hub.check_import, login.principal, path)  # before the body
        login, form = await form_of(hub, request)
        who = login.principal
        asset = hub.get_asset(who, path)
        message = field(form, "message", limit=10_000)
        upload = form.get("archive")
        if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
            return import_page(request, asset, status=400, message="choose a .zip archive",
                               commit_message=message)
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=hub.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := await upload.read(2**20):
                    out.write(chunk)
            try:
                commit, summary = await run_in_threadpool(
                    lambda: hub.import_archive(who, path, Path(tmp), message=message))
            except errors.InvalidDatasetError as e:
                files = [p for p in e.path.split(", ") if p] if e.path else []
                return import_page(request, asset, status=400, problem=e.reason, files=files,
                                   message=f"The archive was not imported: {e.reason}",
                                   commit_message=message)
            except errors.AssetHubError as e:
                status, _ = errors.to_wire(e)
                return import_page(request, asset, status=status, message=str(e),
                                   commit_message=message)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return import_page(request, asset, result={"commit": commit, "summary": summary},
                           status=201)

    return r
