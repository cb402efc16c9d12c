"""The SDK's services: ``Client().services`` publishes model versions and uses them.

    hub = Client()
    svc = hub.services.create("alice/model/digits/cnn:v1", name="digits", replicas=2)
    hub.services.predict("digits", {"inputs": batch.tolist()})     # {"predictions": [...]}
    hub.services.scale("digits", 3); hub.services.stop("digits"); hub.services.start("digits")

A handle that does no I/O until a method is called; every call goes through the Asset Hub
server, which checks the caller's role on the model's folder (``run``) before it acts.
"""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from assethub.refs import AssetRef
from assethub.wire import ServiceAlertView, ServiceStats, ServiceView

if TYPE_CHECKING:
    from assethub.client import Client

__all__ = ["Services"]


def _url(name: str) -> str:
    return f"/services/{quote(name, safe='')}"


class Services:
    """Model services of the client's server."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _view(self, data: Any) -> ServiceView:
        from assethub.client import _load

        return _load(ServiceView, data)

    def create(self, model: AssetRef | str, *, name: str, replicas: int = 1, port: int = 0,
               host: str = "127.0.0.1", target: str = "local") -> ServiceView:
        """Serve the model version ``model`` (a reference, resolved to its commit now) as ``name``.

        Returns once the replicas answer (local target), or once recorded and rendered
        (``target="kubernetes"``; see :meth:`manifests`)."""
        body = {"name": name, "model": str(AssetRef.coerce(model)), "replicas": replicas,
                "port": port, "host": host, "target": target}
        return self._view(self._client._call("POST", "/services", json=body))

    def list(self) -> list[ServiceView]:
        return [self._view(row) for row in self._client._call("GET", "/services")]

    def get(self, name: str) -> ServiceView:
        return self._view(self._client._call("GET", _url(name)))

    def scale(self, name: str, replicas: int) -> ServiceView:
        """Run ``replicas`` replicas on the same address; returns once they answer (0 stops it)."""
        return self._view(self._client._call("POST", f"{_url(name)}/scale", json={"replicas": replicas}))

    def stop(self, name: str) -> ServiceView:
        """No replicas; the address stays the service's, answering 503 until :meth:`start`."""
        return self._view(self._client._call("POST", f"{_url(name)}/stop"))

    def start(self, name: str) -> ServiceView:
        """Run the service again with its recorded replicas, on the same address."""
        return self._view(self._client._call("POST", f"{_url(name)}/start"))

    def delete(self, name: str) -> None:
        self._client._call("DELETE", _url(name))

    def logs(self, name: str, *, lines: int = 200) -> str:
        return str(self._client._call("GET", f"{_url(name)}/logs", params={"lines": lines})["log"])

    def manifests(self, name: str) -> str:
        """Kubernetes manifests (YAML) that serve the service's model version at its commit."""
        return str(self._client._call("GET", f"{_url(name)}/manifests")["manifests"])

    def stats(self, name: str, *, window: str = "5m") -> ServiceStats:
        """Requests/s, error rate (4xx and 5xx) and p50/p95/p99 latency over the last ``window``
        (e.g. ``30s``, ``5m``, ``1h``), per replica and in total."""
        from assethub.client import _load

        return _load(ServiceStats, self._client._call("GET", f"{_url(name)}/stats",
                                                      params={"window": window}))

    def metrics(self, name: str) -> str:
        """The service's counters in the Prometheus text format (what a scraper reads)."""
        with self._client._stream("GET", f"{_url(name)}/metrics") as response:
            return response.read().decode()

    def alerts(self, name: str) -> builtins.list[ServiceAlertView]:
        """The service's alert rules (webhook addresses redacted)."""
        from assethub.client import _loads

        return _loads(ServiceAlertView, self._client._call("GET", f"{_url(name)}/alerts"))

    def set_alert(self, name: str, *, error_rate: float | None = None, p95: float | None = None,
                  window: str = "5m", webhook: str = "") -> builtins.list[ServiceAlertView]:
        """Alert when the error rate (a fraction) or the p95 latency (seconds) over ``window`` is
        above the given threshold; ``webhook`` is POSTed a JSON body when it fires and resolves.
        Replaces the service's rule on that metric."""
        rules = {k: v for k, v in (("error_rate", error_rate), ("p95", p95)) if v is not None}
        if not rules:
            raise TypeError("pass error_rate or p95 (or both)")
        from assethub.client import _load

        return [_load(ServiceAlertView, self._client._call(
            "PUT", f"{_url(name)}/alerts/{metric}",
            json={"threshold": threshold, "window": window, "webhook": webhook}))
            for metric, threshold in rules.items()]

    def clear_alert(self, name: str, metric: str | None = None) -> int:
        """Remove the rule on ``metric`` (error_rate or p95; None: every rule); how many went."""
        params = {"metric": metric} if metric else None
        return int(self._client._call("DELETE", f"{_url(name)}/alerts", params=params)["removed"])

    def predict(self, name: str, data: Any = None, *, content: bytes | str | None = None,
                content_type: str = "application/json") -> Any:
        """The model's answer to ``data`` (a dict in MLflow's scoring format, e.g.
        ``{"inputs": [...]}``), or to raw ``content`` of ``content_type`` (e.g. CSV).

        A refused input raises :class:`~assethub.errors.PredictionError` with the model's reason.
        The request goes through the server (which checks ``run`` on the model), so its body
        is limited to 1 MiB: send larger batches in parts.
        """
        if (data is None) == (content is None):
            raise TypeError("pass either data (JSON-able) or content (bytes), not both")
        payload = json.dumps(data).encode() if content is None else (
            content.encode() if isinstance(content, str) else content)
        with self._client._stream("POST", f"{_url(name)}/predict", content=payload,
                                  headers={"Content-Type": content_type}) as response:
            response.read()
            return response.json() if "json" in response.headers.get("content-type", "") \
                else response.text
