"""Model versions served over HTTP: the catalog's services, run locally or rendered for Kubernetes.

- :mod:`assethub.serving.manager`: :class:`ServiceManager`, the server side (permissions, catalog,
  model cache, local runtime, health checks); one per server process.
- :mod:`assethub.serving.supervisor` / :mod:`assethub.serving.replica`: the processes of a local
  service (a supervisor holding the address, replicas running MLflow's scoring server).
- :mod:`assethub.serving.k8s`: Kubernetes manifests for a service.

This package's ``__init__`` only holds the name rules, which the SDK may use too (the view
is :class:`assethub.wire.ServiceView`), so that importing the client does not import the server.
"""

from __future__ import annotations

import re

from assethub.errors import InvalidReferenceError
from assethub.wire import ServiceView  # defined there, re-exported here

__all__ = ["SERVICE_STATES", "TARGETS", "ServiceView", "validate_service_name"]

SERVICE_STATES = ("starting", "running", "stopped", "failed")
TARGETS = ("local", "kubernetes")
MAX_REPLICAS = 16
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")


def validate_service_name(name: str) -> str:
    """``name`` if it can name a service (and its Kubernetes objects); InvalidReferenceError if not."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidReferenceError(
            f"invalid service name {str(name)[:80]!r}: use 1-40 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-' (e.g. digits-cnn)",
            part="service name", value=str(name)[:80])
    return name


def validate_replicas(replicas: int) -> int:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidReferenceError(f"replicas must be a whole number from 0 to {MAX_REPLICAS}, "
                                    f"not {replicas!r}", part="replicas", value=str(replicas))
    return replicas
