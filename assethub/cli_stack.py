"""``assethub logs COMPONENT``: the log of a component of the embedded stack (``assethub up``).

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
    """Add ``logs`` to the ``assethub`` application."""

    @app.command()
    def logs(component: Annotated[str, typer.Argument(
                 help="lakefs, server, mlflow, prefect-server or prefect-worker.")],
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
