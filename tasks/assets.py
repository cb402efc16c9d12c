"""Bring asset versions to the job: datasets and base models, pinned to commits, cached; and
what the job needs to know about a version (its model commit, its lineage, whether it may write it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task

from assethub.refs import AssetRef
from assethub.wire import LineageView
from tasks.env import NETWORK, client, make_read_only


@dataclass(frozen=True)
class Fetched:
    ref: str  # as asked for
    commit: str
    dir: str
    files: int
    bytes_transferred: int
    split: str = ""  # datasets: ASSETHUB_SPLIT


def _split(ref: AssetRef, data_dir: Path) -> str:
    meta = client().get_asset(ref.path).dataset
    if meta is None:
        return ""
    if meta.test_set_path:
        return str(data_dir / meta.test_set_path.strip("/"))
    if meta.split_ratio:
        return str(meta.split_ratio)
    return ""


@task(name="resolve_ref", **NETWORK)
def resolve_ref(ref: str) -> str:
    """The commit id a reference points at now."""
    return client().resolve(ref)


def _fetch(ref: str, commit: str, dest: str, what: str) -> tuple[AssetRef, Path, int, int]:
    logger = get_run_logger()
    r = AssetRef.coerce(ref)
    pinned = r.path.at(commit or client().resolve(r))
    out = Path(dest)
    started = time.perf_counter()
    result = client().download(pinned, out)
    make_read_only(out)
    logger.info("%s %s (%s): %d files, %d bytes transferred (the rest from cache) in %.2fs",
                what, r, pinned.ref[:12], result.files, result.bytes_transferred,
                time.perf_counter() - started)
    return pinned, out, result.files, result.bytes_transferred


@task(name="fetch_dataset", **NETWORK)
def fetch_dataset(ref: str, commit: str, dest: str) -> Fetched:
    """Download the dataset version ``ref`` pinned at ``commit`` (read-only) and its split."""
    pinned, out, files, moved = _fetch(ref, commit, dest, "dataset")
    return Fetched(ref, pinned.ref, str(out), files, moved, _split(pinned, out))


@task(name="fetch_model", **NETWORK)
def fetch_model(ref: str, commit: str, dest: str) -> Fetched:
    """Download the model version ``ref`` pinned at ``commit`` (read-only)."""
    pinned, out, files, moved = _fetch(ref, commit, dest, "model")
    return Fetched(ref, pinned.ref, str(out), files, moved)


@task(name="read_lineage", **NETWORK)
def read_lineage(ref: str) -> LineageView:
    """What produced version ``ref``: the commit holding its model, the job's lineage, its evaluations."""
    return client().lineage(ref)


@task(name="resolve_model_commit", **NETWORK)
def resolve_model_commit(ref: str) -> str:
    """The commit holding the model files ``ref`` has (evaluation and merge commits point back to it)."""
    return client().lineage(ref).model_commit


@task(name="is_editable_branch", **NETWORK)
def is_editable_branch(ref: str) -> bool:
    """Whether ``ref`` names a branch (not a tag or a commit) that the caller may change."""
    r = AssetRef.coerce(ref)
    hub = client()
    return r.ref in {b.name for b in hub.list_branches(r.path)} and hub.role(r.path) in ("edit", "owner")
