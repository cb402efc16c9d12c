"""``assethub train | continue-train | evaluate | runs | lineage | compare | reproduce``.

Jobs run as the Prefect flows in ``flows/`` (``python -m flows.<name>``, in a child process so
the CLI itself stays light and never imports Prefect): their progress streams to the terminal,
their result is printed when they end.
"""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts, and evaluating them from strings took 0.05-0.08 s of a command's 0.5 s.

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assethub import config
from assethub._json import jsonable

if TYPE_CHECKING:
    from assethub.client import Client
    from assethub.wire import LineageView, RunView

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-D", help="Dataset version <path>:<ref> (default: the model's settings).")]
RepoOpt = Annotated[str, typer.Option(
    "--repo", help="Git URL or path of the training code (default: the model's settings).")]
AlgorithmOpt = Annotated[str, typer.Option(
    "--algorithm", help="An algorithm of the library, NAME or NAME@VERSION, instead of --repo.")]
RevisionOpt = Annotated[str, typer.Option(
    "--revision", help="Branch, tag or commit of the code (default: the repository's default branch).")]
SubpathOpt = Annotated[str, typer.Option("--subpath", help="Directory of the code in the repository.")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (repeatable).")]
CommandOpt = Annotated[str, typer.Option("--command", help="Command instead of assethub.yaml's.")]
BranchOpt = Annotated[str, typer.Option("--branch", "-b", help="Model branch to write (default: new).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
DeploymentOpt = Annotated[bool, typer.Option(
    "--deployment", help="Run on a Prefect worker through the deployment (shows in the Prefect UI).")]
PoolOpt = Annotated[str, typer.Option("--pool", help="With --deployment: the work pool (local, gpu; "
                                      "default: gpu when the job's resources ask for a GPU).")]


def _client() -> "Client":
    """The SDK, imported on the first command that calls the server (not for ``--help``)."""
    from assethub.client import Client

    return Client()


def clean_repo(repo: str) -> str:
    """``repo`` without credentials: one in the URL is handed to the server (kept for you, used
    by your jobs) before anything else sees it, so the job's command line, its Prefect
    parameters and its run record carry only the clean URL."""
    from assethub.gitcred import has_credentials

    if not has_credentials(repo):
        return repo
    with _client() as hub:
        return hub.adopt_git_url(repo)


def _job_args(dataset: str, repo: str, revision: str, subpath: str, params: list[str] | None,
              command: str, algorithm: str = "") -> list[str]:
    args = ["--dataset", dataset, "--repo", clean_repo(repo), "--revision", revision, "--subpath", subpath,
            "--command", command, "--algorithm", algorithm]
    for p in params or []:
        if "=" not in p:
            raise typer.BadParameter(f"--param takes KEY=VALUE, not {p!r}")
        args += ["--param", p]
    return args


def job_pool(model: str, algorithm: str, pool: str) -> str:
    """The work pool a ``--deployment`` job runs in: ``pool`` when given, else ``gpu`` when the
    job's resources (the model's settings, else its algorithm's) ask for a GPU, else ``local``."""
    if pool:
        return pool
    from assethub.refs import AssetRef

    with _client() as hub:
        saved = hub.job_settings(AssetRef.coerce(model).path if ":" in model else model).settings
        resources = dict(saved.get("resources") or {})
        name = algorithm or ("" if saved.get("repo") else str(saved.get("algorithm") or ""))
        if not resources and name:
            resources = dict(hub.get_algorithm(name).current.resources)
    return "gpu" if int(resources.get("gpu") or 0) > 0 else "local"


def stack_prefect_api() -> str:
    """The API of the Prefect server `assethub up` started, if it runs (else "")."""
    state = config.home() / "prefect" / "state.json"
    if not state.exists():
        return ""
    url = f"http://127.0.0.1:{json.loads(state.read_text())['port']}/api"
    try:
        import httpx

        return url if httpx.get(url + "/health", timeout=2).status_code == 200 else ""
    except Exception:
        return ""


def launch(flow: str, args: Sequence[str], *, deployment: str = "",
           parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``python -m flows.<flow> ARGS --json``; its logs stream to stderr, its result is returned.

    With ``deployment``, the flow runs on a worker through that Prefect deployment instead
    (``python -m deployments.run``), with ``parameters``. A failed job exits with the flow's
    exit code after its one-line error.
    """
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", **os.environ,
           "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}
    home = config.home()
    if "PREFECT_API_URL" not in env and (api := stack_prefect_api()):
        env["PREFECT_API_URL"] = api  # the stack's Prefect: runs show in its UI
        env.setdefault("PREFECT_HOME", str(home / "prefect"))
    if "PREFECT_API_URL" not in env and "PREFECT_HOME" not in env:
        # no Prefect server configured: Prefect's temporary one, on a database of our own
        env["PREFECT_HOME"] = str(home / "prefect")
    if deployment:
        parameters = dict(parameters or {})
        if parameters.get("repo"):
            parameters["repo"] = clean_repo(parameters["repo"])
        if "PREFECT_API_URL" not in env:
            typer.echo("error: --deployment needs a Prefect server: `assethub up` (then `assethub "
                       "deploy`) or PREFECT_API_URL", err=True)
            raise typer.Exit(2)
        params = [a for i, a in enumerate(args) if i and args[i - 1] == "--param"]
        # registered as you first; the worker's job takes that run over, acting for you on it only
        command = [sys.executable, "-m", "deployments.run", deployment, "--as-me", "--parameters",
                   json.dumps(parameters or {}), *(x for p in params for x in ("--param", p))]
    else:
        command = [sys.executable, "-m", f"flows.{flow}", *args, "--json"]
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise typer.Exit(proc.returncode)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, json.JSONDecodeError):
        typer.echo(f"error: flows.{flow} printed no result", err=True)
        raise typer.Exit(1) from None


def _kv(rows: Sequence[tuple[str, object]], title: str = "") -> None:
    table = Table("", "", box=box.SIMPLE, show_header=False, title=title or None, title_justify="left")
    for k, v in rows:
        table.add_row(Text(k, style="bold"), Text(str(v)))
    Console().print(table)


def _job_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    keys = ("model_ref", "commit", "run_id", "mlflow_run_id", "evaluation_id", "stored_in", "merged",
            "reason", "match")
    rows: list[tuple[str, object]] = [(k, result[k]) for k in keys if k in result]
    rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted((result.get("metrics") or {}).items())]
    _kv(rows)


def register(app: typer.Typer) -> None:
    """Add the job commands to the ``assethub`` application."""

    @app.command()
    def train(model: Annotated[str, typer.Argument(help="Model asset <owner>/model/<folder>/<name>.")],
              dataset: DatasetOpt = "", repo: RepoOpt = "", algorithm: AlgorithmOpt = "",
              revision: RevisionOpt = "", subpath: SubpathOpt = "",
              param: ParamOpt = None, branch: BranchOpt = "", command: CommandOpt = "",
              as_json: JsonOpt = False, deployment: DeploymentOpt = False, pool: PoolOpt = "") -> None:
        """Train a new model version (on a new branch) from a dataset version and training code;
        what you leave out comes from the model's settings (`assethub configure`)."""
        args = ["--model", model, *_job_args(dataset, repo, revision, subpath, param, command, algorithm),
                "--branch", branch]
        values = dict(model=model, dataset=dataset, repo=repo, revision=revision, subpath=subpath,
                      branch=branch, command=command, algorithm=algorithm)
        where = f"train/{job_pool(model, algorithm, pool)}" if deployment else ""
        _job_result(launch("train", args, deployment=where, parameters=values), as_json)

    @app.command("continue-train")
    def continue_train(base: Annotated[str, typer.Argument(help="Model version to continue, <path>:<ref>.")],
                       dataset: DatasetOpt = "", repo: RepoOpt = "", algorithm: AlgorithmOpt = "",
                       revision: RevisionOpt = "", subpath: SubpathOpt = "", param: ParamOpt = None,
                       branch: BranchOpt = "", command: CommandOpt = "", as_json: JsonOpt = False,
                       deployment: DeploymentOpt = False, pool: PoolOpt = "") -> None:
        """Continue training a model version into a new branch."""
        args = ["--base", base, *_job_args(dataset, repo, revision, subpath, param, command, algorithm),
                "--branch", branch]
        values = dict(base=base, dataset=dataset, repo=repo, revision=revision, subpath=subpath,
                      branch=branch, command=command, algorithm=algorithm)
        where = f"continue-train/{job_pool(base, algorithm, pool)}" if deployment else ""
        _job_result(launch("continue_train", args, deployment=where, parameters=values), as_json)

    @app.command()
    def evaluate(model: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
                 dataset: DatasetOpt = "", repo: RepoOpt = "", algorithm: AlgorithmOpt = "",
                 revision: RevisionOpt = "", subpath: SubpathOpt = "",
                 param: ParamOpt = None, command: CommandOpt = "", as_json: JsonOpt = False,
                 deployment: DeploymentOpt = False) -> None:
        """Evaluate a model version on a dataset version's test split; kept with the model."""
        args = ["--model", model, *_job_args(dataset, repo, revision, subpath, param, command, algorithm)]
        values = dict(model=model, dataset=dataset, repo=repo, revision=revision, subpath=subpath,
                      command=command, algorithm=algorithm)
        _job_result(launch("evaluate", args, deployment="evaluate/local" if deployment else "",
                           parameters=values), as_json)

    @app.command()
    def reproduce(model: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
                  branch: BranchOpt = "",
                  repo: Annotated[str, typer.Option(help="Code URL, if the recorded one was redacted.")] = "",
                  tolerance: Annotated[float, typer.Option(help="Relative tolerance on metrics.")] = 0.0,
                  as_json: JsonOpt = False) -> None:
        """Re-run the job behind a model version from its lineage; exit 1 if the metrics differ."""
        args = ["--model", model, "--branch", branch, "--repo", clean_repo(repo),
                "--tolerance", str(tolerance)]
        result = launch("reproduce", args)
        _job_result(result, as_json)
        if not as_json:
            for name, d in result.get("differences", {}).items():
                typer.echo(f"differs: {name}: {d['original']} (original) vs {d['reproduced']} (again)")
            typer.echo("metrics match" if result["match"] else "metrics differ", err=not result["match"])
        if not result["match"]:
            raise typer.Exit(1)

    @app.command()
    def runs(model: Annotated[str | None, typer.Argument(help="Only this model's runs.")] = None,
             state: Annotated[str | None, typer.Option(help="pending, running, completed, failed")] = None,
             kind: Annotated[str | None, typer.Option(help="train, continue_train, evaluate, merge")] = None,
             run_id: Annotated[str | None, typer.Option("--id", help="Show one run in full.")] = None,
             limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
             as_json: JsonOpt = False) -> None:
        """List jobs, newest first: a model's, or the ones you started."""
        with _client() as hub:
            found = [hub.get_run(run_id)] if run_id else hub.list_runs(model, state=state, kind=kind,
                                                                       limit=limit)
        if as_json:
            typer.echo(json.dumps(jsonable(found), indent=2))
        elif run_id:
            _kv([(k, v) for k, v in jsonable(found[0]).items() if v not in ("", {}, None)])
        else:
            _runs_table(found)

    @app.command()
    def lineage(ref: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
                as_json: JsonOpt = False) -> None:
        """Show what produced a model version: dataset, code, params, base model, metrics, runs."""
        with _client() as hub:
            view = hub.lineage(ref)
        if as_json:
            typer.echo(json.dumps(jsonable(view), indent=2))
            return
        _kv(_lineage_rows(view), title=f"{view.ref} (commit {view.commit[:12]})")

    @app.command()
    def compare(left: Annotated[str, typer.Argument(help="Model version <path>:<ref>.")],
                right: Annotated[str, typer.Argument(help="Another model version.")],
                as_json: JsonOpt = False) -> None:
        """Show two model versions' params and metrics side by side."""
        with _client() as hub:
            a, b = hub.lineage(left), hub.lineage(right)
        rows = _compare_rows(a, b)
        if as_json:
            typer.echo(json.dumps([{"name": n, "left": x, "right": y} for n, x, y in rows], indent=2))
            return
        table = Table("", left, right, box=box.SIMPLE_HEAD, header_style="bold")
        for name, x, y in rows:
            style = "yellow" if x != y else ""
            table.add_row(Text(name, style="bold"), Text(_fmt(x), style=style), Text(_fmt(y), style=style))
        Console().print(table)


def register_git_credentials(app: typer.Typer) -> None:
    """``assethub git-credentials set | ls | rm``: credentials for private Git repositories."""
    creds = typer.Typer(no_args_is_help=True, help="Credentials for private Git repositories (kept by "
                        "the server, used by your jobs, never shown).")
    app.add_typer(creds, name="git-credentials")

    @creds.command("set")
    def set_(host: Annotated[str, typer.Argument(help="Host (host:port), or the repository URL.")],
             username: Annotated[str, typer.Option(help="User name; leave out when the token is all.")] = "",
             password_stdin: Annotated[bool, typer.Option(
                 "--password-stdin", help="Read the password or token from stdin.")] = False) -> None:
        """Keep a credential for HOST's repositories; the secret is read from stdin or a hidden
        prompt, never from the command line."""
        secret = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt(
            "Password or token", hide_input=True)
        with _client() as hub:
            view = (hub.set_git_credential(host, username, secret) if username
                    else hub.set_git_credential(host, secret))
        typer.echo(f"kept a git credential for {view.host}")

    @creds.command("ls")
    def ls(as_json: JsonOpt = False) -> None:
        """The hosts you keep a credential for."""
        with _client() as hub:
            found = hub.list_git_credentials()
        if as_json:
            typer.echo(json.dumps(jsonable(found), indent=2))
            return
        for c in found:
            typer.echo(f"{c.host}\tupdated {c.updated_at.astimezone().strftime('%Y-%m-%d %H:%M')}")

    @creds.command("rm")
    def rm(host: Annotated[str, typer.Argument(help="Host (host:port).")]) -> None:
        """Forget your credential for HOST."""
        with _client() as hub:
            hub.delete_git_credential(host)
        typer.echo(f"removed the git credential for {host}")


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _runs_table(found: Sequence["RunView"]) -> None:
    table = Table("run", "kind", "state", "by", "model", "branch", "dataset", "metrics", "started",
                  box=box.SIMPLE_HEAD, header_style="bold")
    for r in found:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())[:3])
        by = r.created_by if r.trigger == "person" else f"{r.trigger} ({r.created_by})"
        table.add_row(r.id[:12], r.kind, r.state, by, r.model, r.branch, r.dataset_ref, metrics,
                      r.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    Console().print(table)


def _best_metrics(view: "LineageView") -> dict[str, float]:
    """The model's metrics: its job's own, overlaid by its newest evaluation."""
    out = dict(view.lineage.metrics) if view.lineage else {}
    if view.evaluations:
        out.update(max(view.evaluations, key=lambda e: e.created_at).metrics)
    return out


_MODEL_FORMATS = {
    "mlflow": "MLflow model in model/ (servable)",
    "mlflow-logged": "MLflow model logged to the job's run, committed as model/ (servable)",
    "files": "the code's own files, no MLflow model: not servable (write one to $ASSETHUB_OUTPUT_DIR/model "
             "with mlflow.<flavor>.save_model, or log one with mlflow.<flavor>.log_model)",
}


def _lineage_rows(view: "LineageView") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [("model commit", view.model_commit)]
    lin = view.lineage
    if lin is None:
        rows.append(("lineage", "none: this version was not made by an Asset Hub job"))
    else:
        rows += [("job", lin.job), ("dataset", f"{lin.dataset} (commit {lin.dataset_commit})"),
                 ("code", f"{lin.code_url} @ {lin.code_sha}" + (f" /{lin.code_subpath}" if lin.code_subpath
                                                                  else "")),
                 ("code revision", lin.code_revision), ("command", lin.command)]
        if lin.algorithm:
            rows.append(("algorithm", f"{lin.algorithm}@{lin.algorithm_version}"))
        if lin.settings_commit:
            rows.append(("settings", f"the model's job settings at commit {lin.settings_commit}"))
        if lin.base_model:
            rows.append(("base model", f"{lin.base_model} (commit {lin.base_model_commit})"))
        rows += [(f"param {k}", v) for k, v in sorted(lin.params.items())]
        rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted(lin.metrics.items())]
        rows += [("MLflow run", lin.mlflow_run_id), ("Prefect flow run", lin.prefect_flow_run_id),
                 ("Asset Hub run", lin.run_id)]
        if view.run is not None and view.run.resources:
            rows.append(("resources", ", ".join(f"{k}={v}" for k, v in sorted(view.run.resources.items()))))
    if view.model_format:
        rows.append(("model", _MODEL_FORMATS.get(view.model_format, view.model_format)))
    for e in view.evaluations:
        scores = ", ".join(f"{k}={v:.6g}" for k, v in sorted(e.metrics.items()))
        trust = "" if e.trusted else ", untrusted: merges ignore it"
        rows.append((f"evaluation {e.id[:8]}",
                     f"{scores} (dataset commit {e.dataset_commit[:12]}, by {e.produced_by}{trust})"))
    for u in view.services:
        rows.append((f"served by {u.service}", f"{u.requests} requests, {u.errors} errors (since "
                     f"{u.first_at.astimezone():%Y-%m-%d %H:%M}" + ("" if u.active else ", deleted") + ")"))
    return rows


def _compare_rows(a: "LineageView", b: "LineageView") -> list[tuple[str, object, object]]:
    rows: list[tuple[str, object, object]] = [("model commit", a.model_commit[:12], b.model_commit[:12])]
    la, lb = a.lineage, b.lineage
    for name, field in (("job", "job"), ("dataset commit", "dataset_commit"), ("code sha", "code_sha"),
                        ("base model", "base_model")):
        x: str | None = getattr(la, field) if la else None
        y: str | None = getattr(lb, field) if lb else None
        if field.endswith(("_commit", "_sha")):
            x, y = (x or "")[:12] or None, (y or "")[:12] or None
        rows.append((name, x, y))
    pa, pb = (dict(la.params) if la else {}), (dict(lb.params) if lb else {})
    rows += [(f"param {k}", pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb))]
    ma, mb = _best_metrics(a), _best_metrics(b)
    rows += [(f"metric {k}", ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb))]
    return rows
