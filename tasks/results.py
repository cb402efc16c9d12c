"""Write a job's results back: the model commit with lineage, evaluations, merges, run records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.client import AddFile, DeleteFile
from assethub.errors import AssetHubError, JobFailedError
from assethub.lineage import MODEL_COMMIT, Lineage
from assethub.refs import AssetPath
from assethub.service import RunView
from tasks.env import NETWORK, client


@dataclass(frozen=True)
class Committed:
    model: str
    branch: str
    commit: str

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.commit}"


@task(name="open_run", **NETWORK)
def open_run(kind: str, model: str, *, branch: str = "", dataset: str = "", base: str = "",
             code_url: str = "", code_revision: str = "", code_subpath: str = "", command: str = "",
             params: dict[str, Any] | None = None, trigger: str = "person") -> RunView:
    """Register the job; the server refuses it here if the caller may not run it."""
    return client().create_run(model, kind=kind, branch=branch, dataset=dataset, base=base,
                               code_url=code_url, code_revision=code_revision,
                               code_subpath=code_subpath, command=command, params=params,
                               trigger=trigger)


def update_run(run_id: str, **changes: Any) -> None:
    """Record progress; never hides the job's own error behind a bookkeeping one."""
    try:
        client().update_run(run_id, **changes)
    except AssetHubError as e:
        get_run_logger().warning("could not update run %s: %s", run_id, e)


def model_card(model: str, lineage: Lineage, mlflow_uri: str) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(lineage.params.items())) or "| (none) | |"
    scores = "\n".join(f"| {k} | {v:.6g} |" for k, v in sorted(lineage.metrics.items())) or "| (none) | |"
    base = (f"- Base model: `{lineage.base_model}` (commit `{lineage.base_model_commit}`)\n"
            if lineage.base_model else "")
    sub = f" (subpath `{lineage.code_subpath}`)" if lineage.code_subpath else ""
    return f"""# {AssetPath.parse(model).name}

Trained by Asset Hub ({lineage.job}). Edit this card freely; the lineage below is also kept in
the commit's metadata (`assethub lineage {model}:<ref>`).

## Lineage
- Dataset: `{lineage.dataset}` (commit `{lineage.dataset_commit}`)
- Code: {lineage.code_url} at `{lineage.code_sha}`{sub}
- Command: `{lineage.command}`
{base}- MLflow run: `{lineage.mlflow_run_id}` ({mlflow_uri})
- Prefect flow run: `{lineage.prefect_flow_run_id}`

## Parameters
| name | value |
|---|---|
{rows}

## Test metrics
| metric | value |
|---|---|
{scores}

## Use
`model/` is an MLflow model: `mlflow.pyfunc.load_model("model")`, or serve it with
`assethub serve {model}:<ref>`.
"""


@task(name="commit_model", cache_policy=NO_CACHE)
def commit_model(model: str, branch: str, source: str, output_dir: str, lineage: Lineage,
                 message: str) -> Committed:
    """Commit the job's output as the new version on ``branch`` (created from ``source`` if new),
    atomically and with the lineage as commit metadata. The branch holds exactly the output:
    files of the previous version that the job did not write are removed in the same commit.
    """
    logger = get_run_logger()
    hub = client()
    out = Path(output_dir)
    if not (out / "model" / "MLmodel").is_file():
        raise JobFailedError("the job finished but wrote no MLflow model at $ASSETHUB_OUTPUT_DIR/model "
                             "(expected model/MLmodel); nothing was committed")
    created = False
    if branch not in {b.name for b in hub.list_branches(model)}:
        hub.create_branch(model, branch, source=source)
        created = True
    try:
        at = f"{model}:{branch}"
        head = hub.resolve(at)
        new = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        stale = [o.path for o in hub.list_objects(at) if o.path not in new]
        info = hub.create_commit(at, [AddFile(out, ""), *(DeleteFile(p) for p in stale)],
                                 message=message, metadata=lineage.to_metadata(), parent_commit=head)
    except BaseException:
        if created:
            try:
                hub.delete_branch(model, branch)  # a failed job leaves no new branch either
            except AssetHubError as e:
                logger.warning("could not remove branch %s after the failure: %s", branch, e)
        raise
    logger.info("committed %s:%s -> %s", model, branch, info.id[:12])
    return Committed(model, branch, info.id)


@task(name="record_evaluation", **NETWORK)
def record_evaluation(model_ref: str, dataset_ref: str, metrics: dict[str, float], run_id: str,
                      evaluation_id: str | None = None) -> str:
    """Store an evaluation in the catalog (by model commit and dataset commit); its id."""
    view = client().add_evaluation(model_ref, dataset=dataset_ref, metrics=metrics, run_id=run_id,
                                   evaluation_id=evaluation_id)
    get_run_logger().info("evaluation %s of %s: %s", view.id[:12], model_ref, json.dumps(view.metrics))
    return view.id


@task(name="commit_evaluation", cache_policy=NO_CACHE)
def commit_evaluation(model: str, branch: str, model_commit: str, report_dir: str,
                      metadata: dict[str, str], message: str) -> str:
    """Add an evaluation's report to the model's branch, pointing back at the model commit."""
    hub = client()
    info = hub.create_commit(f"{model}:{branch}", [AddFile(Path(report_dir), "eval")], message=message,
                             metadata={**metadata, MODEL_COMMIT: model_commit})
    return info.id


@task(name="merge_branch", cache_policy=NO_CACHE)
def merge_branch(model: str, source: str, into: str, model_commit: str, message: str) -> str:
    """Merge ``source`` into ``into``; the source's model wins where both changed files."""
    info = client().merge(model, source, into=into, strategy="source-wins", message=message,
                          metadata={MODEL_COMMIT: model_commit})
    return info.id
