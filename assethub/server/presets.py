"""The preset algorithms: the training code that ships with Asset Hub, registered when the
server starts.

The presets' directories of ``examples/`` (:data:`assethub.presets.PRESETS`) become one local
Git repository under the server's directory, each preset its subpath, committed with a fixed
author and date and no parent: the same content gives the same commit, so registering again
changes nothing, and changed code makes a new version of each preset pinned to the new commit.
Every commit made stays reachable (a tag each), so older versions keep working.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import IntegrityError

from assethub.errors import AlreadyExistsError
from assethub.hub import Hub, Principal
from assethub.presets import PRESETS, Preset, examples_dir

__all__ = ["build_preset_repository", "register_presets"]

_log = logging.getLogger("assethub.server.presets")
_IGNORED = ("__pycache__/", "*.pyc", ".venv/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
            "lightning_logs/", "mlruns/", "*.ckpt")
_FIXED = {"GIT_AUTHOR_NAME": "Asset Hub", "GIT_AUTHOR_EMAIL": "presets@assethub.invalid",
          "GIT_COMMITTER_NAME": "Asset Hub", "GIT_COMMITTER_EMAIL": "presets@assethub.invalid",
          "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00"}


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, work_tree: Path | None = None) -> str:
    cmd = ["git", f"--git-dir={repo}", *([f"--work-tree={work_tree}"] if work_tree else []), *args]
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(cmd, env={**base, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo),
                                    **(env or {})}, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def build_preset_repository(repo: Path, presets: list[Preset]) -> str:
    """Commit the ``presets``' directories of ``examples/`` into the bare repository ``repo``
    (made if missing); the commit's sha (the same for the same content)."""
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "--bare", "--quiet", "--initial-branch=main")
    (repo / "info").mkdir(exist_ok=True)
    (repo / "info" / "exclude").write_text("\n".join(_IGNORED) + "\n")
    with tempfile.TemporaryDirectory() as d:
        env = {**_FIXED, "GIT_INDEX_FILE": str(Path(d) / "index")}
        _git(repo, "add", "--all", "--", *(p.example for p in presets), env=env, work_tree=examples_dir())
        tree = _git(repo, "write-tree", env=env)
        sha = _git(repo, "commit-tree", tree, "-m", "Asset Hub's preset training code", env=env)
    _git(repo, "update-ref", "refs/heads/main", sha)
    _git(repo, "update-ref", f"refs/tags/presets-{sha[:12]}", sha)  # older versions stay reachable
    return sha


def _spec(p: Preset) -> dict[str, Any]:
    data = yaml.safe_load((p.dir / "assethub.yaml").read_text()) or {}
    return data if isinstance(data, dict) else {}


def _command(spec: dict[str, Any], job: str) -> str:
    entry = spec.get(job)
    return str(entry.get("command", "") if isinstance(entry, dict) else entry or "")


def register_presets(hub: Hub, admin: str, home: Path) -> dict[str, str]:
    """Register each preset whose code is installed as an admin preset (skipping, with a log
    line, one whose directory is missing); what happened to each: registered, updated, present."""
    present = [p for p in PRESETS if (p.dir / "assethub.yaml").is_file()]
    for p in PRESETS:
        if p not in present:
            _log.info("preset %s skipped: its code %s is not installed", p.name, p.dir)
    if not present:
        return {}
    repo = home / "server" / "preset-code.git"
    sha = build_preset_repository(repo, present)
    who = Principal(admin, is_admin=True)
    done = {}
    for p in present:
        spec = _spec(p)
        fields: dict[str, Any] = dict(
            code_url=str(repo), code_revision=sha, code_subpath=p.example,
            task_type=p.task_type, params=spec.get("params") or {},
            train_command=_command(spec, "train"), evaluate_command=_command(spec, "evaluate"),
            description=str(spec.get("description") or "") + f" Trains on {p.data}.")
        try:
            done[p.name] = hub.algorithms.ensure_preset(who, p.name, **fields)
        except (AlreadyExistsError, IntegrityError):
            # another server on the catalog registered it between our read and our write
            # (replicas starting together): read again, which finds theirs
            done[p.name] = hub.algorithms.ensure_preset(who, p.name, **fields)
    return done
