"""The server's handle on one local service: its directory, its socket, its supervisor process.

No I/O happens until a method is called. The supervisor (``assethub.serving.supervisor``) is
started detached, with the service's listening socket passed as a file descriptor: the socket is
bound here, in the server, so a taken port is reported to the caller at once, and it then lives
in the supervisor, which keeps it across stops and across restarts of the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from assethub.errors import PortInUseError
from assethub.serving.supervisor import read_json, write_json

# Never handed to a replica: model code runs there (MLflow models can be code), and the server's
# environment holds lakeFS and database credentials.
_SECRET_ENV = re.compile(r"^(ASSETHUB_|AWS_|LAKEFS|LAKECTL)|TOKEN|SECRET|PASSWORD|CREDENTIAL|AUTH|_KEY\b|"
                         r"_KEY_ID\b|DATABASE_URL", re.IGNORECASE)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a service's processes: the server's, less anything secret."""
    source = os.environ if env is None else env
    # the sandbox's settings (ASSETHUB_SANDBOX, _UID, _GID, _BWRAP) are for the supervisor
    return {k: v for k, v in source.items() if not _SECRET_ENV.search(k) or k.startswith("ASSETHUB_SANDBOX")}


def bind(host: str, port: int, *, name: str = "") -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); PortInUseError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: a restarted server may rebind right after the old supervisor's exit
        # (TIME_WAIT), but still not while any process listens on the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use by another process: choose another "
                "port (--port), or leave it out to get a free one", name=name, port=port) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}", name=name,
                                 port=port) from None
        raise
    return sock


class LocalService:
    """The files and processes of one local service, under ``dir``."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self._proc: subprocess.Popen[bytes] | None = None  # when this process started it

    @property
    def log_file(self) -> Path:
        return self.dir / "service.log"

    def status(self) -> dict[str, Any]:
        return read_json(self.dir / "status.json")

    def pid(self) -> int | None:
        """The supervisor's pid if it runs (checked against its command line, not only the pid)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return self._proc.pid  # started here and running (maybe not yet exec'd)
            self._proc = None  # reaped: it exited
        try:
            pid = int((self.dir / "supervisor.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if b"assethub.serving.supervisor" in cmdline and str(self.dir).encode() in cmdline:
            return pid
        return None

    def launch(self, sock: socket.socket, spec: Mapping[str, Any], replicas: int) -> int:
        """Start the supervisor with ``sock`` (closed here afterwards); its pid."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / "spec.json", dict(spec))
        write_json(self.dir / "desired.json", {"replicas": replicas})
        (self.dir / "status.json").unlink(missing_ok=True)
        fd = sock.fileno()
        try:
            with open(self.log_file, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "assethub.serving.supervisor", str(self.dir), "--fd", str(fd)],
                    pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.dir, env=child_env(), start_new_session=True)  # outlives the server
        finally:
            sock.close()
        self._proc = proc
        (self.dir / "supervisor.pid").write_text(str(proc.pid))
        return proc.pid

    def set_replicas(self, replicas: int) -> None:
        write_json(self.dir / "desired.json", {"replicas": replicas})
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def wait(self, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The supervisor's status once ``done(status)`` (or the timeout, or its exit)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status and done(status):
                return status
            if time.monotonic() > deadline or self.pid() is None:
                return status
            time.sleep(0.1)

    def terminate(self, timeout: float = 40.0) -> None:
        """Stop the supervisor and its replicas (they finish requests in flight)."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # its own session: the replicas go too

    def log_tail(self, lines: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max(lines, 1) * 400))
                data = f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(data.splitlines()[-lines:])
