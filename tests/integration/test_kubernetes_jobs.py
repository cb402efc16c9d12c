"""The ``gpu`` pool's Kubernetes Job, rendered for real flow runs: the session's real Prefect
server with the deployments registered (``deployments.deploy_all``), a flow run of
``train/gpu`` created through the API with parameters (and job variables), and its Job built by
prefect-kubernetes' own code, the way its worker builds the Job it submits
(``KubernetesWorkerJobConfiguration.resolve_for_flow_run``: the pool's base job template, the
deployment's and the run's job variables, then ``prepare_for_flow_run``). No cluster: the Job is
validated against the Kubernetes schemas offline (kubernetes_validate, strict)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.integration._jobs import JobWorld
from tests.integration._prefect_world import on_prefect

pytestmark = pytest.mark.integration

#: the Kubernetes version the manifests are checked against (also tests/unit/test_k8s_platform.py)
K8S_VERSION = "1.33.0"
GPU_TRAIN = "train/gpu"


def _render(api: str, flow_run_id: uuid.UUID) -> dict[str, Any]:
    """The Job manifest the Kubernetes worker of the ``gpu`` pool would create for the run."""
    from prefect.client.orchestration import get_client
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    async def render() -> dict[str, Any]:
        async with get_client() as c:
            flow_run = await c.read_flow_run(flow_run_id)
            pool = await c.read_work_pool("gpu")
            config = await KubernetesWorkerJobConfiguration.resolve_for_flow_run(
                flow_run, client=c, work_pool=pool, worker_name="assethub-gpu")
        return config.job_manifest

    with on_prefect(api):
        return asyncio.run(render())


def _validate(job: dict[str, Any]) -> None:
    """Strict schema validation of the Job. prefect-kubernetes insists on ``parallelism: 1`` and
    ``completions: 1`` in the pod's spec, where Kubernetes has no such fields (the API server
    drops them, with a warning): those two, and only those, are taken out first."""
    import kubernetes_validate

    job = json.loads(json.dumps(job))
    pod = job["spec"]["template"]["spec"]
    assert (pod.pop("parallelism"), pod.pop("completions")) == (1, 1)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    env = {e["name"]: e for e in container["env"]}
    assert len(env) == len(container["env"]), "no variable set twice"
    return env


@pytest.fixture(scope="module")
def gpu_deployments(prefect_api: str) -> str:
    from deployments import deploy_all

    with on_prefect(prefect_api):
        deploy_all()
    return prefect_api


def test_a_gpu_train_run_renders_a_valid_job_with_its_gpus_device_and_secret_token(
        gpu_deployments: str, deploy_world: JobWorld) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from deployments import IMAGE_WORKDIR, JOB_COMMAND

    api, w = gpu_deployments, deploy_world
    parameters = {"model": w.model, "dataset": w.dataset, "repo": w.repo, "params": {"epochs": 1},
                  "branch": "on-k8s"}
    with on_prefect(api):
        one = run_deployment(GPU_TRAIN, parameters=parameters, timeout=0)
        two = run_deployment(GPU_TRAIN, parameters=parameters, job_variables={"gpu_count": 2}, timeout=0)
    try:
        assert one.work_pool_name == "gpu" and one.parameters["model"] == w.model
        rendered = {1: (one, _render(api, one.id)), 2: (two, _render(api, two.id))}
        for gpus, (flow_run, job) in rendered.items():
            _validate(job)
            assert job["kind"] == "Job" and job["metadata"]["namespace"] == "assethub"
            assert job["spec"]["backoffLimit"] == 0, "a failed training is not started again by Kubernetes"
            pod = job["spec"]["template"]
            [container] = pod["spec"]["containers"]
            # the GPUs: requested and limited, and told to the code with its device
            assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
            assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
            env = _env(container)
            assert env["ASSETHUB_GPUS"] == {"name": "ASSETHUB_GPUS", "value": str(gpus)}
            assert env["DEVICE"]["value"] == env["ASSETHUB_DEVICE"]["value"] == "cuda"
            assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
            assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            # which flow run the pod executes, and how its job and pod are found again
            assert env["PREFECT__FLOW_RUN_ID"]["value"] == str(flow_run.id)
            assert job["metadata"]["labels"]["prefect.io/flow-run-id"] == str(flow_run.id)
            assert pod["metadata"]["labels"]["prefect.io/flow-run-id"] == str(flow_run.id)
            assert env["PREFECT_API_URL"]["value"] == api
            # the token from a Secret, never inline; no Kubernetes API token in the pod
            assert env["ASSETHUB_TOKEN"] == {"name": "ASSETHUB_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": "assethub-jobs", "key": "token"}}}
            assert w.token not in json.dumps(job)
            assert pod["spec"]["automountServiceAccountToken"] is False
            # the job image, started where the deployment's code lives, with the worker's command
            assert container["image"] == "assethub/jobs:latest"
            assert container["workingDir"] == IMAGE_WORKDIR
            assert container["args"] == JOB_COMMAND.split()
            assert env["ASSETHUB_URL"]["value"] == "http://assethub.assethub.svc:8780"
            # user code is switched to its own uid by the sandbox: the flow gets no more than that
            security = container["securityContext"]
            assert security["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]}
            assert security["allowPrivilegeEscalation"] is False
        with on_prefect(api), get_client(sync_client=True) as c:
            deployment = c.read_deployment_by_name(GPU_TRAIN)
        assert deployment.path == IMAGE_WORKDIR and deployment.entrypoint == "flows/train.py:train"
    finally:
        with on_prefect(api), get_client(sync_client=True) as c:
            for flow_run in (one, two):
                c.delete_flow_run(flow_run.id)  # no worker serves the pool here: none stays scheduled


def test_a_gpu_count_below_one_is_refused_by_the_pool(gpu_deployments: str, deploy_world: JobWorld) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    w = deploy_world
    with on_prefect(gpu_deployments), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name(GPU_TRAIN)
        before = {r.id for r in c.read_flow_runs()}
    with on_prefect(gpu_deployments), pytest.raises(Exception, match="gpu_count") as refused:
        run_deployment(GPU_TRAIN, parameters={"model": w.model, "repo": w.repo},
                       job_variables={"gpu_count": 0}, timeout=0)
    assert "minimum" in str(refused.value) or "less than" in str(refused.value), refused.value
    with on_prefect(gpu_deployments), get_client(sync_client=True) as c:
        after = {r.id for r in c.read_flow_runs() if r.deployment_id == deployment.id}
    assert not after - before, "no flow run was created"
