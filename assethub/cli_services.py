"""``assethub serve | services ... | predict``: model versions as HTTP prediction services.

    assethub serve alice/model/digits/cnn:v1 --name digits --replicas 2
    assethub services ls
    assethub services scale digits 3        # same address; `stop` keeps it, `start` brings it back
    assethub predict digits --input batch.json
    assethub services stats digits --window 5m      # requests/s, error rate, p50/p95/p99 per replica
    assethub services alert digits --error-rate 0.05 --window 1m --webhook https://hooks.example/x
    assethub serve alice/model/digits/cnn:v1 --name digits --target kubernetes -o digits.yaml
"""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts, and evaluating them from strings took 0.05-0.08 s of a command's 0.5 s.

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from assethub._json import jsonable
from assethub.errors import InvalidReferenceError

if TYPE_CHECKING:
    from assethub.client import Client
    from assethub.wire import ServiceAlertView, ServiceStats, ServiceView

NameArg = Annotated[str, typer.Argument(metavar="SERVICE", help="The service's name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False,
                                                help="Write the Kubernetes manifests to this file.")]

services_app = typer.Typer(no_args_is_help=True, help="List, show, scale, stop, start, delete services.")


def _client() -> "Client":
    """The SDK, imported on the first command that calls the server (not for ``--help``)."""
    from assethub.client import Client

    return Client()


def _when(view: "ServiceView") -> str:
    t = view.last_health_at
    if t is None:
        return ""
    return f"{'ok' if view.last_health_ok else 'FAILING'} at {t.astimezone().strftime('%H:%M:%S')}"


def _print(view: "ServiceView", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(jsonable(view), indent=2))
        return
    rows = [("service", view.name), ("state", view.state), ("address", view.address),
            ("replicas", f"{view.ready} of {view.replicas} ready" if view.target == "local"
             else str(view.replicas)),
            ("model", view.model), ("commit", view.model_commit), ("training run", view.training_run),
            ("job", view.run_id), ("target", view.target), ("restarts", str(view.restarts)),
            ("health", _when(view)), ("created", f"{view.created_by}, "
                                                 f"{view.created_at.astimezone():%Y-%m-%d %H:%M}"),
            ("detail", view.detail)]
    for key, value in rows:
        if value:
            typer.echo(f"{key + ':':14} {value}")
    for a in view.alerts:
        typer.echo(f"{'alert:':14} {_alert_line(a)}")
    if view.events:
        typer.echo("events:")
        for e in view.events:
            typer.echo(f"  {e.at.astimezone():%Y-%m-%d %H:%M:%S}  {e.kind:18} {e.detail}")


def _alert_line(a: "ServiceAlertView") -> str:
    unit = "" if a.metric == "error_rate" else " s"
    state = "FIRING" if a.firing else "ok"
    hook = f", webhook {a.webhook}" if a.webhook else ""
    return f"{a.metric} > {a.threshold:g}{unit} over {a.window_seconds}s: {state}{hook}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _print_stats(stats: "ServiceStats") -> None:
    table = Table(box=box.SIMPLE_HEAD, title=f"{stats.name}: last {stats.seconds:.0f}s "
                                             f"(window {stats.window_seconds:.0f}s)")
    for col in ("replica", "pid", "requests", "req/s", "4xx", "5xx", "error rate", "p50 ms",
                "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "replica" else "right")
    for r in (*stats.replicas, stats.total):
        table.add_row(r.replica + (" (gone)" if r.gone else ""), str(r.pid or ""), str(r.requests),
                      f"{r.requests_per_second:.2f}", str(r.errors_4xx), str(r.errors_5xx),
                      f"{r.error_rate:.2%}", _ms(r.p50), _ms(r.p95), _ms(r.p99),
                      style="bold" if r.replica == "total" else "")
    Console().print(table)


def _write_manifests(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}; apply with: kubectl apply -f {output}", err=True)


def _read_input(path: str, content_type: str | None) -> tuple[bytes, str]:
    """The request body and its content type, from a .json, .csv or .npy file (or - for stdin)."""
    if path == "-":
        return sys.stdin.buffer.read(), content_type or "application/json"
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no input file {path}")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        try:
            array = np.load(file, allow_pickle=False)
        except ValueError as e:
            raise InvalidReferenceError(f"{path} is not a NumPy array file: {e}", part="input",
                                        value=path) from None
        return json.dumps({"inputs": array.tolist()}).encode(), "application/json"
    guessed = {".csv": "text/csv", ".json": "application/json"}.get(suffix)
    if content_type is None and guessed is None:
        raise InvalidReferenceError(f"cannot tell the format of {path}: use a .json file (MLflow's "
                                    "inputs / instances / dataframe_split), .csv or .npy, or pass "
                                    "--content-type", part="input", value=path)
    return file.read_bytes(), content_type or guessed or "application/json"


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``services`` and ``predict`` to the ``assethub`` application."""
    app.add_typer(services_app, name="services")

    @app.command()
    def serve(model: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
              name: Annotated[str, typer.Option("--name", "-n", help="Service name (a-z, 0-9, -).")],
              replicas: Annotated[int, typer.Option("--replicas", "-r", min=0, help="Replicas.")] = 1,
              port: Annotated[int, typer.Option(help="Port (default: any free one).")] = 0,
              target: Annotated[str, typer.Option(help="local, or kubernetes (render manifests).")] = "local",
              output: OutputOpt = None, as_json: JsonOpt = False) -> None:
        """Serve a model version over HTTP (MLflow's scoring server); returns once it answers."""
        with _client() as hub:
            view = hub.services.create(model, name=name, replicas=replicas, port=port, target=target)
            manifests = hub.services.manifests(name) if target == "kubernetes" else ""
        _print(view, as_json)
        if manifests and (output is not None or not as_json):
            _write_manifests(manifests, output)

    @app.command()
    def predict(service: NameArg,
                input: Annotated[str, typer.Option("--input", "-i", help="Request: .json, .csv, .npy or -.")],
                content_type: Annotated[str | None, typer.Option(help="Content type of --input.")] = None,
                ) -> None:
        """Send a request to a service (through the server) and print the model's answer."""
        body, kind = _read_input(input, content_type)
        with _client() as hub:
            answer = hub.services.predict(service, content=body, content_type=kind)
        typer.echo(answer if isinstance(answer, str) else json.dumps(answer))

    @services_app.command("ls")
    def ls(as_json: JsonOpt = False) -> None:
        """Services you may see: state, address, model version."""
        with _client() as hub:
            views = hub.services.list()
        if as_json:
            typer.echo(json.dumps(jsonable(views), indent=2))
            return
        table = Table(box=box.SIMPLE_HEAD)
        for col in ("service", "state", "ready", "address", "model", "commit", "target"):
            table.add_column(col)
        for v in views:
            table.add_row(v.name, v.state, f"{v.ready}/{v.replicas}", v.address, v.model,
                          v.model_commit[:12], v.target)
        Console().print(table)

    @services_app.command("show")
    def show(service: NameArg, as_json: JsonOpt = False) -> None:
        """A service: address, state, replicas, model version and the training run behind it."""
        with _client() as hub:
            _print(hub.services.get(service), as_json)

    @services_app.command("scale")
    def scale(service: NameArg, replicas: Annotated[int, typer.Argument(min=0, help="Replicas (0 stops).")],
              as_json: JsonOpt = False) -> None:
        """Run this many replicas, on the same address; returns once they answer."""
        with _client() as hub:
            _print(hub.services.scale(service, replicas), as_json)

    @services_app.command("stop")
    def stop(service: NameArg, as_json: JsonOpt = False) -> None:
        """Stop every replica; the address stays reserved for `start`."""
        with _client() as hub:
            _print(hub.services.stop(service), as_json)

    @services_app.command("start")
    def start(service: NameArg, as_json: JsonOpt = False) -> None:
        """Start a stopped service again, on the same address."""
        with _client() as hub:
            _print(hub.services.start(service), as_json)

    @services_app.command("stats")
    def stats(service: NameArg,
              window: Annotated[str, typer.Option("--window", "-w", help="e.g. 30s, 5m, 1h.")] = "5m",
              as_json: JsonOpt = False) -> None:
        """Requests/s, error rate (4xx, 5xx) and p50/p95/p99 latency, per replica and in total."""
        with _client() as hub:
            figures = hub.services.stats(service, window=window)
        if as_json:
            typer.echo(json.dumps(jsonable(figures), indent=2))
        else:
            _print_stats(figures)

    @services_app.command("alert")
    def alert(service: NameArg,
              error_rate: Annotated[float | None, typer.Option(
                  "--error-rate", min=0.0, help="Fire above this fraction of errors (0.05 = 5%).")] = None,
              p95: Annotated[float | None, typer.Option(
                  "--p95", min=0.0, help="Fire above this p95 latency, in seconds.")] = None,
              window: Annotated[str, typer.Option("--window", "-w", help="e.g. 1m, 5m.")] = "5m",
              webhook: Annotated[str, typer.Option(
                  help="URL to POST (JSON) when it fires and resolves; - reads it from stdin.")] = "",
              clear: Annotated[bool, typer.Option(
                  "--clear", help="Remove the rules (those named by --error-rate/--p95, else all).")] = False,
              as_json: JsonOpt = False) -> None:
        """Set, clear or (with no rule given) list the service's alert rules."""
        if webhook == "-":
            webhook = sys.stdin.readline().strip()
        with _client() as hub:
            if clear:
                named: list[str | None] = [m for m, v in (("error_rate", error_rate), ("p95", p95))
                                           if v is not None]
                removed = 0
                for m in named or [None]:
                    removed += hub.services.clear_alert(service, m)
                typer.echo(f"removed {removed} alert rule(s) of {service}")
                return
            if error_rate is not None or p95 is not None:
                hub.services.set_alert(service, error_rate=error_rate, p95=p95, window=window,
                                       webhook=webhook)
            rules = hub.services.alerts(service)
        if as_json:
            typer.echo(json.dumps(jsonable(rules), indent=2))
            return
        for a in rules:
            typer.echo(_alert_line(a))
        if not rules:
            typer.echo(f"service {service} has no alert rules")

    @services_app.command("logs")
    def logs(service: NameArg,
             lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="Lines.")] = 100) -> None:
        """The last lines of the service's log (its replicas and their supervisor)."""
        with _client() as hub:
            typer.echo(hub.services.logs(service, lines=lines))

    @services_app.command("manifests")
    def manifests(service: NameArg, output: OutputOpt = None) -> None:
        """Kubernetes manifests serving the service's model version at its pinned commit."""
        with _client() as hub:
            _write_manifests(hub.services.manifests(service), output)

    @services_app.command("delete")
    def delete(service: NameArg,
               yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
        """Stop a service and free its address."""
        if not yes:
            typer.confirm(f"delete service {service}?", abort=True)
        with _client() as hub:
            hub.services.delete(service)
        typer.echo(f"deleted service {service}")
