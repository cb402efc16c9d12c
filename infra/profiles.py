"""The stack's profiles and the settings that point its pieces at existing services.

``embedded`` (the default): everything on this machine on local files (lakeFS's local blockstore
and embedded KV store, SQLite for the catalog, MLflow and Prefect).

``distributed``: every piece a process of its own on its production backend — PostgreSQL
(one database per component), an S3 object store (SeaweedFS here), lakeFS on S3 + PostgreSQL,
the catalog, Prefect and MLflow on PostgreSQL, MLflow's artifacts on S3. Any piece may instead be
an existing service, by environment variables only (the table in docs/distributed.md); a piece
given from outside is never started or stopped by ``assethub up`` / ``down``.

The profile is chosen by ``assethub up --profile``, else ``ASSETHUB_PROFILE``, else the one the
home was set up with (``$ASSETHUB_HOME/stack.json``), else ``embedded``; a home keeps its profile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EMBEDDED, DISTRIBUTED = "embedded", "distributed"
PROFILES = (EMBEDDED, DISTRIBUTED)
DEFAULT_DATA_BUCKET, DEFAULT_MLFLOW_BUCKET = "assethub-data", "assethub-mlflow"


class SettingsError(SystemExit):
    """A setting that cannot work: the message names the variable and what it needs."""


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _bucket(name: str, value: str) -> str:
    ok = 3 <= len(value) <= 63 and all(c.islower() or c.isdigit() or c in "-." for c in value)
    if not ok or not value[0].isalnum():
        raise SettingsError(f"{name} must be an S3 bucket name (3-63 of a-z 0-9 - .), not {value!r}")
    return value


def _both(env: Mapping[str, str], first: str, *rest: str) -> None:
    """All of ``first`` and ``rest`` are set, or none."""
    names = (first, *rest)
    given = [n for n in names if env.get(n)]
    if given and len(given) != len(names):
        missing = [n for n in names if n not in given]
        raise SettingsError(f"{', '.join(given)} set without {', '.join(missing)}: set all of them")


@dataclass(frozen=True)
class Settings:
    """Where each piece of the distributed profile is; "" = the stack starts its own."""

    profile: str = EMBEDDED
    # S3 (ASSETHUB_S3_*): "" = SeaweedFS on loopback
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_bucket: str = DEFAULT_DATA_BUCKET  # lakeFS's repositories, under repos/
    mlflow_artifacts: str = f"s3://{DEFAULT_MLFLOW_BUCKET}/artifacts"
    # lakeFS (ASSETHUB_LAKEFS_*): "" = lakeFS started here on the S3 store and PostgreSQL
    lakefs_endpoint: str = ""
    lakefs_access_key_id: str = ""
    lakefs_secret_access_key: str = field(default="", repr=False)
    hook_secret: str = field(default="", repr=False)  # ASSETHUB_HOOK_SECRET (external lakeFS's)
    # PostgreSQL: a server on which databases are created ("" = ours, data in the home)
    postgres_url: str = field(default="", repr=False)
    catalog_url: str = field(default="", repr=False)  # ASSETHUB_CATALOG_URL: the catalog's own URL
    prefect_api_url: str = ""  # PREFECT_API_URL: "" = Prefect server started here
    mlflow_tracking_uri: str = ""  # MLFLOW_TRACKING_URI: "" = MLflow started here

    @property
    def storage_namespace(self) -> str:
        """Where new repositories keep their objects (the server's ASSETHUB_STORAGE_NAMESPACE)."""
        return f"s3://{self.s3_bucket}/repos"

    @property
    def mlflow_bucket(self) -> str:
        return urlsplit(self.mlflow_artifacts).netloc

    def external(self) -> dict[str, str]:
        """The pieces given from outside: component -> where (no secrets)."""
        def place(url: str) -> str:  # a database server: host and port only (no password)
            p = urlsplit(url)
            return f"{p.hostname}:{p.port or 5432}"

        out = {"s3": self.s3_endpoint, "lakefs": self.lakefs_endpoint,
               "postgres": place(self.postgres_url) if self.postgres_url else "",
               "catalog": place(self.catalog_url) if self.catalog_url else "",
               "prefect-server": self.prefect_api_url, "mlflow": self.mlflow_tracking_uri}
        return {k: v for k, v in out.items() if v}


def from_env(env: Mapping[str, str] | None = None, profile: str | None = None,
             saved: str | None = None) -> Settings:
    """The settings from ``env`` (default: this process's environment). ``profile`` is the
    one asked for (``--profile``), ``saved`` the home's. Outside the distributed profile the
    external settings are not read: the embedded profile is what it always was."""
    env = os.environ if env is None else env
    chosen = profile or env.get("ASSETHUB_PROFILE") or saved or EMBEDDED
    if chosen not in PROFILES:
        raise SettingsError(f"unknown profile {chosen!r}: {' or '.join(PROFILES)}")
    if saved and chosen != saved:
        raise SettingsError(f"this Asset Hub home was set up with the {saved} profile, not {chosen}: "
                            "use another ASSETHUB_HOME for another profile (or `make clean-stack`)")
    if chosen == EMBEDDED:
        return Settings(EMBEDDED)
    _both(env, "ASSETHUB_S3_ENDPOINT", "ASSETHUB_S3_ACCESS_KEY_ID", "ASSETHUB_S3_SECRET_ACCESS_KEY")
    _both(env, "ASSETHUB_LAKEFS_ENDPOINT", "ASSETHUB_LAKEFS_ACCESS_KEY_ID",
          "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY")
    pg = env.get("ASSETHUB_POSTGRES_URL", "")
    if pg and urlsplit(pg).scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise SettingsError(f"ASSETHUB_POSTGRES_URL must be a postgresql:// URL (user, password, host, "
                            f"port), not a {urlsplit(pg).scheme or 'bare'} one")
    if pg.startswith("postgres://"):
        pg = "postgresql://" + pg.removeprefix("postgres://")
    catalog = env.get("ASSETHUB_CATALOG_URL", "")
    if catalog and not urlsplit(catalog).scheme.startswith("postgresql"):
        raise SettingsError("ASSETHUB_CATALOG_URL must be a postgresql+psycopg:// URL in the distributed "
                            "profile (the catalog is shared by every server replica)")
    artifacts = env.get("ASSETHUB_MLFLOW_ARTIFACTS") or f"s3://{DEFAULT_MLFLOW_BUCKET}/artifacts"
    if urlsplit(artifacts).scheme != "s3" or not urlsplit(artifacts).netloc:
        raise SettingsError(f"ASSETHUB_MLFLOW_ARTIFACTS must be s3://BUCKET/PREFIX, not {artifacts!r}")
    _bucket("ASSETHUB_MLFLOW_ARTIFACTS", urlsplit(artifacts).netloc)
    return Settings(
        DISTRIBUTED,
        s3_endpoint=_http_url("ASSETHUB_S3_ENDPOINT", env["ASSETHUB_S3_ENDPOINT"])
        if env.get("ASSETHUB_S3_ENDPOINT") else "",
        s3_region=env.get("ASSETHUB_S3_REGION") or "us-east-1",
        s3_access_key_id=env.get("ASSETHUB_S3_ACCESS_KEY_ID", ""),
        s3_secret_access_key=env.get("ASSETHUB_S3_SECRET_ACCESS_KEY", ""),
        s3_bucket=_bucket("ASSETHUB_S3_BUCKET", env.get("ASSETHUB_S3_BUCKET") or DEFAULT_DATA_BUCKET),
        mlflow_artifacts=artifacts.rstrip("/"),
        lakefs_endpoint=_http_url("ASSETHUB_LAKEFS_ENDPOINT", env["ASSETHUB_LAKEFS_ENDPOINT"])
        if env.get("ASSETHUB_LAKEFS_ENDPOINT") else "",
        lakefs_access_key_id=env.get("ASSETHUB_LAKEFS_ACCESS_KEY_ID", ""),
        lakefs_secret_access_key=env.get("ASSETHUB_LAKEFS_SECRET_ACCESS_KEY", ""),
        hook_secret=env.get("ASSETHUB_HOOK_SECRET", ""),
        postgres_url=pg,
        catalog_url=catalog,
        prefect_api_url=_http_url("PREFECT_API_URL", env["PREFECT_API_URL"])
        if env.get("PREFECT_API_URL") else "",
        mlflow_tracking_uri=_http_url("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
        if env.get("MLFLOW_TRACKING_URI") else "",
    )


# -- what the home remembers ($ASSETHUB_HOME/stack.json): the profile and the external pieces
def _file(home: Path) -> Path:
    return home / "stack.json"


def saved(home: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(_file(home).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def saved_profile(home: Path) -> str | None:
    value = saved(home).get("profile")
    return str(value) if value else None


def remember(home: Path, settings: Settings) -> None:
    """Record the profile and where the external pieces are (no secrets) for down/status/logs."""
    home.mkdir(parents=True, exist_ok=True)
    tmp = _file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps({"profile": settings.profile, "external": settings.external()}))
    tmp.replace(_file(home))
