"""What may be done to an asset's refs: the one place that knows the dataset rules.

A dataset has only ``main``, and its tags are published versions that never move or go; a
model has any branches and tags, except that ``main`` stays. Storage calls these checks
before it touches lakeFS, so every caller (the Hub, follows, the SDK's direct storage users)
gets the same refusals in the same words.
"""

from __future__ import annotations

from assethub.errors import NotAllowedError
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef, validate_branch_name


def writable_branch(r: AssetRef) -> str:
    """The branch a write to ``r`` goes to; a dataset's only branch is ``main``."""
    validate_branch_name(r.ref)
    if r.path.is_dataset and r.ref != DEFAULT_BRANCH:
        raise NotAllowedError(
            f"datasets have only the '{DEFAULT_BRANCH}' branch; cannot write to {r}"
        )
    return r.ref


def may_create_branch(path: AssetPath, name: str) -> None:
    validate_branch_name(name)
    if path.is_dataset:
        raise NotAllowedError(
            f"datasets have only the '{DEFAULT_BRANCH}' branch; {path} cannot have "
            f"branch {name!r} (tag a version instead)"
        )


def may_delete_branch(path: AssetPath, name: str) -> None:
    validate_branch_name(name)
    if name == DEFAULT_BRANCH:
        raise NotAllowedError(f"the '{DEFAULT_BRANCH}' branch of {path} cannot be deleted")


def may_delete_tag(path: AssetPath, name: str) -> None:
    if path.is_dataset:
        raise NotAllowedError(
            f"tag {name!r} of dataset {path} is a published version and cannot be deleted"
        )


#: lakeFS runs the action files under this prefix on every commit and merge of the branch that
#: holds them (webhooks to any address, Lua). Only Asset Hub's own action goes there
#: (:meth:`assethub.storage.Storage.install_action`); nothing else reads or writes it.
ACTIONS_PREFIX = "_lakefs_actions/"


def is_reserved(path: str) -> bool:
    """Whether ``path`` (an object path or a listing prefix) names lakeFS's actions or lies
    under them: ``_lakefs_actions``, ``_lakefs_actions/...``."""
    return path == ACTIONS_PREFIX.rstrip("/") or path.startswith(ACTIONS_PREFIX)


def user_path(path: str, what: str = "use") -> str:
    """``path``, unless it is under the reserved prefix: then a refusal naming the prefix,
    whoever asks (admins too)."""
    if is_reserved(path):
        raise NotAllowedError(
            f"cannot {what} {path!r}: '{ACTIONS_PREFIX}' is reserved for lakeFS actions, which "
            "Asset Hub installs itself (they run on every commit); choose another path"
        )
    return path


def covers_reserved(prefix: str) -> bool:
    """Whether a listing of ``prefix`` could include reserved paths (e.g. '' or '_lake')."""
    return ACTIONS_PREFIX.startswith(prefix) or is_reserved(prefix)
