"""Deprecated: the hub moved to :mod:`assethub.hub` (a facade over its components).

This module re-exports the names people imported from it, so old imports keep working; import
from :mod:`assethub.hub` instead. ("Service" in this project means a served model:
:mod:`assethub.serving`.)
"""

import warnings

from assethub.hub import *  # noqa: F403
from assethub.hub import (  # noqa: F401  # the names imported from here before the split
    ANONYMOUS,
    ROLES,
    AssetView,
    AuditView,
    DatasetMeta,
    EvaluationView,
    FolderView,
    Hub,
    Limits,
    LineageView,
    Principal,
    RunView,
    ShareView,
    TokenView,
    UserView,
)
from assethub.hub import __all__ as __all__

warnings.warn("assethub.service is deprecated: import from assethub.hub", DeprecationWarning,
              stacklevel=2)
