"""Where the SDK and CLI find the server and the caller's token, and where Asset Hub keeps
its local state (stdlib only).

``ASSETHUB_URL`` / ``ASSETHUB_TOKEN`` win; otherwise the file ``$ASSETHUB_CONFIG``
(default ``~/.config/assethub/config.json``, mode 0600) written by ``assethub login`` / ``up``.
The URL may list several server replicas, comma-separated (:func:`server_urls`): the client
tries the next when one cannot be reached.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8780"


def service_user() -> str:
    """The user the Prefect worker acts as (runs started from the Prefect UI act as it):
    ASSETHUB_SERVICE_USER, default ``prefect``."""
    return os.environ.get("ASSETHUB_SERVICE_USER", "prefect")


def home() -> Path:
    """The Asset Hub home, ``$ASSETHUB_HOME`` (default ``~/.assethub``): the server's and the
    embedded stack's state, the download cache, job directories. The one definition of it."""
    return Path(os.environ.get("ASSETHUB_HOME") or Path.home() / ".assethub").expanduser().absolute()


def config_path() -> Path:
    env = os.environ.get("ASSETHUB_CONFIG")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "assethub" / "config.json"


def server_urls(url: str) -> list[str]:
    """The servers a URL setting names: one, or several replicas comma-separated
    (``http://a:8780,http://b:8780``), each without its trailing slash, in order, once each.
    ValueError for an empty list or an entry that is not an http(s) URL."""
    urls: list[str] = []
    for part in url.split(","):
        u = part.strip().rstrip("/")
        if not u:
            continue
        scheme, sep, rest = u.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in u):
            shown = u if "@" not in u else scheme + "://***@" + u.rpartition("@")[2]
            raise ValueError(f"not a server URL: {shown!r} (http://HOST:PORT, several comma-separated)")
        if u not in urls:
            urls.append(u)
    if not urls:
        raise ValueError("no server URL given (http://HOST:PORT, several comma-separated)")
    return urls


@dataclass(frozen=True)
class ClientConfig:
    url: str = DEFAULT_URL
    token: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"ClientConfig(url={self.url!r}, token={'***' if self.token else None})"


def load() -> ClientConfig:
    saved: dict[str, str] = {}
    with suppress(FileNotFoundError, ValueError):
        saved = json.loads(config_path().read_text())
    return ClientConfig(
        url=os.environ.get("ASSETHUB_URL") or saved.get("url") or DEFAULT_URL,
        token=os.environ.get("ASSETHUB_TOKEN") or saved.get("token") or None,
    )


def save(cfg: ClientConfig) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": cfg.url, "token": cfg.token}))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
