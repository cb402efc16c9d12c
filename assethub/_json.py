"""Plain JSON for Asset Hub's dataclasses: paths and refs as their strings, times in ISO 8601.

Shared by the server (responses) and the CLI (``--json``), so both print the same shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from assethub.refs import AssetPath, AssetRef, FolderPath


def jsonable(value: Any) -> Any:
    if isinstance(value, AssetPath | AssetRef | FolderPath | Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
