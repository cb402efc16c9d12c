"""The supervisor of one local service: holds its address, runs its replicas, restarts the ones that die.

    python -m assethub.serving.supervisor DIR --fd N

A detached process (its own session), started by the Asset Hub server with the service's listening
socket as descriptor ``N``. It outlives the server: a restarted server finds it again by the pid
in ``DIR/status.json``. Files in ``DIR`` are the whole interface:

- ``spec.json`` (written by the server): ``name``, ``model_dir``, ``host``, ``port``.
- ``desired.json`` (written by the server, then SIGHUP): ``{"replicas": K}``.
- ``status.json`` (written here, atomically): this pid, the replicas (pid, ready, restarts), the
  desired count, and why replicas keep failing, if they do.
- ``service.log``: the replicas' output and this supervisor's events.
- ``metrics/<replica>/metrics.json`` (written by each replica; only its own directory is mounted
  writable in its sandbox): its request counters. ``metrics.json`` (written here, atomically,
  read by the server): every replica's counters and a rolling window of them
  (:class:`assethub.serving.metrics.Window`). Replica restarts are also listed as ``events`` in
  ``status.json`` (the server records them).

Replicas are ``python -m assethub.serving.replica`` processes (MLflow's scoring app), all accepting
on the one socket: the kernel hands each connection to one of them. Scaling down sends SIGTERM to
the newest replicas (uvicorn finishes their requests in flight); scaling up starts new ones, which
take connections once their model is loaded. With zero replicas (a stopped service) the socket
stays bound, so the address is kept, and this process answers each request with 503 "stopped".
SIGTERM stops the replicas and this process; the socket closes with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assethub import sandbox
from assethub.serving.metrics import Window, read_counters

GRACE = 30.0  # seconds a stopping replica gets to finish its requests before SIGKILL
FAST_CRASH = 10.0  # a replica that dies sooner than this after starting counts as crashing
MAX_BACKOFF = 30.0
MAX_EVENTS = 100  # the latest events kept in status.json


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    started: float
    ready_file: Path  # the replica writes it once it accepts connections
    was_ready: bool = False
    stopping_since: float | None = None
    sandboxed: bool = False  # proc is bwrap: the replica is two processes down
    metrics_file: Path | None = None  # where it writes its counters

    @property
    def id(self) -> str:
        return self.ready_file.name

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ready(self) -> bool:
        return self.was_ready and self.stopping_since is None


@dataclass
class Supervisor:
    dir: Path
    sock: socket.socket
    spec: dict[str, Any]
    replicas: list[Replica] = field(default_factory=list)
    desired: int = 0
    restarts: int = 0
    crashes_in_a_row: int = 0
    next_start: float = 0.0  # no replica starts before this (backoff after crashes)
    detail: str = ""
    reload: bool = True
    exiting: bool = False
    window: Window = field(default_factory=Window)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def log_file(self) -> Path:
        return self.dir / "service.log"

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_file, "a") as out:
            out.write(f"{stamp} supervisor: {message}\n")

    # -- state files -------------------------------------------------------------------------
    def read_desired(self) -> None:
        wanted = read_json(self.dir / "desired.json").get("replicas", self.desired)
        if isinstance(wanted, int) and wanted >= 0 and wanted != self.desired:
            self.log(f"replicas: {self.desired} -> {wanted}")
            self.desired = wanted
            self.crashes_in_a_row, self.next_start, self.detail = 0, 0.0, ""

    def write_status(self) -> None:
        now = time.time()
        write_json(self.dir / "status.json", {
            "pid": os.getpid(), "port": self.sock.getsockname()[1], "desired": self.desired,
            "replicas": [{"pid": r.pid, "id": r.ready_file.name, "ready": r.ready,
                          "stopping": r.stopping_since is not None,
                          "up_seconds": round(time.monotonic() - r.started, 1)} for r in self.replicas],
            "ready": sum(r.ready for r in self.replicas), "restarts": self.restarts,
            "detail": self.detail, "updated": now, "events": self.events})

    def event(self, kind: str, detail: str) -> None:
        """An event the server records for the service (shown by ``services show``)."""
        self.events = [*self.events, {"at": time.time(), "kind": kind, "detail": detail}][-MAX_EVENTS:]

    # -- metrics -----------------------------------------------------------------------------
    def collect(self) -> None:
        """Read the replicas' counters into the window; write ``metrics.json`` if it changed."""
        now = time.time()
        for r in self.replicas:
            if r.metrics_file is not None:
                counters = read_counters(r.metrics_file)
                if counters is not None:
                    self.window.observe(r.id, r.pid, counters, now)
        if self.window.tick(now) or not (self.dir / "metrics.json").exists():
            write_json(self.dir / "metrics.json", self.window.doc(now))

    def forget_metrics(self, r: Replica) -> None:
        """A replica that exited: its last counts stay in the window, its directory goes."""
        if r.metrics_file is not None:
            counters = read_counters(r.metrics_file)
            if counters is not None:
                self.window.observe(r.id, r.pid, counters, time.time())
            with contextlib.suppress(OSError):
                r.metrics_file.unlink(missing_ok=True)
                r.metrics_file.parent.rmdir()
        self.window.gone(r.id, time.time())

    # -- replicas ----------------------------------------------------------------------------
    def replica_command(self, argv: list[str], ready_dir: Path,
                        metrics_dir: Path | None = None) -> tuple[list[str], dict[str, str], bool]:
        """The replica's command line and environment: in the sandbox (its own uid, the model
        read-only, no network but the inherited listening socket, no secrets; writable: the
        ready directory and its own metrics directory, not the other replicas') unless
        ASSETHUB_SANDBOX=off. Raises SandboxUnavailableError when it cannot be sandboxed."""
        env = {**os.environ, "__pyfunc_model_path__": str(self.spec["model_dir"]),
               "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": str(self.spec.get("request_timeout", 60)),
               "PYTHONUNBUFFERED": "1"}
        box = sandbox.from_settings()
        if box is None:
            return argv, env, False
        box.give(ready_dir)
        if metrics_dir is not None:
            box.give(metrics_dir)
        # the supervisor's environment is already without secrets (local.child_env); inside, HOME
        # is the private /tmp and nothing names the stack's services
        env = {k: v for k, v in env.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "XDG_"))}
        env.update(HOME="/tmp", PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin:/bin"]))
        mounts = [sandbox.Mount(Path(self.spec["model_dir"])), sandbox.Mount(ready_dir, writable=True)]
        if metrics_dir is not None:
            mounts.append(sandbox.Mount(metrics_dir, writable=True))
        return box.argv(argv, mounts=mounts, cwd="/tmp"), env, True

    def start_replica(self) -> None:
        ready_dir = self.dir / "ready"
        ready_dir.mkdir(exist_ok=True)
        fd = self.sock.fileno()
        ready_file = ready_dir / f"replica-{time.monotonic_ns()}"
        metrics_dir = self.dir / "metrics" / ready_file.name
        metrics_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = metrics_dir / "metrics.json"
        try:
            argv, env, sandboxed = self.replica_command(
                [sys.executable, "-m", self.spec.get("replica_module", "assethub.serving.replica"),
                 "--fd", str(fd), "--ready", str(ready_file), "--metrics", str(metrics_file)],
                ready_dir, metrics_dir)
        except sandbox.SandboxUnavailableError as exc:
            with contextlib.suppress(OSError):
                metrics_dir.rmdir()
            self.crashes_in_a_row += 1
            self.next_start = time.monotonic() + MAX_BACKOFF
            if self.detail != str(exc):
                self.log(f"cannot start a replica: {exc}")
            self.detail = str(exc)
            return
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(argv, pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        self.replicas.append(Replica(proc, time.monotonic(), ready_file, sandboxed=sandboxed,
                                     metrics_file=metrics_file))
        self.log(f"replica {proc.pid} starting")

    def stop_replica(self, r: Replica) -> None:
        if r.stopping_since is None:
            r.stopping_since = time.monotonic()
            if r.sandboxed:  # to the replica itself: bwrap does not pass signals on
                sandbox.signal_innermost(r.proc.pid, signal.SIGTERM)
            else:
                with contextlib.suppress(ProcessLookupError):
                    r.proc.send_signal(signal.SIGTERM)
            self.log(f"replica {r.pid} stopping")

    def reap(self) -> bool:
        """Forget replicas that exited; restart those that died on their own. True if any changed."""
        changed = False
        for r in list(self.replicas):
            code = r.proc.poll()
            if code is None:
                if r.stopping_since is not None and time.monotonic() - r.stopping_since > GRACE:
                    r.proc.kill()
                continue
            changed = True
            self.replicas.remove(r)
            r.ready_file.unlink(missing_ok=True)
            self.forget_metrics(r)
            if r.stopping_since is not None:
                self.log(f"replica {r.pid} stopped")
                continue
            lived = time.monotonic() - r.started
            self.restarts += 1
            if lived < FAST_CRASH and not r.was_ready:
                self.crashes_in_a_row += 1
                delay = min(MAX_BACKOFF, 2.0 ** self.crashes_in_a_row)
                self.next_start = time.monotonic() + delay
                self.detail = (f"replicas exit while starting ({self.crashes_in_a_row} in a row, last "
                               f"exit code {code}); retrying in {delay:.0f}s; see the service's logs")
            else:
                self.crashes_in_a_row, self.detail = 0, ""
            self.log(f"replica {r.pid} exited with code {code} after {lived:.1f}s; restarting")
            self.event("replica_restart", f"replica {r.pid} exited with code {code} after "
                                          f"{lived:.1f}s; restarting it")
        return changed

    def converge(self) -> bool:
        active = [r for r in self.replicas if r.stopping_since is None]
        changed = False
        while len(active) > self.desired:
            # newest (and so least likely ready) first
            victim = max(active, key=lambda r: r.started)
            self.stop_replica(victim)
            active.remove(victim)
            changed = True
        while len(active) < self.desired and time.monotonic() >= self.next_start:
            self.start_replica()
            active = [r for r in self.replicas if r.stopping_since is None]
            changed = True
        return changed

    def mark_ready(self) -> bool:
        changed = False
        for r in self.replicas:
            if not r.was_ready and r.ready_file.exists():
                r.was_ready = True
                self.crashes_in_a_row, self.detail = 0, ""
                self.log(f"replica {r.pid} ready ({time.monotonic() - r.started:.1f}s)")
                changed = True
        return changed

    # -- stopped: answer on the kept address ----------------------------------------------------
    def answer_stopped(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        name = self.spec.get("name", "")
        body = json.dumps({"error_code": "SERVICE_STOPPED",
                           "message": f"service {name} is stopped (0 replicas): start it with "
                                      f"`assethub services start {name}`"}).encode()
        head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n")
        with conn:
            conn.settimeout(0.5)
            with contextlib.suppress(OSError):
                conn.recv(65536)  # the request head (and a small body): read so the close is clean
                conn.sendall(head.encode() + body)
                conn.shutdown(socket.SHUT_WR)

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> int:
        self.sock.setblocking(False)
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "exiting", True))
        self.log(f"supervising {self.spec.get('name')} on {self.spec.get('host')}:"
                 f"{self.sock.getsockname()[1]} (pid {os.getpid()})")
        self.window = Window(read_json(self.dir / "metrics.json"), time.time())
        self.write_status()
        last_check = last_collect = 0.0
        while not self.exiting:
            now = time.monotonic()
            if now - last_collect >= 0.5:
                last_collect = now
                with contextlib.suppress(OSError):  # the directory deleted: seen below
                    self.collect()
            if now - last_check > 1.0:
                last_check = now
                if not self.dir.is_dir():  # the service was deleted behind our back
                    break
                self.reload = True  # a missed SIGHUP costs at most a second
            if self.reload:
                self.reload = False
                self.read_desired()
            changed = self.reap()
            changed = self.converge() or changed
            changed = self.mark_ready() or changed
            if changed:
                self.write_status()
            idle = self.desired == 0 and not self.replicas
            try:
                readable, _, _ = select.select([self.sock] if idle else [], [], [], 0.1)
            except InterruptedError:
                continue
            if self.reload or self.exiting:
                continue  # a signal came while waiting: act on it before answering anyone
            if readable and self.desired == 0 and not self.replicas:
                self.answer_stopped()
        self.log("stopping all replicas")
        for r in self.replicas:
            self.stop_replica(r)
        deadline = time.monotonic() + GRACE
        while self.replicas and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        for r in self.replicas:
            r.proc.kill()
            r.ready_file.unlink(missing_ok=True)
            self.forget_metrics(r)
        if self.dir.is_dir():
            self.window.tick(time.time())
            write_json(self.dir / "metrics.json", self.window.doc(time.time()))
        self.sock.close()
        self.log("stopped")
        if self.dir.is_dir():
            self.desired, self.replicas = 0, []
            status = read_json(self.dir / "status.json")
            write_json(self.dir / "status.json", {**status, "pid": None, "ready": 0, "replicas": []})
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assethub.serving.supervisor")
    parser.add_argument("dir", type=Path, help="the service's state directory")
    parser.add_argument("--fd", type=int, required=True, help="the service's listening socket")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    spec = read_json(args.dir / "spec.json")
    if not spec.get("model_dir"):
        print(f"{args.dir / 'spec.json'} names no model_dir", file=sys.stderr)
        return 2
    return Supervisor(args.dir, sock, spec).run()


if __name__ == "__main__":
    sys.exit(main())
