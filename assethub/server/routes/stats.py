"""Dataset statistics per version and the sample-level diff of two versions."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations,
# which name the local ``Who``.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from assethub.hub import Hub, Principal
from assethub.hub.stats import DatasetStatistics
from assethub.server.routes._common import ASSET, AssetP, Authenticator, RefQ, json_response


def router(hub: Hub, principal: Authenticator) -> APIRouter:
    r = APIRouter()
    Who = Annotated[Principal, Depends(principal)]
    # hub is None when only the OpenAPI document is rendered
    stats = (DatasetStatistics(hub.catalog, hub.storage, hub.permissions, tmp_dir=hub.tmp_dir)
             if hub is not None else None)

    @r.get(f"{ASSET}/stats")
    def dataset_stats(who: Who, path: AssetP, ref: RefQ = "main",
                      compute: Annotated[bool, Query(
                          description="compute them now if this commit has none yet (the first "
                                      "ask for a commit may take a while); false: 404 then")] = True,
                      ) -> Any:
        assert stats is not None
        return json_response(stats.stats(who, path.at(ref), compute=compute))

    @r.get(f"{ASSET}/sample-diff")
    def sample_diff(who: Who, path: AssetP, left: RefQ, right: RefQ,
                    key: Annotated[str | None, Query(max_length=200, description=(
                        "the column that identifies a table's rows; without it rows are "
                        "compared by content"))] = None) -> Any:
        assert stats is not None
        return json_response(stats.sample_diff(who, path.at(left), path.at(right), key=key))

    return r
