"""Git credentials: a user's secret for the repositories on a host, kept for jobs to use.

A credential is stored per (user, host), encrypted with the server's key (Fernet; the key is
``ASSETHUB_GIT_CREDENTIALS_KEY`` or a 0600 file in the server's directory). No API returns it:
listing shows hosts only. It is released (and the release audited) to one caller only: the
creator of a pending or running job whose code URL is on that host, for the user the job acts
for (:attr:`Run.owner`, else its creator). URLs that carry credentials are split where they
enter (:meth:`GitCredentials.adopt_url`), so only the clean URL is ever recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from assethub.catalog import Catalog, GitCredential, Run
from assethub.errors import ForbiddenError, InvalidReferenceError, NotFoundError
from assethub.gitcred import GitSecret, credential_host, split_credentials
from assethub.hub._rows import aware
from assethub.hub.audit import AuditLog
from assethub.hub.identity import Principal, require_user
from assethub.wire import GitCredentialView

KEY_VARIABLE = "ASSETHUB_GIT_CREDENTIALS_KEY"
_LIVE = ("pending", "running")


def _host(value: str) -> str:
    """``host[:port]`` from a host or an http(s) URL; a clear error for anything else."""
    raw = value.strip()
    host = credential_host(raw if "://" in raw else f"https://{raw}")
    if not host or len(host) > 255 or any(c in host for c in "/?#@ "):
        raise InvalidReferenceError("a git credential's host is a host name (with :port when not the "
                                    "default), e.g. git.example.org", part="host", value=raw[:100])
    return host


def _key(key_file: Path) -> bytes:
    env = os.environ.get(KEY_VARIABLE, "").strip()
    if env:
        return env.encode()
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server process made it first
            return key_file.read_bytes().strip()
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return key_file.read_bytes().strip()


class GitCredentials:
    """Per-user git credentials: set, list (hosts only), delete, adopt from a URL, release to a job."""

    def __init__(self, catalog: Catalog, audit: AuditLog, key_file: Path) -> None:
        self.catalog = catalog
        self.audit = audit
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def _crypt(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(_key(self._key_file))
        return self._fernet

    def _store(self, user: str, host: str, username: str, password: str) -> GitCredentialView:
        if not username and not password:
            raise InvalidReferenceError("a git credential needs a user name or token", part="username",
                                        value="")
        if any("\n" in v or "\0" in v for v in (username, password)):
            raise InvalidReferenceError("a git credential may not hold a newline", part="username",
                                        value="")
        token = self._crypt().encrypt(json.dumps({"username": username, "password": password}).encode())
        with self.catalog.session() as s:
            row = s.scalar(select(GitCredential).where(GitCredential.user_name == user,
                                                       GitCredential.host == host))
            if row is None:
                row = GitCredential(user_name=user, host=host, secret=token.decode())
                s.add(row)
            else:
                row.secret = token.decode()
            s.flush()
            return GitCredentialView(row.host, aware(row.created_at) or row.created_at,
                                     aware(row.updated_at) or row.updated_at)

    def set_git_credential(self, who: Principal, host: str, username: str,
                           password: str = "") -> GitCredentialView:
        """Keep the caller's credential for ``host`` (a host or a URL), replacing an older one.
        A token alone goes in ``username`` (``https://TOKEN@host`` means the same)."""
        h = _host(host)
        with self.audit.audited(who, "git-credential.set", h):
            return self._store(require_user(who), h, username, password)

    def list_git_credentials(self, who: Principal) -> list[GitCredentialView]:
        """The hosts the caller keeps a credential for (never the credentials)."""
        me = require_user(who)
        with self.catalog.session() as s:
            rows = s.scalars(select(GitCredential).where(GitCredential.user_name == me)
                             .order_by(GitCredential.host))
            return [GitCredentialView(r.host, aware(r.created_at) or r.created_at,
                                      aware(r.updated_at) or r.updated_at) for r in rows]

    def delete_git_credential(self, who: Principal, host: str) -> None:
        h = _host(host)
        with self.audit.audited(who, "git-credential.delete", h):
            me = require_user(who)
            with self.catalog.session() as s:
                row = s.scalar(select(GitCredential).where(GitCredential.user_name == me,
                                                           GitCredential.host == h))
                if row is None:
                    raise NotFoundError("git credential", h)
                s.delete(row)

    def adopt_url(self, who: Principal, url: str) -> str:
        """``url`` without credentials; a credential that was in it is kept for the caller first."""
        clean, secret = split_credentials(url)
        if secret is not None:
            with self.audit.audited(who, "git-credential.set", secret.host):
                self._store(require_user(who), secret.host, secret.username, secret.password)
        return clean

    def run_git_credential(self, who: Principal, run_id: str) -> GitSecret | None:
        """The credential a running job needs for its code: only to the job's creator, while the
        run is pending or running, for the host of its code URL, of the user it acts for (None
        when that user keeps none for the host: the repository is then fetched without one)."""
        with self.audit.audited(who, "git-credential.use", f"run {run_id[:64]}"):
            me = require_user(who)
            with self.catalog.session() as s:
                r = s.get(Run, run_id) if len(run_id) <= 32 else None
                if r is None or r.created_by != me:
                    raise NotFoundError("run", run_id[:64])
                if r.state not in _LIVE:
                    raise ForbiddenError(f"run {run_id} is {r.state}: git credentials go to running jobs "
                                         "only", needed="running job")
                host, owner = credential_host(r.code_url), r.owner or r.created_by
                row = s.scalar(select(GitCredential).where(GitCredential.user_name == owner,
                                                           GitCredential.host == host)) if host else None
                if row is None:
                    return None
                secret = row.secret
            try:
                data = json.loads(self._crypt().decrypt(secret.encode()))
            except InvalidToken:
                raise NotFoundError("git credential", f"{host} (stored under another server key; "
                                    "set it again)") from None
            return GitSecret(host, str(data.get("username", "")), str(data.get("password", "")))
