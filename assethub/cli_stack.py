"""``assethub up / down / status / logs``: the stack on this machine, embedded (the default) or
distributed (``--profile distributed``: PostgreSQL, S3, lakeFS, Prefect and MLflow on their
production backends; docs/distributed.md), and the logs of its components.

The stack lives in ``infra.stack``, imported inside the command only: the rest of the CLI
(and a machine that only talks to a remote server) never loads it.
"""

from __future__ import annotations

import time
from collections import deque
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from assethub import config


def show(path: Path, lines: int, *, follow: bool = False, every: float = 0.5) -> None:
    """Print the last ``lines`` lines of ``path`` (all for 0); with ``follow``, then what is
    appended, until interrupted (from the start again when the file is truncated)."""
    with path.open("rb") as f:
        typer.echo(b"".join(deque(f, maxlen=lines if lines > 0 else None)).decode(errors="replace"),
                   nl=False)
        while follow:
            chunk = f.read()
            if chunk:
                typer.echo(chunk.decode(errors="replace"), nl=False)
            elif f.tell() > path.stat().st_size:
                f.seek(0)
            else:
                time.sleep(every)


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down``, ``status`` and ``logs`` to the ``assethub`` application."""

    @app.command()
    def up(port: Annotated[int, typer.Option(help="Server port.")] = 8780,
           admin: Annotated[str, typer.Option(help="Name of the first admin.")] = "admin",
           profile: Annotated[str | None, typer.Option(
               help="embedded (local files) or distributed (PostgreSQL, S3, ...; docs/distributed.md). "
                    "Default: $ASSETHUB_PROFILE, else the home's, else embedded.")] = None) -> None:
        """Start lakeFS, MLflow, Prefect and the Asset Hub server on this machine (or find them running)."""
        from infra import stack
        from infra.profiles import SettingsError

        try:
            info = stack.up(port=port, admin=admin, profile_name=profile)
        except SettingsError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        admin_token = config.home() / "server" / "admin-token"
        typer.echo(f"profile:   {info.profile}")
        typer.echo(f"Asset Hub: {info.url}/ (web console: sign in with an API token, e.g. the admin's "
                   f"in {admin_token})\nlakeFS:    {info.lakefs_url}\nMLflow:    {info.mlflow_url}\n"
                   f"Prefect UI: {info.prefect_url}")
        if info.s3_endpoint:
            typer.echo(f"S3:        {info.s3_endpoint}")
        for component, where in info.external.items():
            typer.echo(f"  {component} is given from outside ({where}): not started here")
        typer.echo("logs (`assethub logs COMPONENT`):")
        for component, log in info.logs.items():
            typer.echo(f"  {component:<15}{log}")
        if info.config_file:
            typer.echo(f"signed in as {admin}; saved to {info.config_file}")

    @app.command()
    def down() -> None:
        """Stop what `assethub up` started (never a piece given from outside)."""
        from infra import stack

        stopped = stack.down()
        typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")

    @app.command()
    def status() -> None:
        """Show the profile and each component of the stack: where it runs, or not."""
        from infra import stack

        typer.echo(f"profile: {stack.profile()}")
        for component, where in stack.status().items():
            typer.echo(f"  {component:<15}{where}")

    @app.command()
    def logs(component: Annotated[str, typer.Argument(
                 help="lakefs, server, mlflow, prefect-server or prefect-worker "
                      "(distributed: also postgres, seaweedfs).")],
             lines: Annotated[int, typer.Option("--lines", "-n", min=0,
                                                help="Lines from the end (0: all).")] = 50,
             follow_: Annotated[bool, typer.Option("--follow", "-f",
                                                   help="Keep printing what is appended.")] = False,
             ) -> None:
        """Show the log of a component that `assethub up` started (a service's: `assethub services logs`)."""
        from infra import stack

        files = stack.log_files()
        if component not in files:
            typer.echo(f"error: unknown component {component!r}; known: {', '.join(files)}", err=True)
            raise typer.Exit(2)
        path = files[component]
        if not path.exists():
            typer.echo(f"error: {component} has no log yet ({path}): start it with `assethub up`", err=True)
            raise typer.Exit(3)
        with suppress(KeyboardInterrupt):  # the way to end --follow
            show(path, lines, follow=follow_)
