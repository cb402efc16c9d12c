"""``/services``: publish a model version as an HTTP service, scale, stop, start, test it.

A thin layer over :class:`assethub.serving.manager.ServiceManager`, which the router creates and
whose lifetime follows the application's (it re-attaches to running services at start-up and
leaves them running at shutdown). Errors take the application's usual shape; the model's own
refusals of an input come back as 400 with the model's reason.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.serving import MAX_REPLICAS
from assethub.serving.manager import ServiceManager

_NAME = Annotated[str, Field(max_length=63, description="lowercase letters, digits and '-'")]


class ServiceIn(BaseModel):
    model_config = {"extra": "forbid"}
    name: _NAME
    model: str = Field(max_length=600, description="model reference <path>:<ref>, resolved to a commit")
    replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    port: int = Field(0, ge=0, le=65535, description="0: any free port")
    host: str = Field("127.0.0.1", max_length=255, description="address the service listens on")
    target: Literal["local", "kubernetes"] = "local"


class ScaleIn(BaseModel):
    model_config = {"extra": "forbid"}
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class AlertIn(BaseModel):
    model_config = {"extra": "forbid"}
    threshold: float = Field(description="error_rate: a fraction (0.05 = 5%); p95: seconds")
    window: str = Field("5m", max_length=20, description="e.g. 30s, 5m, 1h")
    webhook: str = Field("", max_length=2000, description="URL POSTed (JSON) when it fires and resolves")


def router(hub: Hub, principal: Callable[..., Awaitable[Principal]],
           manager: ServiceManager | None = None) -> APIRouter:
    """The services API over ``hub``, authenticating with the application's ``principal``."""
    # create_app(None) only renders the OpenAPI document: no manager then
    services = manager or (ServiceManager(hub) if hub is not None else cast(ServiceManager, None))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is None:
            yield
            return
        app.state.services = services  # the console's pages use the same manager
        services.open()
        yield
        await services.aclose()

    r = APIRouter(prefix="/services", tags=["services"], lifespan=lifespan)
    Who = Annotated[Principal, Depends(principal)]

    @r.post("", status_code=201)
    def create_service(who: Who, body: ServiceIn) -> Any:
        return jsonable(services.create(who, body.model, name=body.name, replicas=body.replicas,
                                        port=body.port, host=body.host, target=body.target))

    @r.get("")
    def list_services(who: Who) -> Any:
        return jsonable(services.list(who))

    @r.get("/{name}")
    def get_service(who: Who, name: str) -> Any:
        return jsonable(services.get(who, name))

    @r.post("/{name}/scale")
    def scale_service(who: Who, name: str, body: ScaleIn) -> Any:
        return jsonable(services.scale(who, name, body.replicas))

    @r.post("/{name}/stop")
    def stop_service(who: Who, name: str) -> Any:
        return jsonable(services.stop(who, name))

    @r.post("/{name}/start")
    def start_service(who: Who, name: str) -> Any:
        return jsonable(services.start(who, name))

    @r.delete("/{name}", status_code=204)
    def delete_service(who: Who, name: str) -> Response:
        services.delete(who, name)
        return Response(status_code=204)

    @r.get("/{name}/logs")
    def service_logs(who: Who, name: str,
                     lines: Annotated[int, Query(ge=1, le=10_000)] = 200) -> Any:
        return {"name": name, "log": services.logs(who, name, lines=lines)}

    @r.get("/{name}/manifests")
    def service_manifests(who: Who, name: str) -> Any:
        return {"name": name, "manifests": services.manifests(who, name)}

    @r.get("/{name}/stats")
    def service_stats(who: Who, name: str,
                      window: Annotated[str, Query(max_length=20, description="e.g. 30s, 5m, 1h")] = "5m",
                      ) -> Any:
        """Requests/s, error rates and latency percentiles over the window, per replica and in total."""
        return jsonable(services.stats(who, name, window))

    @r.get("/{name}/metrics")
    def service_metrics(who: Who, name: str) -> Response:
        """The service's counters in the Prometheus text format, for a scraper holding the token
        of someone who may view the model."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(services.metrics(who, name), media_type=CONTENT_TYPE_LATEST)

    @r.get("/{name}/alerts")
    def list_alerts(who: Who, name: str) -> Any:
        return jsonable(services.alerts(who, name))

    @r.put("/{name}/alerts/{metric}")
    def set_alert(who: Who, name: str, metric: str, body: AlertIn) -> Any:
        return jsonable(services.set_alert(who, name, metric=metric, threshold=body.threshold,
                                           window=body.window, webhook=body.webhook))

    @r.delete("/{name}/alerts")
    def clear_alerts(who: Who, name: str,
                     metric: Annotated[str | None, Query(max_length=20)] = None) -> Any:
        return {"name": name, "removed": services.clear_alert(who, name, metric)}

    @r.post("/{name}/predict")
    async def predict(who: Who, name: str, request: Request,
                      content_type: Annotated[str, Header(max_length=200)] = "application/json",
                      ) -> Response:
        """Send MLflow's scoring input (JSON ``inputs`` / ``instances`` / ``dataframe_split`` /
        ``dataframe_records``, or CSV) to the service; its predictions come back as they are.

        Bodies are limited to the server's 1 MiB for JSON requests: send larger batches in
        parts, or straight to the service's address from the server's machine."""
        body = await request.body()
        content, media_type = await services.predict(who, name, body, content_type)
        return Response(content, media_type=media_type)

    return r
