"""``assethub deploy``: register the work pools and deployments on Prefect.

Added to the ``assethub`` command line through the ``assethub.commands`` entry point (see
``assethub.plugins``), so the core CLI never imports this package. The registration itself
(``python -m deployments``) runs in a child process: the CLI process stays free of Prefect's
import cost and settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer

from assethub.cli_jobs import stack_prefect_api

app = typer.Typer(add_completion=False)


@app.command()
def deploy() -> None:
    """Register the work pools (local, gpu) and the deployments of every flow on Prefect."""
    env = dict(os.environ)
    if "PREFECT_API_URL" not in env:
        api = stack_prefect_api()
        if not api:
            typer.echo("error: no Prefect server: run `assethub up` or set PREFECT_API_URL", err=True)
            raise typer.Exit(2)
        env["PREFECT_API_URL"] = api
    proc = subprocess.run([sys.executable, "-m", "deployments"], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        typer.echo(proc.stderr[-3000:], err=True)
        typer.echo("error: registering the deployments failed (output above)", err=True)
        raise typer.Exit(1)
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    typer.echo(f"work pools: local, gpu\ndeployments: {', '.join(names)}")
