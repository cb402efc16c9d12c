"""The Asset Hub HTTP API (FastAPI): a thin layer over :class:`assethub.hub.Hub`.

Every request is authenticated from its ``Authorization: Bearer <token>`` header (none means
anonymous) and authorized by the Hub before any storage call. Errors come back as
``{"error": {"type", "message", ...fields}}`` with a 4xx status saying what was wrong (the
error protocol: :data:`assethub.errors.WIRE_ERRORS`, which the SDK reads too).
lakeFS credentials never leave this process.
"""


import logging
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assethub import errors
from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.refs import AssetPath, FolderPath
from assethub.server import routes_services
from assethub.wire import DatasetMeta

API = "/api/v1"
MAX_JSON_BYTES = 1 * 2**20
_ASSET = "/assets/{owner}/{kind}/{folder}/{name}"
_FOLDER = "/folders/{owner}/{kind}/{folder}"


def error_response(exc: Exception) -> JSONResponse:
    """The error protocol's answer for ``exc`` (status and body from :data:`errors.WIRE_ERRORS`)."""
    status, body = errors.to_wire(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_RANGE = re.compile(r"bytes=(\d+)-(\d*)|bytes=-(\d+)")


def _valid_range(header: str | None) -> str | None:
    """A single byte range we can pass on, or None: a malformed Range is ignored (RFC 9110)."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        return None
    return header.strip() if header else None


def _json(value: Any) -> JSONResponse:
    """A 200 response, built without FastAPI's generic encoder (lists get long)."""
    return JSONResponse(jsonable(value))


class _Guard:
    """Outermost ASGI layer: JSON bodies stay under MAX_JSON_BYTES even when sent chunked, and
    an unexpected error becomes a 500 in the usual error shape on a connection that stays
    usable (Starlette's own last-resort handler re-raises and drops the connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        streamed = scope.get("method") == "PUT" or path.endswith("/import")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if not streamed and length.isdigit() and int(length) > MAX_JSON_BYTES:
            await error_response(errors.PayloadTooLargeError(
                f"request body of {int(length)} bytes is over the {MAX_JSON_BYTES}-byte limit"
            ))(scope, receive, send)
            return
        started = False
        if not streamed:
            # Read a JSON body here, bounded, so a chunked one cannot slip past the limit;
            # the application then receives it from memory.
            chunks, seen, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                more = message.get("more_body", False)
                if seen > MAX_JSON_BYTES:
                    await error_response(errors.PayloadTooLargeError(
                        f"request body is over the {MAX_JSON_BYTES}-byte limit"))(scope, receive, send)
                    return
            body, replayed, upstream = b"".join(chunks), False, receive

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await upstream()  # the disconnect, whenever it comes
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            if not isinstance(exc, errors.AssetHubError):
                logging.getLogger("assethub.server").exception("unhandled error")
            await error_response(exc)(scope, receive, send)


# -- request bodies ---------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = {"extra": "forbid"}


class UserIn(_Body):
    name: str = Field(max_length=63)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=320)
    is_admin: bool = False


class UserPatch(_Body):
    is_admin: bool | None = None
    disabled: bool | None = None
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)


class GroupIn(_Body):
    name: str = Field(max_length=63)


class MemberIn(_Body):
    user: str = Field(max_length=63)


class TokenIn(_Body):
    name: str = Field("", max_length=100)
    expires_in_days: float | None = Field(None, gt=0, le=36500)


class FolderIn(_Body):
    path: str = Field(max_length=400, description="<owner>/<model|dataset>/<folder>")
    description: str = Field("", max_length=10_000)


class FolderPatch(_Body):
    name: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=10_000)


class ShareIn(_Body):
    subject_type: Literal["user", "group", "everyone"]
    subject_name: str = Field("", max_length=63)
    role: Literal["view", "run", "edit"]


class DatasetMetaIn(_Body):
    task_type: str | None = Field(None, max_length=64)
    format: str | None = Field(None, max_length=32)
    split_mode: Literal["ratio", "test_set"] | None = None
    split_ratio: float | None = Field(None, gt=0, lt=1)
    test_set_path: str | None = Field(None, max_length=1024)

    def meta(self) -> DatasetMeta:
        return DatasetMeta(self.task_type, self.format, self.split_mode, self.split_ratio,
                           self.test_set_path)


class AssetIn(_Body):
    path: str = Field(max_length=600, description="<owner>/<model|dataset>/<folder>/<name>")
    description: str = Field("", max_length=10_000)
    labels: list[str] = Field(default_factory=list, max_length=100)
    readme: str = Field("", max_length=200_000)
    dataset: DatasetMetaIn | None = None


class AssetPatch(_Body):
    name: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=10_000)
    labels: list[str] | None = Field(None, max_length=100)
    readme: str | None = Field(None, max_length=200_000)
    dataset: DatasetMetaIn | None = None
    preset: bool | None = None


class BranchIn(_Body):
    name: str = Field(max_length=128)
    source: str = Field("main", max_length=200)


class TagIn(_Body):
    name: str = Field(max_length=128)
    ref: str = Field("main", max_length=200)


class MergeIn(_Body):
    source: str = Field(max_length=200)
    into: str = Field("main", max_length=200)
    strategy: Literal["source-wins", "dest-wins"] | None = None
    message: str | None = Field(None, max_length=10_000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)


_Kind = Literal["train", "continue_train", "evaluate", "merge", "retrain"]
_State = Literal["pending", "running", "completed", "failed", "crashed"]


class RunIn(_Body):
    kind: _Kind
    model: str = Field(max_length=600, description="the model asset the job writes (or evaluates)")
    branch: str = Field("", max_length=256)
    dataset: str = Field("", max_length=600, description="dataset reference: <path>:<ref>")
    base: str = Field("", max_length=600, description="model reference to continue from / evaluate")
    code_url: str = Field("", max_length=2048)
    code_revision: str = Field("", max_length=256)
    code_subpath: str = Field("", max_length=1024)
    command: str = Field("", max_length=10_000)
    params: dict[str, Any] = Field(default_factory=dict)
    trigger: Literal["person", "schedule", "event"] = Field(
        "person", description="what started the job: a person, a follow's schedule, or new data (event)")


class RunPatch(_Body):
    state: _State | None = None
    branch: str | None = Field(None, max_length=256)
    base_commit: str | None = Field(None, max_length=64)
    dataset_commit: str | None = Field(None, max_length=64)
    code_sha: str | None = Field(None, max_length=64)
    command: str | None = Field(None, max_length=10_000)
    params: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None
    result_commit: str | None = Field(None, max_length=64)
    mlflow_run_id: str | None = Field(None, max_length=64)
    prefect_flow_run_id: str | None = Field(None, max_length=64)
    error: str | None = Field(None, max_length=20_000)


class EvaluationIn(_Body):
    ref: str = Field(max_length=200, description="the model version evaluated (resolved to a commit)")
    dataset: str = Field(max_length=600, description="dataset reference: <path>:<ref>")
    metrics: dict[str, float] = Field(max_length=1000)
    run_id: str = Field("", max_length=32)
    id: str | None = Field(None, min_length=32, max_length=32)


class UploadIn(_Body):
    branch: str = Field("main", max_length=128)
    parent_commit: str | None = Field(None, max_length=64)


class CommitIn(_Body):
    message: str = Field(max_length=10_000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)
    delete: list[str] = Field(default_factory=list, max_length=100_000)
    parent_commit: str | None = Field(None, max_length=64)


class BundleIn(_Body):
    ref: str = Field(max_length=200, description="branch, tag or commit id")
    paths: list[str] = Field(min_length=1, max_length=5000, description="files of that version")


class PublishIn(_Body):
    tag: str = Field(max_length=128)
    ref: str = Field("main", max_length=200)


# -- the application --------------------------------------------------------------------------
def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(
        title="Asset Hub",
        version="0.1.0",
        description="Versioned datasets and models: folders, sharing, history, merge.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
    )

    @app.exception_handler(errors.AssetHubError)
    async def _domain_error(_: Request, exc: errors.AssetHubError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(FileNotFoundError)
    async def _missing_file(_: Request, exc: FileNotFoundError) -> JSONResponse:
        return error_response(errors.NotFoundError("file", str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse({"error": {"type": "RequestValidationError",
                                       "message": f"invalid request: {problems}"}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse({"error": {"type": kind, "message": f"{exc.detail}: no such API route"
                                       if exc.status_code == 404 else str(exc.detail)}},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_middleware(_Guard)

    # Dependencies are coroutines so that FastAPI does not hop to a worker thread for each;
    # the token look-up is one indexed query.
    async def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and scheme.lower() != "bearer":
            raise errors.AuthenticationError("use 'Authorization: Bearer <token>'")
        return hub.authenticate(token.strip() or None)

    Who = Annotated[Principal, Depends(principal)]

    async def asset_path(owner: str, kind: str, folder: str, name: str) -> AssetPath:
        if kind not in ("model", "dataset"):
            raise errors.InvalidReferenceError(
                f"invalid asset type {kind!r}: must be 'model' or 'dataset'",
                part="asset type", value=kind)
        return AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")

    async def folder_path(owner: str, kind: str, folder: str) -> FolderPath:
        return FolderPath.parse(f"{owner}/{kind}/{folder}")

    AssetP = Annotated[AssetPath, Depends(asset_path)]
    FolderP = Annotated[FolderPath, Depends(folder_path)]
    RefQ = Annotated[str, Query(max_length=200, description="branch, tag or commit id")]

    # -- identity and admin ------------------------------------------------------------------
    @app.get(f"{API}/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(f"{API}/whoami")
    def whoami(who: Who) -> Any:
        return _json(hub.whoami(who))

    @app.get(f"{API}/users")
    def list_users(who: Who) -> Any:
        return _json(hub.list_users(who))

    @app.post(f"{API}/users", status_code=201)
    def create_user(who: Who, body: UserIn) -> Any:
        return jsonable(hub.create_user(who, body.name, display_name=body.display_name,
                                        email=body.email, is_admin=body.is_admin))

    @app.patch(f"{API}/users/{{user}}")
    def update_user(who: Who, user: str, body: UserPatch) -> Any:
        return jsonable(hub.update_user(who, user, is_admin=body.is_admin,
                                        disabled=body.disabled,
                                        display_name=body.display_name, email=body.email))

    @app.get(f"{API}/users/{{user}}/tokens")
    def list_tokens(who: Who, user: str) -> Any:
        return _json(hub.list_tokens(who, user))

    @app.post(f"{API}/users/{{user}}/tokens", status_code=201)
    def create_token(who: Who, user: str, body: TokenIn) -> Any:
        view, secret = hub.create_token(who, user, name=body.name,
                                        expires_in_days=body.expires_in_days)
        return {**jsonable(view), "token": secret}

    @app.delete(f"{API}/tokens/{{token_id}}", status_code=204)
    def revoke_token(who: Who, token_id: int) -> Response:
        hub.revoke_token(who, token_id)
        return Response(status_code=204)

    @app.get(f"{API}/groups")
    def list_groups(who: Who) -> Any:
        return hub.list_groups(who)

    @app.post(f"{API}/groups", status_code=201)
    def create_group(who: Who, body: GroupIn) -> Any:
        return {"name": hub.create_group(who, body.name)}

    @app.delete(f"{API}/groups/{{group}}", status_code=204)
    def delete_group(who: Who, group: str) -> Response:
        hub.delete_group(who, group)
        return Response(status_code=204)

    @app.post(f"{API}/groups/{{group}}/members", status_code=204)
    def add_member(who: Who, group: str, body: MemberIn) -> Response:
        hub.add_member(who, group, body.user)
        return Response(status_code=204)

    @app.delete(f"{API}/groups/{{group}}/members/{{user}}", status_code=204)
    def remove_member(who: Who, group: str, user: str) -> Response:
        hub.remove_member(who, group, user)
        return Response(status_code=204)

    @app.get(f"{API}/audit")
    def audit(who: Who, actor: str | None = None, action: str | None = None,
              target: str | None = None, since: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        return _json(hub.audit(who, actor=actor, action=action, target=target, since=since,
                                  limit=limit))

    # -- folders and shares ------------------------------------------------------------------
    @app.get(f"{API}/folders")
    def list_folders(who: Who, owner: str | None = None,
                     kind: Literal["model", "dataset"] | None = None) -> Any:
        return _json(hub.list_folders(who, owner=owner, kind=kind))

    @app.post(f"{API}/folders", status_code=201)
    def create_folder(who: Who, body: FolderIn) -> Any:
        return jsonable(hub.create_folder(who, body.path, description=body.description))

    @app.get(f"{API}{_FOLDER}")
    def get_folder(who: Who, path: FolderP) -> Any:
        return _json(hub.get_folder(who, path))

    @app.patch(f"{API}{_FOLDER}")
    def update_folder(who: Who, path: FolderP, body: FolderPatch) -> Any:
        return jsonable(hub.update_folder(who, path, new_name=body.name,
                                          description=body.description))

    @app.delete(f"{API}{_FOLDER}", status_code=204)
    def delete_folder(who: Who, path: FolderP) -> Response:
        hub.delete_folder(who, path)
        return Response(status_code=204)

    @app.get(f"{API}{_FOLDER}/shares")
    def list_shares(who: Who, path: FolderP) -> Any:
        return _json(hub.list_shares(who, path))

    @app.post(f"{API}{_FOLDER}/shares", status_code=201)
    def share(who: Who, path: FolderP, body: ShareIn) -> Any:
        return jsonable(hub.share(who, path, subject_type=body.subject_type,
                                  subject_name=body.subject_name, role=body.role))

    @app.delete(f"{API}{_FOLDER}/shares", status_code=204)
    def unshare(who: Who, path: FolderP,
                subject_type: Literal["user", "group", "everyone"],
                subject_name: Annotated[str, Query(max_length=63)] = "") -> Response:
        hub.unshare(who, path, subject_type=subject_type, subject_name=subject_name)
        return Response(status_code=204)

    # -- assets ------------------------------------------------------------------------------
    @app.get(f"{API}/assets")
    def search(who: Who, q: Annotated[str, Query(max_length=200)] = "",
               label: str | None = None, kind: Literal["model", "dataset"] | None = None,
               owner: str | None = None, folder: str | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        return _json(hub.search(who, query=q, label=label, kind=kind, owner=owner,
                                   folder=folder, limit=limit))

    @app.post(f"{API}/assets", status_code=201)
    def create_asset(who: Who, body: AssetIn) -> Any:
        return jsonable(hub.create_asset(
            who, body.path, description=body.description, labels=body.labels,
            readme=body.readme, dataset=body.dataset.meta() if body.dataset else None))

    @app.get(f"{API}{_ASSET}")
    def get_asset(who: Who, path: AssetP) -> Any:
        return _json(hub.get_asset(who, path))

    @app.patch(f"{API}{_ASSET}")
    def update_asset(who: Who, path: AssetP, body: AssetPatch) -> Any:
        return jsonable(hub.update_asset(
            who, path, new_name=body.name, description=body.description, labels=body.labels,
            readme=body.readme, dataset=body.dataset.meta() if body.dataset else None,
            preset=body.preset))

    @app.delete(f"{API}{_ASSET}", status_code=204)
    def delete_asset(who: Who, path: AssetP) -> Response:
        hub.delete_asset(who, path)
        return Response(status_code=204)

    @app.get(f"{API}{_ASSET}/role")
    def role(who: Who, path: AssetP) -> Any:
        return {"role": hub.role(who, path)}

    # -- versions ----------------------------------------------------------------------------
    @app.get(f"{API}{_ASSET}/commit")
    def get_commit(who: Who, path: AssetP, ref: RefQ = "main") -> Any:
        return _json(hub.get_commit(who, path.at(ref)))

    @app.get(f"{API}{_ASSET}/log")
    def log(who: Who, path: AssetP, ref: RefQ = "main",
            limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
            file: Annotated[str | None, Query(max_length=1024)] = None) -> Any:
        return _json(hub.log(who, path.at(ref), limit=limit, path=file))

    @app.get(f"{API}{_ASSET}/diff")
    def diff(who: Who, path: AssetP, left: RefQ, right: RefQ,
             prefix: Annotated[str, Query(max_length=1024)] = "") -> Any:
        return _json(hub.diff(who, path.at(left), path.at(right), prefix=prefix))

    @app.get(f"{API}{_ASSET}/branches")
    def list_branches(who: Who, path: AssetP) -> Any:
        return _json(hub.list_branches(who, path))

    @app.post(f"{API}{_ASSET}/branches", status_code=201)
    def create_branch(who: Who, path: AssetP, body: BranchIn) -> Any:
        return jsonable(hub.create_branch(who, path, body.name, source=body.source))

    @app.delete(f"{API}{_ASSET}/branches/{{branch}}", status_code=204)
    def delete_branch(who: Who, path: AssetP, branch: str) -> Response:
        hub.delete_branch(who, path, branch)
        return Response(status_code=204)

    @app.get(f"{API}{_ASSET}/tags")
    def list_tags(who: Who, path: AssetP) -> Any:
        return _json(hub.list_tags(who, path))

    @app.post(f"{API}{_ASSET}/tags", status_code=201)
    def create_tag(who: Who, path: AssetP, body: TagIn) -> Any:
        return jsonable(hub.create_tag(who, path, body.name, ref=body.ref))

    @app.delete(f"{API}{_ASSET}/tags/{{tag}}", status_code=204)
    def delete_tag(who: Who, path: AssetP, tag: str) -> Response:
        hub.delete_tag(who, path, tag)
        return Response(status_code=204)

    @app.post(f"{API}{_ASSET}/merge")
    def merge(who: Who, path: AssetP, body: MergeIn) -> Any:
        return jsonable(hub.merge(who, path, body.source, into=body.into, strategy=body.strategy,
                                  message=body.message, metadata=body.metadata))

    @app.post(f"{API}{_ASSET}/publish", status_code=201)
    def publish(who: Who, path: AssetP, body: PublishIn) -> Any:
        return jsonable(hub.publish(who, path, body.tag, ref=body.ref))

    @app.get(f"{API}{_ASSET}/objects")
    def list_objects(who: Who, path: AssetP, ref: RefQ = "main",
                     prefix: Annotated[str, Query(max_length=1024)] = "") -> Any:
        return _json(hub.list_objects(who, path.at(ref), prefix=prefix))

    @app.get(f"{API}{_ASSET}/stat")
    def stat(who: Who, path: AssetP, file: Annotated[str, Query(max_length=1024)],
             ref: RefQ = "main") -> Any:
        return _json(hub.stat(who, path.at(ref), file))

    @app.get(f"{API}{_ASSET}/files/{{file:path}}")
    async def download_file(who: Who, path: AssetP, file: str, ref: RefQ = "main",
                            range_: Annotated[str | None, Header(
                                alias="Range", max_length=200,
                                description="bytes=START-END, for parallel or resumed reads")] = None,
                            ) -> Response:
        obj = await hub.open_file(who, path.at(ref), file, byte_range=_valid_range(range_))
        headers = {"Content-Length": str(obj.length), "Accept-Ranges": "bytes",
                   "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.rsplit('/', 1)[-1])}"}
        if obj.etag:
            headers["ETag"] = obj.etag
        if obj.content_range:
            headers["Content-Range"] = obj.content_range
        return StreamingResponse(obj.chunks, status_code=obj.status, headers=headers,
                                 media_type="application/octet-stream")

    @app.post(f"{API}{_ASSET}/bundle")
    async def download_bundle(who: Who, path: AssetP, body: BundleIn) -> Response:
        frames = await hub.open_bundle(who, path.at(body.ref), body.paths)
        return StreamingResponse(frames, media_type="application/x-assethub-bundle")

    # -- uploads -----------------------------------------------------------------------------
    @app.post(f"{API}{_ASSET}/uploads", status_code=201)
    def start_upload(who: Who, path: AssetP, body: Annotated[UploadIn, Body()]) -> Any:
        return {"upload_id": hub.start_upload(who, path.at(body.branch),
                                              parent_commit=body.parent_commit)}

    @app.put(f"{API}/uploads/{{upload_id}}/files/{{file:path}}")
    async def put_file(who: Who, upload_id: str, file: str, request: Request,
                       x_asset_sha256: Annotated[str | None, Header(
                           pattern="^[0-9a-f]{64}$",
                           description="SHA-256 of the body (lowercase hex); checked")] = None) -> Any:
        info = await hub.put_upload_file(who, upload_id, file, request.stream(),
                                         sha256=x_asset_sha256)
        return {"path": info.path, "size": info.size, "sha256": info.sha256}

    @app.post(f"{API}/uploads/{{upload_id}}/commit")
    def commit_upload(who: Who, upload_id: str, body: CommitIn) -> Any:
        return jsonable(hub.commit_upload(who, upload_id, message=body.message,
                                          metadata=body.metadata, delete=body.delete,
                                          parent_commit=body.parent_commit))

    @app.delete(f"{API}/uploads/{{upload_id}}", status_code=204)
    def abort_upload(who: Who, upload_id: str) -> Response:
        hub.abort_upload(who, upload_id)
        return Response(status_code=204)

    @app.post(f"{API}{_ASSET}/import", status_code=201)
    async def import_archive(who: Who, path: AssetP, request: Request,
                             message: Annotated[str, Query(max_length=10_000)] = "") -> Any:
        hub.check_import(who, path)  # before reading a possibly large body
        fd, name = tempfile.mkstemp(suffix=".zip", dir=hub.tmp_dir)
        size, limit = 0, hub.limits.max_archive_bytes
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise errors.PayloadTooLargeError(
                            f"archive is larger than the server's limit of {limit} bytes")
                    out.write(chunk)
            from starlette.concurrency import run_in_threadpool

            commit, summary = await run_in_threadpool(
                hub.import_archive, who, path, Path(name), message=message)
            return {"commit": jsonable(commit), "summary": jsonable(summary)}
        finally:
            Path(name).unlink(missing_ok=True)

    # -- jobs: runs, evaluations, lineage ----------------------------------------------------
    @app.post(f"{API}/runs", status_code=201)
    def create_run(who: Who, body: RunIn) -> Any:
        return jsonable(hub.create_run(who, **body.model_dump()))

    @app.get(f"{API}/runs")
    def list_runs(who: Who, model: Annotated[str | None, Query(max_length=600)] = None,
                  state: _State | None = None, kind: _Kind | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        return _json(hub.list_runs(who, model=model, state=state, kind=kind, limit=limit))

    @app.get(f"{API}/runs/{{run_id}}")
    def get_run(who: Who, run_id: str) -> Any:
        return jsonable(hub.get_run(who, run_id))

    @app.patch(f"{API}/runs/{{run_id}}")
    def update_run(who: Who, run_id: str, body: RunPatch) -> Any:
        return jsonable(hub.update_run(who, run_id, **body.model_dump(exclude_none=True)))

    @app.post(f"{API}{_ASSET}/evaluations", status_code=201)
    def add_evaluation(who: Who, path: AssetP, body: EvaluationIn) -> Any:
        return jsonable(hub.add_evaluation(who, path.at(body.ref), dataset=body.dataset,
                                           metrics=body.metrics, run_id=body.run_id,
                                           evaluation_id=body.id))

    @app.get(f"{API}{_ASSET}/evaluations")
    def list_evaluations(who: Who, path: AssetP,
                         commit: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        return _json(hub.list_evaluations(who, path, commit=commit))

    @app.get(f"{API}{_ASSET}/lineage")
    def lineage(who: Who, path: AssetP, ref: RefQ = "main") -> Any:
        return jsonable(hub.lineage(who, path.at(ref)))

    app.include_router(routes_services.router(hub, principal))  # /services: model serving
    from assethub.server.follows_api import follow_routes

    app.include_router(follow_routes(hub, principal))  # /follows and the lakeFS hook
    return app

