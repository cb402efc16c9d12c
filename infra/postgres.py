"""Obtain, start and stop the PostgreSQL server that holds the Asset Hub catalog.

    python -m infra.postgres install|start|status|stop|destroy
    python -m infra.postgres url      # SQLAlchemy URL, password included (local only)

start is idempotent. Binaries are Debian's (/usr/lib/postgresql/<ver>/bin, else pg_ctl on PATH),
apt-get installed if missing when we are root. Debian's own cluster and service are never used:
our private cluster listens on 127.0.0.1 only (unix socket in the cluster directory), its
generated scram-sha-256 superuser password and port are in $ASSETHUB_HOME/postgres/state.json
(0600). PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user (else
``assethub-pg``) through runuser; that user cannot reach /root or pytest's 0700 temp dirs, so
then the cluster is /var/lib/assethub-pg/<hash of the data dir>, symlinked as ``cluster``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from assethub.config import home

DEFAULT_PORT = 15432
DATABASE = SUPERUSER = "assethub"
ROOT_CLUSTERS = Path("/var/lib/assethub-pg")


def _data_dir(data_dir: Path | None) -> Path:
    return (data_dir or home() / "postgres").expanduser().resolve()


def _log(msg: str) -> None:
    print(f"[postgres] {msg}", file=sys.stderr, flush=True)


def _find_bindir() -> Path | None:
    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)
    tools = ("initdb", "pg_ctl", "postgres", "psql")
    return next((c for c in candidates if all((c / t).is_file() for t in tools)), None)


def ensure_installed() -> Path:
    """Return the directory holding initdb, pg_ctl, postgres and psql; as root, apt-get them."""
    if found := _find_bindir():
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit("PostgreSQL's initdb/pg_ctl were not found: install Debian's 'postgresql' "
                         "package (sudo apt-get install postgresql) or put pg_ctl on PATH")
    _log("installing Debian's postgresql package (first time only)...")
    started, env = time.monotonic(), {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
               "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "postgresql"]
    for cmd in (["apt-get", "update", "-q"], install):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            raise SystemExit(f"`{' '.join(cmd)}` failed: install Debian's postgresql by hand")
    if (found := _find_bindir()) is None:
        raise SystemExit("apt-get installed postgresql, yet initdb/pg_ctl are still not found")
    _log(f"installed in {time.monotonic() - started:.0f}s ({found})")
    return found


def _server_user() -> str | None:
    """The account the server runs as: ourselves (None) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "assethub-pg"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "assethub-pg"], check=True)
    return "assethub-pg"


def _cluster_dir(d: Path) -> Path:
    digest = hashlib.sha256(str(d).encode()).hexdigest()[:16]
    return ROOT_CLUSTERS / digest if os.geteuid() == 0 else d / "cluster"


def _run(cmd: list[str | Path], user: str | None) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run([*prefix, *map(str, cmd)], cwd="/", capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(text)
    tmp.rename(path)


def _free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise SystemExit(f"no free loopback port near {preferred}")


def _initdb(bindir: Path, cluster: Path, state: dict[str, Any], user: str | None) -> None:
    partial, pwfile = cluster.with_name(cluster.name + ".partial"), cluster.with_name(cluster.name + ".pw")
    shutil.rmtree(partial, ignore_errors=True)
    cluster.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    partial.mkdir(mode=0o700)
    _write_private(pwfile, state["password"] + "\n")
    if user:
        for path in (partial, pwfile):
            shutil.chown(path, user, pwd.getpwnam(user).pw_gid)
    try:
        done = _run([bindir / "initdb", "-D", partial, "-U", state["user"], f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
                     "--no-instructions"], user)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(f"initdb failed:\n{done.stdout[-1000:]}{done.stderr[-2000:]}")
    with open(partial / "postgresql.conf", "a") as conf:  # appending keeps the file's owner
        conf.write("\n# Asset Hub: loopback TCP only, unix socket in the cluster directory\n"
                   f"listen_addresses = '127.0.0.1'\nport = {state['port']}\n"
                   f"unix_socket_directories = '{cluster}'\n")
    partial.rename(cluster)


def _server_pid(cluster: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((cluster / "postmaster.pid").read_text().split("\n", 1)[0])
        if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":  # not a stale, reused pid
            return pid
    return None


def _accepting(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _url(state: dict[str, Any], database: str = DATABASE) -> str:
    return f"postgresql+psycopg://{state['user']}:{state['password']}@127.0.0.1:{state['port']}/{database}"


def _ensure_database(bindir: Path, state: dict[str, Any], database: str = DATABASE) -> None:
    if not database.replace("_", "").isalnum() or not database[:1].isalpha():
        raise ValueError(f"database names here are letters, digits and _: {database!r}")
    sql = (f"SELECT 'CREATE DATABASE {database}' WHERE NOT EXISTS "
           f"(SELECT FROM pg_database WHERE datname = '{database}')\\gexec\n")
    done = subprocess.run(
        [bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(state["port"]), "-U", state["user"], "-d", "postgres"],
        input=sql, env={**os.environ, "PGPASSWORD": state["password"], "PGCONNECT_TIMEOUT": "10"},
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"could not create database {database!r}: {done.stderr.strip()}")


def database(name: str, data_dir: Path | None = None) -> str:
    """Create database ``name`` on the running server if it is missing; its SQLAlchemy URL
    (the distributed profile gives lakeFS, Prefect and MLflow a database each)."""
    d = _data_dir(data_dir)
    if status(d) is None:
        raise SystemExit(f"PostgreSQL is not running (data: {d}): python -m infra.postgres start")
    state = json.loads((d / "state.json").read_text())
    _ensure_database(ensure_installed(), state, name)
    return _url(state, name)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as libpq and Go's pgx take it."""
    return "postgres://" + url.split("://", 1)[1]


def start(data_dir: Path | None = None, port: int | None = None, timeout: float = 60) -> str:
    """Start PostgreSQL (or find the running one) and return its SQLAlchemy URL.

    ``port`` is only a preference for a new cluster: an existing one keeps its saved port."""
    bindir, user, d = ensure_installed(), _server_user(), _data_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    cluster, state_file = _cluster_dir(d), d / "state.json"
    if not state_file.exists():
        if cluster.exists():  # its password went with state.json: nobody can log in to it
            _log(f"removing {cluster}, orphaned by the loss of {state_file}")
            destroy(d)
        _write_private(state_file, json.dumps({"user": SUPERUSER, "password": secrets.token_urlsafe(24),
                                                "port": _free_port(port or DEFAULT_PORT)}))
    state = json.loads(state_file.read_text())
    if user and not (d / "cluster").is_symlink():
        (d / "cluster").symlink_to(cluster)
    if not cluster.exists():
        _log(f"creating a cluster in {cluster}")
        _initdb(bindir, cluster, state, user)
    log = cluster / "postgres.log"
    if _server_pid(cluster) is None:
        _log(f"starting PostgreSQL on 127.0.0.1:{state['port']} (log: {log})")
        done = _run([bindir / "pg_ctl", "start", "-D", cluster, "-l", log, "-w",
                     "-t", str(int(timeout)), "-s"], user)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"PostgreSQL did not start: {done.stderr.strip()}\n{tail}")
    deadline = time.monotonic() + timeout
    while not _accepting(state["port"]):
        if _server_pid(cluster) is None or time.monotonic() > deadline:
            raise SystemExit(f"PostgreSQL is not accepting connections on port {state['port']}; see {log}")
        time.sleep(0.1)
    _ensure_database(bindir, state)
    return _url(state)


def status(data_dir: Path | None = None) -> str | None:
    """The URL of the running server, or None."""
    d = _data_dir(data_dir)
    if not (d / "state.json").exists() or _server_pid(_cluster_dir(d)) is None:
        return None
    state = json.loads((d / "state.json").read_text())
    return _url(state) if _accepting(state["port"]) else None


def stop(data_dir: Path | None = None, timeout: float = 60) -> bool:
    """Stop the server started by :func:`start`; False when none was running."""
    cluster = _cluster_dir(_data_dir(data_dir))
    if _server_pid(cluster) is None:
        return False
    done = _run([ensure_installed() / "pg_ctl", "stop", "-D", cluster, "-m", "fast", "-w",
                 "-t", str(int(timeout)), "-s"], _server_user())
    if done.returncode != 0:
        raise SystemExit(f"pg_ctl stop failed: {done.stderr.strip()}")
    return True


def destroy(data_dir: Path | None = None) -> None:
    """Stop the server, then delete its cluster and state (the generated password goes too)."""
    d = _data_dir(data_dir)
    stop(d)
    shutil.rmtree(_cluster_dir(d), ignore_errors=True)
    for path in (d / "state.json", d / "cluster"):  # as root, "cluster" is the symlink
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.postgres", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["install", "start", "stop", "status", "url", "destroy"])
    command = parser.parse_args(argv).command
    if command == "install":
        print(ensure_installed())
    elif command == "start":
        print(f"PostgreSQL is running at {start().split('@')[1]} (data: {_data_dir(None)})")
    elif command == "stop":
        print("stopped" if stop() else "not running")
    elif command == "destroy":
        destroy()
        print("destroyed")
    elif (url := status()) is None:
        print("not running", file=sys.stdout if command == "status" else sys.stderr)
        return 1
    else:
        print(f"running at {url.split('@')[1]}" if command == "status" else url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
