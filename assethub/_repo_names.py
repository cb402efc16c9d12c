"""lakeFS repository names for assets.

lakeFS accepts only ``[a-z0-9][a-z0-9-]{2,62}``, while asset names may be long and in any
script. A name is derived once, when the asset is created: a readable ASCII slug of the path,
cut to fit, and a hash of the full path so that different paths never share a repository.
The hub's catalog then keeps the name in the asset's record (with a salt: its own repository
per created asset) and storage finds it there; standalone Storage finds it again from the
path, checked against the repository's metadata (:meth:`Storage.derived_repository`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from assethub.refs import AssetPath

PREFIX = "ah-"
_HASH_CHARS = 12
_MAX = 63


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def repository_name(path: AssetPath, *, salt: str = "") -> str:
    """The repository for ``path``; with a ``salt`` (the catalog's choice) one of its own.

    Without a catalog the name must be found again from the path alone, so it is derived
    from it; with one, a salt keeps a re-created or renamed path from meeting an old
    repository of the same name.
    """
    digest = hashlib.sha256(f"{path}{salt}".encode()).hexdigest()[:_HASH_CHARS]
    kind = "m" if path.kind.value == "model" else "d"
    slug = "-".join(p for p in (_slug(path.owner), kind, _slug(path.folder), _slug(path.name)) if p)
    room = _MAX - len(PREFIX) - 1 - _HASH_CHARS
    slug = slug[:room].rstrip("-")
    return f"{PREFIX}{slug}-{digest}"
