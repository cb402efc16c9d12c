"""The SDK's services: ``Client().services`` publishes model versions and uses them.

    hub = Client()
    svc = hub.services.create("alice/model/digits/cnn:v1", name="digits", replicas=2)
    hub.services.predict("digits", {"inputs": batch.tolist()})     # {"predictions": [...]}
    hub.services.scale("digits", 3); hub.services.stop("digits"); hub.services.start("digits")

A handle that does no I/O until a method is called; every call goes through the Asset Hub
server, which checks the caller's role on the model's folder (``run``) before it acts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from assethub.refs import AssetRef
from assethub.wire import ServiceView

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
