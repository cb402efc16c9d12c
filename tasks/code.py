"""Fetch the training code: a Git repository at a revision (and subpath), and its job spec."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import git
import yaml
from prefect import get_run_logger, task

from assethub.errors import CodeFetchError, JobSpecError
from assethub.gitcred import credential_host
from assethub.params import declare, resolve
from tasks.env import NETWORK, client, home, redact_url

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


def adopt_repo_url(url: str) -> str:
    """``url`` without credentials; one that was in it is handed to the server, which keeps it
    for the caller (and releases it only to the caller's running jobs)."""
    with client() as hub:
        return hub.adopt_git_url(url)


def mirror_path(url: str, owner: str) -> Path:
    """Where the bare mirror of ``url`` for ``owner`` lives: one set of mirrors per user the jobs
    act for, so a repository fetched with one user's credentials never serves another's job."""
    who = owner if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", owner) else \
        "u-" + hashlib.sha256(owner.encode()).hexdigest()[:16]
    return home() / "code-mirrors" / who / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")


@contextmanager
def _git_env(url: str, run_id: str, private: Path) -> Iterator[dict[str, str]]:
    """The environment of git's network commands for ``url``: no prompts and none of the
    machine's credential helpers; when the job's owner keeps a credential for the URL's host,
    git gets it from a credential helper (scoped to that URL) that reads a 0600 file in a
    private directory, removed afterwards. Never in argv, the URL or the mirror's config."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": ""}
    host = credential_host(url)
    secret = client().run_git_credential(run_id) if host and run_id else None
    if secret is None:
        yield env
        return
    private.mkdir(parents=True, exist_ok=True)
    where = Path(tempfile.mkdtemp(prefix=".git-credential-", dir=private))  # 0700
    try:
        file = where / "credential"
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"username={secret.username}\npassword={secret.password}\n")
        scheme = url.split("://", 1)[0].lower()
        env.update({"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_1": f"credential.{scheme}://{host}.helper",
                    "GIT_CONFIG_VALUE_1": f'!f() {{ test "$1" = get && cat {shlex.quote(str(file))}; }}; f'})
        yield env
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _mirror(url: str, refresh: bool, *, owner: str = "", run_id: str = "",
            private: Path | None = None, default_branch: bool = False) -> git.Repo:
    """``owner``'s bare mirror of ``url`` under the Asset Hub home, cloned once and fetched when
    needed (with the credential the run may use, see :func:`_git_env`). A clone's HEAD is the
    remote's default branch, but a fetch does not move it: with ``default_branch`` a refresh also
    asks the remote which branch its HEAD is now and points the mirror's HEAD there."""
    path = mirror_path(url, owner)
    safe = redact_url(url)
    private = private or path.parent
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            for legacy in path.parent.parent.glob("*.git"):  # shared mirrors of before: not per owner
                shutil.rmtree(legacy, ignore_errors=True)
            tmp = path.with_suffix(".tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            with _git_env(url, run_id, private) as env:
                git.Repo.clone_from(url, tmp, mirror=True, env=env)
            tmp.rename(path)
            return git.Repo(path)
        repo = git.Repo(path)
        if refresh:
            with _git_env(url, run_id, private) as env:
                repo.git.fetch("--prune", "--force", "origin", "+refs/*:refs/*", env=env)
                if default_branch:
                    _follow_remote_head(repo, env)
        return repo
    except git.GitCommandError as e:
        # GitPython wraps git's stderr as "\n  stderr: '...'": git's own last words are inside
        detail = [line.strip().removeprefix("stderr:").strip(" '") for line in (e.stderr or "").splitlines()]
        detail = [line for line in detail if line]
        why = next((line for line in reversed(detail) if line.startswith(("fatal:", "error:"))),
                   detail[-1] if detail else f"git exited with {e.status}")
        why = why.replace(url, safe)
        network = any(w in why.lower() for w in ("could not resolve", "timed out", "connection",
                                                  "early eof", "temporary failure"))
        host = credential_host(url)
        if host and any(w in why.lower() for w in ("authentication failed", "could not read username",
                                                   "could not read password", " 401", " 403")):
            why += (f" (the repository needs a credential for {host} that works: "
                    f"`assethub git-credentials set {host}`, or the URL with it once)")
        raise CodeFetchError(f"cannot fetch the code repository {safe}: {why}", url=safe,
                             transient=network) from None


def _follow_remote_head(repo: git.Repo, env: dict[str, str]) -> None:
    """Point the mirror's HEAD at the branch the remote's HEAD names now (``git ls-remote
    --symref origin HEAD``: ``ref: refs/heads/<b>\tHEAD``); left as it is when the remote names
    none (a server that does not advertise it)."""
    listing = str(repo.git.ls_remote("--symref", "origin", "HEAD", env=env))
    for line in listing.splitlines():
        target, _, name = line.partition("\t")
        if name.strip() == "HEAD" and target.startswith("ref: refs/heads/"):
            branch = target.removeprefix("ref: ").strip()
            if repo.git.symbolic_ref("HEAD") != branch:
                repo.git.symbolic_ref("HEAD", branch)
            return


def default_branch(repo: git.Repo) -> str:
    """The branch the mirror's HEAD names (the remote's default branch), "" when detached."""
    try:
        return str(repo.git.symbolic_ref("--short", "HEAD")).strip()
    except git.GitCommandError:
        return ""


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
        limit = spec[job].get("timeout") if isinstance(spec.get(job), dict) else None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float)
                                  or not 0 < limit < 10**8):
            raise JobSpecError(f"{SPEC_FILE} in {where}: '{job}.timeout' must be a number of seconds "
                               f"above 0, not {limit!r}")
    if not isinstance(spec.get("params") or {}, dict):
        raise JobSpecError(f"{SPEC_FILE} in {where}: 'params' must be a mapping of name: declaration")
    declare(spec.get("params"), f"{SPEC_FILE} in {where}")  # typed declarations, checked here
    return spec


@task(name="fetch_code", **NETWORK)
def fetch_code(repo: str, revision: str, subpath: str, dest: str, run_id: str = "",
               owner: str = "") -> Code:
    """Check out ``repo`` at ``revision`` into ``dest``; the code dir is ``dest/subpath``.

    ``revision`` "" (or ``HEAD``) is the repository's default branch (the remote's HEAD, asked
    again each time: it may change); the code's ``revision`` is then that branch's name.
    A local bare mirror per URL and ``owner`` (the user the run ``run_id`` acts for) is reused:
    a commit sha already in it needs no network. Git gets the owner's credential for the host,
    if any, from the server (see :func:`_git_env`).
    """
    logger = get_run_logger()
    safe = redact_url(repo)
    if not repo.strip():
        raise CodeFetchError("no code repository given (--repo URL or path)", url="")
    revision = revision.strip() or "HEAD"
    default = revision == "HEAD"
    sub = PurePosixPath(subpath.strip("/")) if subpath.strip("/") else PurePosixPath()
    if ".." in sub.parts or sub.is_absolute():
        raise CodeFetchError(f"subpath {subpath!r} must stay inside the repository", url=safe)
    private = Path(dest).parent  # the job's own directory
    mirror = _mirror(repo, refresh=False, owner=owner, run_id=run_id, private=private)
    sha = _resolve(mirror, revision)
    is_sha = len(revision) >= 7 and all(c in "0123456789abcdef" for c in revision.lower())
    if sha is None or not (is_sha and sha.startswith(revision.lower())):
        # branches and tags move: ask the remote
        mirror = _mirror(repo, refresh=True, owner=owner, run_id=run_id, private=private,
                         default_branch=default)
        sha = _resolve(mirror, revision)
    if sha is None:
        raise CodeFetchError(f"revision {revision!r} not found in {safe}" if not default else
                             f"the default branch of {safe} has no commit (an empty repository?)",
                             url=safe)
    if default:
        revision = default_branch(mirror) or revision  # recorded by name: e.g. master
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


def job_time_limit(code: Code, job: str) -> float | None:
    """The time limit assethub.yaml sets for ``job`` (``train: {command: ..., timeout: 3600}``),
    in seconds; None when it sets none."""
    entry = code.spec.get(job)
    limit = entry.get("timeout") if isinstance(entry, dict) else None
    return float(limit) if limit is not None else None


def job_params(code: Code, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The run's parameters checked against assethub.yaml's declarations (see
    :mod:`assethub.params`) over their defaults; refused, before any data is fetched, when a
    name is unknown or a value does not fit. Without declarations they pass as given."""
    where = f"{SPEC_FILE} of {code.url}@{code.sha[:12]}" + (f"/{code.subpath}" if code.subpath else "")
    return resolve(declare(code.spec.get("params"), where), overrides, where=where)
