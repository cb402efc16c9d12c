"""Datasets: the version graph, restoring a version as the new main, previews of files."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from assethub._json import jsonable
from assethub.hub import Hub, Principal
from assethub.hub.datasets import MAX_ROWS, Datasets
from assethub.server.routes._common import ASSET, AssetP, Authenticator, RefQ, StrictBody


class RestoreIn(StrictBody):
    version: str = Field(max_length=200, description="a published version (tag) or a commit id")
    message: str = Field("", max_length=10_000)


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]
    # (hub is None when only the OpenAPI document is rendered)
    datasets = Datasets(hub.versions) if hub is not None else None

    def ds() -> Datasets:
        assert datasets is not None
        return datasets

    @r.get(f"{ASSET}/versions")
    def version_graph(who: Who, path: AssetP,
                      limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Any:
        """The dataset's version graph: main's commits with what each was based on, the
        published versions, main's head (``view``)."""
        return jsonable(ds().version_graph(who, path, limit=limit))

    @r.post(f"{ASSET}/restore", status_code=201)
    def restore(who: Who, path: AssetP, body: RestoreIn) -> Any:
        """Make a published version (or commit) the content of main in one new commit
        (``edit``); history and published versions stay."""
        return jsonable(ds().restore(who, path, body.version, message=body.message))

    @r.get(f"{ASSET}/head")
    async def head(who: Who, path: AssetP, ref: RefQ = "main",
                   file: Annotated[str | None, Query(max_length=1024)] = None,
                   n: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 10) -> Any:
        """The first rows of a table, lines of a text or an image's size (``file``), or the
        first ``n`` files of the version each previewed; read in byte ranges (``view``)."""
        return jsonable(await ds().head(who, path.at(ref), file, n=n))

    return r
