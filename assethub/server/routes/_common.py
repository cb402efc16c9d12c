"""What every section's routes share: authentication, path parameters, JSON answers."""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from assethub import errors
from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.refs import AssetPath, FolderPath

ASSET = "/assets/{owner}/{kind}/{folder}/{name}"
FOLDER = "/folders/{owner}/{kind}/{folder}"

Authenticator = Callable[[Request], Awaitable[Principal]]

# A route that streams its request body (to disk or to lakeFS) instead of holding it, read only
# once the caller is authenticated and authorized: (method, path under API, the most it may
# take). Every other route's body is read and held first, up to 1 MiB (server.app._Guard).
StreamedBody = tuple[str, str, Callable[[], int]]


def authenticator(hub: Hub) -> Authenticator:
    """The dependency that turns a request's ``Authorization: Bearer`` token into its caller."""

    # A coroutine so that FastAPI does not hop to a worker thread for each request;
    # the token look-up is one indexed query.
    async def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and scheme.lower() != "bearer":
            raise errors.AuthenticationError("use 'Authorization: Bearer <token>'")
        who = hub.authenticate(token.strip() or None)
        if who.job_run_id is not None:  # a job token: only what its run needs
            from assethub.server.routes import _job_scope

            await _job_scope.check(hub, who, request)
        return who

    return principal


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _rows(values: list[Any]) -> list[Any]:
    """``jsonable(values)`` for a list of one dataclass (a listing's rows), the same JSON in
    a fifth of the time: the field names looked up once per class, plain values kept as they
    are, only the others (times, paths, nested values) through :func:`jsonable`."""
    cls = type(values[0])
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    rows = []
    for v in values:
        if type(v) is not cls:
            return [jsonable(v) for v in values]
        row = {}
        for name in names:
            x = getattr(v, name)
            row[name] = x if type(x) in _PLAIN else jsonable(x)
        rows.append(row)
    return rows


def json_response(value: Any) -> JSONResponse:
    """A 200 response, built without FastAPI's generic encoder (lists get long)."""
    if (isinstance(value, list) and value and dataclasses.is_dataclass(value[0])
            and not isinstance(value[0], type)):
        return JSONResponse(_rows(value))
    return JSONResponse(jsonable(value))


class StrictBody(BaseModel):
    """A request body that refuses unknown fields."""

    model_config = {"extra": "forbid"}


async def asset_path(owner: str, kind: str, folder: str, name: str) -> AssetPath:
    if kind not in ("model", "dataset"):
        raise errors.InvalidReferenceError(
            f"invalid asset type {kind!r}: must be 'model' or 'dataset'",
            part="asset type", value=kind)
    return AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")


async def folder_path(owner: str, kind: str, folder: str) -> FolderPath:
    return FolderPath.parse(f"{owner}/{kind}/{folder}")


AssetP = Annotated[AssetPath, Depends(asset_path)]
FolderP = Annotated[FolderPath, Depends(folder_path)]
RefQ = Annotated[str, Query(max_length=200, description="branch, tag or commit id")]
