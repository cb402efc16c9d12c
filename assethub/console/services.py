"""Console pages: model services — the list and a new service (serve a model version), one
service's details, start / stop / scale, its log (tail, paged), and an online test form.

The pages call the server's own :class:`~assethub.serving.manager.ServiceManager` (the one the
REST routes use, kept on ``app.state.services``) with the signed-in person's principal: the same
permission checks as ``/api/v1/services`` (seeing a service needs ``view`` on its model, changing
or testing it ``run``; a hidden model's service is answered like a missing one).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub.console._web import field, form_of, fragment, redirect, render, viewer
from assethub.hub import Hub, Principal
from assethub.refs import AssetRef
from assethub.serving import MAX_REPLICAS, ServiceView

#: log lines per page of the log view, and the most it shows
LOG_PAGE = 200
LOG_MAX = 10_000
#: the largest input example put into the test form (a larger one: paste your own)
EXAMPLE_MAX = 256 * 1024
#: the most of a prediction shown on the page
ANSWER_MAX = 64 * 1024
_STEADY = ("running", "stopped", "failed")


def _manager(request: Request) -> Any:
    manager = getattr(request.app.state, "services", None)
    if manager is None:
        raise errors.ServiceUnavailableError("model services are not running on this server",
                                             name="services")
    return manager


def _service_url(name: str) -> str:
    return f"/services/{name}"


def _int(value: str, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise errors.InvalidReferenceError(f"{what} must be a whole number, not {value[:20]!r}",
                                           part=what, value=value[:20]) from None
    if not low <= number <= high:
        raise errors.InvalidReferenceError(f"{what} must be from {low} to {high}", part=what,
                                           value=str(number))
    return number


def _can_run(hub: Hub, who: Principal, view: ServiceView) -> bool:
    """May ``who`` change and test the service (``run`` on its model)? For showing controls
    only: the manager checks again on every change."""
    if who.anonymous:
        return False
    if who.is_admin:
        return True
    try:
        hub.check(who, AssetRef.parse(view.model).path, "run")
    except (errors.AssetHubError, ValueError):
        return who.name == view.created_by  # a deleted model leaves it to its creator
    return True


def _example(hub: Hub, view: ServiceView) -> str:
    """The model's own input example as a request body (MLflow's ``serving_input_example.json``,
    else ``input_example.json`` wrapped as ``inputs``); empty when it has none."""
    try:
        pinned = AssetRef.parse(view.model).path.at(view.model_commit)
    except (errors.AssetHubError, ValueError):
        return ""
    for name, wrap in (("model/serving_input_example.json", False),
                       ("model/input_example.json", True)):
        try:
            raw = hub.storage.read_bytes(pinned, name)
        except errors.AssetHubError:
            continue
        if len(raw) > EXAMPLE_MAX:
            return ""
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if wrap:
            data = {"inputs": data}
        text = json.dumps(data)
        return text if len(text) <= EXAMPLE_MAX else ""
    return ""


def router(hub: Hub) -> APIRouter:
    r = APIRouter()

    def list_page(request: Request, status: int = 200, error: str = "",
                  values: dict[str, str] | None = None) -> Response:
        who = viewer(hub, request)
        services = _manager(request).list(who)
        return render(hub, request, "services_list.html", status=status, services=services,
                      error=error, values=values or {"replicas": "1"}, max_replicas=MAX_REPLICAS)

    @r.get("/services")
    def services_page(request: Request) -> Response:
        return list_page(request)

    @r.post("/services")
    async def create_service(request: Request) -> Response:
        login, form = await form_of(hub, request)
        values = {k: field(form, k, limit=600) for k in ("model", "name", "replicas")}
        try:
            replicas = _int(values["replicas"] or "1", "replicas", 0, MAX_REPLICAS)
            if not values["model"]:
                raise errors.InvalidReferenceError("name the model version to serve, e.g. "
                                                   "alice/model/digits/cnn:v1", part="model",
                                                   value="")
            view = await run_in_threadpool(
                _manager(request).create, login.principal, values["model"], name=values["name"],
                replicas=replicas, wait=False)
        except errors.AssetHubError as exc:
            status, _ = errors.to_wire(exc)
            return await run_in_threadpool(list_page, request, status, str(exc), values)
        return redirect(_service_url(view.name), f"Service {view.name} created: "
                        f"{'starting' if replicas else 'stopped'}", request)

    def detail_page(request: Request, name: str, *, lines: int = LOG_PAGE, status: int = 200,
                    error: str = "", body: str | None = None, answer: str = "",
                    scale_error: str = "") -> Response:
        who = viewer(hub, request)
        manager = _manager(request)
        view = manager.get(who, name)
        can_run = _can_run(hub, who, view)
        log, more = "", False
        if can_run:
            try:
                log = manager.logs(who, name, lines=lines + 1)
            except (errors.ForbiddenError, errors.NotFoundError):
                can_run = False
            else:
                shown = log.splitlines(keepends=True)
                more = len(shown) > lines and lines < LOG_MAX
                log = "".join(shown[-lines:])
        return render(hub, request, "services_detail.html", status=status, s=view,
                      can_run=can_run, log=log, lines=lines, more=more,
                      next_lines=min(lines + LOG_PAGE, LOG_MAX),
                      body=_example(hub, view) if body is None else body, error=error,
                      answer=answer, scale_error=scale_error, max_replicas=MAX_REPLICAS,
                      steady=view.state in _STEADY)

    @r.get("/services/{name}")
    def service_page(request: Request, name: str, lines: int = LOG_PAGE) -> Response:
        return detail_page(request, name, lines=_int(str(lines), "lines", 1, LOG_MAX))

    @r.get("/services/{name}/state")
    def service_state(request: Request, name: str) -> Response:
        """The live state box (console.js polls it while the service starts)."""
        view = _manager(request).get(viewer(hub, request), name)
        return fragment("services_state.html", s=view, steady=view.state in _STEADY)

    async def change(request: Request, name: str, action: str) -> Response:
        login, form = await form_of(hub, request)
        manager = _manager(request)
        who = login.principal
        if action == "scale":
            try:
                replicas = _int(field(form, "replicas", limit=10), "replicas", 0, MAX_REPLICAS)
            except errors.InvalidReferenceError as exc:
                return await run_in_threadpool(detail_page, request, name, status=400,
                                               scale_error=str(exc))
            view = await run_in_threadpool(manager.scale, who, name, replicas)
            done = f"Service {name} scaled to {view.replicas} replica(s): {view.state}"
        else:
            view = await run_in_threadpool(getattr(manager, action), who, name)
            done = f"Service {name} {'stopped' if action == 'stop' else 'started'}: {view.state}"
        if view.detail:
            done += f" ({view.detail})"
        return redirect(_service_url(name), done, request)

    @r.post("/services/{name}/start")
    async def start_service(request: Request, name: str) -> Response:
        return await change(request, name, "start")

    @r.post("/services/{name}/stop")
    async def stop_service(request: Request, name: str) -> Response:
        return await change(request, name, "stop")

    @r.post("/services/{name}/scale")
    async def scale_service(request: Request, name: str) -> Response:
        return await change(request, name, "scale")

    @r.post("/services/{name}/test")
    async def test_service(request: Request, name: str) -> Response:
        """Send the form's JSON to the service (as ``POST /api/v1/services/NAME/predict`` does)
        and show its answer on the service's page."""
        login, form = await form_of(hub, request)
        body = field(form, "body", limit=512 * 1024)
        try:
            if not body:
                raise errors.InvalidReferenceError("paste a JSON request body, e.g. "
                                                   '{"inputs": [[1.0, 2.0]]}', part="body",
                                                   value="")
            try:
                json.loads(body)
            except ValueError as exc:
                raise errors.InvalidReferenceError(f"the request body is not JSON: {exc}",
                                                   part="body", value=body[:40]) from None
            content, _ = await _manager(request).predict(login.principal, name, body.encode(),
                                                          "application/json")
        except (errors.PredictionError, errors.InvalidReferenceError,
                errors.ServiceUnavailableError) as exc:
            status, _ = errors.to_wire(exc)
            return await run_in_threadpool(detail_page, request, name, status=status,
                                           error=str(exc), body=body)
        try:
            answer = json.dumps(json.loads(content), indent=2)
        except ValueError:
            answer = content.decode(errors="replace")
        if len(answer) > ANSWER_MAX:
            answer = answer[:ANSWER_MAX] + f"\n… ({len(answer) - ANSWER_MAX} more characters)"
        return await run_in_threadpool(detail_page, request, name, body=body, answer=answer)

    return r
