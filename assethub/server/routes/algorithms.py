"""The algorithm library (``/algorithms/<task type>/<name>``) and models' job settings
(``/assets/<path>/job-settings``)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.server.routes._common import ASSET, AssetP, Authenticator, StrictBody, json_response

# an algorithm's name is <task type>/<name>: two segments (``name@N`` selects a version)
ALGORITHM = "/algorithms/{group}/{name}"


class VersionFields(StrictBody):
    code_url: str | None = Field(None, max_length=2048, description="Git URL or path of the code")
    code_revision: str | None = Field(None, max_length=256)
    code_subpath: str | None = Field(None, max_length=1024)
    task_type: str | None = Field(None, max_length=64)
    params: dict[str, Any] | None = Field(None, description="declarations, as in assethub.yaml")
    train_command: str | None = Field(None, max_length=10_000)
    evaluate_command: str | None = Field(None, max_length=10_000)
    predict_command: str | None = Field(None, max_length=10_000)
    resources: dict[str, Any] | None = Field(None, description="{cpu: N, gpu: N}")
    description: str | None = Field(None, max_length=10_000)


class AlgorithmIn(VersionFields):
    name: str = Field(max_length=200, description="<task type>/<name>")
    public: bool = False
    preset: bool = Field(False, description="an admin's preset, visible to all")


class AlgorithmPatch(VersionFields):
    public: bool | None = None


class AlgorithmShareIn(StrictBody):
    subject_type: Literal["user", "group", "everyone"]
    subject_name: str = Field("", max_length=63)
    role: Literal["view", "edit"]


class JobSettingsIn(StrictBody):
    repo: str | None = Field(None, max_length=2048)
    revision: str | None = Field(None, max_length=256)
    subpath: str | None = Field(None, max_length=1024)
    train_command: str | None = Field(None, max_length=2048)
    evaluate_command: str | None = Field(None, max_length=2048)
    dataset: str | None = Field(None, max_length=600)
    params: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    algorithm: str | None = Field(None, max_length=220)
    unset: list[str] = Field(default_factory=list, max_length=20, description="fields to remove")


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.get("/algorithms")
    def list_algorithms(who: Who, task_type: Annotated[str | None, Query(max_length=64)] = None,
                        q: Annotated[str | None, Query(max_length=200)] = None) -> Any:
        return json_response(hub.list_algorithms(who, task_type=task_type, query=q))

    @r.post("/algorithms", status_code=201)
    def register_algorithm(who: Who, body: AlgorithmIn) -> Any:
        fields = body.model_dump(exclude_none=True, exclude={"name", "public", "preset"})
        return jsonable(hub.register_algorithm(who, body.name, public=body.public, preset=body.preset,
                                               **fields))

    @r.get(ALGORITHM)
    def get_algorithm(who: Who, group: str, name: str) -> Any:
        return jsonable(hub.get_algorithm(who, f"{group}/{name}"))

    @r.patch(ALGORITHM)
    def update_algorithm(who: Who, group: str, name: str, body: AlgorithmPatch) -> Any:
        fields = body.model_dump(exclude_none=True, exclude={"public"})
        return jsonable(hub.update_algorithm(who, f"{group}/{name}", public=body.public, **fields))

    @r.delete(ALGORITHM, status_code=204)
    def delete_algorithm(who: Who, group: str, name: str) -> Response:
        hub.delete_algorithm(who, f"{group}/{name}")
        return Response(status_code=204)

    @r.post(f"{ALGORITHM}/shares", status_code=201)
    def share_algorithm(who: Who, group: str, name: str, body: AlgorithmShareIn) -> Any:
        return jsonable(hub.share_algorithm(who, f"{group}/{name}", subject_type=body.subject_type,
                                            subject_name=body.subject_name, role=body.role))

    @r.delete(f"{ALGORITHM}/shares", status_code=204)
    def unshare_algorithm(who: Who, group: str, name: str,
                          subject_type: Literal["user", "group", "everyone"],
                          subject_name: Annotated[str, Query(max_length=63)] = "") -> Response:
        hub.unshare_algorithm(who, f"{group}/{name}", subject_type=subject_type, subject_name=subject_name)
        return Response(status_code=204)

    @r.get(f"{ASSET}/job-settings")
    def job_settings(who: Who, path: AssetP) -> Any:
        return jsonable(hub.job_settings(who, path))

    @r.put(f"{ASSET}/job-settings")
    def configure(who: Who, path: AssetP, body: JobSettingsIn) -> Any:
        fields = body.model_dump(exclude_none=True, exclude={"unset"})
        return jsonable(hub.configure(who, path, unset=body.unset, **fields))

    return r
