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
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from assethub import errors
from assethub.hub import Hub
from assethub.server.routes import (
    API,
    algorithms,
    assets,
    audit,
    datasets,
    folders,
    follows,
    git_credentials,
    identity,
    jobs,
    services,
    stats,
)
from assethub.server.routes._common import authenticator

MAX_JSON_BYTES = 1 * 2**20
# The sections in the order their routes are matched (and listed in the OpenAPI document).
SECTIONS = (identity, audit, folders, assets, jobs, git_credentials, services, follows, algorithms,
            stats, datasets)

_log = logging.getLogger("assethub.server")


def error_response(exc: Exception) -> JSONResponse:
    """The error protocol's answer for ``exc`` (status and body from :data:`errors.WIRE_ERRORS`)."""
    status, body = errors.to_wire(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def catalog_unavailable(exc: BaseException) -> errors.CatalogUnavailableError | None:
    """The catalog database out of reach (refused, dropped, timed out, locked) as the error the
    protocol has for it; None for any other failure. The driver's words stay in the log."""
    outage = (isinstance(exc, (OperationalError, InterfaceError, DisconnectionError,
                               SQLAlchemyTimeoutError))
              or (isinstance(exc, DBAPIError) and exc.connection_invalidated))
    if not outage:
        return None
    _log.warning("catalog unavailable: %s", exc)
    return errors.CatalogUnavailableError(
        f"the server cannot reach its catalog database ({type(exc).__name__}); try again later")


BodyLimit = Callable[[], int]
_Streamed = list[tuple[str, re.Pattern[str], BodyLimit]]


def _streamed(hub: Hub) -> _Streamed:
    """The routes that stream their body, as (method, path pattern, limit)."""
    if hub is None:
        return []
    from assethub.console import change  # the console's uploads and imports stream theirs too

    return ([(method, compile_path(API + path)[0], limit)
             for method, path, limit in assets.streamed_bodies(hub)]
            + [(method, compile_path(path)[0], limit)
               for method, path, limit in change.streamed_bodies(hub)])


class _Guard:
    """Outermost ASGI layer: no request body is held in memory beyond MAX_JSON_BYTES, and an
    unexpected error becomes a 500 in the usual error shape on a connection that stays usable
    (Starlette's own last-resort handler re-raises and drops the connection).

    A body is read here, bounded (a chunked one is counted), before the route sees it — except
    for the routes that stream theirs (``streamed``): those read it only after authenticating
    and authorizing the caller, and this layer counts it as it passes, up to the route's limit.
    Either way a declared Content-Length over the limit is refused at once, unread.
    """

    def __init__(self, app: Any, streamed: _Streamed) -> None:
        self.app = app
        self.streamed = streamed

    def _stream_limit(self, scope: Any) -> int | None:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        for method, pattern, limit in self.streamed:
            if scope.get("method") == method and pattern.match(path):
                return limit()
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stream_limit = self._stream_limit(scope)
        limit = MAX_JSON_BYTES if stream_limit is None else stream_limit
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await error_response(errors.PayloadTooLargeError(
                f"request body of {int(length)} bytes is over the {limit}-byte limit"
            ))(scope, receive, send)
            return
        started = False
        upstream = receive
        if stream_limit is None:
            # Read the body here, bounded, so a chunked one cannot slip past the limit;
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
            body, replayed = b"".join(chunks), False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await upstream()  # the disconnect, whenever it comes
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay
        else:
            counted = 0

            async def count() -> Any:
                # the route streams the body on (to disk, to lakeFS): stop it at the limit
                nonlocal counted
                message = await upstream()
                if message["type"] == "http.request":
                    counted += len(message.get("body", b""))
                    if counted > limit:
                        raise errors.PayloadTooLargeError(
                            f"request body is over the {limit}-byte limit")
                return message

            receive = count

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
            known = catalog_unavailable(exc) or exc
            if not isinstance(known, errors.AssetHubError):
                _log.exception("unhandled error")
            await error_response(known)(scope, upstream, send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API + "/") or request.url.path == API


def _add_error_handlers(app: FastAPI, hub: Hub | None) -> None:
    def answer(request: Request, exc: Exception) -> Response:
        """The error protocol's JSON under the API; the console's error page elsewhere."""
        if _is_api(request):
            return error_response(exc)
        from assethub.console import error_page

        return error_page(hub, request, exc)

    @app.exception_handler(errors.AssetHubError)
    async def _domain_error(request: Request, exc: errors.AssetHubError) -> Response:
        return answer(request, exc)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(DisconnectionError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _catalog_error(request: Request, exc: Exception) -> Response:
        known = catalog_unavailable(exc)
        if known is None:
            raise exc  # the Guard's: logged, a 500
        return answer(request, known)

    @app.exception_handler(FileNotFoundError)
    async def _missing_file(request: Request, exc: FileNotFoundError) -> Response:
        return answer(request, errors.NotFoundError("file", str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        if not _is_api(request):
            return answer(request, errors.InvalidReferenceError(f"invalid request: {problems}",
                                                                  part="request", value=""))
        return JSONResponse({"error": {"type": "RequestValidationError",
                                       "message": f"invalid request: {problems}"}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_api(request) and exc.status_code == 404:
            return answer(request, errors.NotFoundError("page", request.url.path))
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
    _add_error_handlers(app, hub)
    principal = authenticator(hub)
    for section in SECTIONS:
        app.include_router(section.router(hub, principal), prefix=API)
    if hub is not None:
        from assethub import console

        console.mount(app, hub, api_prefix=API + "/")  # the web console: every path outside the API
    app.add_middleware(_Guard, streamed=_streamed(hub))
    return app
