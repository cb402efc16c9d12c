"""A background server process owned by the embedded stack: started once, found again by its
pid file, health-checked over HTTP, stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from assethub.config import home


def log(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


def free_port(preferred: int) -> int:
    """``preferred`` or a port near it that a server could listen on now."""
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as s:
            # as the servers do (Go, uvicorn): connections of a stopped server still in
            # TIME_WAIT do not stop it listening again on its own port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free loopback port near {preferred}")


def listener_pids(port: int) -> set[int] | None:
    """The processes listening on loopback ``port`` (None where /proc cannot tell)."""
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{parts[9]}]")
    except OSError:
        return None
    pids: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                pids.add(int(entry))
        except OSError:
            continue
    return pids


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs. A zombie does not: it has exited and waits for its parent
    to reap it, which a parent busy elsewhere may not do for a long time (a test process that
    restarted a server another process then stops), and :meth:`ManagedProcess.stop` would wait
    out its whole grace for a process that is already gone."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: signal 0 is all we can tell
    return state != "Z"


def serves(pid: int, port: int) -> bool:
    """Whether ``port`` is served by ``pid`` or a process of its session (its workers)."""
    pids = listener_pids(port)
    if pids is None:
        return True
    for p in pids:
        try:
            if p == pid or os.getsid(p) == pid:
                return True
        except OSError:
            continue
    return False


@dataclass(frozen=True)
class ManagedProcess:
    """One server: ``name`` (its folder under the Asset Hub home), how to run it, where it is healthy.

    Its folder holds ``state.json`` (the port, kept so that URLs stay valid across restarts;
    other keys there belong to the component), the pid file and the log of its output."""

    name: str
    default_port: int
    health_path: str
    pid_name: str = "server.pid"
    log_name: str = "server.out"

    @property
    def dir(self) -> Path:
        return home() / self.name

    @property
    def log_file(self) -> Path:
        """Where the process's output (stdout and stderr) goes."""
        return self.dir / self.log_name

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.dir / "state.json").read_text()))
        except FileNotFoundError:
            return {}

    def _save_port(self, port: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # rewritten in place: the file keeps its mode (lakeFS keeps a secret in it)
        (self.dir / "state.json").write_text(json.dumps({**self._state(), "port": port}))

    def port(self) -> int:
        """The port saved at first start (kept, so URLs stay valid across restarts)."""
        saved = self._state().get("port")
        if saved is not None:
            return int(saved)
        port = free_port(self.default_port)
        self._save_port(port)
        return port

    def claim_port(self, port: int | None = None) -> int:
        """The port to start on: ``port`` when given (kept from now on), else the saved one
        unless something else took it meanwhile (then a free one near the default)."""
        if self.pid() is not None:
            return self.port()
        if port is None:
            port = self.port()
            if free_port(port) == port:
                return port
            port = free_port(self.default_port)
        self._save_port(port)
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def pid(self) -> int | None:
        try:
            pid = int((self.dir / self.pid_name).read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + self.health_path, timeout=2).status_code < 300
        except httpx.HTTPError:
            return False

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              timeout: float = 90, wait: bool = True, port: int | None = None) -> str:
        """Start the server (unless it already runs) and wait until it is healthy; its URL.

        ``{port}`` in ``argv`` becomes the port (``port`` when given, see :meth:`claim_port`).
        With ``wait=False`` only launch it; :meth:`wait` later (start several at once)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None and self.healthy():
            return self.url
        if self.pid() is None:
            port = self.claim_port(port)
            log(self.name, f"starting on {self.url} (data in {self.dir}; log: {self.log_file})")
            with open(self.log_file, "ab") as out:
                command = [a.replace("{port}", str(port)) for a in argv]
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.dir,
                                        env={**os.environ, **(env or {})},
                                        start_new_session=True)  # outlives the shell that started it
            (self.dir / self.pid_name).write_text(str(proc.pid))
        return self.wait(timeout) if wait else self.url

    def wait(self, timeout: float = 90) -> str:
        """Wait until the server is healthy; its URL."""
        url = self.url
        deadline = time.monotonic() + timeout
        # healthy, and on our process: another server that took the port first must not pass
        while not (self.healthy() and (pid := self.pid()) is not None and serves(pid, self.port())):
            if self.pid() is None:
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name} exited while starting; last output:\n{tail}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not become healthy within {timeout:.0f}s "
                                 f"(log: {self.log_file})")
            time.sleep(0.2)
        return url

    def stop(self, timeout: float = 30) -> bool:
        """Stop the server and everything it started; False when none was running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if self.pid() is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
        (self.dir / self.pid_name).unlink(missing_ok=True)
        return True
