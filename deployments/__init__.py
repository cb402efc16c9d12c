"""Every Prefect deployment and work pool of Asset Hub, declared in one place.

    python -m deployments            # register pools and deployments on $PREFECT_API_URL

Work pools:
  - ``local``: a process worker on this machine (``assethub up`` starts one);
  - ``gpu``: Kubernetes jobs that request ``nvidia.com/gpu``; node selector, tolerations, image,
    Asset Hub / MLflow URLs are template variables, the API token comes from a Kubernetes Secret.
    Its base job template is built here, so creating the pool needs no prefect-kubernetes.

Deployments (``<flow>/<name>``): train, continue-train, evaluate, merge, retrain, reproduce and
publish-service on ``local`` (every step the product names can be started from the Prefect UI),
and train / continue-train on ``gpu`` too. Parameters and their descriptions come from the
flows' signatures and docstrings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCAL_POOL = "local"
GPU_POOL = "gpu"
IMAGE_WORKDIR = "/opt/assethub"  # where the project lives in the job image


@dataclass(frozen=True)
class Spec:
    entrypoint: str  # <file>:<flow function>, relative to the project root
    name: str  # the deployment's name; the flow's name comes first in "<flow>/<name>"
    pool: str
    description: str
    tags: tuple[str, ...] = ()


DEPLOYMENTS: tuple[Spec, ...] = (
    Spec("flows/train.py:train", "local", LOCAL_POOL, "Train a new model version on this machine.",
         ("training",)),
    Spec("flows/continue_train.py:continue_train", "local", LOCAL_POOL,
         "Continue training a model version on this machine.", ("training",)),
    Spec("flows/evaluate.py:evaluate", "local", LOCAL_POOL, "Evaluate a model version on a dataset.",
         ("evaluation",)),
    Spec("flows/merge.py:merge", "local", LOCAL_POOL, "Merge a model branch if its metric is better.",
         ("merge",)),
    Spec("flows/retrain.py:retrain", "local", LOCAL_POOL,
         "Retrain a model when its dataset's main moved; merge only if better. Follows add their "
         "own schedules here.", ("retrain",)),
    Spec("flows/reproduce.py:reproduce", "local", LOCAL_POOL,
         "Train a model version again from its lineage and compare the metrics.", ("training",)),
    Spec("flows/publish_service.py:publish_service", "local", LOCAL_POOL,
         "Serve a model version over HTTP (MLflow's scoring server), smoke-tested.", ("serving",)),
    Spec("flows/train.py:train", "gpu", GPU_POOL, "Train a new model version on a Kubernetes GPU node.",
         ("training", "gpu")),
    Spec("flows/continue_train.py:continue_train", "gpu", GPU_POOL,
         "Continue training on a Kubernetes GPU node.", ("training", "gpu")),
)

# Deployment names as run_deployment wants them
TRAIN = "train/local"
CONTINUE_TRAIN = "continue-train/local"
EVALUATE = "evaluate/local"
MERGE = "merge/local"
RETRAIN = "retrain/local"
REPRODUCE = "reproduce/local"
PUBLISH_SERVICE = "publish-service/local"
BY_JOB = {"train": TRAIN, "continue_train": CONTINUE_TRAIN, "evaluate": EVALUATE, "merge": MERGE,
          "retrain": RETRAIN, "reproduce": REPRODUCE, "publish_service": PUBLISH_SERVICE}


def _var(name: str) -> str:
    return "{{ " + name + " }}"


def gpu_job_template() -> dict[str, Any]:
    """The ``gpu`` pool's base job template: a Kubernetes Job with one GPU container."""
    container: dict[str, Any] = {
        "name": "prefect-job",
        "image": _var("image"),
        "imagePullPolicy": _var("image_pull_policy"),
        "args": _var("command"),
        "workingDir": IMAGE_WORKDIR,
        "env": [
            {"name": "ASSETHUB_URL", "value": _var("assethub_url")},
            {"name": "MLFLOW_TRACKING_URI", "value": _var("mlflow_tracking_uri")},
            # the jobs' DEVICE: this pool's pods run on GPU nodes (tasks.entrypoint.job_device)
            {"name": "ASSETHUB_DEVICE", "value": "cuda"},
            # never inline: the token is read from a Secret in the job's namespace
            {"name": "ASSETHUB_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": _var("token_secret_name"), "key": _var("token_secret_key")}}},
        ],
        "resources": {
            "limits": {"nvidia.com/gpu": _var("gpu_count"), "memory": _var("memory")},
            "requests": {"nvidia.com/gpu": _var("gpu_count"), "cpu": _var("cpu"), "memory": _var("memory")},
        },
    }
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": _var("name") + "-", "labels": _var("labels"),
                     "namespace": _var("namespace")},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": _var("finished_job_ttl"),
            "template": {"spec": {
                "restartPolicy": "Never",
                "serviceAccountName": _var("service_account_name"),
                "nodeSelector": _var("node_selector"),
                "tolerations": _var("tolerations"),
                "containers": [container],
            }},
        },
    }
    variables: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "title": "Name", "description": "Name given to the job."},
            "env": {"type": "object", "title": "Environment variables",
                    "additionalProperties": {"type": "string"}},
            "labels": {"type": "object", "title": "Labels", "additionalProperties": {"type": "string"}},
            "command": {"type": "string", "title": "Command"},
            "namespace": {"type": "string", "default": "assethub", "title": "Namespace"},
            "image": {"type": "string", "default": "assethub/jobs:latest", "title": "Image",
                      "description": f"Image holding the project at {IMAGE_WORKDIR} and its environment."},
            "image_pull_policy": {"type": "string", "enum": ["IfNotPresent", "Always", "Never"],
                                  "default": "IfNotPresent", "title": "Image pull policy"},
            "service_account_name": {"type": "string", "default": "default", "title": "Service account"},
            "finished_job_ttl": {"type": "integer", "default": 3600, "title": "Finished job TTL (s)"},
            "gpu_count": {"type": "integer", "default": 1, "minimum": 1, "title": "GPUs per job"},
            "cpu": {"type": "string", "default": "4", "title": "CPU request"},
            "memory": {"type": "string", "default": "16Gi", "title": "Memory request and limit"},
            "node_selector": {"type": "object", "title": "Node selector",
                              "additionalProperties": {"type": "string"},
                              "default": {"nvidia.com/gpu.present": "true"}},
            "tolerations": {"type": "array", "title": "Tolerations", "items": {"type": "object"},
                            "default": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                         "effect": "NoSchedule"}]},
            "assethub_url": {"type": "string", "title": "Asset Hub URL",
                             "default": "http://assethub.assethub.svc:8780"},
            "mlflow_tracking_uri": {"type": "string", "title": "MLflow tracking URI",
                                    "default": "http://mlflow.assethub.svc:5000"},
            "token_secret_name": {"type": "string", "default": "assethub-jobs",
                                  "title": "Secret holding the Asset Hub API token"},
            "token_secret_key": {"type": "string", "default": "token", "title": "Key in that Secret"},
            "stream_output": {"type": "boolean", "default": True, "title": "Stream output"},
            "job_watch_timeout_seconds": {"type": ["integer", "null"], "default": None},
            "pod_watch_timeout_seconds": {"type": "integer", "default": 300},
            "cluster_config": {"type": ["object", "null"], "default": None},
        },
    }
    return {
        "job_configuration": {
            "command": _var("command"), "env": _var("env"), "labels": _var("labels"),
            "name": _var("name"), "namespace": _var("namespace"),
            "job_manifest": manifest,
            "cluster_config": _var("cluster_config"),
            "job_watch_timeout_seconds": _var("job_watch_timeout_seconds"),
            "pod_watch_timeout_seconds": _var("pod_watch_timeout_seconds"),
            "stream_output": _var("stream_output"),
        },
        "variables": variables,
    }


def local_job_template() -> dict[str, Any]:
    """The process worker's default template (from Prefect itself)."""
    from prefect.workers.process import ProcessWorker

    return copy.deepcopy(ProcessWorker.get_default_base_job_template())


def ensure_pools() -> list[str]:
    """Create or update the work pools; their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    pools = [(LOCAL_POOL, "process", local_job_template(), "Jobs on this machine (a process worker)."),
             (GPU_POOL, "kubernetes", gpu_job_template(),
              "Kubernetes jobs on GPU nodes (run a kubernetes worker on this pool).")]
    with get_client(sync_client=True) as c:
        for name, kind, template, description in pools:
            try:
                c.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template,
                                                  description=description))
            except ObjectAlreadyExists:
                c.update_work_pool(name, WorkPoolUpdate(base_job_template=template,
                                                        description=description))
    return [p[0] for p in pools]


def deploy_all() -> list[str]:
    """Register the pools and every deployment; the deployments' full names.

    Schedules that follows added to the retrain deployment are kept."""
    from prefect import Flow
    from prefect.client.orchestration import get_client

    ensure_pools()
    names = []
    for spec in DEPLOYMENTS:
        flow = Flow.from_source(str(ROOT), spec.entrypoint)
        full = f"{flow.name}/{spec.name}"
        kept = []
        with get_client(sync_client=True) as c:
            try:
                kept = c.read_deployment_schedules(c.read_deployment_by_name(full).id)
            except Exception:  # not deployed yet
                kept = []
        if spec.pool == GPU_POOL:
            # the job image holds the project: the run starts in its directory, not ours
            d = flow.to_deployment(name=spec.name, work_pool_name=spec.pool, description=spec.description,
                                   tags=list(spec.tags))
            d.storage = None
            d._path = IMAGE_WORKDIR
            d.entrypoint = spec.entrypoint
            d.apply()
        else:
            flow.deploy(name=spec.name, work_pool_name=spec.pool, build=False, push=False,
                        description=spec.description, tags=list(spec.tags), print_next_steps=False,
                        ignore_warnings=True)
        if kept:
            _restore_schedules(full, kept)
        names.append(full)
    return names


def _restore_schedules(deployment: str, kept: list[Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    with get_client(sync_client=True) as c:
        d = c.read_deployment_by_name(deployment)
        have = {s.slug for s in c.read_deployment_schedules(d.id)}
        missing = [DeploymentScheduleCreate(schedule=s.schedule, active=s.active, parameters=s.parameters,
                                            slug=s.slug) for s in kept if s.slug and s.slug not in have]
        if missing:
            c.create_deployment_schedules(d.id, missing)
