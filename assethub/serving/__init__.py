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

import ipaddress
import re
from collections.abc import Collection

from assethub.errors import InvalidReferenceError, NotAllowedError
from assethub.wire import ServiceView  # defined there, re-exported here

__all__ = ["HOSTS_SETTING", "SERVICE_STATES", "TARGETS", "ServiceView", "check_host",
           "validate_service_name"]

#: the server's setting (its environment: only whoever runs the server sets it) listing the
#: addresses other than loopback that services may listen on, comma-separated; ``*`` any
HOSTS_SETTING = "ASSETHUB_SERVICE_HOSTS"

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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allowed: Collection[str] = ()) -> str:
    """``host`` if a local service may listen on it: loopback always, another address only when
    the server's setting (:data:`HOSTS_SETTING`) lists it or ``*``. A service listening beyond
    loopback answers anyone who reaches it, without the server's authentication."""
    if not isinstance(host, str) or not host:
        raise InvalidReferenceError("a service's host must be an address such as 127.0.0.1",
                                    part="host", value=str(host)[:80])
    if is_loopback(host) or host in allowed or "*" in allowed:
        return host
    raise NotAllowedError(
        f"services listen on loopback only (127.0.0.1 or ::1), not on {host[:80]!r}: a service "
        "has no authentication of its own, so anything that reaches it can use the model. "
        "Send predictions through the server (`assethub predict`, which checks 'run'), or ask "
        f"the server's administrator to allow this address ({HOSTS_SETTING}={host[:80]})")


def allowed_hosts(setting: str | None) -> frozenset[str]:
    """The addresses :data:`HOSTS_SETTING` allows, from its value."""
    return frozenset(h.strip() for h in (setting or "").split(",") if h.strip())
