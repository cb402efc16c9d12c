"""``assethub follow | unfollow | follows``: retrain a model when a dataset changes.

(``assethub deploy``, which registers the deployments these retrains run through, is added by
``deployments.cli``: see ``assethub.plugins``.)
"""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts, and evaluating them from strings took 0.05-0.08 s of a command's 0.5 s.

import json
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from assethub._json import jsonable
from assethub.cli_jobs import JsonOpt, _client


def register(app: typer.Typer) -> None:
    """Add the follow commands to the ``assethub`` application."""

    @app.command()
    def follow(model: Annotated[str, typer.Argument(help="Model asset to retrain.")],
               dataset: Annotated[str, typer.Argument(help="Dataset asset whose main it follows.")],
               repo: Annotated[str, typer.Option("--repo", help="Git URL or path of the training code.")],
               revision: Annotated[str, typer.Option(
                   help="Branch, tag or commit of the code (default: the repository's default one).")] = "",
               subpath: Annotated[str, typer.Option(help="Directory of the code in the repository.")] = "",
               metric: Annotated[str, typer.Option(help="Merge only if this metric improves.")] = "accuracy",
               lower_is_better: Annotated[bool, typer.Option(help="The metric is a loss.")] = False,
               margin: Annotated[float, typer.Option(min=0, help="Required improvement.")] = 0.0,
               schedule: Annotated[str, typer.Option(help="Also retrain on a cron: '0 3 * * *'.")] = "",
               as_json: JsonOpt = False) -> None:
        """Retrain MODEL whenever DATASET's main moves (and on a schedule); merge only if better."""
        with _client() as hub:
            f = hub.follow(model, dataset, repo=repo, revision=revision, subpath=subpath, metric=metric,
                           higher_is_better=not lower_is_better, margin=margin, schedule=schedule)
        if as_json:
            typer.echo(json.dumps(jsonable(f), indent=2))
            return
        typer.echo(f"follow {f.id}: {f.model} retrains when {f.dataset}'s main moves"
                   + (f" and on '{schedule}'" if schedule else ""))
        for k, v in sorted(f.triggers.items()):
            typer.echo(f"  {k}: {v}")

    @app.command()
    def unfollow(follow_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
        """Remove a follow and its triggers."""
        with _client() as hub:
            hub.unfollow(follow_id)
        typer.echo(f"removed follow {follow_id}")

    @app.command("resume-follow")
    def resume_follow(follow_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
        """Let a paused follow retrain again (its owner, once the rights it needs are back)."""
        with _client() as hub:
            f = hub.resume_follow(follow_id)
        typer.echo(f"follow {f.id} is active: {f.model} retrains when {f.dataset}'s main moves")
        for k, v in sorted(f.triggers.items()):
            typer.echo(f"  {k}: {v}")

    @app.command()
    def follows(model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
                as_json: JsonOpt = False) -> None:
        """List follows."""
        with _client() as hub:
            found = hub.list_follows(model=model)
        if as_json:
            typer.echo(json.dumps(jsonable(found), indent=2))
            return
        table = Table("id", "model", "dataset", "metric", "margin", "schedule", "state",
                      box=box.SIMPLE_HEAD)
        for f in found:
            table.add_row(str(f.id), f.model, f.dataset, str(f.settings.get("metric")),
                          str(f.settings.get("margin")), str(f.settings.get("schedule") or "-"),
                          f"paused: {f.paused}" if f.paused else "active")
        Console().print(table)
