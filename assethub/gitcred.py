"""Credentials in Git repository URLs (stdlib only).

A URL such as ``https://user:token@git.example.org/ml/code.git`` (or ``https://token@...``) is
split where it enters Asset Hub — the CLI, the SDK, the REST API, a follow, a flow's command
line: the clean URL (``https://git.example.org/ml/code.git``) is what is stored, logged,
returned and passed as a flow parameter; the credential goes to the server, which keeps it for
its owner by host (``git.example.org``, with its port when not the default) and releases it only
to a running job acting for that owner. The job hands it to git through a credential helper
(see ``tasks.code``), never on a command line or in a mirror's ``.git/config``.

Only ``http``/``https`` URLs carry credentials this way; ``ssh`` user names are not secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["GitSecret", "credential_host", "has_credentials", "redact_url", "split_credentials"]

_SCHEMES = ("http", "https")


@dataclass(frozen=True, repr=False)
class GitSecret:
    """A user name and password (or a token as the user name, password empty) for one host."""

    host: str
    username: str
    password: str = ""

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return f"GitSecret(host={self.host!r}, username=***, password=***)"


def _parts(url: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(scheme, host[:port], netloc without userinfo, username, password) of an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port and port != {"http": 80, "https": 443}[parts.scheme.lower()]:
        host += f":{port}"
    return parts.scheme.lower(), host, parts.netloc.rpartition("@")[2], parts.username, parts.password


def credential_host(url: str) -> str:
    """``host[:port]`` of an http(s) URL (the key credentials are kept by); "" for anything else."""
    p = _parts(url)
    return p[1] if p else ""


def has_credentials(url: str) -> bool:
    p = _parts(url)
    return bool(p and (p[3] is not None or p[4] is not None))


def split_credentials(url: str) -> tuple[str, GitSecret | None]:
    """``url`` without its userinfo, and the credential that was in it (None when none was)."""
    p = _parts(url)
    if not p or (p[3] is None and p[4] is None):
        return url, None
    _scheme, host, netloc, username, password = p
    parts = urlsplit(url.strip())
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, GitSecret(host, unquote(username or ""), unquote(password or ""))


def redact_url(url: str) -> str:
    """The URL with any userinfo replaced by ``***``: fit for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc or not parts.scheme or parts.scheme.lower() in ("ssh", "git+ssh"):
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path, parts.query,
                       parts.fragment))
