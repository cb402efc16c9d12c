"""Assets and their versions: records and search, refs and history, branches, tags, merge,
publish, objects, files and bundles (streamed), uploads (streamed, committed atomically) and
dataset import."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.hub.versions import BUNDLE_UPLOAD_MAX_BYTES, LinkedFile
from assethub.server.routes._common import (
    ASSET,
    AssetP,
    Authenticator,
    RefQ,
    StreamedBody,
    StrictBody,
    json_response,
)
from assethub.storage import SMALL_READ
from assethub.wire import DatasetMeta, PresignedPage

UPLOAD_FILE = "/uploads/{upload_id}/files/{file:path}"
UPLOAD_BUNDLE = "/uploads/{upload_id}/bundle"
IMPORT = f"{ASSET}/import"


def streamed_bodies(hub: Hub) -> list[StreamedBody]:
    """The routes here that stream their body, each read only once the caller may send it."""
    return [("PUT", UPLOAD_FILE, lambda: hub.limits.max_upload_bytes),  # the caller's upload
            ("POST", IMPORT, lambda: hub.limits.max_archive_bytes),  # after check_import
            ("PUT", UPLOAD_BUNDLE, lambda: BUNDLE_UPLOAD_MAX_BYTES)]  # many small files


_RANGE = re.compile(r"bytes=(\d+)-(\d*)|bytes=-(\d+)")


def _valid_range(header: str | None) -> str | None:
    """A single byte range we can pass on, or None: a malformed Range is ignored (RFC 9110)."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        return None
    return header.strip() if header else None


class DatasetMetaIn(StrictBody):
    task_type: str | None = Field(None, max_length=64)
    format: str | None = Field(None, max_length=32)
    split_mode: Literal["ratio", "test_set"] | None = None
    split_ratio: float | None = Field(None, gt=0, lt=1)
    test_set_path: str | None = Field(None, max_length=1024)

    def meta(self) -> DatasetMeta:
        return DatasetMeta(self.task_type, self.format, self.split_mode, self.split_ratio,
                           self.test_set_path)


class AssetIn(StrictBody):
    path: str = Field(max_length=600, description="<owner>/<model|dataset>/<folder>/<name>")
    description: str = Field("", max_length=10_000)
    labels: list[str] = Field(default_factory=list, max_length=100)
    readme: str = Field("", max_length=200_000)
    dataset: DatasetMetaIn | None = None


class AssetPatch(StrictBody):
    name: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=10_000)
    labels: list[str] | None = Field(None, max_length=100)
    readme: str | None = Field(None, max_length=200_000)
    dataset: DatasetMetaIn | None = None
    preset: bool | None = None


class BranchIn(StrictBody):
    name: str = Field(max_length=128)
    source: str = Field("main", max_length=200)


class TagIn(StrictBody):
    name: str = Field(max_length=128)
    ref: str = Field("main", max_length=200)


class MergeIn(StrictBody):
    source: str = Field(max_length=200)
    into: str = Field("main", max_length=200)
    strategy: Literal["source-wins", "dest-wins"] | None = None
    message: str | None = Field(None, max_length=10_000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)


class UploadIn(StrictBody):
    branch: str = Field("main", max_length=128)
    parent_commit: str | None = Field(None, max_length=64)
    base: str | None = Field(None, max_length=200, description=(
        "a dataset's upload: start from this published version or commit, or 'empty' "
        "(default: the branch)"))


class CommitIn(StrictBody):
    message: str = Field(max_length=10_000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)
    delete: list[str] = Field(default_factory=list, max_length=100_000)
    parent_commit: str | None = Field(None, max_length=64)


class BundleIn(StrictBody):
    ref: str = Field(max_length=200, description="branch, tag or commit id")
    paths: list[str] = Field(min_length=1, max_length=5000, description="files of that version")


class PublishIn(StrictBody):
    tag: str = Field(max_length=128)
    ref: str = Field("main", max_length=200)


class PresignIn(StrictBody):
    paths: list[str] = Field(min_length=1, max_length=1000, description="files of the upload")


class LinkedFileIn(StrictBody):
    path: str = Field(max_length=1024)
    physical_address: str = Field(max_length=2048, description="as the presign call returned it")
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the bytes PUT")
    etag: str = Field(max_length=200, description="the ETag the object store answered the PUT with")


class LinkIn(StrictBody):
    files: list[LinkedFileIn] = Field(min_length=1, max_length=1000)


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/assets")
    def search(who: Who, q: Annotated[str, Query(max_length=200)] = "",
               label: str | None = None, kind: Literal["model", "dataset"] | None = None,
               owner: str | None = None, folder: str | None = None,
               task_type: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        return json_response(hub.search(who, query=q, label=label, kind=kind, owner=owner,
                                           folder=folder, task_type=task_type, limit=limit))

    @r.post("/assets", status_code=201)
    def create_asset(who: Who, body: AssetIn) -> Any:
        return jsonable(hub.create_asset(
            who, body.path, description=body.description, labels=body.labels,
            readme=body.readme, dataset=body.dataset.meta() if body.dataset else None))

    @r.get(ASSET)
    def get_asset(who: Who, path: AssetP) -> Any:
        return json_response(hub.get_asset(who, path))

    @r.patch(ASSET)
    def update_asset(who: Who, path: AssetP, body: AssetPatch) -> Any:
        return jsonable(hub.update_asset(
            who, path, new_name=body.name, description=body.description, labels=body.labels,
            readme=body.readme, dataset=body.dataset.meta() if body.dataset else None,
            preset=body.preset))

    @r.delete(ASSET, status_code=204)
    def delete_asset(who: Who, path: AssetP) -> Response:
        hub.delete_asset(who, path)
        return Response(status_code=204)

    @r.get(f"{ASSET}/role")
    def role(who: Who, path: AssetP) -> Any:
        return {"role": hub.role(who, path)}

    # -- versions ----------------------------------------------------------------------------
    @r.get(f"{ASSET}/commit")
    def get_commit(who: Who, path: AssetP, ref: RefQ = "main") -> Any:
        return json_response(hub.get_commit(who, path.at(ref)))

    @r.get(f"{ASSET}/log")
    def log(who: Who, path: AssetP, ref: RefQ = "main",
            limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
            file: Annotated[str | None, Query(max_length=1024)] = None) -> Any:
        return json_response(hub.log(who, path.at(ref), limit=limit, path=file))

    @r.get(f"{ASSET}/diff")
    def diff(who: Who, path: AssetP, left: RefQ, right: RefQ,
             prefix: Annotated[str, Query(max_length=1024)] = "") -> Any:
        return json_response(hub.diff(who, path.at(left), path.at(right), prefix=prefix))

    @r.get(f"{ASSET}/branches")
    def list_branches(who: Who, path: AssetP) -> Any:
        return json_response(hub.list_branches(who, path))

    @r.post(f"{ASSET}/branches", status_code=201)
    def create_branch(who: Who, path: AssetP, body: BranchIn) -> Any:
        return jsonable(hub.create_branch(who, path, body.name, source=body.source))

    @r.delete(f"{ASSET}/branches/{{branch}}", status_code=204)
    def delete_branch(who: Who, path: AssetP, branch: str) -> Response:
        hub.delete_branch(who, path, branch)
        return Response(status_code=204)

    @r.get(f"{ASSET}/tags")
    def list_tags(who: Who, path: AssetP) -> Any:
        return json_response(hub.list_tags(who, path))

    @r.post(f"{ASSET}/tags", status_code=201)
    def create_tag(who: Who, path: AssetP, body: TagIn) -> Any:
        return jsonable(hub.create_tag(who, path, body.name, ref=body.ref))

    @r.delete(f"{ASSET}/tags/{{tag}}", status_code=204)
    def delete_tag(who: Who, path: AssetP, tag: str) -> Response:
        hub.delete_tag(who, path, tag)
        return Response(status_code=204)

    @r.post(f"{ASSET}/merge")
    def merge(who: Who, path: AssetP, body: MergeIn) -> Any:
        return jsonable(hub.merge(who, path, body.source, into=body.into, strategy=body.strategy,
                                  message=body.message, metadata=body.metadata))

    @r.post(f"{ASSET}/publish", status_code=201)
    def publish(who: Who, path: AssetP, body: PublishIn) -> Any:
        return jsonable(hub.publish(who, path, body.tag, ref=body.ref))

    @r.get(f"{ASSET}/objects")
    def list_objects(who: Who, path: AssetP, ref: RefQ = "main",
                     prefix: Annotated[str, Query(max_length=1024)] = "") -> Any:
        return json_response(hub.list_objects(who, path.at(ref), prefix=prefix))

    @r.get(f"{ASSET}/stat")
    def stat(who: Who, path: AssetP, file: Annotated[str, Query(max_length=1024)],
             ref: RefQ = "main") -> Any:
        return json_response(hub.stat(who, path.at(ref), file))

    @r.get(f"{ASSET}/files/{{file:path}}")
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
        if obj.length <= SMALL_READ:  # in memory already (or a small local file): one message
            body = b"".join([chunk async for chunk in obj.chunks])
            if len(body) == obj.length:
                return Response(body, status_code=obj.status, headers=headers,
                                media_type="application/octet-stream")
            raise errors.StorageUnavailableError(
                f"read {len(body)} of the {obj.length} bytes of {file} from lakeFS")
        return StreamingResponse(obj.chunks, status_code=obj.status, headers=headers,
                                 media_type="application/octet-stream")

    @r.post(f"{ASSET}/bundle")
    async def download_bundle(who: Who, path: AssetP, body: BundleIn) -> Response:
        frames = await hub.open_bundle(who, path.at(body.ref), body.paths)
        return StreamingResponse(frames, media_type="application/x-assethub-bundle")

    # -- uploads -----------------------------------------------------------------------------
    @r.post(f"{ASSET}/uploads", status_code=201)
    def start_upload(who: Who, path: AssetP, body: Annotated[UploadIn, Body()]) -> Any:
        return {"upload_id": hub.start_upload(who, path.at(body.branch),
                                              parent_commit=body.parent_commit, base=body.base)}

    @r.put(UPLOAD_FILE)  # a streamed body: see streamed_bodies
    async def put_file(who: Who, upload_id: str, file: str, request: Request,
                       x_asset_sha256: Annotated[str | None, Header(
                           pattern="^[0-9a-f]{64}$",
                           description="SHA-256 of the body (lowercase hex); checked")] = None) -> Any:
        info = await hub.put_upload_file(who, upload_id, file, request.stream(),
                                         sha256=x_asset_sha256)
        return {"path": info.path, "size": info.size, "sha256": info.sha256}

    @r.post("/uploads/{upload_id}/commit")
    def commit_upload(who: Who, upload_id: str, body: CommitIn) -> Any:
        return jsonable(hub.commit_upload(who, upload_id, message=body.message,
                                          metadata=body.metadata, delete=body.delete,
                                          parent_commit=body.parent_commit))

    @r.delete("/uploads/{upload_id}", status_code=204)
    def abort_upload(who: Who, upload_id: str) -> Response:
        hub.abort_upload(who, upload_id)
        return Response(status_code=204)

    # -- bundle upload: many small files of an upload in one request -------------------------
    @r.put(UPLOAD_BUNDLE)  # a streamed body: see streamed_bodies
    async def put_bundle(who: Who, upload_id: str, request: Request) -> Any:
        infos = await hub.put_upload_bundle(who, upload_id, request.stream())
        return {"files": [{"path": i.path, "size": i.size, "sha256": i.sha256} for i in infos]}

    @r.post(IMPORT, status_code=201)  # a streamed body: see streamed_bodies
    async def import_archive(
            who: Who, path: AssetP, request: Request,
            message: Annotated[str, Query(max_length=10_000)] = "",
            base: Annotated[str | None, Query(
                alias="from", max_length=200,
                description="start from this published version or commit, or 'empty' "
                            "(default: main)")] = None,
            mode: Annotated[Literal["add", "replace"], Query(
                description="add: on top of the start; replace: only the archive's files")] = "add",
            split: Annotated[Literal["test"] | None, Query(
                description="test: a separate test set, into the test split")] = None) -> Any:
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
            commit, summary = await run_in_threadpool(
                hub.import_archive, who, path, Path(name), message=message, base=base, mode=mode,
                split=split)
            return {"commit": jsonable(commit), "summary": jsonable(summary)}
        finally:
            Path(name).unlink(missing_ok=True)

    # -- direct transfer: presigned URLs, the bytes go between client and object store ------
    @r.get("/capabilities")
    def capabilities() -> Any:
        """What this server offers beyond the basics: ``presign`` when lakeFS's blockstore
        hands out presigned URLs (the client then moves file bytes straight to and from the
        object store)."""
        return {"presign": hub.versions.presign_supported()}

    @r.get(f"{ASSET}/presigned")
    def presigned_objects(who: Who, path: AssetP, ref: RefQ = "main",
                          prefix: Annotated[str, Query(max_length=1024)] = "",
                          after: Annotated[str, Query(max_length=1024)] = "",
                          limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> Any:
        page = hub.versions.presigned_objects(who, path.at(ref), prefix=prefix, after=after,
                                              limit=limit)
        return jsonable(PresignedPage(page.commit_id, page.objects, page.next_after))

    @r.post("/uploads/{upload_id}/presign")
    def presign_upload(who: Who, upload_id: str, body: PresignIn) -> Any:
        return {"files": jsonable(hub.versions.presign_upload_files(who, upload_id, body.paths))}

    @r.post("/uploads/{upload_id}/link")
    def link_upload(who: Who, upload_id: str, body: LinkIn) -> Any:
        files = [LinkedFile(f.path, f.physical_address, f.size, f.sha256, f.etag)
                 for f in body.files]
        return {"files": jsonable(hub.versions.link_upload_files(who, upload_id, files))}

    return r
