"""Console pages: change (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

from assethub.hub import Hub


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    return r
