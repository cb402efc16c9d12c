"""Fetch the training code: a Git repository at a revision (and subpath), and its job spec."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import git
import yaml
from prefect import get_run_logger, task

from assethub.errors import CodeFetchError, JobSpecError
from tasks.env import NETWORK, home, redact_url

SPEC_FILE = "assethub.yaml"
_SPEC_KEYS = {"train", "evaluate", "params", "name", "description"}


@dataclass(frozen=True)
class Code:
    """A checked-out revision: where it is, and exactly which commit it is."""

    url: str  # redacted: safe to log and record
    revision: str
    subpath: str
    sha: str
    dir: str  # the code directory (the subpath inside the checkout)
    spec: dict[str, Any] = field(default_factory=dict)  # assethub.yaml, {} when absent


def _mirror(url: str, refresh: bool) -> git.Repo:
    """A bare mirror of ``url`` under the Asset Hub home, cloned once and fetched when needed."""
    path = home() / "code-mirrors" / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")
    safe = redact_url(url)
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp)
            repo = git.Repo.clone_from(url, tmp, mirror=True)
            tmp.rename(path)
            return git.Repo(path)
        repo = git.Repo(path)
        if refresh:
            repo.git.fetch("--prune", "--force", "origin", "+refs/*:refs/*")
        return repo
    except git.GitCommandError as e:
        detail = (e.stderr or "").strip().splitlines()
        why = detail[-1].strip() if detail else f"git exited with {e.status}"
        why = why.replace(url, safe)
        network = any(w in why.lower() for w in ("could not resolve", "timed out", "connection",
                                                  "early eof", "temporary failure"))
        raise CodeFetchError(f"cannot fetch the code repository {safe}: {why}", url=safe,
                             transient=network) from None


def _resolve(repo: git.Repo, revision: str) -> str | None:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{revision}^{{commit}}"))
    except git.GitCommandError:
        return None


def load_spec(code_dir: Path, where: str) -> dict[str, Any]:
    """``assethub.yaml`` of the code, checked; {} when the file is absent."""
    f = code_dir / SPEC_FILE
    if not f.is_file():
        return {}
    try:
        spec = yaml.safe_load(f.read_text()) or {}
    except yaml.YAMLError as e:
        raise JobSpecError(f"{SPEC_FILE} in {where} is not valid YAML: {e}") from None
    if not isinstance(spec, dict):
        raise JobSpecError(f"{SPEC_FILE} in {where} must be a mapping with train / evaluate / params")
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise JobSpecError(f"{SPEC_FILE} in {where} has unknown key(s) {', '.join(sorted(unknown))}; "
                           f"expected {', '.join(sorted(_SPEC_KEYS))}")
    for job in ("train", "evaluate"):
        entry = spec.get(job)
        if isinstance(entry, str):
            spec[job] = {"command": entry}
        elif entry is not None and not (isinstance(entry, dict) and isinstance(entry.get("command"), str)
                                        and entry["command"].strip()):
            raise JobSpecError(f"{SPEC_FILE} in {where}: '{job}' needs a 'command' string")
    if not isinstance(spec.get("params", {}), dict):
        raise JobSpecError(f"{SPEC_FILE} in {where}: 'params' must be a mapping of defaults")
    return spec


@task(name="fetch_code", **NETWORK)
def fetch_code(repo: str, revision: str, subpath: str, dest: str) -> Code:
    """Check out ``repo`` at ``revision`` into ``dest``; the code dir is ``dest/subpath``.

    A local bare mirror per URL is reused: a commit sha already in it needs no network.
    """
    logger = get_run_logger()
    safe = redact_url(repo)
    if not repo.strip():
        raise CodeFetchError("no code repository given (--repo URL or path)", url="")
    revision = revision.strip() or "HEAD"
    sub = PurePosixPath(subpath.strip("/")) if subpath.strip("/") else PurePosixPath()
    if ".." in sub.parts or sub.is_absolute():
        raise CodeFetchError(f"subpath {subpath!r} must stay inside the repository", url=safe)
    mirror = _mirror(repo, refresh=False)
    sha = _resolve(mirror, revision)
    is_sha = len(revision) >= 7 and all(c in "0123456789abcdef" for c in revision.lower())
    if sha is None or not (is_sha and sha.startswith(revision.lower())):
        mirror = _mirror(repo, refresh=True)  # branches and tags move: ask the remote
        sha = _resolve(mirror, revision)
    if sha is None:
        raise CodeFetchError(f"revision {revision!r} not found in {safe}", url=safe)
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    try:
        mirror.archive(buf, sha, format="tar", **({"path": str(sub)} if str(sub) != "." else {}))
    except git.GitCommandError:
        raise CodeFetchError(f"subpath {subpath!r} does not exist in {safe} at {sha[:12]}",
                             url=safe) from None
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        tar.extractall(out, filter="data")
    code_dir = out / sub
    if not code_dir.is_dir():
        raise CodeFetchError(f"subpath {subpath!r} in {safe} at {sha[:12]} is not a directory", url=safe)
    where = f"{safe}@{sha[:12]}" + (f"/{sub}" if str(sub) != "." else "")
    spec = load_spec(code_dir, where)
    subpath = str(sub) if str(sub) != "." else ""
    logger.info("code %s at %s (%s)%s", safe, revision, sha[:12], f", subpath {subpath}" if subpath else "")
    return Code(safe, revision, subpath, sha, str(code_dir), spec)


def job_command(code: Code, job: str, explicit: str = "") -> str:
    """The command for ``job`` (train / evaluate): explicit, else from assethub.yaml."""
    if explicit.strip():
        return explicit.strip()
    where = f"{code.url}@{code.sha[:12]}" + (f"/{code.subpath}" if code.subpath else "")
    if not code.spec:
        raise JobSpecError(f"no {SPEC_FILE} in {where}: add one (train / evaluate / params) "
                           "or pass an explicit command (--command)")
    entry = code.spec.get(job)
    if not entry:
        raise JobSpecError(f"{SPEC_FILE} in {where} has no '{job}' command; add "
                           f"'{job}: {{command: ...}}' or pass --command")
    return str(entry["command"]).strip()


def job_params(code: Code, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """assethub.yaml's defaults overridden by the run's parameters."""
    params = dict(code.spec.get("params") or {})
    params.update(overrides or {})
    return params
