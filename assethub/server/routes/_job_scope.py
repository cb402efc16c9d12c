"""What a job token may call: exactly what its run needs, nothing else (403 otherwise).

A job token (``Principal.job_run_id``) acts as its run's owner, so every route's own
permission check still applies; this narrows it first, by route, before the route runs:

- its run: read it, update it, fetch its git credential; a retrain's token also opens runs
  (the hub checks that they are the retrain's steps on its model and dataset commit);
- reads of the run's model (any version: evaluations compare them), its base model, and its
  dataset; the dataset's files only at the run's pinned commit;
- writes to the run's model branch only: create or delete that branch, uploads to it (the
  uploads' own routes are bound to whoever started them, see ``hub.versions``); a merge run's
  token merges its source branch; evaluations of its model for its run (checked by the hub).

Everything else (other assets, other branches, tags, publishing, imports, folders, shares,
users, tokens, follows, services, the audit log, listing runs) is refused.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from assethub import errors
from assethub.hub import Hub, Principal
from assethub.refs import AssetRef
from assethub.server.routes import API
from assethub.server.routes._common import ASSET
from assethub.wire import RunView

_OPEN = {("GET", "/health"), ("GET", "/whoami"), ("GET", "/capabilities")}
_OWN_RUN = {("GET", "/runs/{run_id}"), ("PATCH", "/runs/{run_id}"),
            ("POST", "/runs/{run_id}/git-credential")}
_UPLOADS = {("PUT", "/uploads/{upload_id}/files/{file:path}"), ("PUT", "/uploads/{upload_id}/bundle"),
            ("POST", "/uploads/{upload_id}/commit"), ("DELETE", "/uploads/{upload_id}"),
            ("POST", "/uploads/{upload_id}/presign"), ("POST", "/uploads/{upload_id}/link")}
# reads of an asset the run uses; those that return file content are pinned for the dataset
_READS = {("GET", ""), ("GET", "/role"), ("GET", "/commit"), ("GET", "/log"), ("GET", "/branches"),
          ("GET", "/tags"), ("GET", "/evaluations"), ("GET", "/lineage")}
_CONTENT = {("GET", "/objects"), ("GET", "/stat"), ("GET", "/files/{file:path}"), ("POST", "/bundle"),
            ("GET", "/diff"), ("GET", "/presigned")}


def refused(run_id: str, what: str) -> errors.ForbiddenError:
    return errors.ForbiddenError(f"a job token may only act on its run ({run_id}): {what} is not "
                                 "part of it", needed="job scope")


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON body (read already by FastAPI for these routes: cached)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _path(params: dict[str, Any]) -> str:
    return "/".join(str(params.get(k, "")) for k in ("owner", "kind", "folder", "name"))


def _ref_path(ref: str) -> str:
    try:
        return str(AssetRef.coerce(ref).path) if ref else ""
    except errors.AssetHubError:
        return ""


async def check(hub: Hub, who: Principal, request: Request) -> None:
    """Raise 403 unless the job token ``who`` may make this request (see the module); a
    refusal is audited (``job.refused``, with the run in its detail)."""
    try:
        await _check(hub, who, request)
    except errors.ForbiddenError as e:
        hub.record(who, "job.refused", f"{request.method} {request.url.path.removeprefix(API)}",
                   "denied", str(e))
        raise


async def _check(hub: Hub, who: Principal, request: Request) -> None:
    run_id = who.job_run_id
    assert run_id is not None
    route = request.scope.get("route")
    template = str(getattr(route, "path", "")).removeprefix(API)
    method = request.method.upper()
    what = f"{method} {request.url.path.removeprefix(API)}"
    key = (method, template)
    params = request.path_params
    if key in _OPEN:
        return
    run: RunView = hub.job_run(run_id)
    if key in _OWN_RUN:
        if params.get("run_id") == run_id:
            return
        raise refused(run_id, f"run {params.get('run_id')}")
    if key == ("POST", "/runs"):
        if run.kind == "retrain":
            return  # its steps: the hub checks model, dataset commit and kind
        raise refused(run_id, "opening another run")
    if key in _UPLOADS:
        return  # an upload is bound to the job that started it (hub.versions)
    if not template.startswith(ASSET):
        raise refused(run_id, what)
    path, op = _path(params), (method, template.removeprefix(ASSET))
    dataset = _ref_path(run.dataset_ref)
    base = _ref_path(run.base_ref)
    if op in _READS and path in (run.model, dataset, base):
        return
    if op in _CONTENT and path in (run.model, base):
        return
    if op in _CONTENT and path == dataset:
        query = request.query_params
        if op[1] == "/diff":
            refs = [query.get("left", ""), query.get("right", "")]
        elif op[1] == "/bundle":
            refs = [str((await _body(request)).get("ref", "main"))]
        else:
            refs = [query.get("ref", "main")]
        if run.dataset_commit and all(r == run.dataset_commit for r in refs):
            return
        raise refused(run_id, f"reading {path} other than at the run's commit {run.dataset_commit[:12]}")
    if path == run.model and run.branch:
        body = await _body(request) if method == "POST" else {}
        if op == ("POST", "/branches") and body.get("name") == run.branch:
            return
        if op == ("DELETE", "/branches/{branch}") and params.get("branch") == run.branch:
            return
        if op == ("POST", "/uploads") and body.get("branch") == run.branch:
            return
        if op == ("POST", "/merge") and run.kind == "merge" and body.get("source") == run.branch:
            return
    if path == run.model and op == ("POST", "/evaluations"):
        return  # its model, for its run: the hub checks the run id
    if path == run.model:
        raise refused(run_id, f"{what} (it writes only its branch {run.branch or '(none)'})")
    raise refused(run_id, what)
