"""Run user code (training/evaluation commands, serving replicas) in a bubblewrap sandbox.

The code runs as its own uid (``nobody`` by default), with no capabilities, in its own PID, IPC,
UTS, cgroup and network namespaces, on a root made of read-only binds: ``/usr``, a few files of
``/etc``, the Python interpreter and virtual environment Asset Hub runs with, and the inputs the
caller names; it may write only to the directories the caller names and to a private ``/tmp``.
Nothing else of the host is visible: not ``$ASSETHUB_HOME`` (the admin token, the catalog, the
lakeFS and MLflow data, other jobs' directories, code mirrors), not ``/root``, not other
processes' ``/proc/<pid>/environ``. The environment is exactly what the caller passes: no token
or storage secret is ever put into it, nor on bwrap's command line (which ``ps`` shows).

How: bwrap runs as root *without* a user namespace (``--unshare-user`` cannot map another uid
without setuid helpers), drops every capability except CAP_SETUID/CAP_SETGID, and starts
``setpriv`` inside, which switches to the sandbox uid/gid, clears the groups and the inheritable
and bounding capability sets: after the switch the process holds no capability at all.

Settings (environment of the server / worker):

- ``ASSETHUB_SANDBOX``: ``on`` (default) or ``off`` (run user code unsandboxed, as the server's
  user; only for machines without bubblewrap where the admin accepts that). With ``on`` and no
  ``bwrap``, running user code is refused with :class:`SandboxUnavailableError`.
- ``ASSETHUB_SANDBOX_UID`` / ``ASSETHUB_SANDBOX_GID``: the uid/gid user code runs as (65534).
- ``ASSETHUB_SANDBOX_BWRAP``: the bwrap executable (found on PATH, else /usr/bin/bwrap).

A job's command reaches MLflow through :class:`MlflowRelay`: inside the sandbox (which has only
its own loopback) ``python -m assethub.sandbox forward`` listens on ``127.0.0.1:<port>`` and
hands each connection to a Unix socket bound in from outside, where the relay passes on only
the MLflow REST calls that concern the job's own run to the real tracking server.

Standard library only at import time: ``python -I -m assethub.sandbox forward`` runs inside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_GID", "DEFAULT_UID", "Mount", "Sandbox", "SandboxUnavailableError", "bwrap_argv",
           "from_settings", "gpu_mounts", "python_mounts", "signal_innermost", "system_mounts"]

DEFAULT_UID = DEFAULT_GID = 65534  # nobody / nogroup
SETPRIV = "/usr/bin/setpriv"
# /etc files the interpreter and common libraries need; nothing with a secret in it
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
             "hosts", "localtime", "alternatives", "mime.types", "fonts")


def _asset_hub_error() -> type[Exception]:
    try:
        from assethub.errors import JobError
    except ImportError:  # inside the sandbox, as a bare script
        return RuntimeError
    return JobError


class SandboxUnavailableError(_asset_hub_error()):  # type: ignore[misc]
    """User code cannot be sandboxed here (no bubblewrap) and ASSETHUB_SANDBOX is not ``off``."""


@dataclass(frozen=True)
class Mount:
    """``source`` on the host, visible at ``dest`` (same path by default) inside the sandbox."""

    source: Path
    dest: Path | None = None
    writable: bool = False
    device: bool = False  # a device node (or a directory of them): bound with --dev-bind

    @property
    def target(self) -> Path:
        return self.dest or self.source


@dataclass(frozen=True)
class Sandbox:
    """Where user code runs: as ``uid``/``gid``, seeing only ``mounts`` (plus the system's)."""

    bwrap: str
    uid: int = DEFAULT_UID
    gid: int = DEFAULT_GID
    system: tuple[Mount | tuple[str, str], ...] = field(default_factory=tuple)

    def argv(self, inner: Sequence[str], *, mounts: Iterable[Mount], cwd: Path | str,
             share_net: bool = False, unset: Sequence[str] = ()) -> list[str]:
        return bwrap_argv(inner, bwrap=self.bwrap, uid=self.uid, gid=self.gid,
                          mounts=[*self.system, *mounts], cwd=cwd, share_net=share_net, unset=unset)

    def give(self, *paths: Path) -> None:
        """Make ``paths`` (directories or files, created by the caller) the sandbox user's."""
        for p in paths:
            os.chown(p, self.uid, self.gid)


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxUnavailableError(f"{name}={raw!r} is not a number (a uid/gid)") from None
    if value <= 0:
        raise SandboxUnavailableError(f"{name}={value}: user code must not run as root")
    return value


def from_settings() -> Sandbox | None:
    """The sandbox the settings ask for; None if ``ASSETHUB_SANDBOX=off``.

    Raises :class:`SandboxUnavailableError` when bubblewrap or setpriv is missing, or when this
    process cannot switch to another uid (not root), saying how to fix it."""
    mode = os.environ.get("ASSETHUB_SANDBOX", "on").strip().lower()
    if mode in ("off", "0", "false", "no"):
        return None
    if mode not in ("on", "1", "true", "yes", ""):
        raise SandboxUnavailableError(f"ASSETHUB_SANDBOX={mode!r}: use on or off")
    bwrap = os.environ.get("ASSETHUB_SANDBOX_BWRAP") or shutil.which("bwrap") or "/usr/bin/bwrap"
    if not os.access(bwrap, os.X_OK):
        raise SandboxUnavailableError(
            "user code runs in a bubblewrap sandbox, but `bwrap` is not installed: install it "
            "(apt-get install bubblewrap), or set ASSETHUB_SANDBOX=off to run user code "
            "unsandboxed as the server's user")
    if not os.access(SETPRIV, os.X_OK):
        raise SandboxUnavailableError(f"the sandbox needs {SETPRIV} (util-linux) to drop to its uid")
    if os.geteuid() != 0:
        raise SandboxUnavailableError(
            "the sandbox switches user code to its own uid, which needs root (the server and the "
            "worker run as root); or set ASSETHUB_SANDBOX=off")
    uid = _int_setting("ASSETHUB_SANDBOX_UID", DEFAULT_UID)
    gid = _int_setting("ASSETHUB_SANDBOX_GID", DEFAULT_GID)
    return Sandbox(bwrap, uid, gid, tuple(system_mounts()) + tuple(python_mounts()))


def system_mounts(root: Path = Path("/")) -> list[Mount | tuple[str, str]]:
    """``/usr`` read-only, ``/bin``-style symlinks as on the host, the needed ``/etc`` files."""
    out: list[Mount | tuple[str, str]] = [Mount(root / "usr")]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = root / name
        if p.is_symlink():
            out.append((os.readlink(p), f"/{name}"))  # a symlink, e.g. /bin -> usr/bin
        elif p.is_dir():
            out.append(Mount(p))
    out += [Mount(root / "etc" / name) for name in ETC_FILES if (root / "etc" / name).exists()]
    return out


def python_mounts() -> list[Mount]:
    """This interpreter and its environment, read-only: the base install, the venv, and the
    directories that editable installs put on ``sys.path`` (``.pth`` files)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    paths.add(Path(sys.executable).resolve().parent.parent)
    for site in (Path(sys.prefix) / "lib").glob("python*/site-packages"):
        for pth in site.glob("*.pth"):
            with contextlib.suppress(OSError):
                for line in pth.read_text().splitlines():
                    line = line.strip()
                    if line and not line.startswith(("#", "import ")) and Path(line).is_dir():
                        paths.add(Path(line))
    return [Mount(p) for p in sorted(paths) if p.exists()]


def gpu_mounts(dev: Path = Path("/dev")) -> list[Mount]:
    """The NVIDIA devices (``/dev/nvidia*``, ``/dev/nvidia-caps``), for a job whose DEVICE is
    cuda: bwrap's own ``/dev`` holds only the basic nodes."""
    with contextlib.suppress(OSError):
        return [Mount(p, device=True) for p in sorted(dev.glob("nvidia*"))]
    return []


def _inside(path: Path, parents: Iterable[Path]) -> bool:
    return any(path == p or p in path.parents for p in parents)


def bwrap_argv(inner: Sequence[str], *, bwrap: str = "bwrap", uid: int = DEFAULT_UID,
               gid: int = DEFAULT_GID, mounts: Iterable[Mount | tuple[str, str]], cwd: Path | str,
               share_net: bool = False, unset: Sequence[str] = ()) -> list[str]:
    """bwrap's command line to run ``inner`` as ``uid``/``gid`` seeing only ``mounts``.

    A ``(target, link)`` tuple is a symlink. Mounts are bound parents first; the directories
    bwrap creates on the way to them are made 0755 (bwrap's default 0700 would hide them from the
    sandbox user). ``/tmp`` is a private tmpfs, made first so binds under it stay visible.
    The command gets bwrap's environment less the variables named in ``unset``.
    No value in it is secret: it shows in ``ps``."""
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not share_net:
        argv.append("--unshare-net")
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL",
             "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
             "--perms", "1777", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--tmpfs", "/dev/shm"]  # POSIX semaphores, shared memory (torch)
    made: set[Path] = {Path("/"), Path("/tmp"), Path("/proc"), Path("/dev"), Path("/dev/shm")}
    bound: list[Path] = []
    binds = [m for m in mounts if isinstance(m, Mount)]
    for link in (m for m in mounts if not isinstance(m, Mount)):
        argv += ["--symlink", link[0], link[1]]
        made.add(Path(link[1]))
    for m in sorted(binds, key=lambda m: (len(m.target.parts), str(m.target))):
        target = m.target
        for parent in reversed(target.parents):
            if parent in made or _inside(parent, bound):
                continue
            argv += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
        argv += ["--dev-bind" if m.device else "--bind" if m.writable else "--ro-bind", str(m.source),
                 str(target)]
        made.add(target)
        if target.is_dir() or m.source.is_dir():
            bound.append(target)
    for name in unset:
        argv += ["--unsetenv", name]
    argv += ["--chdir", str(cwd), "--", SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             "--inh-caps=-all", "--bounding-set=-all", *inner]
    return argv


def signal_innermost(pid: int, sig: int, depth: int = 2) -> None:
    """Send ``sig`` to the sandboxed command under bwrap's ``pid`` (bwrap -> its init, pid 1 of
    the sandbox -> the command): bwrap does not pass signals on. To bwrap if they are gone."""
    target = pid
    for _ in range(depth):
        try:
            children = Path(f"/proc/{target}/task/{target}/children").read_text().split()
        except OSError:
            break
        if len(children) != 1:
            break
        target = int(children[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(target, sig)


# -- MLflow relay -------------------------------------------------------------------------------

MLFLOW_SOCKET = Path("/run/assethub/mlflow.sock")  # where the relay's socket is inside


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def forward(port: int, unix_path: str, command: Sequence[str]) -> int:
    """Inside the sandbox: listen on 127.0.0.1:``port``, pass each connection to ``unix_path``,
    run ``command`` meanwhile and exit as it did."""
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(unix_path)
            except OSError:
                conn.close()
                up.close()
                continue
            threading.Thread(target=_pump, args=(conn, up), daemon=True).start()
            threading.Thread(target=_pump, args=(up, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    proc = subprocess.Popen(list(command))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: proc.send_signal(s))
    code = proc.wait()
    return code if code >= 0 else 128 - code


class MlflowRelay:
    """Outside the sandbox: a Unix-socket HTTP server that passes to the tracking server at
    ``upstream`` only the MLflow REST calls about run ``run_id`` (get it, log metrics, params,
    tags, batches, inputs and outputs to it, update its status, read its metric history, its
    artifacts) and about the models logged from it (MLflow 3's ``log_model``: create a logged
    model whose ``source_run_id`` is the run, in the run's experiment; then, for the ids the
    relay saw created, upload its artifacts, finalize it, tag it, log its params, read it);
    anything else is answered 403. Credentials for the tracking server (MLFLOW_TRACKING_TOKEN,
    _USERNAME/_PASSWORD in this process's environment) are added here, never seen inside."""

    RUN_CALLS = frozenset({"runs/get", "runs/log-metric", "runs/log-batch", "runs/log-parameter",
                           "runs/set-tag", "runs/delete-tag", "runs/update", "runs/log-inputs",
                           "runs/outputs", "runs/log-model", "metrics/get-history", "artifacts/list"})
    CREATE_MODEL = "logged-models"
    # (method, what follows logged-models/<id>) of the calls on a model the relay saw created
    MODEL_CALLS = frozenset({("GET", ""), ("PATCH", ""), ("PATCH", "tags"), ("POST", "params"),
                             ("DELETE", "tags"), ("GET", "artifacts")})

    def __init__(self, upstream: str, run_id: str, socket_path: Path, experiment_id: str = "") -> None:
        self.upstream = upstream.rstrip("/")
        self.run_id = run_id
        self.experiment_id = experiment_id  # the run's; asked of the server when first needed
        self.socket_path = socket_path
        self.models: dict[str, str] = {}  # logged model id -> its experiment, created from the run
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def allowed(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> bool:
        """Whether the call concerns this relay's run (and only it), or a model logged from it."""
        import json
        from urllib.parse import unquote

        path = unquote(path)
        if "\\" in path or any(part in (".", "..") for part in path.split("/")):
            return False  # the server must read the path as checked here
        for prefix in ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/preview/mlflow/"):
            if path.startswith(prefix):
                call = path[len(prefix):]
                break
        else:
            for prefix in ("/api/2.0/mlflow-artifacts/artifacts/",
                           "/ajax-api/2.0/mlflow-artifacts/artifacts/"):
                if path.startswith(prefix):  # <experiment>/<run>/artifacts/... or
                    parts = path[len(prefix):].split("/")  # <experiment>/models/<model>/artifacts/...
                    if len(parts) >= 4 and parts[1] == "models":
                        return (parts[3] == "artifacts" and parts[2] in self.models
                                and self.models[parts[2]] == parts[0])
                    return len(parts) >= 3 and parts[1] == self.run_id and parts[2] == "artifacts"
            return False
        data: Any = {}
        if method in ("POST", "PATCH"):
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return False
            if not isinstance(data, dict):
                return False
        if call.startswith(self.CREATE_MODEL + "/") or call == self.CREATE_MODEL:
            return self._model_call(method, call, query, data)
        if call not in self.RUN_CALLS:
            return False
        ids: list[Any] = [*query.get("run_id", []), *query.get("run_uuid", [])]
        ids += [data[k] for k in ("run_id", "run_uuid") if k in data]
        models = data.get("models", [])  # inputs / outputs naming logged models: only the run's
        if not isinstance(models, list) or not all(
                isinstance(m, dict) and m.get("model_id") in self.models for m in models):
            return False
        return bool(ids) and all(i == self.run_id for i in ids)

    def _model_call(self, method: str, call: str, query: Mapping[str, list[str]], data: Any) -> bool:
        parts = call.split("/")
        if len(parts) == 1:  # create: from this run, in its experiment
            return (method == "POST" and data.get("source_run_id") == self.run_id
                    and bool(self.experiment_id) and data.get("experiment_id") == self.experiment_id)
        model_id, rest = parts[1], parts[2] if len(parts) > 2 else ""
        if model_id not in self.models or (method, rest) not in self.MODEL_CALLS:
            return False
        if rest == "tags" and method == "DELETE" and len(parts) != 4:
            return False
        if rest not in ("tags", "artifacts") and len(parts) > 3:
            return False
        return data.get("model_id", model_id) == model_id if isinstance(data, dict) else False

    def needs_experiment(self, method: str, path: str) -> bool:
        """Whether :meth:`allowed` needs the run's experiment (a model is being created) and
        it is not known yet: the caller asks the server (:meth:`learn_experiment`) first."""
        return not self.experiment_id and method == "POST" and path.rstrip("/").endswith(
            "/mlflow/" + self.CREATE_MODEL)

    def learn_experiment(self, run_json: bytes) -> None:
        """The run's experiment, from the server's ``runs/get`` answer."""
        import json

        with contextlib.suppress(ValueError, AttributeError, TypeError):
            self.experiment_id = str(json.loads(run_json)["run"]["info"]["experiment_id"])

    def remember(self, method: str, path: str, status: int, response: bytes) -> None:
        """After the server answered an allowed call: the id of a model created from the run
        (from the answer) is the run's; calls on it are let through from now on."""
        import json

        if method != "POST" or status != 200 or not path.rstrip("/").endswith("/mlflow/" + self.CREATE_MODEL):
            return
        with contextlib.suppress(ValueError, KeyError, TypeError):
            info = json.loads(response)["model"]["info"]
            if str(info.get("source_run_id", "")) == self.run_id:
                with self._lock:
                    self.models[str(info["model_id"])] = str(info.get("experiment_id", ""))

    def start(self) -> MlflowRelay:
        import http.server
        import socketserver
        from urllib.parse import parse_qs, urlsplit

        import httpx

        relay = self
        auth: dict[str, str] = {}
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            auth["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        basic = None
        if os.environ.get("MLFLOW_TRACKING_USERNAME"):
            basic = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        client = httpx.Client(timeout=120.0, auth=basic)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "sandbox"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                if relay.needs_experiment(self.command, url.path):
                    with contextlib.suppress(httpx.HTTPError):
                        run = client.get(f"{relay.upstream}/api/2.0/mlflow/runs/get",
                                         params={"run_id": relay.run_id}, headers=auth)
                        if run.status_code == 200:
                            relay.learn_experiment(run.content)
                if not relay.allowed(self.command, url.path, parse_qs(url.query), body):
                    self._reply(403, b'{"error_code": "PERMISSION_DENIED", "message": "a sandboxed '
                                     b'job may only use its own MLflow run"}', "application/json")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "accept", "user-agent")}
                try:
                    r = client.request(self.command, relay.upstream + self.path, content=body,
                                       headers={**headers, **auth})
                except httpx.HTTPError as exc:
                    self._reply(503, f'{{"error_code": "TEMPORARILY_UNAVAILABLE", "message": '
                                     f'"MLflow is unavailable: {type(exc).__name__}"}}'.encode(),
                                "application/json")
                    return
                relay.remember(self.command, url.path, r.status_code, r.content)
                self._reply(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def _reply(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.socket_path.unlink(missing_ok=True)
        self._server = Server(str(self.socket_path), Handler)
        self._client = client
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="mlflow-relay")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._client.close()
            self._server = None
        self.socket_path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "forward" and "--" in argv:
        split = argv.index("--")
        port, unix_path = int(argv[1]), argv[2]
        return forward(port, unix_path, argv[split + 1:])
    print("usage: python -m assethub.sandbox forward PORT UNIX_SOCKET -- COMMAND...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
