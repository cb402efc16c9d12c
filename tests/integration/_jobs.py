"""Shared set-up for job tests: MLflow tracking server, Prefect test harness, a signed-in
user with a model and a dataset folder, and Git repositories made from examples/."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from assethub.client import Client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def git_repo(source: Path, dest: Path) -> tuple[str, str]:
    """A real Git repository holding a copy of ``source``; (its path, its HEAD sha)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "training code"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dest, check=True, capture_output=True,
                         text=True).stdout.strip()
    return str(dest), sha


@dataclass
class JobWorld:
    hub: Client
    user: str
    token: str
    model: str  # a model asset
    dataset: str  # dataset ref (published tag)
    dataset_commit: str
    repo: str
    sha: str
