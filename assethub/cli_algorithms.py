"""``assethub configure`` (a model's job settings) and ``assethub algorithms ls | show | register
| update | delete | share | unshare`` (the algorithm library)."""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts (see cli_jobs).

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assethub._json import jsonable

if TYPE_CHECKING:
    from assethub.client import Client
    from assethub.wire import AlgorithmView

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
NameArg = Annotated[str, typer.Argument(help="Algorithm <task type>/<name> (NAME@N: version N).")]


def _client() -> "Client":
    from assethub.client import Client

    return Client()


def _pairs(items: list[str] | None, option: str) -> dict[str, Any]:
    """KEY=VALUE items as a mapping (numbers and true/false converted, as --param does)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{option} takes KEY=VALUE, not {item!r}")
        value: Any = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                pass
        if raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"
        out[key.strip()] = value
    return out


def _resources(cpu: int | None, gpu: int | None) -> dict[str, int] | None:
    found = {k: v for k, v in (("cpu", cpu), ("gpu", gpu)) if v is not None}
    return found or None


def _kv(rows: list[tuple[str, object]], title: str = "") -> None:
    table = Table("", "", box=box.SIMPLE, show_header=False, title=title or None, title_justify="left")
    for k, v in rows:
        table.add_row(Text(k, style="bold"), Text(str(v)))
    Console().print(table)


def _show(view: "AlgorithmView") -> None:
    from assethub.params import declare

    v = view.current
    kind = "preset" if view.preset else ("public" if view.public else "private")
    rows: list[tuple[str, object]] = [
        ("owner", f"{view.owner} ({kind}; your role: {view.role})"),
        ("version", f"{v.version} of {view.latest}"), ("task type", v.task_type),
        ("code", f"{v.code_url} @ {v.code_revision or '(default branch)'}"
                 + (f" /{v.code_subpath}" if v.code_subpath else "")),
        ("train", v.train_command or "(assethub.yaml)"),
        ("evaluate", v.evaluate_command or "(assethub.yaml)")]
    if v.predict_command:
        rows.append(("predict", v.predict_command))
    if v.resources:
        rows.append(("resources", ", ".join(f"{k}={n}" for k, n in sorted(v.resources.items()))))
    rows += [(f"param {name}", p.describe() + (f" - {p.help}" if p.help else ""))
             for name, p in declare(v.params).items()]
    if v.description:
        rows.append(("description", v.description))
    rows += [(f"version {x.version}", f"{x.created_at.astimezone().strftime('%Y-%m-%d %H:%M')} by "
              f"{x.created_by}: {x.code_url} @ {x.code_revision[:12] or '-'}") for x in view.versions]
    rows += [(f"shared with {s.subject_type}" + (f" {s.subject_name}" if s.subject_name else ""), s.role)
             for s in view.shares]
    _kv(rows, title=view.name)


def register(app: typer.Typer) -> None:
    """Add ``configure`` and the ``algorithms`` group to the ``assethub`` application."""

    @app.command()
    def configure(
            model: Annotated[str, typer.Argument(help="Model asset <owner>/model/<folder>/<name>.")],
            repo: Annotated[str | None, typer.Option(help="Git URL or path of the training code.")] = None,
            revision: Annotated[str | None, typer.Option(help="Branch, tag or commit of the code.")] = None,
            subpath: Annotated[str | None, typer.Option(help="Directory of the code in the repo.")] = None,
            train_command: Annotated[str | None, typer.Option(help="Command that trains.")] = None,
            evaluate_command: Annotated[str | None, typer.Option(help="Command that evaluates.")] = None,
            dataset: Annotated[str | None, typer.Option(help="Default dataset version <path>:<ref>.")] = None,
            param: Annotated[list[str] | None, typer.Option(
                "--param", "-p", help="Default parameter KEY=VALUE (repeatable).")] = None,
            cpu: Annotated[int | None, typer.Option(min=0, help="CPUs the jobs ask for.")] = None,
            gpu: Annotated[int | None, typer.Option(min=0, help="GPUs the jobs ask for.")] = None,
            algorithm: Annotated[str | None, typer.Option(
                help="An algorithm of the library (NAME or NAME@N) instead of --repo.")] = None,
            unset: Annotated[list[str] | None, typer.Option(
                help="Remove a setting (repo, revision, subpath, train_command, evaluate_command, "
                     "dataset, params, resources, algorithm); repeatable.")] = None,
            as_json: JsonOpt = False) -> None:
        """Show or change a model's job settings: what `assethub train MODEL` runs when nothing
        else is said. Kept on the model's main as .assethub/job.yaml (a change is a commit)."""
        fields: dict[str, Any] = dict(
            repo=repo, revision=revision, subpath=subpath, train_command=train_command,
            evaluate_command=evaluate_command, dataset=dataset, algorithm=algorithm,
                      params=_pairs(param, "--param") or None, resources=_resources(cpu, gpu))
        fields = {k: v for k, v in fields.items() if v is not None}
        with _client() as hub:
            if fields or unset:
                if fields.get("repo"):
                    fields["repo"] = hub.adopt_git_url(str(fields["repo"]))  # the credential stays with you
                view = hub.configure(model, unset=[u.replace("-", "_") for u in unset or []], **fields)
            else:
                view = hub.job_settings(model)
        if as_json:
            typer.echo(json.dumps(jsonable(view), indent=2))
            return
        if not view.settings:
            typer.echo(f"{view.model} has no job settings: `assethub configure {view.model} --repo URL` "
                       "(or --algorithm NAME) and --dataset REF save them")
            return
        rows: list[tuple[str, object]] = []
        for k, v in sorted(view.settings.items()):
            if isinstance(v, dict):
                rows += [(f"{k} {n}", x) for n, x in sorted(v.items())]
            else:
                rows.append((k, v))
        _kv(rows, title=f"{view.model} (settings commit {view.commit[:12]})")

    algos = typer.Typer(no_args_is_help=True, help="The algorithm library: named, versioned, shared "
                        "training code that jobs use by name (--algorithm).")
    app.add_typer(algos, name="algorithms")

    @algos.command("ls")
    def ls(task_type: Annotated[str | None, typer.Option(help="Only this task type.")] = None,
           query: Annotated[str | None, typer.Option(help="Words in the name or description.")] = None,
           as_json: JsonOpt = False) -> None:
        """The algorithms you may use: yours, shared with you, public, presets."""
        with _client() as hub:
            found = hub.list_algorithms(task_type=task_type, query=query)
        if as_json:
            typer.echo(json.dumps(jsonable(found), indent=2))
            return
        table = Table("name", "version", "task type", "owner", "shared", "description",
                      box=box.SIMPLE_HEAD, header_style="bold")
        for a in found:
            kind = "preset" if a.preset else ("public" if a.public else a.role)
            table.add_row(a.name, str(a.latest), a.current.task_type, a.owner, kind,
                          a.current.description[:60])
        Console().print(table)

    @algos.command("show")
    def show(name: NameArg, as_json: JsonOpt = False) -> None:
        """An algorithm: its code, commands, typed params, versions and shares."""
        with _client() as hub:
            view = hub.get_algorithm(name)
        if as_json:
            typer.echo(json.dumps(jsonable(view), indent=2))
            return
        _show(view)

    def _version_options(code: str | None, revision: str | None, subpath: str | None,
                         task_type: str | None, params_file: str | None, train_command: str | None,
                         evaluate_command: str | None, predict_command: str | None, cpu: int | None,
                         gpu: int | None, description: str | None) -> dict[str, Any]:
        params = None
        if params_file:
            import yaml

            with open(params_file) as f:
                data = yaml.safe_load(f) or {}
            params = data.get("params", data) if isinstance(data, dict) else data
        out = dict(code_url=code, code_revision=revision, code_subpath=subpath, task_type=task_type,
                   params=params, train_command=train_command, evaluate_command=evaluate_command,
                   predict_command=predict_command, resources=_resources(cpu, gpu), description=description)
        return {k: v for k, v in out.items() if v is not None}

    CodeOpt = Annotated[str | None, typer.Option("--repo", help="Git URL or path of the code.")]
    RevOpt = Annotated[str | None, typer.Option(help="Branch, tag or commit of the code.")]
    SubOpt = Annotated[str | None, typer.Option(help="Directory of the code in the repository.")]
    TaskOpt = Annotated[str | None, typer.Option(help="Task type, e.g. image_classification.")]
    ParamsOpt = Annotated[str | None, typer.Option(
        "--params", help="YAML file with the typed params (an assethub.yaml works: its 'params').")]
    TrainOpt = Annotated[str | None, typer.Option(help="Command that trains.")]
    EvalOpt = Annotated[str | None, typer.Option(help="Command that evaluates.")]
    PredOpt = Annotated[str | None, typer.Option(help="Command that predicts.")]
    CpuOpt = Annotated[int | None, typer.Option(min=0, help="CPUs it needs.")]
    GpuOpt = Annotated[int | None, typer.Option(min=0, help="GPUs it needs.")]
    DescOpt = Annotated[str | None, typer.Option(help="What it does.")]

    @algos.command("register")
    def register_(name: NameArg, repo: CodeOpt = None, revision: RevOpt = None, subpath: SubOpt = None,
                  task_type: TaskOpt = None, params: ParamsOpt = None, train_command: TrainOpt = None,
                  evaluate_command: EvalOpt = None, predict_command: PredOpt = None, cpu: CpuOpt = None,
                  gpu: GpuOpt = None, description: DescOpt = None,
                  public: Annotated[bool, typer.Option(help="Visible to every user.")] = False,
                  as_json: JsonOpt = False) -> None:
        """Register training code as a new algorithm (version 1)."""
        fields = _version_options(repo, revision, subpath, task_type, params, train_command, evaluate_command,
                                  predict_command, cpu, gpu, description)
        with _client() as hub:
            view = hub.register_algorithm(name, public=public, **{"code_url": "", "task_type": "", **fields})
        if as_json:
            typer.echo(json.dumps(jsonable(view), indent=2))
            return
        typer.echo(f"registered {view.name}@{view.latest}")

    @algos.command("update")
    def update(name: NameArg, repo: CodeOpt = None, revision: RevOpt = None, subpath: SubOpt = None,
               task_type: TaskOpt = None, params: ParamsOpt = None, train_command: TrainOpt = None,
               evaluate_command: EvalOpt = None, predict_command: PredOpt = None, cpu: CpuOpt = None,
               gpu: GpuOpt = None, description: DescOpt = None,
               public: Annotated[bool | None, typer.Option("--public/--private",
                                                           help="Visible to every user, or not.")] = None,
               as_json: JsonOpt = False) -> None:
        """Make a new version: the latest with the options given changed."""
        fields = _version_options(repo, revision, subpath, task_type, params, train_command, evaluate_command,
                                  predict_command, cpu, gpu, description)
        with _client() as hub:
            view = hub.update_algorithm(name, public=public, **fields)
        if as_json:
            typer.echo(json.dumps(jsonable(view), indent=2))
            return
        typer.echo(f"{view.name} is at version {view.latest}")

    @algos.command("delete")
    def delete(name: NameArg) -> None:
        """Delete an algorithm and all its versions (runs that used it keep its name)."""
        with _client() as hub:
            hub.delete_algorithm(name)
        typer.echo(f"deleted {name}")

    UserOpt = Annotated[str | None, typer.Option("--user", help="Share with this user.")]
    GroupOpt = Annotated[str | None, typer.Option("--group", help="Share with this group.")]
    EveryoneOpt = Annotated[bool, typer.Option("--everyone", help="Share with every user.")]

    @algos.command("share")
    def share(name: NameArg, user: UserOpt = None, group: GroupOpt = None, everyone: EveryoneOpt = False,
              role: Annotated[str, typer.Option(help="view (see and use) or edit (update, share, "
                                                     "delete).")] = "view") -> None:
        """Share an algorithm with a user, a group or everyone."""
        with _client() as hub:
            s = hub.share_algorithm(name, role=role, user=user, group=group, everyone=everyone)
        whom = f"{s.subject_type} {s.subject_name}".strip()
        typer.echo(f"shared {s.algorithm} with {whom} as {s.role}")

    @algos.command("unshare")
    def unshare(name: NameArg, user: UserOpt = None, group: GroupOpt = None,
                everyone: EveryoneOpt = False) -> None:
        """Stop sharing an algorithm with a user, a group or everyone."""
        with _client() as hub:
            hub.unshare_algorithm(name, user=user, group=group, everyone=everyone)
        typer.echo(f"unshared {name}")
