"""The ``assethub`` command line: each command builds a :class:`Client`, makes one call, renders.

    assethub login --url http://127.0.0.1:8780            # asks for the API token
    assethub create folder alice/model/vision
    assethub create asset alice/model/vision/resnet --label cv
    assethub commit alice/model/vision/resnet:main -m "weights" --add out/model.pt
    assethub ls alice/model/vision/resnet:main
    assethub download alice/model/vision/resnet:v1 ./weights

Listings take ``--json`` for scripts. Every error is one line on stderr (``error: ...``) with the
exit code from :data:`EXIT_CODES`: 2 bad input, 3 not found, 4 not signed in, 5 not allowed,
6 conflict, 7 the server cannot be reached, 1 anything else.
"""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts, and evaluating them from strings took 0.05-0.08 s of a command's 0.5 s.

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from assethub import config, errors
from assethub._json import jsonable as _plain
from assethub.cli_help import defer_markdown_and_tracebacks
from assethub.cli_plugins import PluginCommands
from assethub.refs import FolderPath

if TYPE_CHECKING:  # the SDK and the wire types load on the first command that needs them
    from assethub.client import Client
    from assethub.wire import AddFile, DatasetMeta

defer_markdown_and_tracebacks()  # help and usage errors render without loading them

# -- errors: one table from exception classes to exit codes and hints ---------------------------
EXIT_CODES = errors.EXIT_CODES  # one table, shared with `python -m flows`


def _skip_typer_coercion(command: Any) -> None:
    """Let ``str`` and ``bool`` parameters of ``command`` and its subcommands keep the value the
    parser read, which already is their value.

    Typer converts every value, even a ``str``, through a pydantic TypeAdapter: importing
    pydantic and building the adapters took longer than the rest of ``assethub whoami``
    (0.15-0.2 s). Other types (numbers with bounds, paths that must exist, lists) still go
    through Typer. Relies on Typer's lazy ``_runtime_param``; with a Typer without it, nothing
    changes but the speed."""
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:
        return
    commands = [command]
    while commands:
        cmd = commands.pop()
        commands.extend(getattr(cmd, "commands", {}).values())
        help_option = cmd.get_help_option(TyperGroup.context_class(cmd))  # made once, then kept
        for param in [*cmd.params, *([help_option] if help_option is not None else [])]:
            described = getattr(param, "type_descriptor", None)
            if (described is not None and described.annotation in (str, bool)
                    and described.parameter_info.parser is None
                    and getattr(param, "_runtime_param", False) is None):
                param._runtime_param = PassThroughRuntimeParam(
                    parameter_info=described.parameter_info, annotation=described.annotation)


class _Commands(PluginCommands):
    """Turns every Asset Hub (and local file) error into one line on stderr and an exit code;
    offers the commands other packages add (``assethub deploy``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _skip_typer_coercion(self)

    def list_commands(self, ctx: Any) -> list[str]:
        own = _own_commands()
        plugins_ = [n for n in super().list_commands(ctx)
                    if n not in own and n not in _LAZY_MODULE and n not in _GROUPS]
        return [*own, *(n for _, c, _ in _LAZY.values() for n in c),
                *_GROUPS, *(n for _, _, g in _LAZY.values() for n in g), *plugins_]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            module = _LAZY_MODULE.get(cmd_name)
            info = _own_commands().get(cmd_name)
            if info is not None:
                command = typer.main.get_command_from_info(
                    info, pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode)
                _skip_typer_coercion(command)
                self.commands[cmd_name] = command
            elif module is not None:
                self.commands.update(_lazy_commands(module))
            elif cmd_name in _GROUPS:
                group = typer.main.get_group(_GROUPS[cmd_name])
                group.name = cmd_name
                _skip_typer_coercion(group)
                self.commands[cmd_name] = group
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (errors.AssetHubError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):  # `assethub ls | head`: not an error
                raise
            code, hint = next((c, h) for classes, c, h in EXIT_CODES if isinstance(exc, classes))
            typer.echo(f"error: {' '.join(str(exc).split())}{hint}", err=True)
            raise typer.Exit(code) from None


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False,
                  help="Asset Hub: versioned datasets and models.")
# This module's commands; `app` builds each into a click command only when it is asked for.
_commands = typer.Typer()


@app.callback()
def _main() -> None:
    """(Makes `app` a group whose commands all come from `_Commands.get_command`.)"""
create_app = typer.Typer(no_args_is_help=True, help="Create a folder, asset, branch or tag.")
delete_app = typer.Typer(no_args_is_help=True, help="Delete a folder, asset, branch or tag.")
user_app = typer.Typer(no_args_is_help=True, help="Manage users (admin).")
group_app = typer.Typer(no_args_is_help=True, help="Manage groups (admin).")
token_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")
# Built into click commands only when asked for (as the commands of other modules, below).
_GROUPS = {"create": create_app, "delete": delete_app, "user": user_app, "group": group_app,
           "token": token_app}

# -- shared argument and option types -----------------------------------------------------------
_REF_HELP = "<owner>/<model|dataset>/<folder>/<name>[:<branch|tag|commit>] (default ref: main)"
RefArg = Annotated[str, typer.Argument(metavar="REF", help=_REF_HELP)]
AssetArg = Annotated[str, typer.Argument(metavar="ASSET", help="<owner>/<model|dataset>/<folder>/<name>")]
FolderArg = Annotated[str, typer.Argument(metavar="FOLDER", help="<owner>/<model|dataset>/<folder>")]
LocalArg = Annotated[Path, typer.Argument(exists=True, help="a local file or directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d")]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="A label (repeatable).")]
ReadmeOpt = Annotated[Path | None, typer.Option("--readme-file", exists=True, dir_okay=False)]
TaskTypeOpt = Annotated[str | None, typer.Option("--task-type", help="Dataset task type.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="Dataset format: dir, json, ...")]
SplitRatioOpt = Annotated[float | None, typer.Option("--split-ratio", help="Train share, e.g. 0.9.")]
TestSetOpt = Annotated[str | None, typer.Option("--test-set-path", help="Test split in the dataset.")]
UserOpt = Annotated[str | None, typer.Option("--user", "-u")]
GroupOpt = Annotated[str | None, typer.Option("--group", "-g")]
EveryoneOpt = Annotated[bool, typer.Option("--everyone", help="Everyone, signed in or not.")]
RoleOpt = Annotated[str, typer.Option("--role", "-r", help="view, run or edit.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1)]


# -- rendering ----------------------------------------------------------------------------------
def _hub(url: str | None = None, token: str | None = None) -> "Client":
    """The SDK, imported on the first command that calls the server (not for ``--help``)."""
    from assethub.client import Client

    return Client(url, token)


def _when(t: datetime | None) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M") if t else ""


Columns = Mapping[str, Callable[[Any], object]]
FOLDER_COLS: Columns = {"folder": lambda f: f.path, "role": lambda f: f.your_role,
                        "assets": lambda f: f.assets, "description": lambda f: f.description}
ASSET_COLS: Columns = {"asset": lambda a: a.path, "role": lambda a: a.your_role,
                       "labels": lambda a: ", ".join(a.labels), "updated": lambda a: _when(a.updated_at),
                       "description": lambda a: a.description}
COMMIT_COLS: Columns = {"commit": lambda c: c.id[:12], "date": lambda c: _when(c.created),
                        "author": lambda c: c.metadata.get("author") or c.committer,
                        "message": lambda c: c.message}
REF_COLS: Columns = {"name": lambda r: r.name, "commit": lambda r: r.commit_id[:12]}
OBJECT_COLS: Columns = {"path": lambda o: o.path, "size": lambda o: decimal(o.size),
                        "sha256": lambda o: (o.sha256 or "")[:12], "modified": lambda o: _when(o.modified)}
SHARE_COLS: Columns = {"with": lambda s: f"{s.subject_type}:{s.subject_name}".rstrip(":"),
                       "role": lambda s: s.role, "by": lambda s: s.created_by}
USER_COLS: Columns = {"user": lambda u: u.name, "admin": lambda u: "yes" if u.is_admin else "",
                      "disabled": lambda u: "yes" if u.disabled else "",
                      "groups": lambda u: ", ".join(u.groups),
                      "display name": lambda u: u.display_name, "email": lambda u: u.email}
TOKEN_COLS: Columns = {"id": lambda t: t.id, "user": lambda t: t.user, "name": lambda t: t.name,
                       "prefix": lambda t: t.prefix, "created": lambda t: _when(t.created_at),
                       "expires": lambda t: _when(t.expires_at), "revoked": lambda t: _when(t.revoked_at),
                       "last used": lambda t: _when(t.last_used_at)}
AUDIT_COLS: Columns = {"at": lambda e: _when(e.at), "actor": lambda e: e.actor, "action": lambda e: e.action,
                       "target": lambda e: e.target, "outcome": lambda e: e.outcome,
                       "detail": lambda e: e.detail}


def _show(items: Sequence[Any], as_json: bool, columns: Columns, *, data: Any = None) -> None:
    """Print ``items`` as a table, or ``data`` (default: the items) as JSON."""
    if as_json:
        typer.echo(json.dumps(_plain(items if data is None else data), indent=2))
        return
    table = Table(*columns, box=box.SIMPLE_HEAD, header_style="bold")
    for item in items:
        table.add_row(*(Text(str(get(item))) for get in columns.values()))  # no markup in data
    Console(emoji=False).print(table)  # no :codes: here; rich's emoji table takes 10 ms to load


def _dataset_meta(task_type: str | None, data_format: str | None, split_ratio: float | None,
                  test_set_path: str | None) -> "DatasetMeta | None":
    from assethub.wire import DatasetMeta

    if not any(v is not None for v in (task_type, data_format, split_ratio, test_set_path)):
        return None
    mode = "ratio" if split_ratio is not None else "test_set" if test_set_path else None
    return DatasetMeta(task_type, data_format, mode, split_ratio, test_set_path)


# -- session and stack ------------------------------------------------------------------------
@_commands.command()
def login(url: Annotated[str | None, typer.Option(help="Server URL.")] = None,
          token: Annotated[str | None, typer.Option(help="API token (asked for if not given).")] = None,
          ) -> None:
    """Check an API token with the server and save it (with the URL) for later commands."""
    url = url or config.load().url
    token = token or typer.prompt("API token", hide_input=True)
    if os.environ.get("ASSETHUB_TOKEN"):
        typer.echo("note: ASSETHUB_TOKEN is set and overrides the saved token", err=True)
    with _hub(url, token) as hub:
        me = hub.whoami()
    saved = config.save(config.ClientConfig(url, token))
    typer.echo(f"logged in to {url} as {me.name}; saved to {saved}")


@_commands.command()
def whoami(as_json: JsonOpt = False) -> None:
    """Show who your token signs you in as."""
    with _hub() as hub:
        me = hub.whoami()
    _show([me], as_json, USER_COLS, data=me)


@_commands.command()
def server() -> None:
    """Run the Asset Hub server in the foreground (settings from ASSETHUB_* variables)."""
    from assethub.server import serve

    serve()


# -- create -------------------------------------------------------------------------------------
@create_app.command("folder")
def create_folder(folder: FolderArg, description: DescriptionOpt = None) -> None:
    """Create a folder: the unit of sharing."""
    with _hub() as hub:
        f = hub.create_folder(folder, description=description or "")
    typer.echo(f"created folder {f.path}")


@create_app.command("asset")
def create_asset(asset: AssetArg, description: DescriptionOpt = None, label: LabelOpt = None,
                 readme_file: ReadmeOpt = None, task_type: TaskTypeOpt = None,
                 data_format: FormatOpt = None, split_ratio: SplitRatioOpt = None,
                 test_set_path: TestSetOpt = None) -> None:
    """Create a model or dataset in a folder."""
    meta = _dataset_meta(task_type, data_format, split_ratio, test_set_path)
    with _hub() as hub:
        a = hub.create_asset(asset, description=description or "", labels=label or (),
                             readme=readme_file.read_text() if readme_file else "", dataset=meta)
    typer.echo(f"created {a.path.kind.value} {a.path}")


@create_app.command("branch")
def create_branch(asset: AssetArg, name: str,
                  source: Annotated[str, typer.Option("--from", help="Branch, tag or commit.")] = "main",
                  ) -> None:
    """Create a branch of a model."""
    with _hub() as hub:
        b = hub.create_branch(asset, name, source=source)
    typer.echo(f"created branch {b.name} at {b.commit_id[:12]}")


@create_app.command("tag")
def create_tag(asset: AssetArg, name: str,
               ref: Annotated[str, typer.Option(help="Branch, tag or commit to tag.")] = "main") -> None:
    """Tag a version."""
    with _hub() as hub:
        t = hub.create_tag(asset, name, ref=ref)
    typer.echo(f"created tag {t.name} at {t.commit_id[:12]}")


# -- read ---------------------------------------------------------------------------------------
@_commands.command("ls")
def ls(path: Annotated[str | None, typer.Argument(
           help="Nothing, OWNER, OWNER/KIND, FOLDER, ASSET or ASSET:REF; or branches|tags|commits|shares "
                "followed by an asset (or folder)")] = None,
       target: Annotated[str | None, typer.Argument(show_default=False)] = None,
       prefix: Annotated[str, typer.Option(help="Only files under this path.")] = "",
       as_json: JsonOpt = False) -> None:
    """List folders; a folder's assets; an asset's branches and tags; or the files of ASSET:REF."""
    with _hub() as hub:
        if path in ("branches", "tags", "commits", "shares") and target:
            listing: dict[str, tuple[Callable[[str], Sequence[Any]], Columns]] = {
                "branches": (hub.list_branches, REF_COLS), "tags": (hub.list_tags, REF_COLS),
                "commits": (hub.log, COMMIT_COLS), "shares": (hub.list_shares, SHARE_COLS)}
            fetch, columns = listing[path]
            _show(fetch(target), as_json, columns)
        elif path is None or path.count("/") < 2:
            owner, _, kind = (path or "").partition("/")
            _show(hub.list_folders(owner=owner or None, kind=kind or None), as_json, FOLDER_COLS)
        elif path.count("/") == 2:
            f = FolderPath.parse(path)
            _show(hub.search(owner=f.owner, kind=f.kind.value, folder=f.name, limit=1000),
                  as_json, ASSET_COLS)
        elif ":" in path:
            _show(hub.list_objects(path, prefix=prefix), as_json, OBJECT_COLS)
        else:
            branches, tags = hub.list_branches(path), hub.list_tags(path)
            rows = [("branch", b) for b in branches] + [("tag", t) for t in tags]
            _show(rows, as_json, {"type": lambda r: r[0], "name": lambda r: r[1].name,
                                  "commit": lambda r: r[1].commit_id[:12]},
                  data={"branches": branches, "tags": tags})


@_commands.command()
def log(ref: RefArg, limit: LimitOpt = 20,
        file: Annotated[str | None, typer.Option(help="Only commits that changed this file.")] = None,
        as_json: JsonOpt = False) -> None:
    """Show the history of a branch, tag or commit, newest first."""
    with _hub() as hub:
        commits = hub.log(ref, limit=limit, path=file)
    _show(commits, as_json, COMMIT_COLS)


@_commands.command()
def diff(left: RefArg, right: Annotated[str, typer.Argument(help="A REF, or a ref of LEFT's asset.")],
         prefix: Annotated[str, typer.Option(help="Only paths under this prefix.")] = "",
         samples: Annotated[bool, typer.Option("--samples", help=(
             "Datasets: samples added, removed, changed and moved between classes, per split "
             "and class, and table rows added, removed and changed."))] = False,
         key: Annotated[str | None, typer.Option("--key", help=(
             "With --samples: the column that identifies a table's rows (default: compare rows "
             "by content)."))] = None,
         as_json: JsonOpt = False) -> None:
    """Show the files (or with --samples, the samples) that differ from LEFT to RIGHT."""
    if key is not None and not samples:
        raise typer.BadParameter("--key goes with --samples", param_hint="--key")
    if samples:
        from assethub.cli_stats import render_sample_diff

        with _hub() as hub:
            render_sample_diff(hub.sample_diff(left, right, key=key), as_json)
        return
    with _hub() as hub:
        changes = hub.diff(left, right, prefix=prefix)
    _show(changes, as_json, {"change": lambda d: d.change, "path": lambda d: d.path,
                             "size": lambda d: "" if d.size is None else decimal(d.size)})


@_commands.command()
def search(query: Annotated[str, typer.Argument(help="Words of the name or description.")] = "",
           label: Annotated[str | None, typer.Option("--label", "-l")] = None,
           kind: Annotated[str | None, typer.Option(help="model or dataset")] = None,
           owner: Annotated[str | None, typer.Option()] = None,
           folder: Annotated[str | None, typer.Option(help="Folder name.")] = None,
           limit: LimitOpt = 100, as_json: JsonOpt = False) -> None:
    """Find the assets you may see."""
    with _hub() as hub:
        found = hub.search(query, label=label, kind=kind, owner=owner, folder=folder, limit=limit)
    _show(found, as_json, ASSET_COLS)


@_commands.command()
def audit(actor: Annotated[str | None, typer.Option()] = None,
          action: Annotated[str | None, typer.Option(help="e.g. commit, merge, asset.create")] = None,
          target: Annotated[str | None, typer.Option(help="Part of the target's name.")] = None,
          since: Annotated[datetime | None, typer.Option(help="ISO date or time.")] = None,
          limit: LimitOpt = 50, as_json: JsonOpt = False) -> None:
    """Show audit events, newest first (yours; an admin sees everyone's)."""
    with _hub() as hub:
        events = hub.audit(actor=actor, action=action, target=target, since=since, limit=limit)
    _show(events, as_json, AUDIT_COLS)


# -- write --------------------------------------------------------------------------------------
def _add_op(spec: str) -> "AddFile":
    from assethub.wire import AddFile

    local, sep, remote = (spec, "", "") if Path(spec).exists() else spec.partition(":")
    p = Path(local)
    return AddFile(p, remote if sep else ("" if p.is_file() else p.name))


@_commands.command()
def commit(ref: RefArg, message: Annotated[str, typer.Option("--message", "-m")],
           add: Annotated[list[str] | None, typer.Option(
               "--add", "-a", metavar="LOCAL[:REMOTE]",
               help="A file (at REMOTE, default its name) or a directory (its files under REMOTE, "
                    "default the directory's name). Repeatable.")] = None,
           delete: Annotated[list[str] | None, typer.Option(
               "--delete", help="A file to remove. Repeatable.")] = None,
           parent: Annotated[str | None, typer.Option(
               help="Fail unless the branch is still at this commit.")] = None) -> None:
    """Add and delete files on a branch in one atomic commit."""
    from assethub.wire import DeleteFile

    ops = [_add_op(a) for a in add or ()] + [DeleteFile(d) for d in delete or ()]
    with _hub() as hub:
        c = hub.create_commit(ref, ops, message=message, parent_commit=parent, progress=True)
    typer.echo(f"committed {c.id[:12]} to {ref}")


@_commands.command()
def upload(ref: RefArg, local: LocalArg,
           path: Annotated[str, typer.Option(help="Where in the asset (default: file name / root).")] = "",
           message: MessageOpt = None,
           base: Annotated[str | None, typer.Option("--from", help=(
               "A dataset: start the new version from this published version or commit, or "
               "'empty', instead of the branch's head."))] = None) -> None:
    """Commit a local file or directory to a branch."""
    with _hub() as hub:
        c = hub.upload(ref, local, path=path, message=message, base=base, progress=True)
    typer.echo(f"committed {c.id[:12]} to {ref}")


@_commands.command()
def download(ref: RefArg, dest: Annotated[Path, typer.Argument(help="Local directory.")],
             prefix: Annotated[str, typer.Option(help="Only this file or directory.")] = "") -> None:
    """Download a version (or part of it); files already in the local cache are not transferred."""
    with _hub() as hub:
        r = hub.download(ref, dest, prefix=prefix, progress=True)
    cached = r.bytes_total - r.bytes_transferred
    typer.echo(f"downloaded {r.files} files ({decimal(r.bytes_total)}: {decimal(r.bytes_transferred)} "
          f"transferred, {decimal(cached)} from the local cache) at commit {r.commit_id[:12]} to {dest}")


@_commands.command()
def merge(asset: AssetArg, source: Annotated[str, typer.Argument(help="Branch to merge.")],
          into: Annotated[str, typer.Option(help="Branch to merge into.")] = "main",
          strategy: Annotated[str | None, typer.Option(
              help="On conflicts: source-wins or dest-wins.")] = None,
          message: MessageOpt = None,
          metric: Annotated[str | None, typer.Option(
              help="Merge only if the source's evaluation beats the target's on this metric "
                   "(runs the merge flow).")] = None,
          margin: Annotated[float, typer.Option(help="With --metric: the improvement needed.")] = 0.0,
          lower_is_better: Annotated[bool, typer.Option(
              "--lower-is-better", help="With --metric: the metric is a loss.")] = False) -> None:
    """Merge a branch into another; with --metric only if the source's model is better."""
    if metric:
        from assethub.cli_jobs import launch

        args = ["--model", asset, "--source", source, "--into", into, "--metric", metric,
                "--margin", str(margin), *(["--lower-is-better"] if lower_is_better else [])]
        result = launch("merge", args)
        typer.echo(f"merged {source} into {into}: {result['commit'][:12]} ({result['reason']})"
                   if result["merged"] else f"not merged: {result['reason']}")
        for side in ("source", "target"):  # whose numbers were compared
            if result.get(f"{side}_by") and result.get(f"{side}_value") is not None:
                typer.echo(f"  {side} {into if side == 'target' else source}: {metric} "
                           f"{result[f'{side}_value']:.6g} by {result[f'{side}_by']}")
        return
    with _hub() as hub:
        c = hub.merge(asset, source, into=into, strategy=strategy, message=message)
    typer.echo(f"merged {source} into {into}: {c.id[:12]}")


@_commands.command()
def update(path: Annotated[str, typer.Argument(metavar="ASSET|FOLDER")],
           rename: Annotated[str | None, typer.Option(help="New name.")] = None,
           description: DescriptionOpt = None, label: LabelOpt = None,
           readme_file: ReadmeOpt = None,
           preset: Annotated[bool | None, typer.Option(
               "--preset/--no-preset", help="Offer a dataset to everyone (admin).")] = None,
           task_type: TaskTypeOpt = None, data_format: FormatOpt = None,
           split_ratio: SplitRatioOpt = None, test_set_path: TestSetOpt = None) -> None:
    """Rename an asset or folder, or change its description, labels, README or dataset settings."""
    with _hub() as hub:
        if path.count("/") == 2:
            done: Any = hub.update_folder(path, new_name=rename, description=description)
        else:
            done = hub.update_asset(
                path, new_name=rename, description=description, labels=label, preset=preset,
                readme=readme_file.read_text() if readme_file else None,
                dataset=_dataset_meta(task_type, data_format, split_ratio, test_set_path))
    typer.echo(f"updated {done.path}")


@_commands.command()
def publish(dataset: AssetArg, tag: str,
            ref: Annotated[str, typer.Option(help="Version to publish.")] = "main") -> None:
    """Publish a dataset version as an immutable tag."""
    with _hub() as hub:
        t = hub.publish(dataset, tag, ref=ref)
    typer.echo(f"published {dataset}:{t.name} ({t.commit_id[:12]})")


@_commands.command("import")
def import_archive(dataset: AssetArg,
                   archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, metavar="ZIP")],
                   message: MessageOpt = None,
                   base: Annotated[str | None, typer.Option(
                       "--from", help="Start from this published version or commit, or 'empty' "
                                      "(default: main).")] = None,
                   mode: Annotated[str, typer.Option(
                       help="add: the archive on top of the start; replace: a clean version of "
                            "only the archive's files.")] = "add",
                   split: Annotated[str | None, typer.Option(
                       help="test: a separate test set (<class>/<file>) into the test split.")] = None,
                   ) -> None:
    """Import a zip archive into a dataset's main branch as one commit (checked against its format)."""
    with _hub() as hub:
        r = hub.import_archive(dataset, archive, message=message or "", base=base, mode=mode,
                               split=split)
    typer.echo(f"imported {r.summary.files} files ({decimal(r.summary.total_bytes)}, format "
          f"{r.summary.format}) as commit {r.commit.id[:12]}")


# -- sharing ------------------------------------------------------------------------------------
@_commands.command()
def share(folder: FolderArg, role: RoleOpt, user: UserOpt = None, group: GroupOpt = None,
          everyone: EveryoneOpt = False) -> None:
    """Give a user, a group or everyone a role on a folder."""
    with _hub() as hub:
        s = hub.share(folder, role=role, user=user, group=group, everyone=everyone)
    typer.echo(f"shared {s.folder} with {s.subject_type} {s.subject_name} as {s.role}".replace("  ", " "))


@_commands.command()
def unshare(folder: FolderArg, user: UserOpt = None, group: GroupOpt = None,
            everyone: EveryoneOpt = False) -> None:
    """Take back a share of a folder."""
    with _hub() as hub:
        hub.unshare(folder, user=user, group=group, everyone=everyone)
    typer.echo(f"unshared {folder}")


# -- delete -------------------------------------------------------------------------------------
def _confirm(what: str, yes: bool) -> None:
    if not yes:
        typer.confirm(f"delete {what}?", abort=True)


@delete_app.command("folder")
def delete_folder(folder: FolderArg, yes: YesOpt = False) -> None:
    """Delete a folder and every asset in it."""
    _confirm(f"folder {folder} and every asset in it", yes)
    with _hub() as hub:
        hub.delete_folder(folder)
    typer.echo(f"deleted folder {folder}")


@delete_app.command("asset")
def delete_asset(asset: AssetArg, yes: YesOpt = False) -> None:
    """Delete an asset with all its versions."""
    _confirm(f"{asset} with all its versions", yes)
    with _hub() as hub:
        hub.delete_asset(asset)
    typer.echo(f"deleted {asset}")


@delete_app.command("branch")
def delete_branch(asset: AssetArg, name: str, yes: YesOpt = False) -> None:
    """Delete a branch."""
    _confirm(f"branch {name} of {asset}", yes)
    with _hub() as hub:
        hub.delete_branch(asset, name)
    typer.echo(f"deleted branch {name}")


@delete_app.command("tag")
def delete_tag(asset: AssetArg, name: str, yes: YesOpt = False) -> None:
    """Delete a tag (published dataset versions cannot be deleted)."""
    _confirm(f"tag {name} of {asset}", yes)
    with _hub() as hub:
        hub.delete_tag(asset, name)
    typer.echo(f"deleted tag {name}")


# -- admin: users, groups, tokens -------------------------------------------------------------
@user_app.command("create")
def user_create(name: str, display_name: Annotated[str, typer.Option()] = "",
                email: Annotated[str, typer.Option()] = "",
                admin: Annotated[bool, typer.Option("--admin")] = False) -> None:
    """Create a user (then give them a token with `assethub token create --user NAME`)."""
    with _hub() as hub:
        u = hub.create_user(name, display_name=display_name, email=email, is_admin=admin)
    typer.echo(f"created user {u.name}")


@user_app.command("ls")
def user_ls(as_json: JsonOpt = False) -> None:
    """List users."""
    with _hub() as hub:
        users = hub.list_users()
    _show(users, as_json, USER_COLS)


@user_app.command("update")
def user_update(name: str,
                admin: Annotated[bool | None, typer.Option("--admin/--no-admin")] = None,
                disabled: Annotated[bool | None, typer.Option("--disable/--enable")] = None,
                display_name: Annotated[str | None, typer.Option()] = None,
                email: Annotated[str | None, typer.Option()] = None) -> None:
    """Change a user: admin rights, disabled, display name, email."""
    with _hub() as hub:
        u = hub.update_user(name, is_admin=admin, disabled=disabled, display_name=display_name,
                            email=email)
    typer.echo(f"updated user {u.name}")


@group_app.command("create")
def group_create(name: str) -> None:
    """Create a group."""
    with _hub() as hub:
        hub.create_group(name)
    typer.echo(f"created group {name}")


@group_app.command("ls")
def group_ls(as_json: JsonOpt = False) -> None:
    """List groups and their members."""
    with _hub() as hub:
        groups = hub.list_groups()
    _show(groups, as_json, {"group": lambda g: g.name, "members": lambda g: ", ".join(g.members)})


@group_app.command("add")
def group_add(group: str, user: str) -> None:
    """Add a user to a group."""
    with _hub() as hub:
        hub.add_member(group, user)
    typer.echo(f"added {user} to {group}")


@group_app.command("remove")
def group_remove(group: str, user: str) -> None:
    """Remove a user from a group."""
    with _hub() as hub:
        hub.remove_member(group, user)
    typer.echo(f"removed {user} from {group}")


@group_app.command("delete")
def group_delete(group: str, yes: YesOpt = False) -> None:
    """Delete a group (its shares stop applying)."""
    _confirm(f"group {group}", yes)
    with _hub() as hub:
        hub.delete_group(group)
    typer.echo(f"deleted group {group}")


@token_app.command("create")
def token_create(user: UserOpt = None, name: Annotated[str, typer.Option()] = "",
                 expires_days: Annotated[float | None, typer.Option(min=0.001)] = None,
                 as_json: JsonOpt = False) -> None:
    """Create an API token (for yourself, or for --user as an admin); prints its secret once."""
    with _hub() as hub:
        new = hub.create_token(user, name=name, expires_in_days=expires_days)
    if as_json:
        typer.echo(json.dumps({**_plain(new.token), "token": new.secret}, indent=2))
        return
    typer.echo(f"token {new.token.id} for {new.token.user}; store this secret now, it is not "
               "shown again:", err=True)
    typer.echo(new.secret)


@token_app.command("ls")
def token_ls(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List API tokens (yours, or --user's as an admin); secrets are never shown."""
    with _hub() as hub:
        tokens = hub.list_tokens(user)
    _show(tokens, as_json, TOKEN_COLS)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API token."""
    with _hub() as hub:
        hub.revoke_token(token_id)
    typer.echo(f"revoked token {token_id}")


# -- commands in other modules, loaded when asked for --------------------------------------------
# module -> (its register functions, its commands, its command groups), in the order `--help`
# lists them: this module's commands, these commands, this module's groups, these groups, plugins.
# Loading a module only for the command that runs keeps `assethub whoami` from importing (and
# Typer from building) the 30 commands it does not run. tests/unit/test_cli_lazy.py checks the
# names against what the modules register.
_LAZY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "cli_jobs": (("register", "register_git_credentials"),
                 ("train", "continue-train", "evaluate", "reproduce", "runs", "lineage", "compare"),
                 ("git-credentials",)),
    "cli_deploy": (("register",), ("follow", "unfollow", "resume-follow", "follows"), ()),
    "cli_export": (("register",), ("export",), ()),
    "cli_services": (("register",), ("serve", "predict"), ("services",)),
    "cli_stack": (("register",), ("up", "down", "status", "logs"), ()),
    "cli_algorithms": (("register",), ("configure",), ("algorithms",)),
    "cli_init": (("register",), ("init",), ()),
    "cli_stats": (("register",), ("stats",), ()),
    "cli_data": (("register",), ("versions", "restore", "cat", "head"), ()),
}
_LAZY_MODULE = {name: module for module, (_, commands, groups) in _LAZY.items()
                for name in (*commands, *groups)}


def _own_commands() -> dict[str, Any]:
    """This module's commands (Typer's CommandInfo), by name, in the order they are defined."""
    return {info.name or typer.main.get_command_name(getattr(info.callback, "__name__", "")): info
            for info in _commands.registered_commands}


def _lazy_commands(module: str) -> dict[str, Any]:
    """The click commands ``assethub.<module>`` registers, by name."""
    import importlib

    mod = importlib.import_module(f"assethub.{module}")
    sub = typer.Typer()
    for register in _LAZY[module][0]:
        getattr(mod, register)(sub)
    group = typer.main.get_group(sub)
    _skip_typer_coercion(group)
    return dict(group.commands)
