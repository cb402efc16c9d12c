"""Every Prefect deployment and work pool of Asset Hub, declared in one place.

    python -m deployments            # register pools and deployments on $PREFECT_API_URL

Work pools:
  - ``local``: a process worker on this machine (``assethub up`` starts one);
  - ``gpu``: Kubernetes jobs that request ``nvidia.com/gpu``; node selector, tolerations, image,
    Asset Hub / MLflow URLs are template variables, the API token comes from a Kubernetes Secret.
    Its base job template is built here, so creating the pool needs no prefect-kubernetes.

Deployments (``<flow>/<name>``): train, continue-train, evaluate, merge, retrain, reproduce,
publish-service and export on ``local`` (every step the product names can be started from the Prefect UI),
and train / continue-train on ``gpu`` too. Parameters and their descriptions come from the
flows' signatures and docstrings.

One more ``train`` deployment per preset algorithm (``train/<name>``, e.g. ``train/sklearn-forest``,
on ``local``): its form shows the preset's declared params as typed fields (numbers with their
bounds, a list for a choice, a switch for a bool, each with its default and help), and starts
with the preset's code filled in (the ``algorithm`` when the flow takes one, else this project's
repository, commit and the preset's directory).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assethub.presets import PRESETS, Preset

if TYPE_CHECKING:
    from assethub.params import Param

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
    Spec("flows/export.py:export", "local", LOCAL_POOL,
         "Export a model version to ONNX (optionally int8), checked against the original.", ("export",)),
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
EXPORT = "export/local"
BY_JOB = {"train": TRAIN, "continue_train": CONTINUE_TRAIN, "evaluate": EVALUATE, "merge": MERGE,
          "retrain": RETRAIN, "reproduce": REPRODUCE, "publish_service": PUBLISH_SERVICE, "export": EXPORT}


def preset_deployment(preset: Preset) -> str:
    """The name of the ``train`` deployment of ``preset``: ``train/<the name after the task type>``."""
    return f"train/{preset_slug(preset)}"


def preset_slug(preset: Preset) -> str:
    return preset.name.split("/", 1)[-1]


_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def param_schema(param: Param) -> dict[str, Any]:
    """One declared parameter as a JSON-schema property (what Prefect's form renders a field from)."""
    out: dict[str, Any] = {"title": param.name, "description": param.help or param.describe()}
    if param.type == "choice":
        out["enum"] = list(param.choices)
        kinds = {_JSON_TYPES.get(type(c).__name__) for c in param.choices}
        if len(kinds) == 1 and None not in kinds:
            out["type"] = kinds.pop()
    else:
        out["type"] = _JSON_TYPES[param.type]
    if param.min is not None:
        out["minimum"] = param.min
    if param.max is not None:
        out["maximum"] = param.max
    if param.default is not None:
        out["default"] = param.default
    return out


def params_schema(declared: dict[str, Param], description: str = "") -> dict[str, Any]:
    """The ``params`` argument as a JSON-schema object of the declared parameters (no others)."""
    schema: dict[str, Any] = {
        "title": "params", "type": "object",
        "description": description or "the training code's parameters",
        "properties": {name: param_schema(p) for name, p in declared.items()},
        "additionalProperties": False,
        "default": {name: p.default for name, p in declared.items() if p.default is not None},
    }
    required = [name for name, p in declared.items() if p.required]
    if required:
        schema["required"] = required
    return schema


def preset_params(preset: Preset) -> dict[str, Param]:
    """The params ``preset`` declares in its ``assethub.yaml``."""
    import yaml

    from assethub.params import declare

    spec = yaml.safe_load((preset.dir / "assethub.yaml").read_text()) or {}
    return declare(spec.get("params") or {})


def _project_code() -> tuple[str, str] | None:
    """(this project's repository, its HEAD commit) when it is a Git checkout, else None."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=False)
    except OSError:  # no git here
        return None
    return (str(ROOT), done.stdout.strip()) if done.returncode == 0 else None


def preset_form(schema: dict[str, Any], preset: Preset,
                code: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the train flow's parameter schema with ``params`` typed by ``preset``, the deployment's
    default parameter values): the algorithm's name when the flow takes ``algorithm``, else the
    preset's code (``code``: a repository holding examples/ and the commit to use)."""
    schema = copy.deepcopy(schema)
    props = schema["properties"]
    declared = preset_params(preset)
    typed = params_schema(declared, f"parameters of {preset.name} (overriding its defaults)")
    typed["position"] = props["params"].get("position")
    props["params"] = typed
    values: dict[str, Any] = {"params": typed["default"]}
    if "algorithm" in props:
        props["algorithm"]["default"] = values["algorithm"] = preset.name
    elif code is not None:
        repo, commit = code
        values.update(repo=repo, revision=commit, subpath=f"examples/{preset.example}")
        for key in ("repo", "revision", "subpath"):
            props[key]["default"] = values[key]
        schema["required"] = [r for r in schema.get("required", []) if r != "repo"]
    return schema, values


def _var(name: str) -> str:
    return "{{ " + name + " }}"


#: where a ``gpu`` job keeps its working files (its ``ASSETHUB_HOME``: job directories, caches)
JOB_HOME = "/var/lib/assethub"
#: what the ``gpu`` pool's pods run when a deployment names no command (the worker's default,
#: written out so the job image's CMD can be checked against it)
JOB_COMMAND = "prefect flow-run execute"


def gpu_job_template() -> dict[str, Any]:
    """The ``gpu`` pool's base job template: a Kubernetes Job with one GPU container.

    The pod gets ``DEVICE`` / ``ASSETHUB_DEVICE`` ``cuda`` and ``ASSETHUB_GPUS`` (the job
    variable ``gpu_count``, also its ``nvidia.com/gpu`` request and limit); what the training code
    does with several GPUs is its own choice. The Asset Hub token comes from a Secret, never
    inline. The container runs the flow (trusted code) as root with only the capabilities
    :mod:`assethub.sandbox` needs to switch the user's command to its own uid in bubblewrap
    (SYS_ADMIN for its mounts, SETUID/SETGID): the user's code itself holds none."""
    container: dict[str, Any] = {
        "name": "prefect-job",
        "image": _var("image"),
        "imagePullPolicy": _var("image_pull_policy"),
        "args": _var("command"),
        "workingDir": IMAGE_WORKDIR,
        "env": [
            {"name": "ASSETHUB_URL", "value": _var("assethub_url")},
            {"name": "MLFLOW_TRACKING_URI", "value": _var("mlflow_tracking_uri")},
            {"name": "ASSETHUB_HOME", "value": JOB_HOME},
            # the jobs' DEVICE: this pool's pods run on GPU nodes (tasks.entrypoint.job_device)
            {"name": "DEVICE", "value": "cuda"},
            {"name": "ASSETHUB_DEVICE", "value": "cuda"},
            # never inline: the token is read from a Secret in the job's namespace
            {"name": "ASSETHUB_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": _var("token_secret_name"), "key": _var("token_secret_key")}}},
        ],
        "resources": {
            "limits": {"nvidia.com/gpu": _var("gpu_count"), "memory": _var("memory")},
            "requests": {"nvidia.com/gpu": _var("gpu_count"), "cpu": _var("cpu"), "memory": _var("memory")},
        },
        "securityContext": {
            "runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]},
            # bubblewrap's mount and namespace calls: the runtime's default profiles refuse them
            "seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"},
        },
        "volumeMounts": [{"name": "work", "mountPath": JOB_HOME}, {"name": "tmp", "mountPath": "/tmp"}],
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
                # prefect-kubernetes refuses a template without these two here (in the pod's spec,
                # where Kubernetes has no such fields: the API server drops them with a warning)
                "parallelism": 1, "completions": 1,
                "restartPolicy": "Never",
                "serviceAccountName": _var("service_account_name"),
                # the job talks to Asset Hub, MLflow and Prefect only: no Kubernetes API token
                "automountServiceAccountToken": False,
                "nodeSelector": _var("node_selector"),
                "tolerations": _var("tolerations"),
                "containers": [container],
                "volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
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
            "command": {"type": "string", "title": "Command", "default": JOB_COMMAND},
            "namespace": {"type": "string", "default": "assethub", "title": "Namespace"},
            "image": {"type": "string", "default": "assethub/jobs:latest", "title": "Image",
                      "description": f"Image holding the project at {IMAGE_WORKDIR} and its environment "
                                     "(deploy/docker/Dockerfile.job)."},
            "image_pull_policy": {"type": "string", "enum": ["IfNotPresent", "Always", "Never"],
                                  "default": "IfNotPresent", "title": "Image pull policy"},
            "service_account_name": {"type": "string", "default": "assethub-jobs",
                                     "title": "Service account"},
            "finished_job_ttl": {"type": "integer", "default": 3600, "title": "Finished job TTL (s)"},
            "gpu_count": {"type": "integer", "default": 1, "minimum": 1, "title": "GPUs per job",
                          "description": "nvidia.com/gpu requested and ASSETHUB_GPUS for the code."},
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
            "command": _var("command"),
            # A dict here is merged with the run's own `env` variable, rendered, and made strings
            # (Kubernetes wants string values; "{{ gpu_count }}" alone renders to an integer),
            # then put before the container's list above.
            "env": {"ASSETHUB_GPUS": _var("gpu_count")},
            "labels": _var("labels"),
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
    return names + deploy_presets()


def deploy_presets() -> list[str]:
    """Register one ``train`` deployment per preset, with its typed form; their full names."""
    from prefect import Flow
    from prefect.utilities.callables import ParameterSchema

    code = _project_code()
    flow = Flow.from_source(str(ROOT), "flows/train.py:train")
    names = []
    for preset in PRESETS:
        d = flow.to_deployment(name=preset_slug(preset), work_pool_name=LOCAL_POOL,
                               description=f"Train with the preset algorithm {preset.name} "
                                           f"({preset.task_type}; data: {preset.data}).",
                               tags=["training", "preset"])
        schema, values = preset_form(d._parameter_openapi_schema.model_dump(exclude_unset=True), preset, code)
        d._parameter_openapi_schema = ParameterSchema(**schema)
        d.parameters = values
        d.apply()
        names.append(preset_deployment(preset))
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
