"""Kubernetes manifests for a service: a Deployment running MLflow's scoring server, and a Service.

Each pod runs ``mlflow models serve --env-manager local`` on the model at the pinned commit, read
through lakeFS's S3 gateway (``s3://<repository>/<commit>/model``): a branch that moves later does
not change what a running service serves. The gateway's credentials come from a Kubernetes Secret
the operator creates once (keys ``access_key_id`` and ``secret_access_key``); manifests only name
it and never hold a credential.

The settings are the server's (``ASSETHUB_K8S_*`` environment variables), not the caller's: which
image, namespace, Secret and gateway address a cluster uses is the operator's choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import yaml

PORT = 8080
PART_OF = "assethub"


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str = "default"
    # An image with MLflow and the model's requirements (see model/requirements.txt); the
    # digits example needs torch as well.
    image: str = field(default_factory=lambda: f"ghcr.io/mlflow/mlflow:v{version('mlflow')}")
    s3_endpoint: str = "http://lakefs.assethub.svc.cluster.local:8000"  # lakeFS, as pods reach it
    secret: str = "assethub-lakefs"
    cpu: str = "500m"
    memory: str = "1Gi"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KubernetesSettings:
        e = os.environ if env is None else env
        d = cls()
        return cls(namespace=e.get("ASSETHUB_K8S_NAMESPACE", d.namespace),
                   image=e.get("ASSETHUB_K8S_IMAGE", d.image),
                   s3_endpoint=e.get("ASSETHUB_K8S_S3_ENDPOINT", d.s3_endpoint),
                   secret=e.get("ASSETHUB_K8S_SECRET", d.secret),
                   cpu=e.get("ASSETHUB_K8S_CPU", d.cpu), memory=e.get("ASSETHUB_K8S_MEMORY", d.memory))

    def address(self, name: str) -> str:
        return f"http://{name}.{self.namespace}.svc.cluster.local"


def model_uri(repository: str, commit: str) -> str:
    """Where a pod reads the model: the commit's ``model/`` through lakeFS's S3 gateway."""
    return f"s3://{repository}/{commit}/model"


def render(name: str, *, model_ref: str, commit: str, repository: str, replicas: int,
           training_run: str = "", settings: KubernetesSettings | None = None) -> list[dict[str, Any]]:
    """The Deployment and the Service (as dicts, in apply order)."""
    k = settings or KubernetesSettings()
    uri = model_uri(repository, commit)
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    labels = {**selector, "app.kubernetes.io/part-of": PART_OF,
              "app.kubernetes.io/component": "model-service",
              "assethub.io/model-commit": commit[:12]}  # label values stop at 63 characters
    annotations = {"assethub.io/model-ref": model_ref, "assethub.io/model-commit": commit,
                   "assethub.io/model-uri": uri}
    if training_run:
        annotations["assethub.io/training-run"] = training_run
    secret_env = [{"name": var, "valueFrom": {"secretKeyRef": {"name": k.secret, "key": key}}}
                  for var, key in (("AWS_ACCESS_KEY_ID", "access_key_id"),
                                   ("AWS_SECRET_ACCESS_KEY", "secret_access_key"))]
    probe = {"httpGet": {"path": "/ping", "port": "http"}}
    container = {
        "name": "model",
        "image": k.image,
        "command": ["mlflow", "models", "serve", "--model-uri", uri, "--env-manager", "local",
                    "--host", "0.0.0.0", "--port", str(PORT), "--workers", "1"],
        "env": [{"name": "MLFLOW_S3_ENDPOINT_URL", "value": k.s3_endpoint},
                {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},  # lakeFS ignores it; boto3 wants one
                *secret_env],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},  # loads up to 5 min
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 15,
                          "timeoutSeconds": 5, "failureThreshold": 4},
        "resources": {"requests": {"cpu": k.cpu, "memory": k.memory}, "limits": {"memory": k.memory}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": k.namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            # new pods take traffic only when ready; none is removed before its successor is
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 30,
                         "automountServiceAccountToken": False},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": k.namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }
    return [deployment, service]


class _Plain(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # labels are shared dicts here; spell them out, as people write manifests


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """One multi-document YAML stream, for ``kubectl apply -f``."""
    return yaml.dump_all(manifests, Dumper=_Plain, sort_keys=False, default_flow_style=False)
