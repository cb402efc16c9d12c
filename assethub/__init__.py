"""Asset Hub: versioned datasets and models on lakeFS, shared by a team.

``from assethub import Client`` is the SDK; names load on first use so that ``import assethub``
stays light; ``assethub.load("<owner>/model/<folder>/<name>:<ref>")`` returns a ready model.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AddFile", "AssetPath", "AssetRef", "Client", "DeleteFile", "load"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from assethub.client import Client

        return Client
    if name in ("AddFile", "DeleteFile"):
        from assethub import wire

        return getattr(wire, name)
    if name == "load":  # MLflow is imported by the call, not by this
        from assethub.loading import load

        return load
    if name in ("AssetPath", "AssetRef"):
        from assethub import refs

        return getattr(refs, name)
    raise AttributeError(f"module 'assethub' has no attribute {name!r}")
