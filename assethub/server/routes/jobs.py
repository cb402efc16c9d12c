"""Jobs: runs, evaluations and lineage."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from assethub import follows
from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.launcher import start_job
from assethub.server.routes._common import ASSET, AssetP, Authenticator, RefQ, StrictBody, json_response
from assethub.wire import ExportJob

_Kind = Literal["train", "continue_train", "evaluate", "merge", "retrain", "export"]
_State = Literal["pending", "running", "completed", "failed", "crashed"]


class RunIn(StrictBody):
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
    owner: str = Field("", max_length=63, description="the user the job acts for (admins only; "
                       "default: the caller): whose git credentials and code mirror it uses")
    deferred: bool = Field(False, description="the job runs on the worker: no job token is returned; "
                           "the service user claims it once (POST /runs/{id}/claim)")
    algorithm: str = Field("", max_length=220, description="an algorithm of the library (<name> or "
                           "<name>@<version>) giving the code, instead of code_url")


class RunPatch(StrictBody):
    state: _State | None = None
    branch: str | None = Field(None, max_length=256)
    base_commit: str | None = Field(None, max_length=64)
    dataset_commit: str | None = Field(None, max_length=64)
    code_revision: str | None = Field(None, max_length=256)
    code_sha: str | None = Field(None, max_length=64)
    command: str | None = Field(None, max_length=10_000)
    params: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None
    result_commit: str | None = Field(None, max_length=64)
    mlflow_run_id: str | None = Field(None, max_length=64)
    prefect_flow_run_id: str | None = Field(None, max_length=64)
    error: str | None = Field(None, max_length=20_000)


class EvaluationIn(StrictBody):
    ref: str = Field(max_length=200, description="the model version evaluated (resolved to a commit)")
    dataset: str = Field(max_length=600, description="dataset reference: <path>:<ref>")
    metrics: dict[str, float] = Field(max_length=1000)
    run_id: str = Field("", max_length=32, description="the run of this model that produced the "
                        "metrics (a job's token: its own run, whatever is given)")
    id: str | None = Field(None, min_length=32, max_length=32)


class ExportIn(StrictBody):
    ref: str = Field("main", max_length=256, description="the version to export (branch, tag or commit)")
    format: str = Field("onnx", max_length=16, description="the format to export to: onnx")
    quantize: str = Field("", max_length=32, description="dynamic-int8 (or int8): int8 weights "
                          "(onnxruntime's dynamic quantisation); empty or none: float32")
    branch: str = Field("", max_length=256, description="the branch to commit to "
                        "(default export-onnx[-int8])")
    dataset: str = Field("", max_length=600, description="the dataset version whose test split the check "
                         "scores (default: the version's training dataset)")
    max_abs_diff: float | None = Field(None, ge=0, le=1e9, description="largest output difference accepted")
    max_accuracy_drop: float | None = Field(None, ge=0, le=1, description="largest accuracy drop accepted")


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]

    @r.post("/runs", status_code=201)
    def create_run(who: Who, body: RunIn) -> Any:
        # the job token is shown here once (never for a deferred run: the worker claims it)
        run, token = hub.open_run(who, **body.model_dump())
        return {**jsonable(run), **({"job_token": token} if token else {})}

    @r.post("/follows/{follow_id}/runs", status_code=201)
    def open_follow_run(who: Who, follow_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                        trigger: Literal["person", "schedule", "event"] = "event") -> Any:
        # the service user starts a follow's retrain: registered as the follow's owner
        run, token = follows.start_follow_run(hub, who, follow_id, trigger=trigger)
        return {**jsonable(run), "job_token": token}

    @r.post("/runs/{run_id}/claim")
    def claim_run(who: Who, run_id: str) -> Any:
        # the service user takes a deferred run's job token, once
        run, token = hub.claim_run(who, run_id)
        return {**jsonable(run), "job_token": token}

    @r.get("/runs")
    def list_runs(who: Who, model: Annotated[str | None, Query(max_length=600)] = None,
                  state: _State | None = None, kind: _Kind | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        return json_response(hub.list_runs(who, model=model, state=state, kind=kind, limit=limit))

    @r.get("/runs/{run_id}")
    def get_run(who: Who, run_id: str) -> Any:
        return jsonable(hub.get_run(who, run_id))

    @r.patch("/runs/{run_id}")
    def update_run(who: Who, run_id: str, body: RunPatch) -> Any:
        return jsonable(hub.update_run(who, run_id, **body.model_dump(exclude_none=True)))

    @r.post("/runs/{run_id}/git-credential")
    def run_git_credential(who: Who, run_id: str) -> Any:
        # the only way a git credential leaves the server: to the running job's own caller
        secret = hub.run_git_credential(who, run_id)
        return None if secret is None else {"host": secret.host, "username": secret.username,
                                            "password": secret.password}

    @r.post(f"{ASSET}/evaluations", status_code=201)
    def add_evaluation(who: Who, path: AssetP, body: EvaluationIn) -> Any:
        # merges trust these: a job of the model, or an editor of it; `run` alone is refused
        return jsonable(hub.add_evaluation(who, path.at(body.ref), dataset=body.dataset,
                                           metrics=body.metrics, run_id=body.run_id,
                                           evaluation_id=body.id))

    @r.get(f"{ASSET}/evaluations")
    def list_evaluations(who: Who, path: AssetP,
                         commit: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        return json_response(hub.list_evaluations(who, path, commit=commit))

    @r.post(f"{ASSET}/export", status_code=202)
    def export(who: Who, path: AssetP, body: ExportIn) -> Any:
        # a job on the worker, registered as the caller: `edit` on the model, `run` on the dataset
        parameters = {**body.model_dump(exclude={"ref"}), "model": str(path.at(body.ref))}
        launched = start_job(hub, hub.job_launcher, who, "export", parameters)
        return jsonable(ExportJob(launched.run_id, launched.flow_run_id, launched.deployment,
                                  parameters["model"], hub.get_run(who, launched.run_id).branch))

    @r.get(f"{ASSET}/lineage")
    def lineage(who: Who, path: AssetP, ref: RefQ = "main") -> Any:
        return jsonable(hub.lineage(who, path.at(ref)))

    return r
