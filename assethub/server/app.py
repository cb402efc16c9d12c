"""The Asset Hub HTTP API (FastAPI): a thin layer over :class:`assethub.hub.Hub`.

:func:`create_app` wires the middleware, the error handlers and one router per section
(:mod:`assethub.server.routes`), all under the one prefix :data:`~assethub.server.routes.API`.
Every request is authenticated from its ``Authorization: Bearer <token>`` header (none means
anonymous) and authorized by the Hub before any storage call. Errors come back as
``{"error": {"type", "message", ...fields}}`` with a 4xx status saying what was wrong (the
error protocol: :data:`assethub.errors.WIRE_ERRORS`, which the SDK reads too).
lakeFS credentials never leave this process.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assethub import errors
from assethub.hub import Hub
from assethub.server.routes import API, assets, audit, folders, follows, identity, jobs, services
from assethub.server.routes._common import authenticator

MAX_JSON_BYTES = 1 * 2**20
# The sections in the order their routes are matched (and listed in the OpenAPI document).
SECTIONS = (identity, audit, folders, assets, jobs, services, follows)


def error_response(exc: Exception) -> JSONResponse:
    """The error protocol's answer for ``exc`` (status and body from :data:`errors.WIRE_ERRORS`)."""
    status, body = errors.to_wire(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class _Guard:
    """Outermost ASGI layer: JSON bodies stay under MAX_JSON_BYTES even when sent chunked, and
    an unexpected error becomes a 500 in the usual error shape on a connection that stays
    usable (Starlette's own last-resort handler re-raises and drops the connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        streamed = scope.get("method") == "PUT" or path.endswith("/import")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if not streamed and length.isdigit() and int(length) > MAX_JSON_BYTES:
            await error_response(errors.PayloadTooLargeError(
                f"request body of {int(length)} bytes is over the {MAX_JSON_BYTES}-byte limit"
            ))(scope, receive, send)
            return
        started = False
        if not streamed:
            # Read a JSON body here, bounded, so a chunked one cannot slip past the limit;
            # the application then receives it from memory.
            chunks, seen, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                more = message.get("more_body", False)
                if seen > MAX_JSON_BYTES:
                    await error_response(errors.PayloadTooLargeError(
                        f"request body is over the {MAX_JSON_BYTES}-byte limit"))(scope, receive, send)
                    return
            body, replayed, upstream = b"".join(chunks), False, receive

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await upstream()  # the disconnect, whenever it comes
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            if not isinstance(exc, errors.AssetHubError):
                logging.getLogger("assethub.server").exception("unhandled error")
            await error_response(exc)(scope, receive, send)



def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.AssetHubError)
    async def _domain_error(_: Request, exc: errors.AssetHubError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(FileNotFoundError)
    async def _missing_file(_: Request, exc: FileNotFoundError) -> JSONResponse:
        return error_response(errors.NotFoundError("file", str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse({"error": {"type": "RequestValidationError",
                                       "message": f"invalid request: {problems}"}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse({"error": {"type": kind, "message": f"{exc.detail}: no such API route"
                                       if exc.status_code == 404 else str(exc.detail)}},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))


def create_app(hub: Hub) -> FastAPI:
    """The API over ``hub`` (``create_app(None)`` only renders the OpenAPI document)."""
    app = FastAPI(
        title="Asset Hub",
        version="0.1.0",
        description="Versioned datasets and models: folders, sharing, history, merge.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
    )
    _add_error_handlers(app)
    app.add_middleware(_Guard)
    principal = authenticator(hub)
    for section in SECTIONS:
        app.include_router(section.router(hub, principal), prefix=API)
    return app
